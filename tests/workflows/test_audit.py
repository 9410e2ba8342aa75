"""The audit chain (I7): sealing, verification, tamper detection and the commands."""

import contextlib
import logging
import re
import threading
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from tests.concurrency import run_concurrently
from tests.factories import CaseFactory, UserFactory
from workflows.actors import SYSTEM
from workflows.models import AuditCheckpoint, AuditEvent, AuditSeal
from workflows.services import audit


def record_events(count: int, **kwargs) -> list[AuditEvent]:
    """Events as the different writers make them: people, AI systems and the system."""
    reviewer = UserFactory()
    case = CaseFactory()
    writers = [
        {"actor": reviewer, "verb": "case.claimed", "object_type": "case",
         "object_id": case.pk, "case": case},
        {"actor_label": "ai:invoice-bot", "verb": "case.opened",
         "object_type": "case", "object_id": "inv-1", "data": {"confidence": 0.82}},
        {"actor": SYSTEM, "verb": "case.escalated", "object_type": "case", "object_id": case.pk,
         "case_id": case.pk, "data": {"level": 1, "before": {"state": "open"}}},
    ]
    return [audit.record(**{**writers[i % len(writers)], **kwargs}) for i in range(count)]


def with_id(event_id: int, verb: str = "case.opened") -> AuditEvent:
    """An event inserted under a chosen id, as a writer that took it earlier would."""
    event = audit.build(actor=SYSTEM, verb=verb, object_type="case", object_id=event_id)
    event.id = event_id
    event.save()
    return event



@contextmanager
def tampering():
    """Raw SQL past the model guards and the database's append-only triggers.

    This is what an attacker with superuser rights (PostgreSQL: the replication role
    skips ordinary triggers for this session only) or write access to the database file
    (SQLite: drop the triggers, put them back afterwards) would do.
    """
    with connection.cursor() as cursor:
        triggers = []
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        else:
            cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                           "AND tbl_name LIKE 'workflows_audit%'")
            triggers = cursor.fetchall()
            for name, _ in triggers:
                cursor.execute(f'DROP TRIGGER "{name}"')
        try:
            yield cursor
        finally:
            if connection.vendor == "postgresql":
                cursor.execute("SET session_replication_role = DEFAULT")
            for _, sql in triggers:
                cursor.execute(sql)


def insert_by_sql(cursor, *, occurred_at, row_mac: str = "", recorded_at=None,
                  object_id: str = "inv-forged", data: dict | None = None) -> int:
    """A plain INSERT, as anyone with write access to the database can make: every column
    right (a row_hash computed exactly as Backstop does), the MAC as the caller has it."""
    values = dict(zip(audit.ROW_COLUMNS, audit.row(
        verb="case.opened", object_type="decision", object_id=object_id,
        actor_label="ai:invoice-bot", now=occurred_at, data=data or {"route": "auto"}),
        strict=True))
    values.update(row_mac=row_mac,
                  occurred_at=connection.ops.adapt_datetimefield_value(occurred_at))
    if recorded_at is not None:
        values["recorded_at"] = connection.ops.adapt_datetimefield_value(recorded_at)
    json_cast = "CAST(%s AS jsonb)" if connection.vendor == "postgresql" else "%s"
    placeholders = ", ".join(json_cast if column == "data" else "%s" for column in values)
    cursor.execute(f"INSERT INTO workflows_auditevent ({', '.join(values)}) "
                   f"VALUES ({placeholders})", list(values.values()))
    return AuditEvent.objects.get(object_id=object_id).pk


def truncate_chain_from(cursor, seq: int) -> None:
    """Remove the seals from ``seq`` on and the events they sealed."""
    cursor.execute("DELETE FROM workflows_auditseal WHERE seq >= %s", [seq])
    cursor.execute("DELETE FROM workflows_auditevent WHERE id NOT IN "
                   "(SELECT event_id FROM workflows_auditseal)")


@pytest.mark.parametrize("label", ["ai:invoice-bot", 'ai:"quoted"', "ai:back\\slash",
                                   "ai:Bäckerei", "ai:\x7f", "ai:tab\t", "ai:😀", ""])
