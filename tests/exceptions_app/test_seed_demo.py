"""The demo seed (``exceptions_app.demo``): the whole product, set up once."""

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.files.storage import storages
from django.urls import reverse

from exceptions_app.demo.data import CALLBACK_PATH
from exceptions_app.demo.receiver import WebhookReceiver
from exceptions_app.demo.setup import seed_demo
from exceptions_app.models import (
    AiSystem,
    Decision,
    DecisionDocument,
    PolicyStatus,
    PolicyVersion,
    Route,
    Stage,
    UseCase,
)
from workflows.models import (
    OPEN_STATES,
    Activity,
    AuditEvent,
    Calendar,
    Case,
    CaseState,
    Channel,
    ConsultRequest,
    Escalation,
    EscalationLevel,
    EscalationOutcome,
    EscalationTarget,
    OutboxMessage,
    OutboxStatus,
    RaciAssignment,
    RaciRole,
    Resolution,
    SlaPolicy,
    SlaTarget,
    SlaWarning,
    activity_values,
)
from workflows.services import audit, outbox, raci
from workflows.services.sla.status import SlaStatus, case_status

# A Wednesday, 11:00 in Berlin: the office is open, the last business days are
# Friday 20, Monday 23 and Tuesday 24 November.
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def everything() -> dict:
    """Every row the seed writes, in a comparable form."""
    models = [get_user_model(), get_user_model().groups.through, UseCase, PolicyVersion,
              AiSystem, Decision, Case, Resolution, RaciAssignment, Calendar, SlaPolicy,
              SlaTarget, EscalationLevel, Escalation, SlaWarning, ConsultRequest,
              OutboxMessage, AuditEvent, DecisionDocument]
    return {model.__name__: sorted(map(str, model.objects.values_list()))
            for model in models}


@pytest.mark.django_db
def test_a_second_run_changes_nothing():
    seed_demo(now=NOW)
    first = everything()

    seed_demo(now=NOW + timedelta(hours=3))

    assert everything() == first


@pytest.mark.django_db
def test_every_demo_case_carries_the_invoice_the_ai_read_as_a_pdf():
    seed_demo(now=NOW)

    decisions = Decision.objects.filter(case__isnull=False).prefetch_related("documents")
    assert decisions
    for decision in decisions:
        [document] = decision.documents.all()
        assert document.content_type == "application/pdf"
        assert document.original_filename == f"{decision.input['invoice_number']}.pdf"
        with storages["documents"].open(document.storage_name) as stored:
            assert stored.read().startswith(b"%PDF-")


@pytest.mark.django_db
def test_the_seeds_dated_history_verifies_as_backfilled_and_only_when_accepted():
    seed_demo(now=NOW)
    audit.seal()

    assert AuditEvent.objects.filter(backfilled=False).count() == 0
    refused = audit.verify()
    assert [problem.split(":")[0] for problem in refused.problems] == [
        f"{AuditEvent.objects.count()} events marked backfilled (occurred_at set in the past "
        f"on purpose, as the demo seed does)"]
    accepted = audit.verify(accept_backfilled=True)
    assert accepted.ok, accepted.problems
    assert accepted.backfilled == AuditEvent.objects.count()


@pytest.mark.django_db
def test_the_policy_is_drafted_by_one_person_and_activated_by_the_owner():
    seeded = seed_demo(now=NOW)

    policy = PolicyVersion.objects.get(use_case__slug="invoice-approval", number=1)
    assert policy.status == PolicyStatus.ACTIVE and seeded.policy == policy
    steps = list(AuditEvent.objects.filter(object_type="policy_version", object_id=policy.pk)
                 .order_by("id").values_list("verb", "actor_label"))
    assert steps == [("policy.drafted", "reviewer2"), ("policy.proposed", "reviewer2"),
                     ("policy.approved", "manager"), ("policy.activated", "manager")]


