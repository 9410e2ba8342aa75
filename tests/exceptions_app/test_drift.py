"""Drift: recent decisions against the owner's reference window (PSI), alerts, notices."""

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from exceptions_app import tasks
from exceptions_app.models import Decision, DriftAlert, DriftReference, Route
from exceptions_app.services import drift
from tests.exceptions_app.factories import AiSystemFactory, PolicyVersionFactory, UseCaseFactory
from tests.factories import UserFactory, make_manager
from workflows import metrics
from workflows.models import Activity, AuditEvent, OutboxMessage, RaciAssignment, RaciRole

START = datetime(2026, 3, 2, tzinfo=UTC)
INPUT_SCHEMA = {"type": "object", "properties": {
    "amount": {"type": "number"}, "country": {"enum": ["DE", "FR", "NL", "CN"]},
    "invoice_number": {"type": "string"}, "lines": {"type": "array"}}}



@pytest.fixture
def owner(db):
    return UserFactory(username="owner", email="owner@example.com")


@pytest.fixture
def use_case(owner):
    use_case = UseCaseFactory(slug="inv", name="Invoices", input_schema=INPUT_SCHEMA,
                              owner=owner)
    informed = UserFactory(username="controller", email="")
    RaciAssignment.objects.create(process=use_case.process, activity=Activity.INCIDENT,
                                  role=RaciRole.INFORMED, user=informed)
    return use_case


class Stream:
    """Invoices as a model sees them, one a minute: stable, or shifted (larger amounts,
    a new country, lower confidence) from a chosen decision on."""

    def __init__(self, use_case, *, seed: int):
        self.use_case, self.rng, self.count = use_case, random.Random(seed), 0
        self.system = AiSystemFactory(slug="bot", use_cases=[use_case])
        self.policy = PolicyVersionFactory(use_case=use_case)

    def post(self, n: int, *, shifted: bool = False) -> None:
        rng, decisions = self.rng, []
        for _ in range(n):
            self.count += 1
            if shifted:
                payload = {"amount": rng.gauss(1600, 300),
                           "country": rng.choices(["DE", "FR", "NL", "CN"], [4, 3, 1, 2])[0]}
                confidence = rng.betavariate(5, 3)
            else:
                payload = {"amount": rng.gauss(1000, 300),
                           "country": rng.choices(["DE", "FR", "NL"], [5, 3, 2])[0]}
                confidence = rng.betavariate(8, 2)
            payload["invoice_number"] = f"INV-{self.count}"
            decisions.append(Decision(
                ai_system=self.system, use_case=self.use_case, external_id=f"d-{self.count}",
                body_hash="0" * 64, model_version="m1", confidence=confidence,
                input=payload, output={}, received_at=self.now, policy_version=self.policy,
                stage=self.use_case.stage, route=Route.AUTO))
        Decision.objects.bulk_create(decisions)

    @property
    def now(self) -> datetime:
        return START + timedelta(minutes=self.count)


@pytest.mark.django_db
def test_a_stable_stream_raises_no_alert(use_case, owner):
    stream = Stream(use_case, seed=1)
    stream.post(2000)
    drift.set_reference(use_case=use_case, since=START, until=stream.now, actor=owner)

    highest = 0.0
    for _ in range(20):
        stream.post(250)
        check = drift.check_drift(use_case=use_case, now=stream.now)
        assert check.status == "checked"
        highest = max(highest, *check.psi.values())

    assert highest < 0.1
    assert not DriftAlert.objects.exists()
    assert set(check.psi) == {"confidence", "input.amount", "input.country",
                              "input.invoice_number"}


@pytest.mark.django_db
def test_an_injected_shift_raises_an_alert_within_1000_decisions(use_case, owner):
    stream = Stream(use_case, seed=2)
    stream.post(2000)
    drift.set_reference(use_case=use_case, since=START, until=stream.now, actor=owner)
    stream.post(500)
    assert drift.check_drift(use_case=use_case, now=stream.now).levels["input.amount"] is None

    shifted_by_alert = None
    for shifted in range(100, 1001, 100):
        stream.post(100, shifted=True)
        check = drift.check_drift(use_case=use_case, now=stream.now)
        if check.levels["input.amount"] == "alert":
            shifted_by_alert = shifted
            break

    assert shifted_by_alert is not None and shifted_by_alert <= 1000
    alert = DriftAlert.objects.get(feature="input.amount", cleared_at__isnull=True)
    assert alert.level == "alert" and alert.psi >= 0.25
    # The Accountable (in-app and e-mail) and the Informed for incidents (in-app) are told.
    informed = RaciAssignment.objects.get(role=RaciRole.INFORMED).user
    told = sorted(OutboxMessage.objects.filter(dedup_key__startswith=f"drift:{alert.pk}:alert")
                  .values_list("channel", "recipient"))
    assert told == sorted([("in_app", str(informed.pk)), ("in_app", str(owner.pk)),
                           ("email", "owner@example.com")])
    assert AuditEvent.objects.filter(verb="drift.raised", data__feature="input.amount").exists()

    # Checked again on the same decisions: nothing new is raised or sent.
    messages, alerts = OutboxMessage.objects.count(), DriftAlert.objects.count()
    drift.check_drift(use_case=use_case, now=stream.now + timedelta(minutes=1))
    assert (OutboxMessage.objects.count(), DriftAlert.objects.count()) == (messages, alerts)