@pytest.mark.parametrize("case_id", [None, 7, 2**70])
def test_a_row_for_copy_hashes_what_build_hashes(label, case_id):
    now = timezone.now()
    event = audit.build(verb="case.opened", object_type="case", object_id=label,
                        actor_label=label or "ai:x", case_id=case_id, now=now,
                        data={"note": label, "amount": 1e-07})
    row = dict(zip(audit.ROW_COLUMNS, audit.row(
        verb="case.opened", object_type="case", object_id=label,
        actor_label=label or "ai:x", case_id=case_id, now=now,
        data={"note": label, "amount": 1e-07}), strict=True))

    assert (row["row_hash"], row["row_mac"]) == (event.row_hash, event.row_mac)


# --- sealing -----------------------------------------------------------------------------

@pytest.mark.django_db
def test_chain_verifies_after_events_from_several_writers():
    events = record_events(6)
    # A batch writer inserts many events at once (decision intake does).
    AuditEvent.objects.bulk_create([
        audit.build(verb="case.opened", object_type="case", object_id=f"b-{i}",
                    actor_label="ai:batch-bot") for i in range(4)])

    assert audit.seal() == 10

    report = audit.verify()
    assert report.ok, report.problems
    assert (report.sealed, report.unsealed) == (10, 0)
    assert list(AuditSeal.objects.order_by("seq").values_list("seq", flat=True)) == \
        list(range(1, 11))
    assert AuditSeal.objects.get(event=events[0]).seq == 1
    newest = AuditCheckpoint.objects.get()
    assert newest.seq == 10
    assert report.head == (newest.seq, newest.chain_hash)


@pytest.mark.django_db
def test_chain_hash_links_each_row_hash_to_the_previous_link():
    first, second = record_events(2)
    audit.seal()

    seals = list(AuditSeal.objects.order_by("seq"))
    assert seals[0].chain_hash == audit.chain_hash("0" * 64, first.row_hash)
    assert seals[1].chain_hash == audit.chain_hash(seals[0].chain_hash, second.row_hash)
    checkpoint = AuditCheckpoint.objects.get()
    assert checkpoint.signature == audit.checkpoint_signature(seq=2,
                                                              chain_hash=seals[1].chain_hash)


@pytest.mark.django_db
def test_sealing_twice_seals_nothing_new():
    record_events(3)
    audit.seal()

    assert audit.seal() == 0
    assert AuditSeal.objects.count() == 3
    assert AuditCheckpoint.objects.count() == 1  # no checkpoint for an empty run


@pytest.mark.django_db
def test_new_events_continue_the_chain_of_earlier_runs():
    record_events(2)
    audit.seal()
    record_events(3)

    assert audit.seal() == 3
    assert list(AuditCheckpoint.objects.order_by("seq").values_list("seq", flat=True)) == [2, 5]
    assert audit.verify().ok


@pytest.mark.django_db
def test_event_committed_after_later_ones_were_sealed_still_gets_sealed():
    # Ids are taken at insert and committed in any order: 10_000_001 commits last.
    base = 10_000_000
    for event_id in (base, base + 2, base + 3):
        with_id(event_id)
    audit.seal()

    late = with_id(base + 1, verb="case.claimed")
    assert audit.seal() == 1

    assert AuditSeal.objects.get(event=late).seq == 4  # seal order, not id order
    assert audit.verify().ok


@pytest.mark.django_db
def test_sealing_in_small_batches_signs_a_checkpoint_per_batch():
    record_events(5)

    assert audit.seal(batch_size=2) == 5

    assert list(AuditCheckpoint.objects.order_by("seq").values_list("seq", flat=True)) == \
        [2, 4, 5]
    assert audit.verify().ok


@pytest.mark.django_db
def test_each_checkpoint_is_logged_for_external_storage(caplog):
    record_events(2)

    with caplog.at_level(logging.INFO, logger="backstop.audit"):
        audit.seal()

    checkpoint = AuditCheckpoint.objects.get()
    [entry] = [r for r in caplog.records if r.name == "backstop.audit"]
    assert f"seq=2 chain_hash={checkpoint.chain_hash}" in entry.getMessage()
    assert checkpoint.signature in entry.getMessage()