@pytest.mark.django_db
def test_a_second_version_waits_for_the_owner_to_backtest_and_compare():
    seed_demo(now=NOW)

    revision = PolicyVersion.objects.get(use_case__slug="invoice-approval", number=2)
    assert revision.status == PolicyStatus.PROPOSED
    assert revision.created_by.username == "reviewer2"
    assert revision.rules.get(name="low-confidence").expression == "confidence < 0.85"


@pytest.mark.django_db
def test_the_process_names_who_owns_each_activity():
    seeded = seed_demo(now=NOW)

    process = seeded.process
    assert seeded.use_case.process == process
    assert set(process.queues.values_list("slug", flat=True)) == {
        "invoice-review", "invoice-qa", "invoice-escalations"}
    matrix = raci.cells(process=process)
    assert matrix[Activity.REVIEW][RaciRole.RESPONSIBLE] == {
        "users": [], "groups": ["invoice-reviewers"]}
    for activity in activity_values():
        assert matrix[activity][RaciRole.ACCOUNTABLE] == {"users": ["manager"], "groups": []}
    assert matrix[Activity.ESCALATION][RaciRole.CONSULTED]["users"] == ["reviewer2"]
    assert [user.username for user in raci.holders(
        process=process, activity=Activity.ESCALATION, role=RaciRole.INFORMED)] == [
        "reviewer", "reviewer2"]
    # Every change of the matrix is audited, by the manager who owns it.
    assert AuditEvent.objects.filter(verb="raci.changed", actor_label="manager").count() == (
        RaciAssignment.objects.values("process", "activity", "role").distinct().count())


@pytest.mark.django_db
def test_queues_run_on_berlin_business_hours_with_targets_per_priority():
    seed_demo(now=NOW)

    calendar = Calendar.objects.get(name="Finance office, Berlin")
    assert (calendar.time_zone, calendar.holiday_country) == ("Europe/Berlin", "DE")
    assert set(calendar.working_hours) == {"0", "1", "2", "3", "4"}
    review = SlaPolicy.objects.get(queue__slug="invoice-review", is_current=True)
    assert review.calendar == calendar and review.warning_fraction == 0.75
    assert list(review.targets.order_by("min_priority").values_list(
        "min_priority", "response_target", "resolution_target")) == [
        (0, timedelta(hours=2), timedelta(hours=16)),
        (60, timedelta(hours=1), timedelta(hours=8)),
        (90, timedelta(minutes=30), timedelta(hours=4))]
    assert SlaPolicy.objects.filter(is_current=True, calendar=calendar).count() == 3


@pytest.mark.django_db
def test_the_chain_goes_to_the_responsible_then_the_owner_then_holds():
    seeded = seed_demo(now=NOW)

    levels = list(EscalationLevel.objects.filter(process=seeded.process).order_by("level"))
    assert [(level.level, level.target, level.queue.slug if level.queue else None,
             level.consult, level.notify_informed) for level in levels] == [
        (1, EscalationTarget.RESPONSIBLE, None, False, True),
        (2, EscalationTarget.ACCOUNTABLE, "invoice-escalations", True, True)]
    assert levels[-1].outcome == EscalationOutcome.HOLD_FOR_OWNER


@pytest.mark.django_db
def test_open_cases_wait_in_several_states_with_real_clocks():
    seed_demo(now=NOW)

    open_cases = Case.objects.filter(state__in=OPEN_STATES)
    states = set(open_cases.values_list("state", flat=True))
    assert {CaseState.OPEN, CaseState.ASSIGNED, CaseState.WAITING,
            CaseState.PENDING_APPROVAL, CaseState.ESCALATED} <= states
    assert not open_cases.filter(due_at__isnull=True).exists()
    assert not open_cases.filter(sla_policy__isnull=True).exists()
    # Worked through the services: each step is in the case's own history.
    waiting = open_cases.get(state=CaseState.WAITING)
    verbs = list(waiting.audit_events.order_by("id").values_list("verb", flat=True))
    assert verbs[-2:] == ["case.claimed", "case.info_requested"]
    assert waiting.sla_next_check_at is None  # its clock is paused


