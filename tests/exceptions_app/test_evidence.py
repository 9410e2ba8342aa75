"""The evidence export of a period: what it holds, in which order, who may take it, and
that taking it is recorded."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from exceptions_app.services import evidence
from tests.exceptions_app.factories import UseCaseFactory, make_decision_case
from tests.factories import UserFactory, client_for, make_manager
from workflows.actors import SYSTEM
from workflows.models import AuditEvent
from workflows.services import audit
from workflows.verbs import AuditVerb


def make_auditor():
    user = UserFactory(username="alex")
    user.user_permissions.add(Permission.objects.get(codename="read_everything"))
    return user


def today_period() -> dict:
    today = timezone.localdate()
    return {"since": today.isoformat(), "until": today.isoformat()}


def rows_of(content: bytes, file_format: str) -> list[dict]:
    if file_format == "csv":
        return list(csv.DictReader(io.StringIO(content.decode())))
    return [json.loads(line) for line in content.decode().splitlines()]


@pytest.fixture
def history():
    """A decision with its case, a transition of it, a RACI change, and an event of last
    month that the period leaves out."""
    use_case = UseCaseFactory(slug="invoices")
    decision = make_decision_case(use_case, external_id="inv-7")
    audit.record(actor=SYSTEM, verb=AuditVerb.CASE_ESCALATED, object_type="case",
                 object_id=decision.case_id, case_id=decision.case_id)
    audit.record(actor=SYSTEM, verb=AuditVerb.RACI_CHANGED, object_type="process",
                 object_id=1, data={"before": {}, "after": {"A": ["manager"]}})
    with audit.backfilling():
        audit.record(actor=SYSTEM, verb=AuditVerb.QUEUE_CHANGED, object_type="queue",
                     object_id=1, now=timezone.now() - timedelta(days=40))
    return decision


@pytest.mark.django_db
@pytest.mark.parametrize("file_format", ["csv", "jsonl"])
def test_the_period_holds_decisions_with_policy_and_stage_then_the_events(history, file_format):
    response = client_for(make_auditor()).get(
        reverse("audit-evidence-export", args=[file_format]), today_period())

    assert response.status_code == 200
    rows = rows_of(b"".join(response.streaming_content), file_format)
    decision = rows[0]
    assert decision["record"] == "decision" and str(decision["id"]) == str(history.pk)
    assert str(decision["policy_version"]) == str(history.policy_version.number)
    assert decision["stage"] == history.stage and decision["use_case"] == "invoices"
    events = [row for row in rows if row["record"] == "event"]
    categories = {row["verb"]: row["category"] for row in events}
    assert categories["case.escalated"] == "transition"
    assert categories["raci.changed"] == "raci"
    assert "queue.changed" not in categories  # last month: outside the period
    raci_row = next(row for row in events if row["verb"] == "raci.changed")
    data = raci_row["data"] if file_format == "jsonl" else json.loads(raci_row["data"])
    assert data["after"] == {"A": ["manager"]}
    assert all(row["row_hash"] for row in events)


@pytest.mark.django_db
def test_keyset_chunks_give_every_record_once_even_at_the_same_instant():
    now = timezone.now()
    recorded = [audit.record(actor=SYSTEM, verb=AuditVerb.QUEUE_CHANGED, object_type="queue",
                             object_id=n, now=now).pk for n in range(7)]
    period = evidence.Period(since=now - timedelta(minutes=1), until=now + timedelta(minutes=1))

    assert [row["id"] for row in evidence.event_records(period, chunk=2)] == recorded


@pytest.mark.django_db
def test_a_use_case_period_leaves_out_other_use_cases():
    mine, theirs = UseCaseFactory(slug="mine"), UseCaseFactory(slug="theirs")
    kept = make_decision_case(mine, external_id="a")
    make_decision_case(theirs, external_id="b")
    period = evidence.parse_period({**today_period(), "use_case": "mine"})

    assert [row["id"] for row in evidence.decision_records(period)] == [kept.pk]


@pytest.mark.django_db
def test_exporting_is_recorded_and_refused_to_a_reviewer(history):
    auditor = make_auditor()
    response = client_for(auditor).get(reverse("audit-evidence-export", args=["csv"]),
                                       today_period())
    b"".join(response.streaming_content)

    exported = AuditEvent.objects.get(verb="evidence.exported")
    assert exported.actor == auditor and exported.data["format"] == "csv"
    assert client_for(UserFactory()).get(reverse("audit-evidence-export", args=["csv"]),
                                         today_period()).status_code == 403
    # A manager without the role's export permission manages cases, not evidence.
    assert client_for(make_manager()).get(reverse("audit-evidence-export", args=["csv"]),
                                          today_period()).status_code == 403


@pytest.mark.django_db
def test_a_period_without_its_ends_is_refused_naming_them():
    response = client_for(make_auditor()).get(reverse("audit-evidence-export", args=["csv"]),
                                              {"since": "2026-12-02", "use_case": "nope"})

    assert response.status_code == 400
    assert set(response.json()) == {"until", "use_case"}


@pytest.mark.django_db
def test_the_page_downloads_the_file_and_names_a_bad_field(history):
    client = Client()
    client.force_login(make_auditor())

    assert client.get(reverse("audit-evidence")).status_code == 200
    download = client.get(reverse("audit-evidence"), {**today_period(), "format": "jsonl"})
    assert download["Content-Disposition"].startswith('attachment; filename="evidence-all-')
    assert b'"record":"decision"' in b"".join(download.streaming_content)
    refused = client.get(reverse("audit-evidence"), {"since": "soon", "format": "csv"})
    assert refused.status_code == 400 and "Give a date" in refused.content.decode()


@pytest.mark.django_db
def test_the_command_writes_the_file_and_is_recorded(history, tmp_path):
    target = tmp_path / "evidence.csv"
    today = timezone.localdate().isoformat()

    call_command("export_evidence", "--since", today, "--until", today, "-o", str(target),
                 "--no-progress")

    rows = rows_of(target.read_bytes(), "csv")
    assert {row["record"] for row in rows} == {"decision", "event"}
    assert AuditEvent.objects.get(verb="evidence.exported").actor_label == "cli:export_evidence"