@pytest.mark.django_db
def test_unsealed_event_below_the_window_is_reported_and_sealed_with_a_wider_window():
    with_id(20_000_000)
    audit.seal()
    # A straggler far below the sealed frontier, as after a very long transaction.
    with_id(19_000_000)
    with_id(20_000_100)

    assert audit.seal(window=50) == 1  # the bounded scan never reaches the straggler
    report = audit.verify(now=timezone.now() + timedelta(hours=1))
    assert not report.ok
    assert report.unsealed == 1
    assert report.problems[0].startswith("1 event older than 0:05:00 never sealed (or their "
                                         "seal was deleted): event 19000000;")

    assert audit.seal(window=2_000_000) == 1
    assert audit.verify().ok


@pytest.mark.django_db
def test_recent_unsealed_event_is_counted_but_not_a_problem():
    record_events(2)
    audit.seal()
    record_events(1)

    report = audit.verify()

    assert report.ok
    assert (report.sealed, report.unsealed) == (2, 1)


@pytest.mark.django_db
def test_sealer_refuses_to_extend_a_chain_whose_tail_was_removed():
    record_events(4)
    audit.seal()
    with tampering() as cursor:
        truncate_chain_from(cursor, 3)
    record_events(1)

    with pytest.raises(audit.AuditChainBroken, match="newest checkpoint #4"):
        audit.seal()
    assert AuditSeal.objects.count() == 2


# --- tamper detection --------------------------------------------------------------------

@pytest.mark.django_db
def test_edited_event_is_detected():
    events = record_events(5)
    audit.seal()

    with tampering() as cursor:
        cursor.execute("UPDATE workflows_auditevent SET verb = 'case.approved' WHERE id = %s",
                       [events[2].id])

    report = audit.verify()
    assert not report.ok
    assert report.problems == [f"seq #3, event {events[2].id}: the event's content does not "
                               f"match its row_hash (row edited)"]


@pytest.mark.django_db
def test_edited_event_with_recomputed_row_hash_breaks_the_chain():
    events = record_events(5)
    audit.seal()
    edited = AuditEvent.objects.get(pk=events[1].pk)
    edited.verb = "case.approved"

    with tampering() as cursor:
        cursor.execute("UPDATE workflows_auditevent SET verb = %s, row_hash = %s WHERE id = %s",
                       [edited.verb, audit.event_hash(edited), edited.id])

    report = audit.verify()
    assert not report.ok
    assert report.problems == [
        f"seq #2, event {edited.id}: row_mac is not valid (forged row, or signed with a key "
        f"missing from AUDIT_SIGNING_KEY_FALLBACKS)",
        f"seq #2, event {edited.id}: chain_hash does not follow from #1 (row_hash or chain "
        f"rewritten)"]


@pytest.mark.django_db
@pytest.mark.parametrize("chunk_size", [2, 1000])
def test_deleted_event_and_seal_in_the_middle_leave_a_detected_gap(chunk_size):
    events = record_events(6)
    audit.seal()

    with tampering() as cursor:
        cursor.execute("DELETE FROM workflows_auditseal WHERE seq = 3")
        cursor.execute("DELETE FROM workflows_auditevent WHERE id = %s", [events[2].id])

    report = audit.verify(chunk_size=chunk_size)
    assert not report.ok
    assert report.problems == ["seq #3 missing: the chain jumps from #2 to #4 (rows deleted)"]
    assert report.sealed == 5


@pytest.mark.django_db
def test_truncated_tail_is_detected_by_the_newest_checkpoint():
    record_events(3)
    audit.seal()
    record_events(3)
    audit.seal()

    with tampering() as cursor:
        truncate_chain_from(cursor, 5)

    report = audit.verify()
    assert not report.ok
    assert report.problems == ["checkpoint #6: seq #6 is not in the chain (rows deleted or "
                               "tail truncated)"]


@pytest.mark.django_db
def test_truncation_that_also_removes_checkpoints_is_caught_only_against_an_expected_head():
    record_events(3)
    audit.seal()
    record_events(3)
    audit.seal()
    shipped = AuditCheckpoint.objects.get(seq=6)  # the copy kept outside the database

    with tampering() as cursor:
        truncate_chain_from(cursor, 4)
        cursor.execute("DELETE FROM workflows_auditcheckpoint WHERE seq = 6")

    assert audit.verify().ok  # consistent on its own: this is what the external copy is for
    report = audit.verify(expected_head=(shipped.seq, shipped.chain_hash))
    assert not report.ok
    assert report.problems == ["expected head #6 is not in the chain, which ends at #3 "
                               "(tail truncated)"]