@pytest.mark.django_db
def test_history_was_decided_in_time_and_the_forgotten_case_escalated():
    seed_demo(now=NOW)

    resolved = Case.objects.filter(state=CaseState.RESOLVED)
    assert resolved.count() >= 10
    for case in resolved:
        assert case.first_claimed_at <= case.response_due_at
        assert case.closed_at <= case.due_at <= NOW + timedelta(days=7)
    assert Resolution.objects.filter(verdict="corrected").exists()
    assert Resolution.objects.exclude(approved_by=None).exists()  # four eyes
    # Nobody picked up the last invoices of Tuesday: the sweep escalated one to the
    # reviewers, and as nobody acted either, on to the owner's escalations desk, where
    # the Consulted are asked.
    escalated = Case.objects.get(state=CaseState.ESCALATED, queue__slug="invoice-escalations")
    assert list(escalated.escalations.values_list("level", "cause")) == [
        (1, "response_breach"), (2, "resolution_breach")]
    assert escalated.consults.get().consultee.username == "reviewer2"
    assert OutboxMessage.objects.filter(case=escalated, recipient__isnull=False).exists()
    assert Decision.objects.filter(use_case__slug="invoice-approval").count() == 3 * 8 + 40


@pytest.mark.django_db
def test_before_office_hours_a_reviewer_sends_the_stale_case_up_by_hand():
    # Monday 06:00 in Berlin: Friday's forgotten invoice still sits with the reviewers.
    seed_demo(now=datetime(2026, 11, 30, 5, 0, tzinfo=UTC))

    escalated = Case.objects.get(state=CaseState.ESCALATED, queue__slug="invoice-escalations")
    assert list(escalated.escalations.values_list("level", "cause", "actor__username")) == [
        (1, "response_breach", None), (2, "manual", "reviewer")]
    assert escalated.consults.get().consultee.username == "reviewer2"


# --- Every feature can be tried, at any time of day ---------------------------------------

