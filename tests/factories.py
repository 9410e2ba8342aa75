"""factory_boy factories and the helpers built on them, shared by every test module.

Test modules import from here (or a ``*_support`` module), never from a conftest.py.
"""

from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone
from rest_framework.test import APIClient

from exceptions_app.models import (
    AiSystem,
    AiSystemAPIKey,
    Decision,
    PolicyStatus,
    PolicyVersion,
    Route,
    Rule,
    RuleAction,
    Stage,
    UseCase,
)
from workflows.models import (
    Activity,
    Case,
    CaseState,
    Process,
    Queue,
    RaciAssignment,
    RaciRole,
    Resolution,
)

INVOICE_OUTPUT_SCHEMA = {
    "type": "object",
    "required": ["action", "amount"],
    "properties": {"action": {"enum": ["approve", "hold", "reject"]},
                   "amount": {"type": "number", "minimum": 0}},
}


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password("correct-horse-battery")


def make_manager(**kwargs):
    user = UserFactory(**kwargs)
    user.user_permissions.add(Permission.objects.get(codename="manage_cases"))
    return get_user_model().objects.get(pk=user.pk)  # drop the permission cache


class QueueFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Queue
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"queue-{n}")
    name = factory.LazyAttribute(lambda queue: queue.slug.replace("-", " ").title())


class UseCaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UseCase
        django_get_or_create = ("slug",)
        skip_postgeneration_save = True

    slug = factory.Sequence(lambda n: f"use-case-{n}")
    name = factory.LazyAttribute(lambda use_case: use_case.slug.replace("-", " ").title())
    stage = Stage.ASSIST
    review_queue = factory.SubFactory(QueueFactory)
    qa_queue = factory.SubFactory(QueueFactory, blind=True)
    reason_codes = [{"code": "wrong-amount", "label": "The amount is wrong"},
                    {"code": "policy", "label": "Against policy"}]

    @factory.post_generation
    def owner(use_case, create, extracted, **kwargs):
        """``owner=person``: a process whose RACI matrix names them Accountable for
        review (the business owner) and for policy changes."""
        if not create or extracted is None:
            return
        if use_case.process is None:
            use_case.process, _ = Process.objects.get_or_create(
                slug=use_case.slug, defaults={"name": use_case.name})
            use_case.save(update_fields=["process"])
        for activity in (Activity.REVIEW, Activity.POLICY_CHANGE):
            RaciAssignment.objects.get_or_create(process=use_case.process, activity=activity,
                                                 role=RaciRole.ACCOUNTABLE, user=extracted)


class PolicyVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PolicyVersion

    use_case = factory.SubFactory(UseCaseFactory)
    number = factory.Sequence(lambda n: n + 1)
    text = "Approve confident decisions; people check the rest."
    status = PolicyStatus.ACTIVE
    default_action = RuleAction.AUTO
    created_by = factory.SubFactory(UserFactory)
    activated_at = factory.LazyFunction(timezone.now)


class RuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Rule

    policy = factory.SubFactory(PolicyVersionFactory)
    position = factory.Sequence(lambda n: n)
    name = factory.Sequence(lambda n: f"rule-{n}")
    description = "Low confidence: a person checks it"
    expression = "confidence < 0.9"
    action = RuleAction.REVIEW


class AiSystemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AiSystem
        django_get_or_create = ("slug",)
        skip_postgeneration_save = True

    slug = factory.Sequence(lambda n: f"ai-{n}")
    name = factory.LazyAttribute(lambda system: system.slug.upper())
    owner = factory.SubFactory(UserFactory)

    @factory.post_generation
    def use_cases(self, create, extracted, **kwargs):
        if create and extracted:
            self.use_cases.add(*extracted)


def issue_key(ai_system: AiSystem) -> str:
    _, key = AiSystemAPIKey.objects.create_key(name="test", ai_system=ai_system)
    return key


class CaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Case

    queue = factory.SubFactory(QueueFactory)
    title = factory.Sequence(lambda n: f"Case {n}")
    created_at = factory.LazyFunction(timezone.now)
    due_at = factory.LazyAttribute(lambda case: case.created_at + case.queue.resolution_target)
    response_due_at = factory.LazyAttribute(
        lambda case: case.created_at + case.queue.response_target)


