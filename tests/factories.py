"""factory_boy factories and the helpers built on them, shared by every test module.

Test modules import from here (or a ``*_support`` module), never from a conftest.py.

The engine's only: importable without the domain installed
(``tests/workflows/engine_settings.py``). The domain's are in
``tests/exceptions_app/factories.py``.
"""

from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone
from rest_framework.test import APIClient

from workflows.models import (
    Case,
    CaseState,
    Queue,
    Resolution,
)


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