@pytest.mark.django_db
def test_deleting_the_newest_checkpoint_leaves_the_seals_after_it_unvouched():
    record_events(2)
    audit.seal()
    record_events(2)
    audit.seal()

    with tampering() as cursor:
        cursor.execute("DELETE FROM workflows_auditcheckpoint WHERE seq = 4")

    assert audit.verify().problems == ["seq #3..#4 are not covered by any checkpoint "
                                       "(checkpoints deleted?)"]


@pytest.mark.django_db
def test_expected_head_that_matches_the_chain_passes():
    record_events(4)
    audit.seal()
    shipped = AuditCheckpoint.objects.get()
    record_events(2)
    audit.seal()

    assert audit.verify(expected_head=(shipped.seq, shipped.chain_hash)).ok
    assert not audit.verify(expected_head=(shipped.seq, "f" * 64)).ok


@pytest.mark.django_db
def test_forged_checkpoint_signature_is_detected():
    record_events(3)
    audit.seal()

    with tampering() as cursor:
        cursor.execute("UPDATE workflows_auditcheckpoint SET signature = %s WHERE seq = 3",
                       ["0" * 64])

    report = audit.verify()
    assert not report.ok
    assert report.problems == ["checkpoint #3: signature is not valid (forged or altered "
                               "checkpoint)"]


@pytest.mark.django_db
def test_rewritten_chain_with_recomputed_hashes_is_detected_by_the_checkpoint_signature():
    events = record_events(5)
    audit.seal()
    # The forger rewrites event 2, recomputes its row_hash, every later link and the
    # checkpoint's chain_hash, but cannot sign without the key.
    edited = AuditEvent.objects.get(pk=events[1].pk)
    edited.verb = "case.approved"
    previous = AuditSeal.objects.get(seq=1).chain_hash
    with tampering() as cursor:
        cursor.execute("UPDATE workflows_auditevent SET verb = %s, row_hash = %s WHERE id = %s",
                       [edited.verb, audit.event_hash(edited), edited.id])
        for seal in AuditSeal.objects.filter(seq__gte=2).select_related("event").order_by("seq"):
            previous = audit.chain_hash(previous, seal.event.row_hash)
            cursor.execute("UPDATE workflows_auditseal SET chain_hash = %s WHERE seq = %s",
                           [previous, seal.seq])
        cursor.execute("UPDATE workflows_auditcheckpoint SET chain_hash = %s WHERE seq = 5",
                       [previous])

    report = audit.verify()
    assert not report.ok
    assert report.problems == [
        f"seq #2, event {edited.id}: row_mac is not valid (forged row, or signed with a key "
        f"missing from AUDIT_SIGNING_KEY_FALLBACKS)",
        "checkpoint #5: signature is not valid (forged or altered checkpoint)"]


@pytest.mark.django_db
def test_rewritten_chain_without_touching_checkpoints_is_detected_at_the_checkpoint():
    events = record_events(3)
    audit.seal()
    edited = AuditEvent.objects.get(pk=events[2].pk)
    edited.verb = "case.approved"
    with tampering() as cursor:
        cursor.execute("UPDATE workflows_auditevent SET verb = %s, row_hash = %s WHERE id = %s",
                       [edited.verb, audit.event_hash(edited), edited.id])
        cursor.execute("UPDATE workflows_auditseal SET chain_hash = %s WHERE seq = 3",
                       [audit.chain_hash(AuditSeal.objects.get(seq=2).chain_hash,
                                         audit.event_hash(edited))])

    report = audit.verify()
    assert report.problems == [
        f"seq #3, event {edited.id}: row_mac is not valid (forged row, or signed with a key "
        f"missing from AUDIT_SIGNING_KEY_FALLBACKS)",
        f"checkpoint #3: chain_hash differs from seq #3, event {edited.id} (chain rewritten)"]


@pytest.mark.django_db
def test_checkpoints_signed_with_a_rotated_key_still_verify(settings):
    record_events(2)
    audit.seal()
    old_key = settings.AUDIT_SIGNING_KEY

    settings.AUDIT_SIGNING_KEY = "a-new-key"
    assert not audit.verify().ok
    settings.AUDIT_SIGNING_KEY_FALLBACKS = [old_key]
    assert audit.verify().ok


# --- forged rows: a MAC per row and the database's own insert time ----------------------

