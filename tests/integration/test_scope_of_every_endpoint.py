"""I8 for every endpoint at once: someone outside a queue, and another AI system, read
nothing of it through any GET of the API.

The routes are read from the URL configuration, not listed here, so an endpoint added
later is swept too; one whose path needs an object this test does not know fails
``test_every_read_endpoint_is_swept`` until its object is added to ``path_of``. The
per-endpoint tests (docs/RELIABILITY.md, I8) say what each one shows to whom; this one
says that nothing leaks anywhere.
"""

from datetime import timedelta

import pytest
from django.urls import URLResolver, get_resolver, reverse
from django.utils import timezone
from rest_framework.test import APIClient

from exceptions_app.models import Backtest, Shadow
from tests.exceptions_app.factories import (
    AiSystemFactory,
    UseCaseFactory,
    issue_key,
)
from tests.exceptions_app.factories import make_decision_case as decision_with_case
from tests.factories import QueueFactory, UserFactory, client_for
from tests.workflows.sla_support import office_calendar, publish
from workflows.models import AuditVerification, Notification, OutboxMessage, Process
from workflows.services import claiming, comments, outbox

MARK = "zq-sealed"  # in every name of the world the callers must not see
# Public by design in the demo and the tests (API_DOCS_PUBLIC): the API's shape, no data.
DOCUMENTATION = {"schema", "api-docs", "api-redoc"}


def _routes(patterns=None, prefix=""):
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


def read_endpoints() -> list[tuple[str, list[str]]]:
    """(URL name, its path parameters) of every API route that answers GET."""
    found = set()
    for route, pattern in _routes():
        if not route.startswith("api/v1/") or pattern.name in DOCUMENTATION:
            continue
        callback = pattern.callback
        actions = getattr(callback, "actions", None)
        view = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
        reads = ("get" in actions) if actions else hasattr(view, "get")
        if reads:
            found.add((pattern.name, tuple(sorted(pattern.pattern.regex.groupindex))))
    return sorted((name, list(params)) for name, params in found)


@pytest.fixture
def sealed(monkeypatch):
    """A queue and everything hanging off it, worked by its one member."""
    monkeypatch.setattr(outbox, "_nudge", lambda message_ids, webhooks=False: None)
    insider = UserFactory(username=f"{MARK}-ann")
    process = Process.objects.create(slug=f"{MARK}-process", name=f"{MARK} process")
    queue = QueueFactory(slug=f"{MARK}-desk", name=f"{MARK} desk", process=process)
    queue.members.add(insider)
    now = timezone.now()
    calendar = office_calendar(f"{MARK} office",
                               closures=[(now + timedelta(days=1), now + timedelta(days=2))])
    policy = publish(queue, calendar=calendar)
    use_case = UseCaseFactory(slug=f"{MARK}-invoices", review_queue=queue)
    # Its owner reads the system (onboarding API), as a member reads the rest.
    system = AiSystemFactory(slug=f"{MARK}-ai", use_cases=[use_case], owner=insider)
    decision = decision_with_case(use_case, external_id=f"{MARK}-inv-1", ai_system=system)
    claiming.claim(case_id=decision.case_id, user=insider)
    comments.add_comment(case_id=decision.case_id, user=insider, body=f"{MARK} comment")
    outbox.notify_users(users=[insider], text=f"{MARK} notice", dedup_prefix=f"{MARK}:1",
                        case=decision.case)
    outbox.relay_due()
    policy_version = use_case.policies.get()
    backtest = Backtest.objects.create(use_case=use_case, policy=policy_version,
                                       baseline=policy_version, last=10, requested_by=insider,
                                       requested_at=now)
    shadow = Shadow.objects.create(use_case=use_case, policy=policy_version,
                                   baseline=policy_version, started_by=insider, started_at=now,
                                   ends_at=now + timedelta(days=1))
    return {
        "case-detail": {"pk": decision.case_id},
        "case-comments": {"pk": decision.case_id},
        "notification-detail": {"pk": Notification.objects.get(user=insider).pk},
        "outbox-message-detail": {"pk": OutboxMessage.objects.first().pk},
        "queue-detail": {"slug": queue.slug},
        "queue-assignment": {"slug": queue.slug},
        "process-raci": {"slug": process.slug},
        "sla-policy-list": {"slug": queue.slug},
        "sla-policy-detail": {"slug": queue.slug, "version": policy.version},
        "calendar-detail": {"pk": calendar.pk},
        "calendar-closure-list": {"pk": calendar.pk},
        "calendar-closure-detail": {"pk": calendar.pk,
                                    "closure_id": calendar.closures.get().pk},
        "reviewer-availability": {"username": insider.username},
        "decision-detail": {"pk": decision.pk},
        "label-export": {"file_format": "jsonl"},
        "audit-evidence-export": {"file_format": "csv"},
        "use-case-quality": {"slug": use_case.slug},
        "use-case-detail": {"slug": use_case.slug},
        "ai-system-detail": {"slug": system.slug},
        "use-case-stage-api": {"slug": use_case.slug},
        "use-case-backtests": {"slug": use_case.slug},
        "use-case-thresholds": {"slug": use_case.slug},
        "backtest-detail": {"pk": backtest.pk},
        "use-case-shadows": {"slug": use_case.slug},
        "shadow-detail": {"pk": shadow.pk},
        "policy-list": {"slug": use_case.slug},
        "policy-detail": {"slug": use_case.slug, "number": use_case.policies.get().number},
        "policy-diff": {"slug": use_case.slug, "number": use_case.policies.get().number},
        "audit-verification-detail": {"pk": AuditVerification.objects.create(
            requested_by=insider, requested_at=now).pk},
    }


def path_of(name: str, params: list[str], sealed: dict) -> str:
    return reverse(name, kwargs=sealed[name] if params else None)


@pytest.mark.django_db
def test_every_read_endpoint_is_swept(sealed):
    unknown = [name for name, params in read_endpoints() if params and name not in sealed]

    assert unknown == [], "a new endpoint reads an object: add it to the sealed world"


@pytest.mark.django_db
def test_no_read_endpoint_shows_a_queue_to_someone_outside_it(sealed):
    outsider, other_system = client_for(UserFactory()), APIClient()
    other_system.credentials(HTTP_AUTHORIZATION=f"Api-Key {issue_key(AiSystemFactory())}")

    leaks = []
    for name, params in read_endpoints():
        for caller, client in (("outsider", outsider), ("another AI system", other_system)):
            response = client.get(path_of(name, params, sealed))
            leaked = MARK in response.content.decode()
            if response.status_code not in (200, 401, 403, 404) or leaked:
                leaks.append(f"{name} to {caller}: {response.status_code}")

    assert leaks == []


@pytest.mark.django_db
def test_the_member_reads_what_the_sweep_looks_for(sealed):
    """The sweep's other side: where the member looks, the marked names are there, so
    their absence above means scoped, not missing."""
    member = client_for(UserFactory._meta.model.objects.get(username=f"{MARK}-ann"))

    for name in ("case-list", "case-detail", "queue-list", "notification-list",
                 "calendar-list", "sla-policy-list"):
        params = list(sealed.get(name, {}))
        assert MARK in member.get(path_of(name, params, sealed)).content.decode(), name
