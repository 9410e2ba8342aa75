"""workflows/db.py, on the running database: each raw statement answers like its ORM
reference on small fixtures."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from tests.factories import CaseFactory, QueueFactory, UserFactory
from workflows import db
from workflows.models import Case, SlaWarning

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