@pytest.mark.django_db
def test_backdated_row_inserted_by_sql_with_a_correct_row_hash_is_detected():
    # The finding: a plain INSERT with a correct row_hash, dated three days back, used to
    # be sealed like any other event and verify OK.
    record_events(2)
    with connection.cursor() as cursor:  # no trigger stands in the way of an INSERT
        forged = insert_by_sql(cursor, occurred_at=timezone.now() - timedelta(days=3))
    record_events(1)

    assert audit.seal() == 4  # the sealer cannot tell; verification can
    report = audit.verify()
    assert not report.ok
    assert report.problems == [f"seq #3, event {forged}: no row_mac (written without the "
                               f"signing key)"]


@pytest.mark.django_db
def test_row_with_a_made_up_or_foreign_key_mac_is_detected(settings):
    with connection.cursor() as cursor:
        made_up = insert_by_sql(cursor, occurred_at=timezone.now(), object_id="made-up",
                                row_mac="0" * 64)
        signed_elsewhere = insert_by_sql(
            cursor, occurred_at=timezone.now(), object_id="elsewhere",
            row_mac=audit.row_mac(audit.row(
                verb="case.opened", object_type="decision", object_id="elsewhere",
                actor_label="ai:invoice-bot", now=timezone.now(),
                data={"route": "auto"})[8], key="a key Backstop never had"))
    audit.seal()

    problems = audit.verify().problems
    assert problems == [
        f"seq #{n}, event {pk}: row_mac is not valid (forged row, or signed with a key "
        f"missing from AUDIT_SIGNING_KEY_FALLBACKS)"
        for n, pk in ((1, made_up), (2, signed_elsewhere))]


@pytest.mark.django_db
def test_forged_rows_are_reported_before_they_are_sealed():
    with connection.cursor() as cursor:
        forged = insert_by_sql(cursor, occurred_at=timezone.now())

    report = audit.verify()
    assert report.problems == [f"unsealed event {forged}: no row_mac (written without the "
                               f"signing key)"]
    assert report.unsealed == 1


@pytest.mark.django_db
def test_backdated_row_written_with_the_key_is_detected_by_the_time_the_database_recorded_it(
        settings):
    # Whoever holds the key (a compromised application server) can sign a row, but the
    # database stamps when it arrived.
    three_days_ago = timezone.now() - timedelta(days=3)
    backdated = audit.record(verb="case.opened", object_type="decision",
                             object_id="inv-7", actor_label="ai:invoice-bot",
                             now=three_days_ago)
    audit.seal()

    backdated.refresh_from_db()
    [problem] = audit.verify().problems
    # About three days (SQLite's clock counts milliseconds only).
    assert re.fullmatch(
        rf"seq #1, event {backdated.pk}: occurred_at {re.escape(three_days_ago.isoformat())} "
        rf"is (3 days, 0:00:0|2 days, 23:59:59)[\d.]* before the database recorded it at "
        rf"{re.escape(backdated.recorded_at.isoformat())} \(backdated row\?\)", problem)


@pytest.mark.django_db
def test_event_a_few_minutes_off_the_database_clock_still_verifies():
    audit.record(actor=SYSTEM, verb="case.opened", object_type="case", object_id=1,
                 now=timezone.now() - audit.RECORDED_WITHIN + timedelta(seconds=30))
    audit.record(actor=SYSTEM, verb="case.opened", object_type="case", object_id=2,
                 now=timezone.now() + timedelta(minutes=1))
    audit.seal()

    assert audit.verify().ok


@pytest.mark.django_db
def test_database_assigns_recorded_at_and_refuses_one_chosen_by_the_writer():
    event = record_events(1)[0]
    event.refresh_from_db()
    assert abs(event.recorded_at - timezone.now()) < timedelta(minutes=1)

    with pytest.raises(DatabaseError, match="recorded by the database"), \
            transaction.atomic(), connection.cursor() as cursor:
        insert_by_sql(cursor, occurred_at=timezone.now() - timedelta(days=3),
                      recorded_at=timezone.now() - timedelta(days=3))
    with pytest.raises(DatabaseError, match="recorded by the database"), transaction.atomic():
        backdated = audit.build(actor=SYSTEM, verb="case.opened", object_type="case",
                                object_id=1, now=timezone.now() - timedelta(days=3))
        backdated.recorded_at = backdated.occurred_at
        backdated.save()