def make_case(queue, *, state=CaseState.OPEN, assignee=None, first_reviewer=None,
              four_eyes=False, priority=50, now=None, **fields):
    """A case put straight into ``state``, with the fields that state implies."""
    now = now or timezone.now()
    values = {"queue": queue, "priority": priority, "requires_four_eyes": four_eyes,
              "created_at": now - timedelta(minutes=5), **fields}
    if state in (CaseState.ASSIGNED, CaseState.WAITING):
        values.update(assignee=assignee, first_claimed_at=now - timedelta(minutes=4))
    if state == CaseState.ASSIGNED:
        values.update(lease_expires_at=now + queue.lease_time,
                      work_started_at=now - timedelta(minutes=4))
    if state == CaseState.WAITING:
        values.update(waiting_since=now - timedelta(minutes=1))
    if state == CaseState.ESCALATED:
        values.update(escalation_level=1)
    if state in (CaseState.PENDING_APPROVAL, CaseState.RESOLVED):
        values.update(first_reviewer=first_reviewer or assignee)
    if state in (CaseState.RESOLVED, CaseState.CANCELLED):
        values.update(closed_at=now - timedelta(minutes=1))
    if state == CaseState.RESOLVED:
        values.update(assignee=assignee)
    case = CaseFactory(state=state, **values)
    if state in (CaseState.PENDING_APPROVAL, CaseState.RESOLVED):
        Resolution.objects.create(case=case, verdict="accepted",
                                  resolved_by=values["first_reviewer"], created_at=now)
    return case


def make_decision_case(use_case, *, queue=None, external_id="inv-1", confidence=0.62,
                       four_eyes=False, ai_system=None, **case_fields):
    """A decision routed to review, with its open case (as intake leaves them)."""
    policy = use_case.policies.filter(status="active").first() or PolicyVersionFactory(
        use_case=use_case)
    ai_system = ai_system or AiSystemFactory(slug="invoice-bot", use_cases=[use_case])
    case = make_case(queue or use_case.review_queue, four_eyes=four_eyes,
                     title=f"Invoices: {external_id}", **case_fields)
    decision = Decision.objects.create(
        ai_system=ai_system, use_case=use_case, external_id=external_id,
        body_hash="0" * 64, model_version="extractor-3.2.1", confidence=confidence,
        input={"vendor": "ACME GmbH", "po_amount": 4100.0, "currency": "EUR"},
        output={"action": "approve", "amount": 4180.0},
        explanation="Read the total from the last page.", received_at=timezone.now(),
        policy_version=policy, stage=use_case.stage, route=Route.REVIEW,
        reasons=[{"rule": "low-confidence", "action": "review",
                  "text": "Confidence under 0.9: a person checks the extraction"}],
        case=case)
    return decision


def client_for(user) -> APIClient:
    """An API client signed in as ``user``."""
    client = APIClient()
    client.force_authenticate(user)
    return client


def case_in_state(state: str, *, queue: Queue | None = None, assignee=None, manager=None,
                  four_eyes: bool | None = None, priority: int = 50, title: str = "",
                  verdict: str = "accepted", now=None) -> Case:
    """A case brought to ``state`` the way a real one gets there: opened by the service,
    then moved by the transitions' services, so its clocks, version, stints, resolution
    and audit events are what the product writes (unlike ``make_case``, which writes the
    row straight into the state).

    ``assignee`` (a member of ``queue``, made one if needed) claims it for every state past
    ``open``; ``manager`` cancels. Both are made when not given. A ``pending_approval``
    case requires four eyes unless told otherwise.
    """
    from workflows.services import cases, claiming, transitions

    now = now or timezone.now()
    queue = queue or QueueFactory()
    if four_eyes is None:
        four_eyes = state == CaseState.PENDING_APPROVAL
    [case] = cases.open_cases(
        specs=[cases.NewCase(queue=queue, title=title or f"Case in {state}",
                             priority=priority, requires_four_eyes=four_eyes)],
        actor_label="tests", now=now)
    if state == CaseState.OPEN:
        return case
    if state == CaseState.CANCELLED:
        return transitions.cancel(case_id=case.pk, user=manager or make_manager(),
                                  reason="Opened by mistake", now=now)
    if assignee is None:
        assignee = UserFactory()
    queue.members.add(assignee)
    case = claiming.claim(case_id=case.pk, user=assignee, now=now)
    if state == CaseState.WAITING:
        case = transitions.request_info(case_id=case.pk, user=assignee,
                                        reason="Which purchase order?", now=now)
    elif state == CaseState.ESCALATED:
        case = transitions.escalate(case_id=case.pk, user=assignee,
                                    reason="Needs someone senior", now=now)
    elif state in (CaseState.PENDING_APPROVAL, CaseState.RESOLVED):
        case = transitions.resolve(case_id=case.pk, user=assignee, verdict=verdict,
                                   output=None, reason_code="", now=now)
    if case.state != state:
        raise ValueError(f"case_in_state: the transitions left the case {case.state}, "
                         f"not {state} (four_eyes={four_eyes}).")
    return case