@pytest.mark.django_db
def test_an_alert_clears_when_the_stream_returns_and_operators_see_the_figures(use_case,
                                                                               owner):
    stream = Stream(use_case, seed=3)
    stream.post(1000)
    drift.set_reference(use_case=use_case, since=START, until=stream.now, actor=owner)
    stream.post(1000, shifted=True)
    drift.check_drift(use_case=use_case, now=stream.now)
    assert DriftAlert.objects.filter(cleared_at__isnull=True, level="alert").exists()

    body, _ = metrics.exposition()
    assert b'backstop_drift_alerts_open{level="alert",use_case="inv"}' in body
    assert b'backstop_drift_psi{feature="input.amount",use_case="inv"}' in body

    stream.post(1000)
    drift.check_drift(use_case=use_case, now=stream.now)
    assert not DriftAlert.objects.filter(cleared_at__isnull=True).exists()


@pytest.mark.django_db
def test_a_reference_window_with_too_few_decisions_says_so(use_case, owner):
    stream = Stream(use_case, seed=4)
    stream.post(120)

    with pytest.raises(ValidationError) as refused:
        drift.set_reference(use_case=use_case, since=START, until=stream.now, actor=owner)

    assert "holds 119 decisions; a drift reference needs at least 500" in str(
        refused.value.message_dict["since"])
    assert drift.check_drift(use_case=use_case).status == "no-reference"


@pytest.mark.django_db
def test_too_few_recent_decisions_are_not_measured(use_case, owner):
    stream = Stream(use_case, seed=5)
    stream.post(600)
    drift.set_reference(use_case=use_case, since=START, until=stream.now, actor=owner)
    Decision.objects.filter(pk__in=list(Decision.objects.order_by("pk")
                                        .values_list("pk", flat=True)[:400])).delete()

    check = drift.check_drift(use_case=use_case, now=stream.now)

    assert check.status == "too-few-recent" and "Only 200 decisions" in check.message


@pytest.mark.django_db
def test_only_the_owner_or_a_manager_sets_the_reference(use_case, owner):
    stream = Stream(use_case, seed=6)
    stream.post(600)

    with pytest.raises(PermissionDenied):
        drift.set_reference(use_case=use_case, since=START, until=stream.now,
                            actor=UserFactory(username="outsider"))

    reference = drift.set_reference(use_case=use_case, since=START, until=stream.now,
                                    actor=owner, warn_threshold=0.05, alert_threshold=0.2)
    assert (reference.decisions, reference.warn_threshold) == (599, 0.05)
    event = AuditEvent.objects.get(verb="drift.reference_set")
    assert event.actor_label == "owner" and event.data["decisions"] == 599


@pytest.mark.django_db
def test_the_beat_task_checks_every_use_case_with_a_reference(use_case, owner):
    stream = Stream(use_case, seed=7)
    stream.post(600)
    drift.set_reference(use_case=use_case, since=START, until=stream.now, actor=owner)
    UseCaseFactory(slug="no-reference")

    assert tasks.check_drift() == {"inv": "checked"}
    assert DriftReference.objects.get().checked_decisions == 600


@pytest.mark.django_db
def test_an_open_alert_shows_on_the_dashboard_and_the_use_case_page_until_cleared(
        use_case, owner, client):
    stream = Stream(use_case, seed=5)
    stream.post(1000)
    drift.set_reference(use_case=use_case, since=START, until=stream.now, actor=owner)
    stream.post(1000, shifted=True)
    drift.check_drift(use_case=use_case, now=stream.now)
    monitoring = reverse("use-case-monitoring", args=[use_case.slug]) + "#h-drift"
    client.force_login(make_manager(username="maria"))

    board = client.get(reverse("sla-dashboard")).content.decode()
    assert f'<a href="{monitoring}">Drift on Invoices: input.amount</a>' in board
    page = client.get(reverse("use-case", args=[use_case.slug])).content.decode()
    assert "input.amount has moved" in page and monitoring in page

    drift.set_reference(use_case=use_case, since=stream.now - timedelta(minutes=600),
                        until=stream.now, actor=owner)
    assert "Drift on Invoices" not in client.get(reverse("sla-dashboard")).content.decode()