@pytest.mark.django_db
def test_every_writer_path_signs_its_rows():
    events = record_events(3)
    AuditEvent.objects.bulk_create([
        audit.build(verb="case.opened", object_type="decision", object_id="b-1",
                    actor_label="ai:batch-bot")])

    for event in AuditEvent.objects.all():
        assert event.row_mac == audit.row_mac(event.row_hash)
    assert events[0].row_mac == audit.row_mac(events[0].row_hash)


@pytest.mark.django_db
@pytest.mark.parametrize("backfill", [False, True])
def test_a_copy_row_is_the_event_build_makes(backfill):
    # intake writes big batches by COPY from ``row``; the model path goes through ``build``.
    at = timezone.now().replace(microsecond=123456)
    fields = {"verb": "case.opened", "object_type": "decision", "object_id": 41,
              "actor_label": "ai:invoice-bot", "case_id": 7, "now": at,
              "data": {"route": "review", "reasons": ["low-confidence"], "é": 0.5}}
    with audit.backfilling() if backfill else contextlib.nullcontext():
        built, copied = audit.build(**fields), audit.row(**fields)

    as_row = dict(zip(audit.ROW_COLUMNS, copied, strict=True))
    assert as_row["row_hash"] == built.row_hash == audit.event_hash(built)
    assert as_row["row_mac"] == built.row_mac == audit.row_mac(built.row_hash)
    assert as_row["backfilled"] is built.backfilled is backfill


@pytest.mark.django_db
def test_rows_signed_with_a_rotated_key_still_verify(settings):
    record_events(2)
    audit.seal()
    old_key = settings.AUDIT_SIGNING_KEY

    settings.AUDIT_SIGNING_KEY = "a-new-key"
    record_events(1)  # signed with the new key
    audit.seal()
    problems = audit.verify().problems
    assert [problem for problem in problems if "row_mac" in problem] == [
        f"seq #{seq}, event {AuditSeal.objects.get(seq=seq).event_id}: row_mac is not valid "
        f"(forged row, or signed with a key missing from AUDIT_SIGNING_KEY_FALLBACKS)"
        for seq in (1, 2)]

    settings.AUDIT_SIGNING_KEY_FALLBACKS = [old_key]
    assert audit.verify().ok


@pytest.mark.django_db
def test_backfilled_events_verify_only_when_accepted():
    with audit.backfilling():
        seeded = audit.record(actor=SYSTEM, verb="case.opened", object_type="case",
                              object_id=1, now=timezone.now() - timedelta(days=3))
    audit.seal()

    report = audit.verify()
    assert report.problems == [
        f"1 event marked backfilled (occurred_at set in the past on purpose, as the demo "
        f"seed does): event {seeded.pk}; in production this is a forged history, on a demo "
        f"database accept it with --accept-backfilled"]
    assert report.backfilled == 1
    accepted = audit.verify(accept_backfilled=True)
    assert accepted.ok and accepted.backfilled == 1


@pytest.mark.django_db
def test_the_backfilled_mark_cannot_be_added_afterwards():
    event = audit.record(actor=SYSTEM, verb="case.opened", object_type="case", object_id=1)
    audit.seal()

    with tampering() as cursor:
        cursor.execute("UPDATE workflows_auditevent SET backfilled = %s WHERE id = %s",
                       [True, event.pk])

    assert audit.verify(accept_backfilled=True).problems == [
        f"seq #1, event {event.pk}: the event's content does not match its row_hash "
        f"(row edited)"]


# --- the database itself refuses changes (PostgreSQL and SQLite) ------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("statement", [
    "UPDATE workflows_auditevent SET verb = 'x'",
    "DELETE FROM workflows_auditevent",
    "UPDATE workflows_auditseal SET chain_hash = 'x'",
    "DELETE FROM workflows_auditseal",
    "UPDATE workflows_auditcheckpoint SET signature = 'x'",
    "DELETE FROM workflows_auditcheckpoint",
])
def test_database_refuses_update_and_delete_of_audit_rows(statement):
    record_events(1)
    audit.seal()

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), \
            connection.cursor() as cursor:
        cursor.execute(statement)


# --- commands ----------------------------------------------------------------------------

