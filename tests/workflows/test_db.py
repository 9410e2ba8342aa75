"""workflows/db.py, on the running database: each raw statement answers like its ORM
reference on small fixtures."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, Max, OuterRef, Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import CaseFactory, QueueFactory, UserFactory
from workflows import db
from workflows.models import (
    AuditEvent,
    Case,
    ConsultRequest,
    Escalation,
    OutboxMessage,
    Process,
    Queue,
    RaciAssignment,
    Resolution,
    SlaWarning,
)
from workflows.services import audit, outbox

pytestmark = pytest.mark.django_db

COLUMNS = ("case_id", "clock", "level", "created_at")
KEY = ("case_id", "clock", "level")


def warning_rows(*keys):
    created_at = connection.ops.adapt_datetimefield_value(timezone.now())
    return [(case_id, clock, level, created_at) for case_id, clock, level in keys]


def test_insert_new_answers_only_the_rows_it_inserted():
    case = CaseFactory()
    SlaWarning.objects.create(case=case, clock="response", level=0, created_at=timezone.now())

    inserted = db.insert_new(
        SlaWarning, columns=COLUMNS, conflict=KEY, returning=("case_id", "clock", "level"),
        rows=warning_rows((case.pk, "response", 0), (case.pk, "resolution", 0),
                          (case.pk, "response", 1)))

    assert sorted(inserted) == [(case.pk, "resolution", 0), (case.pk, "response", 1)]
    assert SlaWarning.objects.filter(case=case).count() == 3


def test_a_conflict_leaves_the_callers_transaction_usable():
    case = CaseFactory()
    with transaction.atomic():
        first = db.insert_new(SlaWarning, columns=COLUMNS, conflict=KEY, returning=("id",),
                              rows=warning_rows((case.pk, "response", 0)))
        again = db.insert_new(SlaWarning, columns=COLUMNS, conflict=KEY, returning=("id",),
                              rows=warning_rows((case.pk, "response", 0)))
        assert again == []
        assert SlaWarning.objects.get(case=case).pk == first[0][0]


def test_nothing_to_insert_runs_no_query(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert db.insert_new(SlaWarning, columns=COLUMNS, conflict=KEY, returning=("id",),
                             rows=[]) == []


# --- claim_case_level: like the ORM's conditional update and re-read ------------------------

OPEN = ("open", "assigned", "waiting", "pending_approval", "escalated")


def _orm_claim(*, case_id, expected_level, states, expected_version=None):
    rows = Case.objects.filter(pk=case_id, escalation_level=expected_level, state__in=states)
    if expected_version is not None:
        rows = rows.filter(version=expected_version)
    if rows.update(escalation_level=expected_level + 1, version=F("version") + 1) != 1:
        return None
    return Case.objects.get(pk=case_id)


def _fields(case):
    return {field.attname: getattr(case, field.attname) for field in Case._meta.concrete_fields}


@pytest.mark.parametrize(("state", "level", "version", "claims"), [
    ("open", 0, None, True),
    ("open", 0, 1, True),      # the version read is still the row's
    ("open", 0, 7, False),     # someone changed the case meanwhile
    ("assigned", 1, None, False),  # another escalation won the level
    ("resolved", 0, None, False),  # closed meanwhile
])
def test_claim_case_level_answers_like_the_orm_update_and_reread(state, level, version, claims):
    reviewer, queue, opened = UserFactory(), QueueFactory(), timezone.now()
    raw_case, orm_case = (
        CaseFactory(queue=queue, created_at=opened, title="Twin", state=state,
                    assignee=reviewer if state == "assigned" else None,
                    escalation_level=1 if level == 1 else 0, version=1,
                    closed_at=timezone.now() if state == "resolved" else None)
        for _ in range(2))

    raw = db.claim_case_level(case_id=raw_case.pk, expected_level=0, states=OPEN,
                              expected_version=version)
    orm = _orm_claim(case_id=orm_case.pk, expected_level=0, states=OPEN,
                     expected_version=version)

    assert (raw is not None, orm is not None) == (claims, claims)
    if claims:
        ignore = {"id"}
        assert ({k: v for k, v in _fields(raw).items() if k not in ignore}
                == {k: v for k, v in _fields(orm).items() if k not in ignore})
        assert _fields(raw) == _fields(Case.objects.get(pk=raw_case.pk))
        assert not raw._state.adding


def _escalation_row(escalation):
    return {field.attname: getattr(escalation, field.attname)
            for field in Escalation._meta.concrete_fields if not field.primary_key}


@pytest.mark.parametrize(("state", "version", "written_before", "due_at_from"), [
    ("open", None, False, "due_at"),             # the sweeper's: the deadline missed
    ("assigned", 1, False, "response_due_at"),
    ("assigned", 1, False, None),                 # by hand: no deadline missed
    ("open", 7, False, None),                     # the case changed meanwhile: no claim
    ("resolved", None, False, "due_at"),          # closed meanwhile
    ("open", None, True, "due_at"),               # the level's row is there already (I2)
])
def test_claiming_a_level_with_its_escalation_does_what_the_claim_and_the_insert_do(
        state, version, written_before, due_at_from):
    reviewer, queue, opened = UserFactory(), QueueFactory(), timezone.now()
    raw_case, orm_case = (
        CaseFactory(queue=queue, created_at=opened, title="Twin", state=state,
                    assignee=reviewer if state == "assigned" else None, version=1,
                    due_at=opened + timedelta(hours=2),
                    response_due_at=opened + timedelta(minutes=30),
                    closed_at=timezone.now() if state == "resolved" else None)
        for _ in range(2))
    if written_before:
        for case in (raw_case, orm_case):
            Escalation.objects.create(case=case, level=1, cause="manual", created_at=opened)

    def unsaved():
        return Escalation(cause="resolution_breach", reason="Too late", actor=reviewer,
                          created_at=opened)

    by_sql, by_orm = unsaved(), unsaved()
    raw = db.claim_case_level_with_escalation(
        case_id=raw_case.pk, expected_level=0, states=OPEN, expected_version=version,
        escalation=by_sql, due_at_from=due_at_from)
    orm = db.claim_case_level(case_id=orm_case.pk, expected_level=0, states=OPEN,
                              expected_version=version)
    if orm is not None:
        by_orm.case, by_orm.level = orm, orm.escalation_level
        by_orm.due_at = getattr(orm, due_at_from) if due_at_from else None
        fields = [f for f in Escalation._meta.concrete_fields if not f.primary_key]
        inserted = db.insert_new(Escalation, columns=[f.column for f in fields],
                                 rows=[db.db_values(by_orm, fields)],
                                 conflict=("case_id", "level"), returning=("id",))
        by_orm.pk = inserted[0][0] if inserted else None

    assert (raw is None) == (orm is None)
    if orm is None:
        assert by_sql.pk is None
        assert _fields(Case.objects.get(pk=raw_case.pk))["escalation_level"] == 0
        return
    ignore = {"id"}
    assert ({k: v for k, v in _fields(raw).items() if k not in ignore}
            == {k: v for k, v in _fields(orm).items() if k not in ignore})
    assert _fields(raw) == _fields(Case.objects.get(pk=raw_case.pk))
    assert (by_sql.pk is None, by_orm.pk is None) == (written_before, written_before)
    assert by_sql.case is raw and by_sql.level == 1
    stored = {k: v for k, v in _escalation_row(by_sql).items() if k != "case_id"}
    assert stored == {k: v for k, v in _escalation_row(by_orm).items() if k != "case_id"}
    if not written_before:
        assert _escalation_row(Escalation.objects.get(pk=by_sql.pk)) == _escalation_row(by_sql)
        assert not by_sql._state.adding


def test_a_case_updated_with_its_effects_stores_what_the_update_and_the_inserts_store(
        django_assert_num_queries):
    reviewer, queue, now = UserFactory(), QueueFactory(), timezone.now()
    raw_case, orm_case = (CaseFactory(queue=queue, created_at=now, title="Twin")
                          for _ in range(2))
    changes = {"assignee_id": reviewer.pk, "due_at": now, "warn_at": None,
               "sla_remaining": timedelta(hours=3, microseconds=5)}
    for case in (raw_case, orm_case):
        for name, value in changes.items():
            setattr(case, name, value)
    written = outbox.message(channel="in_app", recipient=str(reviewer.pk),
                             dedup_key="escalation:0:in_app:0", payload={"text": "Before"},
                             case=raw_case, now=now)
    outbox.write([written])

    def effects(case, prefix):
        messages = [outbox.message(channel="in_app", recipient=str(reviewer.pk),
                                   dedup_key=f"{prefix}:in_app:{reviewer.pk}",
                                   payload={"text": "Escalated", "at": now}, case=case, now=now),
                    outbox.message(channel="email", recipient="ana@example.com",
                                   dedup_key=f"{prefix}:email:{reviewer.pk}",
                                   payload={"text": "Escalated"}, subject="Escalated",
                                   case=case, now=now)]
        events = [audit.build(actor=reviewer, verb=verb, object_type="case",
                              object_id=case.pk, case=case, now=now,
                              data={"version": case.version, "due_at": now})
                  for verb in ("case.escalated", "case.resolved")]
        return messages, events

    raw_messages, raw_events = effects(raw_case, "raw")
    raw_messages.append(outbox.message(  # written before under its key: not again
        channel="in_app", recipient=str(reviewer.pk), dedup_key=written.dedup_key,
        payload={"text": "Again"}, case=raw_case, now=now))
    orm_messages, orm_events = effects(orm_case, "orm")
    with django_assert_num_queries(1 if connection.vendor == "postgresql" else 3):
        inserted = db.update_columns_with_effects(raw_case, list(changes),
                                                  messages=raw_messages, events=raw_events)
    Case.objects.filter(pk=orm_case.pk).update(**changes)
    fields = OutboxMessage._meta.concrete_fields
    db.insert_new(OutboxMessage, columns=[f.column for f in fields],
                  rows=[db.db_values(m, fields) for m in orm_messages],
                  conflict=("dedup_key",), returning=("id",))
    AuditEvent.objects.bulk_create(orm_events)

    assert inserted == {m.pk for m in raw_messages[:2]}
    ignore = {"id"}
    assert ({k: v for k, v in _fields(Case.objects.get(pk=raw_case.pk)).items()
             if k not in ignore}
            == {k: v for k, v in _fields(Case.objects.get(pk=orm_case.pk)).items()
                if k not in ignore})
    assert OutboxMessage.objects.get(dedup_key=written.dedup_key).payload == {"text": "Before"}
    for raw, orm in zip(raw_messages[:2], orm_messages, strict=True):
        stored, reference = (_model_values(OutboxMessage.objects.get(pk=m.pk))
                             for m in (raw, orm))
        assert ({k: v for k, v in stored.items() if k not in ("id", "dedup_key", "case_id")}
                == {k: v for k, v in reference.items()
                    if k not in ("id", "dedup_key", "case_id")})
    for raw, orm in zip(raw_events, orm_events, strict=True):
        stored, reference = (AuditEvent.objects.get(pk=event.pk) for event in (raw, orm))
        assert (stored.verb, stored.case_id, stored.data) == (raw.verb, raw_case.pk, raw.data)
        assert stored.data == {**reference.data, "version": raw_case.version}
        assert stored.row_hash == audit.event_hash(stored) and stored.recorded_at is not None
        assert reference.recorded_at is not None


def test_a_case_updated_with_nothing_changed_still_stores_its_effects():
    reviewer, now = UserFactory(), timezone.now()
    case = CaseFactory(title="Unchanged")
    event = audit.build(actor=reviewer, verb="case.escalated", object_type="case",
                        object_id=case.pk, case=case, now=now, data={})

    assert db.update_columns_with_effects(case, [], messages=[], events=[event]) == set()

    assert AuditEvent.objects.get(pk=event.pk).case_id == case.pk
    assert _fields(Case.objects.get(pk=case.pk)) == _fields(case)


def test_updating_some_columns_stores_what_the_orms_update_stores():
    reviewer, queue, opened, now = UserFactory(), QueueFactory(), timezone.now(), timezone.now()
    raw_case, orm_case, untouched = (CaseFactory(queue=queue, created_at=opened, title="Twin")
                                     for _ in range(3))
    changes = {"priority": 90, "assignee_id": reviewer.pk, "due_at": now,
               "warn_at": None, "sla_remaining": timedelta(hours=3, microseconds=5),
               "title": "Twin, escalated"}
    for case in (raw_case, orm_case):
        for name, value in changes.items():
            setattr(case, name, value)

    db.update_columns(raw_case, list(changes))
    Case.objects.filter(pk=orm_case.pk).update(**changes)

    ignore = {"id"}
    assert ({k: v for k, v in _fields(Case.objects.get(pk=raw_case.pk)).items()
             if k not in ignore}
            == {k: v for k, v in _fields(Case.objects.get(pk=orm_case.pk)).items()
                if k not in ignore})
    assert _fields(Case.objects.get(pk=untouched.pk)) == _fields(untouched)  # its row alone


@pytest.mark.parametrize("sent_back", [False, True])
def test_adding_to_columns_changes_what_the_orms_update_changes(sent_back,
                                                                django_assert_num_queries):
    from django.db.models import IntegerField
    from django.db.models.functions import Cast

    raw_queue, orm_queue = QueueFactory(), QueueFactory()
    for queue in (raw_queue, orm_queue):
        CaseFactory.create_batch(2, queue=queue, priority=10, time_spent_seconds=7)
        CaseFactory(queue=queue, requires_four_eyes=True, priority=10)  # not matched
    asked = CaseFactory(queue=QueueFactory())  # the case whose events are asked about
    _case_event(asked, verb="case.released").save()
    if sent_back:
        _case_event(asked, verb="case.sent_back").save()

    with django_assert_num_queries(1):
        changed = db.add_to_columns(
            Case, where={"queue_id": raw_queue.pk, "requires_four_eyes": False},
            adds={"priority": 5, "escalation_level": 0,
                  "time_spent_seconds": db.case_has_event(case_id=asked.pk,
                                                          verb="case.sent_back")})
    by_orm = Case.objects.filter(queue_id=orm_queue.pk, requires_four_eyes=False).update(
        priority=F("priority") + 5, escalation_level=F("escalation_level") + 0,
        time_spent_seconds=F("time_spent_seconds") + Cast(Exists(AuditEvent.objects.filter(
            case_id=asked.pk, verb="case.sent_back")), IntegerField()))

    def stored(queue):
        return sorted(Case.objects.filter(queue=queue).values_list(
            "requires_four_eyes", "priority", "escalation_level", "time_spent_seconds"))

    assert changed == by_orm == 2
    assert stored(raw_queue) == stored(orm_queue) == sorted(
        [(False, 15, 0, 7 + sent_back)] * 2 + [(True, 10, 0, 0)])
    assert Case.objects.get(pk=asked.pk).priority == asked.priority  # other rows alone


# --- claimant_available: the away check inside a claim's statement --------------------------

@pytest.mark.postgres
@pytest.mark.parametrize("status", [None, "available", "away"])
def test_a_claimants_availability_is_what_the_orm_finds(status):
    from workflows.models import ReviewerStatus
    from workflows.services import assignment

    person = UserFactory()
    CaseFactory()
    if status is not None:
        ReviewerStatus.objects.create(user=person, available=status == "available")

    with transaction.atomic():
        found = Case.objects.filter(db.claimant_available(person.pk)).exists()

    assert found == assignment.is_available(person) == (status != "away")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_claimants_status_stays_locked_until_commit_even_when_available():
    import psycopg

    from workflows.models import ReviewerStatus

    person = UserFactory()
    ReviewerStatus.objects.create(user=person, available=True)
    settings_dict = connection.settings_dict
    other = psycopg.connect(host=settings_dict["HOST"], port=settings_dict["PORT"] or 5432,
                            user=settings_dict["USER"], dbname=settings_dict["NAME"],
                            autocommit=True)

    def other_can_lock():  # as going away does, before it hands the person's cases over
        try:
            other.execute(f"SELECT 1 FROM {ReviewerStatus._meta.db_table} WHERE user_id = %s "
                          "FOR UPDATE NOWAIT", [person.pk])
        except psycopg.errors.LockNotAvailable:
            return False
        return True

    try:
        with transaction.atomic():
            list(Case.objects.filter(db.claimant_available(person.pk))[:1])
            assert not other_can_lock()
        assert other_can_lock()
    finally:
        other.close()


# --- set_next_checks: like one conditional ORM update per case ------------------------------


def test_set_next_checks_moves_the_cases_the_orm_updates_would():
    now = timezone.now()
    twins = [(CaseFactory(version=1, sla_next_check_at=now), CaseFactory(version=1,
                                                                         sla_next_check_at=now))
             for _ in range(4)]
    # (version read, level read, next check): current, stale version, stale level, no clock.
    moves = [(1, 0, now + timedelta(minutes=5)), (2, 0, now + timedelta(minutes=6)),
             (1, 1, now + timedelta(minutes=7)), (1, 0, None)]

    db.set_next_checks([(raw.pk, version, level, next_at)
                        for (raw, _), (version, level, next_at) in zip(twins, moves, strict=True)])
    for (_, orm), (version, level, next_at) in zip(twins, moves, strict=True):
        Case.objects.filter(pk=orm.pk, version=version, escalation_level=level).update(
            sla_next_check_at=next_at)

    after = dict(Case.objects.values_list("pk", "sla_next_check_at"))
    assert [after[raw.pk] for raw, _ in twins] == [after[orm.pk] for _, orm in twins]
    assert [after[raw.pk] for raw, _ in twins] == [now + timedelta(minutes=5), now, now, None]


def test_no_next_checks_to_set_runs_no_query(django_assert_num_queries):
    with django_assert_num_queries(0):
        db.set_next_checks([])


# --- renew_lease: like the conditional ORM update it replaced --------------------------------


def test_renewing_a_lease_moves_only_what_the_orm_update_would():
    holder, other, now = UserFactory(), UserFactory(), timezone.now()
    until = now + timedelta(minutes=15)
    # (state, holder, lease): held and live; lapsed; held by someone else; held without a
    # lease (an escalation's owner); waiting for information; resolved.
    kinds = [("assigned", holder, now + timedelta(minutes=1)),
             ("assigned", holder, now - timedelta(seconds=1)),
             ("assigned", other, now + timedelta(minutes=1)),
             ("assigned", holder, None),
             ("waiting", holder, now + timedelta(minutes=1)),
             ("resolved", holder, now + timedelta(minutes=1))]
    twins = [tuple(CaseFactory(state=state, assignee=person, lease_expires_at=lease)
                   for _ in range(2)) for state, person, lease in kinds]

    renewed = [db.renew_lease(case_id=raw.pk, holder_id=holder.pk, now=now, until=until)
               for raw, _ in twins]
    orm_renewed = [bool(Case.objects.filter(
        pk=orm.pk, state="assigned", assignee=holder.pk, lease_expires_at__gt=now)
        .update(lease_expires_at=until)) for _, orm in twins]

    after = dict(Case.objects.values_list("pk", "lease_expires_at"))
    assert renewed == orm_renewed == [True, False, False, False, False, False]
    assert [after[raw.pk] for raw, _ in twins] == [after[orm.pk] for _, orm in twins]
    assert after[twins[0][0].pk] == until


# --- instances from raw rows ------------------------------------------------------------------

def test_values_for_the_database_are_what_each_fields_own_preparation_makes_of_them():
    from django.db.models import JSONField

    from tests.factories import make_case
    from workflows.models import CaseState

    holder = UserFactory()
    case = make_case(QueueFactory(), state=CaseState.ASSIGNED, assignee=holder)
    case.sla_remaining = timedelta(minutes=3)  # a kind its field prepares: an interval
    case.priority = True  # a bool in an integer column: converted, not passed on
    case.title = None
    event = _case_event(case)
    event.data = {"nested": [1, "two", None]}

    for obj in (case, event, holder):
        fields = type(obj)._meta.concrete_fields
        reference = [field.get_db_prep_save(getattr(obj, field.attname), connection)
                     for field in fields]
        values = db.db_values(obj, fields)
        for field, expected, value in zip(fields, reference, values, strict=True):
            assert type(value) is type(expected), field
            if isinstance(field, JSONField) and hasattr(value, "obj"):
                value, expected = value.obj, expected.obj  # PostgreSQL's wrapper: the inside
            assert value == expected, field


def test_a_case_marked_saved_after_a_raw_insert_is_updated_by_save_not_inserted_again():
    queue = QueueFactory()
    case = Case(queue=queue, title="Written by COPY", created_at=timezone.now(),
                due_at=timezone.now())
    fields = [f for f in Case._meta.concrete_fields if not f.primary_key]
    (pk,), = db.insert_new(Case, columns=[f.column for f in fields],
                           rows=[db.db_values(case, fields)], conflict=("id",),
                           returning=("id",))
    db.mark_saved(case, pk=pk)

    case.title = "Renamed"
    case.save()

    assert list(Case.objects.values_list("pk", "title")) == [(pk, "Renamed")]


def test_an_instance_as_read_equals_the_one_the_orm_reads():
    stored = CaseFactory(priority=70)
    attnames = [f.attname for f in Case._meta.concrete_fields]
    values = Case.objects.filter(pk=stored.pk).values_list(*attnames).get()

    built = db.instance_as_read(Case, values)
    read = Case.objects.get(pk=stored.pk)

    assert {a: getattr(built, a) for a in attnames} == {a: getattr(read, a) for a in attnames}
    assert built._state.adding is False


# --- COPY: the rows bulk_create would store ------------------------------------------------

def stored_rows(cases):
    attnames = [f.attname for f in Case._meta.concrete_fields if not f.primary_key]
    return sorted(Case.objects.filter(pk__in=[c.pk for c in cases]).values_list(*attnames),
                  key=repr)


@pytest.mark.postgres
def test_copy_stores_the_rows_bulk_create_stores():
    queue = QueueFactory()

    def batch():
        now = timezone.now().replace(microsecond=0)
        return [Case(queue=queue, title=f"Case {n}\twith a tab, a \\ and a newline\n",
                     created_at=now, due_at=now, priority=n) for n in range(3)]

    by_orm = Case.objects.bulk_create(batch())
    by_copy = batch()
    (ids,) = db.reserve_ids((Case, len(by_copy)))
    for case, pk in zip(by_copy, ids, strict=True):
        db.mark_saved(case, pk=pk)
    db.copy_objects(Case, by_copy)

    assert len(set(ids) | {c.pk for c in by_orm}) == 6  # fresh ids from the same sequence
    assert stored_rows(by_copy) == stored_rows(by_orm)


@pytest.mark.postgres
def test_writing_at_once_stores_what_bulk_create_and_the_inserts_store():
    queue = QueueFactory()
    now = timezone.now().replace(microsecond=0)

    def batch(tag):
        return [Case(queue=queue, title=f"{tag} {n}\twith a tab and é", created_at=now,
                     due_at=now, priority=n) for n in range(2)]

    def events(cases):
        return [audit.row(verb="case.opened", object_type="case", object_id=case.pk,
                          case_id=case.pk, actor_label="ai:bot", now=now,
                          data={"priority": case.priority, "note": "ü"}) for case in cases]

    by_orm = Case.objects.bulk_create(batch("case"))
    db.copy_rows(AuditEvent._meta.db_table, audit.ROW_COLUMNS, events(by_orm))
    at_once = batch("case")
    (ids,) = db.reserve_ids((Case, len(at_once)))
    for case, pk in zip(at_once, ids, strict=True):
        db.mark_saved(case, pk=pk)
    db.write_at_once(objects=[(Case, at_once)],
                     rows=[(AuditEvent, audit.ROW_COLUMNS, events(at_once))])

    assert stored_rows(at_once) == stored_rows(by_orm)
    stored_events = [list(AuditEvent.objects.filter(case__in=cases).order_by("case_id")
                          .values_list("verb", "object_type", "data", "row_hash"))
                     for cases in (at_once, by_orm)]
    assert [event[:3] for event in stored_events[0]] == [
        event[:3] for event in stored_events[1]]
    assert all(event[3] for event in stored_events[0])
    assert audit.seal() == 4 and audit.verify().ok


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # outside any transaction, as a request writes
def test_writing_at_once_is_all_or_nothing():
    case = CaseFactory()
    clash = Case(queue=case.queue, title="Taken id", created_at=case.created_at,
                 due_at=case.due_at)
    db.mark_saved(clash, pk=case.pk)
    (ids,) = db.reserve_ids((Case, 1))
    fresh = Case(queue=case.queue, title="Fresh", created_at=case.created_at,
                 due_at=case.due_at)
    db.mark_saved(fresh, pk=ids[0])

    with pytest.raises(IntegrityError):
        db.write_at_once(objects=[(Case, [fresh, clash])])

    assert not Case.objects.filter(pk=ids[0]).exists()


# --- claim-next's candidate: one plain statement per shape --------------------------------

ENGINE_READS = (("sla_policy__queue", "first_reviewer"),
                ("first_reviewer__password", "sla_policy__queue__description"))


def _candidate_by_orm(*, person, where: dict, related, omit):
    """``db.claim_candidate``'s ORM reference: claim-next's candidate as the ORM read it."""
    from workflows import selectors
    from workflows.models import CLAIMABLE_STATES

    if "heads" in where:
        heads = [pk for queue in selectors.member_queues(user=person)
                 for pk in Case.objects.filter(queue=queue, state__in=CLAIMABLE_STATES)
                 .order_by(*selectors.URGENCY_ORDER).values_list("pk", flat=True)[:where["heads"]]]
        cases = (Case.objects.filter(pk__in=heads, state__in=CLAIMABLE_STATES)
                 .order_by(*selectors.URGENCY_ORDER))
    else:
        queue = Queue.objects.get(pk=where["queue_id"]) if "queue_id" in where else None
        cases = selectors.workable_cases(user=person, queue=queue,
                                         queue_slug=where.get("queue_slug"))
    return (cases.select_related("queue", "resolution", *related).defer(*omit)
            .annotate(has_consults=Exists(ConsultRequest.objects.filter(case=OuterRef("pk"))))
            .filter(db.claimant_available(person.pk))
            .select_for_update(skip_locked=True, of=("self",)).first())


def _candidate_facts(case, paths) -> dict | None:
    """What claim-next's answer reads of its candidate: each object along ``paths`` with
    its loaded values, its deferred fields and which of its relations are cached."""
    if case is None:
        return None
    facts = {"has_consults": case.has_consults}
    for path in ("", *paths):
        found = case
        for name in filter(None, path.split("__")):
            found = getattr(found, name, None)  # a missing one-to-one is None here
        facts[path] = found and (
            {field.attname: getattr(found, field.attname)
             for field in found._meta.concrete_fields
             if field.attname not in found.get_deferred_fields()},
            found.get_deferred_fields(), set(found._state.fields_cache))
    return facts


@pytest.mark.postgres
@pytest.mark.parametrize("reads", ["content hooks", "engine relations"])
def test_claim_nexts_candidate_is_the_case_the_orm_finds_with_the_same_relations(
        reads, django_assert_num_queries):
    from tests.factories import make_case, make_manager
    from workflows import hooks
    from workflows.models import CaseState, ReviewerStatus, SlaPolicy, is_manager

    if reads == "content hooks":
        content = hooks.content_reads()
        related, omit = content.related, content.deferred
    else:
        related, omit = ENGINE_READS
    queues, people = membership_fixture()
    ana, ben, cy, *_ = people
    ReviewerStatus.objects.create(user=ben, available=False, away_since=timezone.now())
    ReviewerStatus.objects.create(user=cy, available=True)
    elsewhere = QueueFactory()
    now = timezone.now()
    policy = SlaPolicy.objects.create(queue=queues[0], version=1, created_at=now)
    # Priorities and due times tie or are missing (the id decides last); every state;
    # a case sent back with its resolution, one with a consult, with an SLA policy or not.
    for n, queue in enumerate((*queues, elsewhere, *queues)):
        for state, priority, due in ((CaseState.OPEN, 50, now + timedelta(hours=n % 3)),
                                     (CaseState.ESCALATED, 50, None),
                                     (CaseState.OPEN, 90 - 10 * (n % 2), now),
                                     (CaseState.ASSIGNED, 99, now),
                                     (CaseState.RESOLVED, 99, now)):
            make_case(queue, state=state, assignee=ana, priority=priority, due_at=due,
                      four_eyes=n % 2 == 0, sla_policy=policy if n % 3 == 0 else None)
    Case.objects.filter(queue=queues[0], state=CaseState.OPEN).update(first_reviewer=cy)
    urgent = make_case(queues[1], priority=100)
    Resolution.objects.create(case=urgent, verdict="accepted", resolved_by=ana,
                              created_at=now)
    ConsultRequest.objects.create(case=make_case(queues[2], priority=100), consultee=ana,
                                  question="Sure?", created_at=now)
    nobody_waits = QueueFactory()
    nobody_waits.members.add(ana)
    paths = ("queue", "resolution", *related)
    shapes = [*({"queue_id": queue.pk} for queue in (*queues, elsewhere, nobody_waits)),
              *({"queue_slug": queue.slug} for queue in (*queues, elsewhere)),
              {"queue_slug": "no-such-queue"}, {"heads": 2}, {"heads": 100}, {}]

    seen = set()
    for person in (*people, make_manager(), UserFactory()):
        person = get_user_model().objects.get(pk=person.pk)
        for where in shapes:
            with transaction.atomic():
                by_orm = _candidate_by_orm(person=person, where=where, related=related,
                                           omit=omit)
                with django_assert_num_queries(1):  # every relation comes with it
                    by_sql = db.claim_candidate(
                        user_id=person.pk, states=("open", "escalated"),
                        everyone=is_manager(person), related=related, omit=omit, **where)
                    facts = _candidate_facts(by_sql, paths)
            assert facts == _candidate_facts(by_orm, paths), (person, where)
            seen.add(None if by_sql is None else (
                by_sql.has_consults, facts["resolution"] is not None,
                facts[paths[-1]] is not None))
    # The fixture reaches every answer: nothing; consulted on or not; sent back with its
    # resolution; the last relation found and missing (the domain's content: no decisions
    # here, its own tests read them).
    assert None in seen
    assert {(True, False), (False, True)} <= {found[:2] for found in seen if found}
    if reads == "engine relations":
        assert {(False, False, True), (False, False, False)} <= seen


# --- the sealer's lock ---------------------------------------------------------------------

@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_transaction_lock_is_held_until_commit_and_no_longer():
    import psycopg

    settings_dict = connection.settings_dict
    other = psycopg.connect(host=settings_dict["HOST"], port=settings_dict["PORT"] or 5432,
                            user=settings_dict["USER"], dbname=settings_dict["NAME"],
                            autocommit=True)

    def other_can_take(key):
        taken = other.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0]
        if taken:
            other.execute("SELECT pg_advisory_unlock(%s)", [key])
        return taken

    try:
        with transaction.atomic():
            db.hold_transaction_lock(4242)
            assert not other_can_take(4242)
            assert other_can_take(4343)
        assert other_can_take(4242)
        # Several at once, in one statement: each held until commit.
        with transaction.atomic(), CaptureQueriesContext(connection) as queries:
            db.hold_transaction_lock(4242, 4343)
            assert not other_can_take(4242)
            assert not other_can_take(4343)
        assert len(queries.captured_queries) == 1
        assert other_can_take(4242) and other_can_take(4343)
    finally:
        other.close()


# --- who works a queue: members directly or through a group --------------------------------

def membership_fixture():
    """Four queues, six people: direct members, members through a group, both at once
    (counted once), someone in a group that works no queue, and the Responsible of a
    process (one directly, one through a group) who work its queue; an Accountable does
    not."""
    reviewers, idle = Group.objects.create(name="reviewers"), Group.objects.create(name="idle")
    escalation_desk = Group.objects.create(name="escalation desk")
    process = Process.objects.create(slug="invoices", name="Invoices")
    queues = [QueueFactory(), QueueFactory(), QueueFactory(), QueueFactory(process=process)]
    ana, ben, cy, dee, eve, fay = (UserFactory() for _ in range(6))
    queues[0].members.add(ana, ben)
    queues[1].member_groups.add(reviewers)
    reviewers.user_set.add(ben, cy)
    queues[1].members.add(ben)
    idle.user_set.add(dee)
    escalation_desk.user_set.add(fay)
    RaciAssignment.objects.create(process=process, activity="escalation", role="R", user=eve)
    RaciAssignment.objects.create(process=process, activity="review", role="R",
                                  group=escalation_desk)
    RaciAssignment.objects.create(process=process, activity="review", role="A", user=dee)
    return queues, [ana, ben, cy, dee, eve, fay]


def test_the_queues_a_person_works_are_those_the_orm_finds_through_every_membership():
    queues, people = membership_fixture()
    for person in people:
        by_sql = set(Queue.objects.filter(pk__in=db.queues_worked_by(person.pk))
                     .values_list("pk", flat=True))
        by_orm = set(Queue.objects.filter(
            Q(members=person) | Q(member_groups__user=person)
            | Q(process__raci__role="R", process__raci__user=person)
            | Q(process__raci__role="R", process__raci__group__user=person))
            .values_list("pk", flat=True))
        assert by_sql == by_orm
    assert set(Queue.objects.filter(pk__in=db.queues_worked_by(people[3].pk))) == set()
    assert set(Queue.objects.filter(pk__in=db.queues_worked_by(people[4].pk))) == {queues[3]}


def test_a_person_named_is_read_with_their_permissions_and_queues_as_the_orm_reads_them():
    from django.contrib.auth.models import Permission

    queues, people = membership_fixture()
    User = get_user_model()
    people[1].user_permissions.add(Permission.objects.get(codename="manage_cases"))
    for person in people:
        found, names, worked = db.person_named(person.username)

        assert _model_values(found) == _model_values(User.objects.get(
            username=person.username, is_active=True))
        assert names == db.permission_names(person.pk)  # held to the ORM's elsewhere
        assert worked == set(Queue.objects.filter(pk__in=db.queues_worked_by(person.pk))
                             .values_list("pk", flat=True))
    assert db.person_named(people[1].username)[1] == {"workflows.manage_cases"}
    assert db.person_named(people[3].username)[2] == set()  # an Accountable works none
    assert db.person_named(people[4].username)[2] == {queues[3].pk}  # the Responsible do
    people[0].is_active = False
    people[0].save()
    assert db.person_named(people[0].username) is None  # only the active are named
    assert db.person_named("nobody-" + people[1].username) is None


def test_the_people_who_work_a_queue_are_those_the_orm_finds_through_every_membership():
    queues, people = membership_fixture()
    User = get_user_model()
    pairs = db.queue_worker_pairs([queue.pk for queue in queues])
    for queue in queues:
        by_orm = set(User.objects.filter(
            Q(review_queues=queue) | Q(groups__review_queues=queue)
            | Q(raci_assignments__role="R", raci_assignments__process__queues=queue)
            | Q(groups__raci_assignments__role="R",
                groups__raci_assignments__process__queues=queue))
            .values_list("pk", flat=True))
        assert set(User.objects.filter(pk__in=db.workers_of_queue(queue.pk))
                   .values_list("pk", flat=True)) == by_orm
        assert {user for queue_id, user in pairs if queue_id == queue.pk} == by_orm
    # ben works queue 1 twice over, listed once; eve and fay work queue 3 as Responsible.
    assert len(pairs) == len(set(pairs)) == 6
    assert {user for queue_id, user in pairs if queue_id == queues[3].pk} == {
        people[4].pk, people[5].pk}
    assert db.queue_worker_pairs([]) == []


def test_the_capped_count_is_the_orm_count_up_to_the_cap():
    queues = [QueueFactory(), QueueFactory(), QueueFactory()]
    CaseFactory.create_batch(7, queue=queues[0])
    CaseFactory.create_batch(2, queue=queues[1])
    CaseFactory(queue=queues[1], state="resolved")
    states, cap = ("open", "escalated"), 5

    counted = dict(Queue.objects.annotate(waiting=db.capped_case_count(states=states, cap=cap))
                   .values_list("pk", "waiting"))

    for queue in queues:
        assert counted[queue.pk] == min(
            Case.objects.filter(queue=queue, state__in=states).count(), cap)
    assert [counted[queue.pk] for queue in queues] == [5, 2, 0]


# --- what every signed-in request asks: permissions and the top bar -------------------------

def test_a_persons_permissions_are_those_the_orm_finds_directly_and_through_groups():
    from django.contrib.auth.models import Permission

    managers, auditors = Group.objects.create(name="managers"), Group.objects.create(name="a")
    managers.permissions.add(Permission.objects.get(codename="manage_cases"))
    auditors.permissions.add(Permission.objects.get(codename="read_everything"),
                             Permission.objects.get(codename="view_audit_trail"))
    both, own, grouped, nobody = (UserFactory() for _ in range(4))
    both.user_permissions.add(Permission.objects.get(codename="manage_cases"))
    both.groups.add(managers, auditors)
    own.user_permissions.add(Permission.objects.get(codename="export_evidence"))
    grouped.groups.add(auditors)
    for person in (both, own, grouped, nobody):
        by_orm = {f"{app}.{codename}" for app, codename in Permission.objects.filter(
            Q(user=person) | Q(group__user=person))
            .values_list("content_type__app_label", "codename")}
        assert db.permission_names(person.pk) == by_orm
    assert db.permission_names(grouped.pk) == {"workflows.read_everything",
                                               "workflows.view_audit_trail"}
    assert db.permission_names(nobody.pk) == set()


def test_the_top_bar_counts_what_the_orm_finds_for_every_kind_of_person(
        django_assert_num_queries):
    from django.contrib.auth.models import Permission

    from tests.factories import make_case, make_manager
    from workflows import selectors
    from workflows.models import CaseState, ConsultRequest, Notification

    queues, people = membership_fixture()
    ana, ben, cy, dee, eve, _fay = people
    manager = make_manager()
    auditor = UserFactory()
    auditor.user_permissions.add(Permission.objects.get(codename="read_everything"))
    outsider = UserFactory()
    # Waiting for approval: in queue 0 (ana resolved one first), queue 1, queue 3
    # (through the RACI matrix); one assigned to the outsider elsewhere, and one the
    # outsider was consulted on; plus cases in other states, which never count.
    elsewhere = QueueFactory()
    make_case(queues[0], state=CaseState.PENDING_APPROVAL, assignee=ana)
    make_case(queues[0], state=CaseState.PENDING_APPROVAL, assignee=ben)
    make_case(queues[1], state=CaseState.PENDING_APPROVAL, assignee=cy)
    make_case(queues[3], state=CaseState.PENDING_APPROVAL, assignee=eve)
    make_case(elsewhere, state=CaseState.PENDING_APPROVAL, assignee=dee)
    consulted = make_case(elsewhere, state=CaseState.PENDING_APPROVAL, assignee=dee)
    ConsultRequest.objects.create(case=consulted, consultee=outsider, question="Sure?",
                                  created_at=timezone.now())
    for state in (CaseState.OPEN, CaseState.ASSIGNED, CaseState.RESOLVED):
        make_case(queues[0], state=state, assignee=ana)
    for person, unread in ((ana, 2), (ben, 1), (outsider, 3)):
        for _ in range(unread):
            Notification.objects.create(user=person, text="Escalated", created_at=timezone.now())
    Notification.objects.create(user=ana, text="Read", created_at=timezone.now(),
                                read_at=timezone.now())

    for person in (*people, manager, auditor, outsider):
        person = get_user_model().objects.get(pk=person.pk)
        person.get_all_permissions()  # the request has them by the time the bar is drawn
        by_orm = (selectors.is_manager(person) or selectors.member_queues(user=person).exists(),
                  selectors.pending_approvals(user=person).count(),
                  selectors.unread_notification_count(user=person))
        with django_assert_num_queries(1):
            bar = selectors.top_bar(user=person)
        assert (bar.works_queues, bar.approvals, bar.unread_notifications) == by_orm, person
    # The fixture reaches every branch: a count of each kind, and somebody with none.
    assert db.top_bar_counts(user_id=ana.pk, manager=False, reads_everything=False) == (
        True, 1, 2)
    assert db.top_bar_counts(user_id=outsider.pk, manager=False,
                             reads_everything=False) == (False, 1, 3)
    assert db.top_bar_counts(user_id=dee.pk, manager=False, reads_everything=False) == (
        False, 0, 0)
    assert db.top_bar_counts(user_id=manager.pk, manager=True, reads_everything=True) == (
        True, 6, 0)


def test_the_person_and_the_token_are_read_as_the_orm_reads_them():
    from django.contrib.auth.models import Permission
    from rest_framework.authtoken.models import Token

    ann = UserFactory(username="ann", first_name="Ann", time_zone="Europe/Berlin",
                      last_login=timezone.now())
    token = Token.objects.create(user=ann)
    User = get_user_model()

    def fields(obj):
        return {field.attname: getattr(obj, field.attname)
                for field in type(obj)._meta.concrete_fields}

    person, names = db.person(ann.pk)
    found_user, found_token, token_names = db.person_by_token(token.key)

    assert fields(person) == fields(User.objects.get(pk=ann.pk))
    assert fields(found_user) == fields(person)
    assert fields(found_token) == fields(Token.objects.get(key=token.key))
    assert found_token.user is found_user
    assert names == token_names == set()  # nobody gave Ann any permission yet
    person.first_name = "Anna"
    person.save()  # an instance like the ORM's: saving updates the row
    assert User.objects.get(pk=ann.pk).first_name == "Anna"
    assert db.person(ann.pk + 1000) is None
    assert db.person_by_token("0" * 40) is None

    auditors = Group.objects.create(name="auditors")
    auditors.permissions.add(Permission.objects.get(codename="read_everything"),
                             Permission.objects.get(codename="view_audit_trail"))
    ann.groups.add(auditors)
    ann.user_permissions.add(Permission.objects.get(codename="read_everything"),
                             Permission.objects.get(codename="manage_cases"))
    expected = db.permission_names(ann.pk)  # held to the ORM's above
    assert expected == {"workflows.read_everything", "workflows.view_audit_trail",
                        "workflows.manage_cases"}
    assert db.person(ann.pk)[1] == db.person_by_token(token.key)[2] == expected


def test_queue_summaries_are_what_the_orm_finds_for_members_and_managers():
    from django.db.models import OuterRef, Subquery

    queues, people = membership_fixture()
    CaseFactory.create_batch(4, queue=queues[0])
    CaseFactory(queue=queues[0], state="escalated")
    CaseFactory(queue=queues[1], state="resolved")
    CaseFactory(queue=queues[3])
    states, cap = ("open", "escalated"), 3

    def by_orm(queryset):
        waiting = Case.objects.filter(queue=OuterRef("pk"), state__in=states)
        return [(queue, queue.open_count, queue.oldest_open_at) for queue in (
            queryset.order_by("name").annotate(
                open_count=db.capped_case_count(states=states, cap=cap),
                oldest_open_at=Subquery(waiting.order_by("created_at")
                                        .values("created_at")[:1])))]

    def plain(rows):
        return [(queue.pk, queue.name, queue.slug, queue.blind, count, oldest)
                for queue, count, oldest in rows]

    for person in people:
        worked = Queue.objects.filter(pk__in=db.queues_worked_by(person.pk))
        assert plain(db.queue_summary_rows(worked_by=person.pk, queue_ids=None,
                                           states=states, cap=cap)) == plain(by_orm(worked))
    some = [queues[0].pk, queues[3].pk]
    everything = db.queue_summary_rows(worked_by=None, queue_ids=None, states=states, cap=cap)
    assert plain(everything) == plain(by_orm(Queue.objects.all()))
    assert plain(db.queue_summary_rows(worked_by=None, queue_ids=some, states=states,
                                       cap=cap)) == plain(by_orm(Queue.objects.filter(
                                           pk__in=some)))
    # Counted up to the cap (five wait in the first queue); no oldest where none waits.
    assert {queue.pk: (count, oldest is not None) for queue, count, oldest in everything} == {
        queues[0].pk: (3, True), queues[1].pk: (0, False), queues[2].pk: (0, False),
        queues[3].pk: (1, True)}
    assert db.queue_summary_rows(worked_by=None, queue_ids=[], states=states, cap=cap) == []

def test_whether_a_case_has_consults_is_what_the_orm_finds():
    queue = QueueFactory()
    cases = CaseFactory.create_batch(3, queue=queue)
    person = UserFactory()
    for case in cases[1:]:
        ConsultRequest.objects.create(case=case, consultee=person, question="Why?",
                                      required=False, created_at=timezone.now())
    ConsultRequest.objects.create(case=cases[2], consultee=UserFactory(), question="And?",
                                  required=True, created_at=timezone.now())

    by_sql = dict(Case.objects.annotate(has=db.case_has_consults()).values_list("pk", "has"))

    reference = dict(Case.objects.annotate(
        has=Exists(ConsultRequest.objects.filter(case=OuterRef("pk")))).values_list("pk", "has"))
    assert by_sql == reference == {cases[0].pk: False, cases[1].pk: True, cases[2].pk: True}
    # The same question of any model and the one its field points to: who is consulted.
    UserFactory()  # never asked
    consulted = dict(get_user_model().objects.annotate(
        has=db.has_any(ConsultRequest, field="consultee")).values_list("pk", "has"))
    assert consulted == dict(get_user_model().objects.annotate(has=Exists(
        ConsultRequest.objects.filter(consultee=OuterRef("pk")))).values_list("pk", "has"))
    assert sorted(consulted.values()) == [False, True, True]


def test_a_case_for_its_page_is_what_the_orm_finds_in_scope_with_its_people(
        django_assert_num_queries):
    from django.contrib.auth.models import Permission

    from tests.factories import make_case, make_manager
    from workflows import selectors
    from workflows.models import CaseState, reads_everything

    queues, people = membership_fixture()
    ana, _ben, _cy, dee, _eve, _fay = people
    manager = make_manager()
    auditor = UserFactory()
    auditor.user_permissions.add(Permission.objects.get(codename="read_everything"))
    outsider, closer = UserFactory(), UserFactory()
    elsewhere = QueueFactory()
    # In every queue, open and closed; held by or first resolved by someone outside the
    # queue; consulted on while open, and once it closed (no longer in scope).
    cases = [make_case(queue, state=state, assignee=closer) for queue in (*queues, elsewhere)
             for state in (CaseState.OPEN, CaseState.RESOLVED)]
    cases.append(make_case(elsewhere, state=CaseState.ASSIGNED, assignee=dee))
    cases.append(make_case(elsewhere, state=CaseState.RESOLVED, assignee=closer,
                           first_reviewer=outsider))
    # A resolution approved by a second person (four eyes); the others by one.
    assert Resolution.objects.filter(case=cases[3]).update(
        approved_by=manager, approved_at=timezone.now()) == 1
    for queue, state in ((elsewhere, CaseState.ASSIGNED), (elsewhere, CaseState.RESOLVED),
                         (queues[0], CaseState.ASSIGNED)):
        consulted = make_case(queue, state=state, assignee=ana)
        ConsultRequest.objects.create(case=consulted, consultee=outsider, question="Sure?",
                                      created_at=timezone.now())
        cases.append(consulted)
    missing = max(case.pk for case in cases) + 1

    seen, approvals = set(), set()
    for person in (*people, manager, auditor, outsider, closer):
        person = get_user_model().objects.get(pk=person.pk)
        person.get_all_permissions()  # the request has them when the page asks
        reference = selectors.with_membership(
            selectors.visible_cases(user=person), user=person).annotate(
            has_consults=db.case_has_consults()).select_related(
            "queue", "assignee", "first_reviewer", "resolution__resolved_by",
            "resolution__approved_by")
        for case_id in (*(case.pk for case in cases), missing):
            by_orm = reference.filter(pk=case_id).first()
            with django_assert_num_queries(1):
                by_sql = db.case_for_page(case_id=case_id, user_id=person.pk,
                                          reads_everything=reads_everything(person))
            with django_assert_num_queries(0):  # every relation the page shows came with it
                assert _page_facts(by_sql) == _page_facts(by_orm), (person, case_id)
            seen.add(None if by_sql is None else (by_sql.user_works_queue,
                                                  by_sql.has_consults))
            resolution = getattr(by_sql, "resolution", None)
            approvals.add(resolution and resolution.approved_by_id is not None)
    # The fixture reaches every answer: out of scope, seen without working the queue or
    # working it, with consults and without; unresolved, resolved, approved.
    assert seen == {None, (False, False), (True, False), (False, True), (True, True)}
    assert approvals == {None, False, True}


def test_a_page_of_approvals_is_what_the_orm_finds_in_scope_most_urgent_first(
        django_assert_num_queries):
    from django.contrib.auth.models import Permission

    from tests.factories import make_case, make_manager
    from workflows import selectors
    from workflows.models import CaseState, reads_everything

    queues, people = membership_fixture()
    ana, ben, _cy, dee, _eve, _fay = people
    manager, auditor, outsider = make_manager(), UserFactory(), UserFactory()
    auditor.user_permissions.add(Permission.objects.get(codename="read_everything"))
    elsewhere = QueueFactory()
    now = timezone.now()
    # Waiting for approval in every queue, first resolved by different people, with
    # priorities and due times that tie; one in a queue nobody here works, consulted on.
    cases = [make_case(queue, state=CaseState.PENDING_APPROVAL, four_eyes=True,
                       first_reviewer=first, priority=priority,
                       due_at=now + timedelta(hours=hours))
             for queue in (*queues, elsewhere) for first, priority, hours
             in ((ana, 50, 2), (ben, 50, 1), (dee, 70, 3), (outsider, 50, 1))]
    ConsultRequest.objects.create(case=cases[-1], consultee=ana, question="Sure?",
                                  created_at=now)
    make_case(queues[0], state=CaseState.RESOLVED, assignee=ben)  # approved already

    for person in (*people, manager, auditor, outsider):
        person = get_user_model().objects.get(pk=person.pk)
        person.get_all_permissions()  # the request has them when the page asks
        reference = selectors.with_membership(
            selectors.pending_approvals(user=person), user=person).annotate(
            has_consults=db.case_has_consults()).select_related(
            "assignee", "resolution__resolved_by", "resolution__approved_by")
        for offset, limit in ((0, 100), (1, 3)):
            by_orm = list(reference[offset:offset + limit])
            with django_assert_num_queries(1):
                by_sql = db.pending_approvals(user_id=person.pk, offset=offset, limit=limit,
                                              reads_everything=reads_everything(person))
            with django_assert_num_queries(0):  # every relation the page shows came with it
                assert [_page_facts(case) for case in by_sql] == [
                    _page_facts(case) for case in by_orm], (person, offset)
        assert len(by_sql) == min(3, max(0, reference.count() - 1))
    # Ana sees her queue's and the consulted one, not her own; a manager every one not
    # theirs; an outsider only those they neither resolved nor may see: none.
    assert {case.pk for case in db.pending_approvals(
        user_id=ana.pk, reads_everything=False, offset=0, limit=100)} == {
        case.pk for case in (*cases[1:4], cases[-1])}
    assert len(db.pending_approvals(user_id=manager.pk, reads_everything=True, offset=0,
                                    limit=100)) == len(cases)
    assert db.pending_approvals(user_id=outsider.pk, reads_everything=False, offset=0,
                                limit=100) == []


def test_a_page_of_the_case_list_is_what_the_orm_finds_in_scope_both_ways(
        django_assert_num_queries):
    from django.contrib.auth.models import Permission

    from tests.factories import make_case, make_manager
    from workflows import selectors
    from workflows.models import CaseState, reads_everything

    queues, people = membership_fixture()
    ana, _ben, _cy, dee, _eve, _fay = people
    manager, auditor, outsider, closer = (make_manager(), UserFactory(), UserFactory(),
                                          UserFactory())
    auditor.user_permissions.add(Permission.objects.get(codename="read_everything"))
    elsewhere = QueueFactory()
    cases = [make_case(queue, state=state, assignee=closer)
             for queue in (*queues, elsewhere) for state in (CaseState.OPEN, CaseState.RESOLVED)]
    cases.append(make_case(elsewhere, state=CaseState.ASSIGNED, assignee=dee))
    cases.append(make_case(elsewhere, state=CaseState.RESOLVED, assignee=closer,
                           first_reviewer=outsider))
    for state in (CaseState.ASSIGNED, CaseState.RESOLVED):  # consulted: open ones only
        consulted = make_case(elsewhere, state=state, assignee=ana)
        ConsultRequest.objects.create(case=consulted, consultee=outsider, question="Sure?",
                                      created_at=timezone.now())
        cases.append(consulted)
    fields = ["id", "title", "state", "created_at", "due_at", "version", "queue_id",
              "assignee_id"]
    middle = sorted(case.pk for case in cases)[len(cases) // 2]

    sizes = set()
    for person in (*people, manager, auditor, outsider, closer):
        person = get_user_model().objects.get(pk=person.pk)
        visible = selectors.visible_cases(user=person)
        for after, older, offset, limit in ((None, True, 0, 100), (middle, True, 0, 3),
                                            (middle, False, 0, 100), (None, False, 1, 2)):
            reference = visible if after is None else visible.filter(
                **{"id__lt" if older else "id__gt": after})
            by_orm = list(reference.order_by("-id" if older else "id").values_list(
                *fields, "queue__slug", "assignee__username")[offset:offset + limit])
            with django_assert_num_queries(1):
                by_sql = db.case_list_rows(
                    fields=fields, user_id=person.pk,
                    reads_everything=reads_everything(person), after=after, older=older,
                    offset=offset, limit=limit)
            assert by_sql == by_orm, (person, after, older, offset, limit)
        sizes.add(visible.count())
    assert 0 not in sizes and len(sizes) > 3  # every person sees some, not all the same


def _page_facts(case) -> tuple | None:
    """What the case page reads of a case: its row, its people, its resolution."""
    if case is None:
        return None
    resolution = getattr(case, "resolution", None)
    people = [case.assignee, case.first_reviewer,
              resolution and resolution.resolved_by, resolution and resolution.approved_by]
    return (_as_read(case), case.user_works_queue, case.has_consults, _as_read(case.queue),
            [person and _as_read(person) for person in people],
            resolution and (_as_read(resolution), resolution.case is case))


def _as_read(obj) -> dict:
    return {field.attname: getattr(obj, field.attname) for field in obj._meta.concrete_fields}


def test_a_persons_status_is_read_as_the_orm_reads_it_with_the_delegate():
    from workflows.models import ReviewerStatus

    away, available, delegate, never = (UserFactory() for _ in range(4))
    ReviewerStatus.objects.create(user=away, available=False, away_since=timezone.now(),
                                  delegate=delegate, note="On leave")
    ReviewerStatus.objects.create(user=available, available=True)
    for person in (away, available, delegate, never):
        reference = (ReviewerStatus.objects.select_related("delegate")
                     .filter(user=person.pk).first())
        by_sql = db.reviewer_status(person.pk)
        if reference is None:
            assert by_sql is None
            continue
        assert _as_read(by_sql) == _as_read(reference)
        assert (by_sql.delegate and _as_read(by_sql.delegate)) == (
            reference.delegate and _as_read(reference.delegate))
    assert db.reviewer_status(away.pk).delegate.display_name == delegate.display_name


def test_the_cases_in_hand_are_those_the_orm_finds_in_its_order(django_assert_num_queries):
    from workflows.models import HELD_STATES

    first, second = QueueFactory(), QueueFactory()
    person, other = UserFactory(), UserFactory()
    now = timezone.now()
    # Priorities tie and due times tie or are missing: the id decides last.
    for queue, state, priority, due in (
            (first, "assigned", 50, now + timedelta(hours=2)),
            (second, "waiting", 50, now + timedelta(hours=1)),
            (first, "assigned", 90, None),
            (second, "assigned", 50, now + timedelta(hours=1)),
            (first, "assigned", 50, None),
            (first, "resolved", 99, now),
            (first, "pending_approval", 99, now)):
        CaseFactory(queue=queue, state=state, priority=priority, due_at=due, assignee=person)
    CaseFactory(queue=first, state="assigned", assignee=other)

    fields, queue_fields = ("title", "state", "priority", "due_at", "queue"), ("name",)
    reference = list(Case.objects.filter(assignee=person.pk, state__in=HELD_STATES)
                     .select_related("queue")
                     .only(*fields, *(f"queue__{name}" for name in queue_fields))
                     .order_by("-priority", "due_at", "id"))
    with django_assert_num_queries(1):
        by_sql = db.cases_in_hand(user_id=person.pk, states=HELD_STATES, fields=fields,
                                  queue_fields=queue_fields)
        shown = [(_as_loaded(case), _as_loaded(case.queue)) for case in by_sql]
    assert shown == [(_as_loaded(case), _as_loaded(case.queue)) for case in reference]
    assert len(by_sql) == 5
    assert set(_as_loaded(by_sql[0])) == {"id", "title", "state", "priority", "due_at",
                                          "queue_id"}
    # The rest is the case's as stored, read when asked.
    assert [_as_read(case) for case in by_sql] == [
        _as_read(case) for case in Case.objects.filter(pk__in=[c.pk for c in by_sql])
        .order_by("-priority", "due_at", "id")]
    [others] = db.cases_in_hand(user_id=other.pk, states=HELD_STATES, fields=("title",),
                                queue_fields=())
    assert others.assignee_id == other.pk and others.queue.pk


def _as_loaded(obj) -> dict:
    """The fields read with the instance (those not deferred)."""
    deferred = obj.get_deferred_fields()
    return {field.attname: getattr(obj, field.attname) for field in obj._meta.concrete_fields
            if field.attname not in deferred}


def test_a_cases_events_are_those_the_orm_reads_in_order_with_their_actors(
        django_assert_num_queries):
    from workflows.actors import SYSTEM

    case, other = CaseFactory(), CaseFactory()
    person = UserFactory(first_name="Ann")
    for actor, verb, data in ((person, "case.claimed", {"assignee": person.pk}),
                              (SYSTEM, "case.sla_warning", {}),
                              (None, "case.resolved", {"confidence": 0.5, "nested": [1]}),
                              (person, "case.commented", {"markdown": "**x**"})):
        audit.record(verb=verb, object_type="case", object_id=case.pk, case=case,
                     actor=actor, actor_label="" if actor else "ai:demo", data=data)
    audit.record(verb="case.opened", object_type="case", object_id=other.pk, case=other,
                 actor=person)

    reference = list(AuditEvent.objects.filter(case=case.pk).select_related("actor")
                     .order_by("id"))
    with django_assert_num_queries(1):
        by_sql = db.case_events(case.pk)
        actors = [event.actor and event.actor.display_name for event in by_sql]
    assert [_as_read(event) for event in by_sql] == [_as_read(e) for e in reference]
    assert actors == [event.actor and event.actor.display_name for event in reference]
    assert [event.data for event in by_sql][2] == {"confidence": 0.5, "nested": [1]}
    assert db.case_events(CaseFactory().pk) == []


def _model_values(instance) -> dict:
    return {field.attname: getattr(instance, field.attname)
            for field in instance._meta.concrete_fields}


def test_a_case_about_to_change_is_read_as_the_orm_reads_it(django_assert_num_queries):
    from tests.factories import make_case
    from workflows import hooks, selectors
    from workflows.models import CaseState, Resolution
    from workflows.services.transitions import with_answer_facts

    queues, people = membership_fixture()
    ana = people[0]
    cases = [make_case(queue, state=CaseState.OPEN) for queue in queues]
    resolved = make_case(queues[0], state=CaseState.RESOLVED, assignee=ana)
    Case.objects.filter(pk=resolved.pk).update(first_reviewer=ana)
    Resolution.objects.update_or_create(case=resolved, defaults={
        "verdict": "corrected", "resolved_by": ana, "reason_code": "wrong-amount",
        "output": {"amount": 4094.5, "lines": [{"sku": "ä"}]}, "created_at": timezone.now()})
    ConsultRequest.objects.create(case=cases[1], consultee=ana, question="Sure?",
                                  created_at=timezone.now())
    cases.append(resolved)
    missing = max(case.pk for case in cases) + 1
    # What the domain reads with a case, where it is installed (nothing here otherwise).
    content = hooks.content_reads()

    seen = set()
    for person in (*people, None):
        user_id = None if person is None else person.pk
        for case_id in (*(case.pk for case in cases), missing):
            reference = (with_answer_facts(Case.objects).select_related(*content.related)
                         .defer(*content.deferred).filter(pk=case_id))
            if person is not None:
                reference = selectors.with_membership(reference, user=person)
            by_orm = reference.first()
            # The queue, resolution, first reviewer and content come with it.
            with django_assert_num_queries(1):
                by_sql = db.case_for_change(case_id=case_id, user_id=user_id,
                                            related=content.related, omit=content.deferred)
                if by_sql is not None:
                    queue, first_reviewer = by_sql.queue, by_sql.first_reviewer
                    resolution = getattr(by_sql, "resolution", None)
                    contents = [getattr(by_sql, path.split("__")[0], None)
                                for path in content.related]
            if by_orm is None:
                assert by_sql is None
                continue
            assert _model_values(by_sql) == _model_values(by_orm)
            assert _model_values(queue) == _model_values(by_orm.queue)
            expected = getattr(by_orm, "resolution", None)
            assert (resolution and _model_values(resolution)) == (
                expected and _model_values(expected))
            assert resolution is None or resolution.case is by_sql
            assert first_reviewer == by_orm.first_reviewer
            assert contents == [getattr(by_orm, path.split("__")[0], None)
                                for path in content.related]
            works = by_orm.user_works_queue if person is not None else False
            assert (by_sql.has_consults, by_sql.user_works_queue) == (
                by_orm.has_consults, works), (person, case_id)
            seen.add((by_sql.has_consults, works, resolution is not None))
    # The fixture reaches every answer: with and without consults, a member and not,
    # with a resolution.
    assert {(True, True, False), (False, True, False), (False, False, False),
            (True, False, False), (False, True, True)} <= seen


def test_one_row_with_its_related_rows_is_read_as_the_orm_reads_it(django_assert_num_queries):
    from tests.factories import make_case
    from workflows.models import CaseState, SlaPolicy

    queue = QueueFactory()
    policy = SlaPolicy.objects.create(queue=queue, version=1, created_at=timezone.now())
    with_policy = make_case(queue, title="with", sla_policy=policy)
    without = make_case(queue, state=CaseState.ASSIGNED, assignee=UserFactory(), title="none")
    missing = max(with_policy.pk, without.pk) + 1
    related, omit = ("queue", "sla_policy"), ("search_text", "queue__description")

    for case_id in (missing, with_policy.pk, without.pk):
        by_orm = (Case.objects.select_related(*related).defer(*omit)
                  .filter(pk=case_id).first())
        with django_assert_num_queries(1):  # the related rows come with it
            by_sql = db.one_with_related(Case, by="id", value=case_id, related=related,
                                         omit=omit)
            if by_sql is not None:
                queue_read, policy_read = by_sql.queue, by_sql.sla_policy
        if by_orm is None:
            assert by_sql is None
            continue
        assert by_sql.get_deferred_fields() == by_orm.get_deferred_fields() == {"search_text"}
        assert queue_read.get_deferred_fields() == by_orm.queue.get_deferred_fields()
        kept = [field.attname for field in Case._meta.concrete_fields
                if field.attname != "search_text"]
        assert [getattr(by_sql, name) for name in kept] == [getattr(by_orm, name)
                                                            for name in kept]
        assert queue_read.slug == by_orm.queue.slug
        assert (policy_read and policy_read.pk) == (by_orm.sla_policy and by_orm.sla_policy.pk)
    # Left out is read on access, as ``defer`` leaves it.
    assert by_sql.search_text == Case.objects.get(pk=without.pk).search_text


def test_rows_with_their_related_rows_are_read_as_the_orm_reads_them(
        django_assert_num_queries):
    from tests.factories import make_case
    from workflows.models import CaseState, SlaPolicy

    queue = QueueFactory()
    policy = SlaPolicy.objects.create(queue=queue, version=1, created_at=timezone.now())
    cases = [make_case(queue, title=f"with {n}", sla_policy=policy) for n in range(3)]
    cases += [make_case(queue, state=CaseState.ASSIGNED, assignee=UserFactory(), title="none")]
    ConsultRequest.objects.create(case=cases[1], consultee=UserFactory(), question="Why?",
                                  required=False, created_at=timezone.now())
    missing = max(case.pk for case in cases) + 1
    related, omit = ("queue", "sla_policy"), ("search_text", "queue__description")
    has = [("has_consults", ConsultRequest, "case")]

    def facts(case):
        return ([getattr(case, field.attname) for field in Case._meta.concrete_fields
                 if field.attname != "search_text"], case.queue.slug,
                case.sla_policy and case.sla_policy.pk, case.has_consults,
                case.get_deferred_fields())

    # One, three (padded to four with nothing) and five of them, one missing.
    for ids in ([cases[2].pk], [missing, cases[0].pk, cases[1].pk],
                [*(case.pk for case in reversed(cases)), missing]):
        by_orm = list(Case.objects.select_related(*related).defer(*omit)
                      .annotate(has_consults=Exists(ConsultRequest.objects.filter(
                          case=OuterRef("pk")))).filter(pk__in=ids).order_by("pk"))
        with django_assert_num_queries(1):  # the related rows come with them
            by_sql = db.with_related(Case, by="id", values=ids, related=related, omit=omit,
                                     has=has)
            read = [facts(case) for case in by_sql]
        assert read == [facts(case) for case in by_orm], ids
    assert [case.has_consults for case in by_sql] == [False, True, False, False]
    with django_assert_num_queries(0):
        assert db.with_related(Case, by="id", values=[]) == []


def test_whether_one_row_has_any_pointing_to_it_is_what_the_orm_finds(
        django_assert_num_queries):
    queue, person = QueueFactory(), UserFactory()
    consulted, alone = CaseFactory(queue=queue), CaseFactory(queue=queue)
    ConsultRequest.objects.create(case=consulted, consultee=person, question="Why?",
                                  required=False, created_at=timezone.now())
    has, seen = [("has_consults", ConsultRequest, "case")], set()

    for case in (consulted, alone):
        by_orm = (Case.objects.select_related("queue")
                  .annotate(has_consults=Exists(ConsultRequest.objects.filter(
                      case=OuterRef("pk"))))
                  .filter(pk=case.pk).first())
        with django_assert_num_queries(1):  # asked in the same statement as the row
            by_sql = db.one_with_related(Case, by="id", value=case.pk, related=["queue"],
                                         has=has)
            queue_read = by_sql.queue
        assert by_sql.has_consults is by_orm.has_consults
        assert (by_sql.pk, queue_read.pk) == (by_orm.pk, by_orm.queue.pk)
        seen.add(by_sql.has_consults)
    assert seen == {True, False}
    missing = max(consulted.pk, alone.pk) + 1
    assert db.one_with_related(Case, by="id", value=missing, has=has) is None


def test_a_row_inserted_at_the_next_place_is_stored_as_the_orm_would_store_it(
        django_assert_num_queries):
    case, now = CaseFactory(), timezone.now()
    first = SlaWarning(case=case, clock="response", created_at=now)
    with django_assert_num_queries(1):  # the last place read and the row written at once
        db.insert_at_next_position(first, field="level")
    SlaWarning.objects.create(case=case, clock="resolution", level=7, created_at=now)
    by_orm = SlaWarning.objects.aggregate(last=Max("level"))["last"] + 1

    then = SlaWarning(case=case, clock="response", created_at=now)
    db.insert_at_next_position(then, field="level")

    assert first.level == 1  # the first place of an empty table
    assert then.level == by_orm == 8
    assert not then._state.adding  # a later save updates it
    stored = SlaWarning.objects.get(pk=then.pk)
    assert (stored.case_id, stored.clock, stored.level, stored.created_at) == (
        case.pk, "response", 8, now)


def test_the_next_place_among_some_rows_is_the_one_the_orm_would_give(
        django_assert_num_queries):
    queue = QueueFactory()
    for priority in (3, 9):
        CaseFactory(queue=queue, priority=priority)
    CaseFactory(priority=40)  # another queue's
    moved = CaseFactory(queue=queue, priority=0)
    by_orm = Case.objects.filter(queue=queue).aggregate(last=Max("priority"))["last"] + 1

    with django_assert_num_queries(1):
        place = db.set_next_position(Case, pk=moved.pk, field="priority", among="queue",
                                     value=queue.pk)

    assert place == by_orm == 10
    assert Case.objects.get(pk=moved.pk).priority == 10
    assert sorted(Case.objects.filter(queue=queue).values_list("priority", flat=True)) == [
        3, 9, 10]



def test_writes_run_together_leave_what_each_leaves_alone(django_assert_num_queries):
    queue, now = QueueFactory(), timezone.now()
    CaseFactory(queue=queue, priority=9)
    moved, counted = CaseFactory(queue=queue, priority=0), CaseFactory(time_spent_seconds=7)
    case = CaseFactory()
    SlaWarning.objects.create(case=case, clock="resolution", level=7, created_at=now)
    warning = SlaWarning(case=case, clock="response", created_at=now)
    missing = max(moved.pk, counted.pk, case.pk) + 1

    # One statement where the database has data-modifying WITH, one each elsewhere.
    with django_assert_num_queries(1 if connection.vendor == "postgresql" else 4):
        db.write_together(
            db.inserting_at_next_position(warning, field="level"),
            db.setting_next_position(moved, field="priority", among="queue"),
            db.adding_to_columns(Case, where={"id": counted.pk},
                                 adds={"time_spent_seconds": 5}),
            # A write that finds no row changes nothing, and stops none of the others.
            db.adding_to_columns(Case, where={"id": missing}, adds={"priority": 1}))

    assert warning.level == 8 and not warning._state.adding  # set as the write left them
    assert SlaWarning.objects.get(pk=warning.pk).level == 8
    assert moved.priority == Case.objects.get(pk=moved.pk).priority == 10
    assert Case.objects.get(pk=counted.pk).time_spent_seconds == 12
    assert not Case.objects.filter(pk=missing).exists()

def _case_event(case, verb="case.released"):
    return audit.build(actor_label="tests", verb=verb, object_type="case", object_id=case.pk,
                       case=case, data={"to": case.state, "version": case.version})


def _released_copy(case_id):
    case = Case.objects.get(pk=case_id)
    case.release()
    case.time_spent_seconds += 60
    return case


def test_a_case_saved_with_its_event_is_stored_as_save_and_the_events_save_store_it(
        django_assert_num_queries):
    from django_fsm import ConcurrentTransition

    from tests.factories import make_case
    from workflows.models import CaseState

    holder = UserFactory()
    cases = [make_case(QueueFactory(), state=CaseState.ASSIGNED, assignee=holder)
             for _ in range(2)]
    reference, by_sql = (_released_copy(case.pk) for case in cases)
    reference.save()
    _case_event(reference).save()

    with django_assert_num_queries(1 if connection.vendor == "postgresql" else 2):
        db.save_case_with_event(by_sql, _case_event)

    for case in (reference, by_sql):
        stored = Case.objects.get(pk=case.pk)
        assert _model_values(stored) == _model_values(case)
        assert (stored.state, stored.version) == (CaseState.OPEN, cases[0].version + 1)
        event = AuditEvent.objects.get(case=case.pk)
        assert event.data == {"to": "open", "version": stored.version}
        assert event.row_hash == audit.event_hash(event) and event.recorded_at is not None
    # Saved as read now: the next change saves on top of it.
    by_sql.claim(by=holder, until=timezone.now() + timedelta(minutes=5))
    db.save_case_with_event(by_sql, lambda case: _case_event(case, "case.claimed"))
    assert Case.objects.get(pk=by_sql.pk).version == cases[1].version + 2

    # A case changed meanwhile (its version, or its state): nothing written (I4).
    fresh = [make_case(cases[0].queue, state=CaseState.ASSIGNED, assignee=holder)
             for _ in range(2)]
    stale, moved = (_released_copy(case.pk) for case in fresh)
    stale.version -= 1
    Case.objects.filter(pk=moved.pk).update(state=CaseState.WAITING)
    events = AuditEvent.objects.count()
    for case in (stale, moved):
        version = case.version
        with pytest.raises(ConcurrentTransition), transaction.atomic():
            db.save_case_with_event(case, _case_event)
        assert case.version == version
    assert AuditEvent.objects.count() == events
    assert Case.objects.get(pk=stale.pk).state == CaseState.ASSIGNED


def test_fields_saved_with_the_case_are_stored_only_when_the_case_is(
        django_assert_num_queries):
    from django_fsm import ConcurrentTransition

    from tests.factories import make_case
    from workflows.models import CaseState

    holder = UserFactory()
    queues = [QueueFactory(name=f"Queue {n}", lease_seconds=600) for n in range(3)]
    cases = [make_case(queue, state=CaseState.ASSIGNED, assignee=holder) for queue in queues]
    reference, by_sql, stale = (_released_copy(case.pk) for case in cases)
    for case in (reference, by_sql, stale):
        case.queue.name, case.queue.lease_seconds = "Renamed", 900
    reference.save()
    _case_event(reference).save()
    db.update_columns(reference.queue, ["name"])

    with django_assert_num_queries(1 if connection.vendor == "postgresql" else 3):
        db.save_case_with_event(by_sql, _case_event, and_update=(by_sql.queue, ["name"]))

    for case in (reference, by_sql):
        assert _model_values(Case.objects.get(pk=case.pk)) == _model_values(case)
        # The fields named, and only those.
        assert Queue.objects.values_list("name", "lease_seconds").get(pk=case.queue_id) == (
            "Renamed", 600)
        assert AuditEvent.objects.filter(case=case.pk).count() == 1
    # A case changed meanwhile: neither it, nor its event, nor the other row (I4).
    stale.version -= 1
    with pytest.raises(ConcurrentTransition), transaction.atomic():
        db.save_case_with_event(stale, _case_event, and_update=(stale.queue, ["name"]))
    assert Queue.objects.get(pk=stale.queue_id).name == "Queue 2"
    assert not AuditEvent.objects.filter(case=stale.pk).exists()


def test_people_are_read_as_the_orm_reads_them():
    ana, ben, _cy = (UserFactory() for _ in range(3))
    wanted = [ana.pk, ben.pk, ben.pk + 1000]

    by_sql = sorted(db.people(wanted), key=lambda person: person.pk)

    reference = list(get_user_model().objects.filter(pk__in=wanted).order_by("pk"))
    assert [_model_values(person) for person in by_sql] == [
        _model_values(person) for person in reference]
    assert len(by_sql) == 2 and db.people([]) == []


def test_availability_and_loads_are_what_the_statuses_and_loads_queries_find():
    from tests.factories import make_case
    from workflows.models import HELD_STATES, CaseState, ReviewerStatus
    from workflows.services import assignment

    queue = QueueFactory()
    busy, away, back, new, idle = (UserFactory() for _ in range(5))
    ReviewerStatus.objects.create(user=away, available=False, delegate=back)
    ReviewerStatus.objects.create(user=back, available=True)
    for state in CaseState.values:  # one case in every state, held or not
        make_case(queue, state=state, assignee=busy if state != CaseState.OPEN else None)
    make_case(queue, state=CaseState.ASSIGNED, assignee=away)
    make_case(queue, state=CaseState.WAITING, assignee=back)
    people = [busy.pk, away.pk, back.pk, new.pk, idle.pk]

    statuses, loads = assignment.statuses(people), assignment.open_loads(people)
    by_orm = {pk: (statuses[pk].available if pk in statuses else None, loads[pk])
              for pk in people}
    assert db.availability_and_loads(people, states=HELD_STATES) == by_orm
    assert by_orm[busy.pk] == (None, len(HELD_STATES)) and by_orm[away.pk] == (False, 1)
    assert db.availability_and_loads([], states=HELD_STATES) == {}


def test_a_session_and_its_person_are_read_as_the_orm_reads_them():
    from django.contrib.auth.models import Permission

    from workflows.models import Session

    ann = UserFactory(username="ann", time_zone="Europe/Berlin", last_login=timezone.now())
    managers = Group.objects.create(name="managers")
    managers.permissions.add(Permission.objects.get(codename="manage_cases"))
    ann.groups.add(managers)
    now = timezone.now()
    later = now + timedelta(hours=1)
    signed_in = Session.objects.create(session_key="a" * 32, session_data="x",
                                       expire_date=later, user=ann)
    signed_out = Session.objects.create(session_key="b" * 32, session_data="y",
                                        expire_date=later)
    Session.objects.create(session_key="c" * 32, session_data="z", expire_date=now, user=ann)
    gone = Session.objects.create(session_key="d" * 32, session_data="w", expire_date=later,
                                  user_id=ann.pk + 1000)  # saved as its person was deleted

    def fields(obj):
        return {field.attname: getattr(obj, field.attname)
                for field in type(obj)._meta.concrete_fields}

    for key in ("a" * 32, "b" * 32, "c" * 32, "d" * 32, "e" * 32):
        found = db.session_with_person(key, now=now)
        by_orm = Session.objects.filter(session_key=key, expire_date__gt=now).first()
        if by_orm is None:
            assert found is None, key
            continue
        session, person, names = found
        assert fields(session) == fields(by_orm), key
        by_orm_person = db.person(by_orm.user_id) if by_orm.user_id else None  # held above
        assert (fields(person) if person else None) == (
            fields(by_orm_person[0]) if by_orm_person else None), key
        assert names == (by_orm_person[1] if by_orm_person else set()), key
    # The fixture reaches every branch.
    assert db.session_with_person(signed_in.pk, now=now)[2] == {"workflows.manage_cases"}
    assert db.session_with_person(signed_out.pk, now=now)[1:] == (None, set())
    assert db.session_with_person(gone.pk, now=now)[1:] == (None, set())
    assert db.session_with_person("c" * 32, now=now) is None