@pytest.mark.django_db
def test_at_three_on_a_sunday_morning_work_is_at_risk_and_breached():
    # The Berlin office is closed and its clocks stand still; the intercompany desk's
    # run around the clock.
    sunday_night = datetime(2026, 11, 29, 3, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    with time_machine.travel(sunday_night, tick=False):
        seed_demo()

        open_cases = Case.objects.filter(state__in=OPEN_STATES).select_related("queue")
        statuses = {(case.queue.slug, case_status(case, now=sunday_night))
                    for case in open_cases}
    assert ("intercompany-review", SlaStatus.AT_RISK) in statuses
    assert ("intercompany-review", SlaStatus.BREACHED) in statuses
    calendar = Calendar.objects.get(name="Shared-service desk, around the clock")
    assert calendar.working_hours == {str(day): [["00:00", "24:00"]] for day in range(7)}
    assert SlaPolicy.objects.get(queue__slug="intercompany-review",
                                 is_current=True).calendar == calendar


@pytest.mark.django_db
def test_the_blind_qa_queue_holds_a_sample_of_the_automated_approvals():
    seeded = seed_demo(now=NOW)

    automated = seeded.second_use_case
    assert (automated.stage, automated.qa_queue.slug) == (Stage.AUTOMATE, "invoice-qa")
    sampled = Case.objects.filter(queue__slug="invoice-qa", state=CaseState.OPEN)
    assert sampled.exists()
    assert set(Decision.objects.filter(case__in=sampled)
               .values_list("use_case__slug", "route")) == {(automated.slug, Route.AUTO)}
    # Most approvals pass unseen: the sample is a sample.
    passed = Decision.objects.filter(use_case=automated, route=Route.AUTO)
    assert sampled.count() < passed.count()


@pytest.mark.django_db
def test_the_admin_signs_in_to_the_django_admin_with_the_readmes_password(client):
    seed_demo(now=NOW)

    assert client.login(username="admin", password="admin-demo")
    assert client.get("/admin/").status_code == 200
    # The seed leaves the password alone once the admin exists.
    seed_demo(now=NOW + timedelta(hours=1))
    assert get_user_model().objects.get(username="admin").check_password("admin-demo")


@pytest.mark.django_db
def test_a_manager_can_reassign_an_escalated_case_from_the_dashboard(client):
    seed_demo(now=NOW)
    escalated = Case.objects.get(state=CaseState.ESCALATED, queue__slug="invoice-escalations")
    assert set(escalated.queue.members.values_list("username", flat=True)) == {
        "manager", "reviewer2"}

    client.login(username="manager", password="manager-demo")
    response = client.post(reverse("sla-dashboard-reassign", args=[escalated.pk]),
                           {"to_user": get_user_model().objects.get(username="reviewer2").pk,
                            "version": escalated.version}, follow=True)

    assert "is now with Robin Second" in response.content.decode()
    escalated.refresh_from_db()
    assert (escalated.state, escalated.assignee.username) == (CaseState.ASSIGNED, "reviewer2")


@pytest.fixture
def demo_receiver(settings):
    """The demo's webhook receiver on a free port of this machine, as bin/demo runs it;
    plain http to this machine is what the demo allows (bin/demo sets the same)."""
    settings.ALLOW_HTTP_CALLBACKS = True
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    server = WebhookReceiver(("127.0.0.1", 0), path=CALLBACK_PATH, secret_for=lambda: None)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.mark.django_db
def test_demo_ais_resolution_webhooks_reach_the_receiver_signed(demo_receiver):
    seeded = seed_demo(now=NOW, callback_url=demo_receiver.url)
    # The receiver's operator installed the secret demo-ai was given.
    demo_receiver.secret_for = lambda: seeded.ai_system.signing_secret

    outbox.relay_due(channels=[Channel.WEBHOOK])

    webhooks = OutboxMessage.objects.filter(channel=Channel.WEBHOOK)
    assert webhooks.count() == Case.objects.filter(
        state=CaseState.RESOLVED, decision__ai_system=seeded.ai_system).count() > 0
    assert set(webhooks.values_list("status", "recipient")) == {
        (OutboxStatus.DELIVERED, demo_receiver.url)}
    assert set(demo_receiver.received.verified) == {str(pk) for pk in webhooks.values_list(
        "pk", flat=True)}
    assert demo_receiver.received.refused == []
    assert {payload["type"] for payload in demo_receiver.received.verified.values()} == {
        "decision.resolved"}


@pytest.mark.django_db
def test_the_receiver_refuses_a_webhook_signed_with_another_secret(demo_receiver):
    demo_receiver.secret_for = outbox.generate_signing_secret
    body = outbox.webhook_body({"type": "decision.resolved", "data": {}})

    outcome = outbox.post_webhook(
        url=demo_receiver.url, body=body.encode(),
        headers={"content-type": "application/json", **outbox.webhook_headers(
            message_id="forged-1", body=body,
            signing_secrets=[outbox.generate_signing_secret()])})

    assert (outcome.delivered, outcome.status_code) == (False, 401)
    assert demo_receiver.received.refused == ["forged-1"]
    assert demo_receiver.received.verified == {}


@pytest.mark.django_db
def test_a_demo_seeded_without_a_receiver_gets_a_secret_and_its_callback_url_next_run(
        demo_receiver):
    seed_demo(now=NOW)
    # As the seeds before the webhooks left it: no callback URL, no signing secret.
    AiSystem.objects.filter(slug="demo-ai").update(signing_secret="")

    seed_demo(now=NOW + timedelta(hours=1), callback_url=demo_receiver.url)

    ai_system = AiSystem.objects.get(slug="demo-ai")
    assert ai_system.callback_url == demo_receiver.url
    assert ai_system.signing_secret.startswith("whsec_")
    assert list(AuditEvent.objects.filter(object_type="ai_system", object_id=str(ai_system.pk))
                .order_by("id").values_list("verb", "actor_label")) == [
        ("ai_system.created", "manager"), ("ai_system.secret_rotated", "manager"),
        ("ai_system.changed", "manager")]