@pytest.mark.django_db
def test_seal_command_prints_how_many_it_sealed(capsys):
    record_events(3)

    call_command("seal_audit_chain")

    assert "Sealed 3 audit events." in capsys.readouterr().out


@pytest.mark.django_db
def test_verify_command_passes_an_intact_chain_and_its_shipped_head(capsys):
    record_events(3)
    audit.seal()
    checkpoint = AuditCheckpoint.objects.get()

    call_command("verify_audit_chain", "--expect-head", f"{checkpoint.seq}:{checkpoint.chain_hash}")

    out = capsys.readouterr().out
    assert f"3 sealed, 0 not yet sealed, head #3 {checkpoint.chain_hash}." in out
    assert "Audit chain OK." in out


@pytest.mark.django_db
def test_verify_command_lists_each_problem_and_fails(capsys):
    events = record_events(3)
    audit.seal()
    with tampering() as cursor:
        cursor.execute("UPDATE workflows_auditevent SET verb = 'x' WHERE id = %s", [events[0].id])
        cursor.execute("UPDATE workflows_auditcheckpoint SET signature = %s", ["0" * 64])

    with pytest.raises(CommandError, match="2 problems"):
        call_command("verify_audit_chain")

    err = capsys.readouterr().err
    assert f"PROBLEM: seq #1, event {events[0].id}: the event's content" in err
    assert "PROBLEM: checkpoint #3: signature is not valid" in err


@pytest.mark.django_db
def test_verify_command_accepts_backfilled_events_only_when_asked(capsys):
    with audit.backfilling():
        record_events(2, now=timezone.now() - timedelta(days=2))
    audit.seal()

    with pytest.raises(CommandError, match="1 problem"):
        call_command("verify_audit_chain")
    assert "2 backfilled (dated in the past on purpose, not checked against the time they " \
        "were recorded): not accepted." in capsys.readouterr().out

    call_command("verify_audit_chain", "--accept-backfilled")
    out = capsys.readouterr().out
    assert "2 backfilled (dated in the past on purpose, not checked against the time they " \
        "were recorded)." in out
    assert "Audit chain OK." in out


@pytest.mark.django_db
def test_verify_command_refuses_a_malformed_expected_head():
    with pytest.raises(CommandError, match="SEQ:HASH"):
        call_command("verify_audit_chain", "--expect-head", "12:nothex")


# --- concurrency (PostgreSQL, real threads) ----------------------------------------------

@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_two_sealers_and_concurrent_writers_make_one_contiguous_chain():
    writers_done = threading.Event()
    writing = threading.Semaphore(0)

    def writer(label):
        def write():
            for i in range(40):
                with transaction.atomic():
                    audit.record(verb="case.opened", object_type="case", object_id=i,
                                 actor_label=label)
            writing.release()
        return write

    def sealer():
        while not writers_done.is_set():
            audit.seal(batch_size=7)

    def wait_for_writers():
        for _ in range(3):
            writing.acquire()
        writers_done.set()

    run_concurrently(writer("ai:one"), writer("ai:two"), writer("ai:three"), sealer, sealer,
                   wait_for_writers)
    audit.seal()

    seals = list(AuditSeal.objects.order_by("seq").values_list("seq", "event_id"))
    assert [seq for seq, _ in seals] == list(range(1, 121))
    assert len({event_id for _, event_id in seals}) == 120 == AuditEvent.objects.count()
    report = audit.verify()
    assert report.ok, report.problems


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_event_of_a_slow_writer_is_sealed_after_later_ones_when_it_commits():
    inserted, commit = threading.Event(), threading.Event()
    slow = {}

    def slow_writer():
        try:
            with transaction.atomic():
                slow["event"] = audit.record(verb="case.opened", object_type="case",
                                             object_id="slow", actor_label="ai:slow")
                inserted.set()
                assert commit.wait(timeout=30)
        finally:
            connection.close()

    thread = threading.Thread(target=slow_writer)
    thread.start()
    assert inserted.wait(timeout=30)
    record_events(3)  # taken later ids, committed first
    assert audit.seal() == 3
    commit.set()
    thread.join(timeout=30)

    assert audit.seal() == 1
    assert AuditSeal.objects.get(event_id=slow["event"].id).seq == 4
    assert slow["event"].id < AuditSeal.objects.get(seq=1).event_id
    assert audit.verify().ok
