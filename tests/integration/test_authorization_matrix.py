"""Who may do what, everywhere: every route of the URL configuration, every role, an
object in the caller's scope and one outside it has an expected answer, and gets it.

The routes are read from the URL resolver; a route missing from ``MATRIX`` (or an entry
whose route is gone) fails ``test_every_route_has_its_line_in_the_matrix``. Adding a
route is one line: its key (the URL name; ``api <name>`` under ``/api/v1/``), the
objects its path names, and the answers, usually one of the presets below.

Roles: ``anonymous``; ``reviewer``, a member of the in-scope queue only; ``manager``
(``workflows.manage_cases``); ``auditor`` (the ``auditors`` role: reads everything,
changes nothing); ``ai``, the in-scope AI system's API key. Reads (GET) are asked of
every role in both scopes; for a route that changes something, the auditor and the
anonymous caller are asked in both scopes and the reviewer outside their scope (the
answers that never depend on a valid body). What a permitted change does is the
feature tests' business.
"""

import re
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from exceptions_app.models import AiSystemAPIKey, PolicyStatus
from exceptions_app.roles import setup_roles
from exceptions_app.services import backtests, documents, shadows
from tests.exceptions_app.factories import (
    AiSystemFactory,
    PolicyVersionFactory,
    UseCaseFactory,
    issue_key,
)
from tests.exceptions_app.factories import make_decision_case as decision_with_case
from tests.factories import QueueFactory, UserFactory, make_manager
from tests.workflows.sla_support import office_calendar, publish
from workflows.actors import SYSTEM
from workflows.models import ConsultRequest, Notification, OutboxMessage, Process
from workflows.services import audit_verifications, outbox, saved_views

ROLES = ("anonymous", "reviewer", "manager", "auditor", "ai")
# Django's own admin has its own permission system and tests.
NOT_OURS = ("admin/",)


@dataclass(frozen=True)
class Line:
    """A route's expected answers: ``reads`` for GET and ``writes`` for the change it
    makes (``None``: it has no such method). Each maps a role to one status for both
    scopes or to (in scope, out of scope)."""

    objects: dict = field(default_factory=dict)  # path parameter -> the world's object
    query: str = ""  # what the route needs besides its path (a period)
    reads: dict | None = None
    writes: dict | None = None
    write_method: str = "post"  # the route's change, when it is not a POST (a PATCH)


def answers(anonymous, reviewer, manager, auditor, ai) -> dict:
    return dict(zip(ROLES, (anonymous, reviewer, manager, auditor, ai), strict=True))


# -- presets ----------------------------------------------------------------------------
# Reads.
API_ANYONE = answers(401, 200, 200, 200, 401)  # a person's own list or settings
API_SCOPED = answers(401, (200, 404), 200, 200, 401)  # I8: absent outside one's scope
API_PERSONAL = answers(401, (200, 404), 404, 404, 401)  # one's own, nobody else's
API_MANAGERS = answers(401, 403, 200, 403, 401)
API_AUDIT = answers(401, 403, 200, 200, 401)
API_EVIDENCE = answers(401, 403, 403, 200, 401)
API_AI = answers(401, 401, 401, 401, 200)  # the integration's, by API key
API_AI_SCOPED = answers(401, 401, 401, 401, (200, 404))
# A use case's policies: its policy people (RACI) and managers; a member of its queue is
# not one of them (the auditor reads them all).
API_POLICIES = answers(401, 404, 200, 200, 401)
PUBLIC = answers(200, 200, 200, 200, 200)
PAGE = answers(302, 200, 200, 200, 302)  # every signed-in person
PAGE_SCOPED = answers(302, (200, 404), 200, 200, 302)
PAGE_MANAGERS = answers(302, 403, 200, 403, 302)
PAGE_READERS = answers(302, 403, 200, 200, 302)  # managers and auditors
PAGE_AUDIT = PAGE_READERS
PAGE_EVIDENCE = answers(302, 403, 403, 200, 302)
PAGE_POLICIES = answers(302, 404, 200, 200, 302)
# Changes: the auditor is refused everywhere, whatever the object (403).
API_WRITE = answers(401, None, None, 403, 401)
API_WRITE_SCOPED = answers(401, (None, 404), None, 403, 401)
# These read the body before the object: an empty one is 400 whatever the id (so the
# answer says nothing of a case outside one's scope; with a valid body it is 404).
API_WRITE_BODY_FIRST = answers(401, (None, 400), None, 403, 401)
API_WRITE_MANAGERS = answers(401, 403, None, 403, 401)
# A manager's change to something the reviewer may not even see (404 before 403).
API_WRITE_MANAGERS_SCOPED = answers(401, (403, 404), None, 403, 401)
API_WRITE_MANAGERS_UNSEEN = answers(401, 404, None, 403, 401)
API_AI_WRITE = answers(401, 401, 401, 403, None)
API_AI_WRITE_SCOPED = answers(401, 401, 401, 403, (None, 404))
API_AI_WRITE_BODY_FIRST = answers(401, 401, 401, 403, (None, 400))
PAGE_WRITE = answers(302, None, None, 403, 302)
PAGE_WRITE_SCOPED = answers(302, (None, 404), None, 403, 302)
PAGE_WRITE_MANAGERS = answers(302, 403, None, 403, 302)

PERIOD = "since=2026-01-01&until=2026-01-31"

MATRIX = {
    # The API for people.
    "api case-list": Line(reads=API_ANYONE),
    "api case-claim-next": Line(writes=API_WRITE),
    "api case-detail": Line({"pk": "case"}, reads=API_SCOPED),
    "api case-comments": Line({"pk": "case"}, reads=API_SCOPED, writes=API_WRITE_SCOPED),
    **{f"api case-{action}": Line({"pk": "case"}, writes=API_WRITE_SCOPED) for action in (
        "approve", "claim", "release", "resume")},
    **{f"api case-{action}": Line({"pk": "case"}, writes=API_WRITE_BODY_FIRST) for action in (
        "cancel", "escalate", "priority", "reassign", "request-info", "resolve", "send-back")},
    "api consult-answer": Line({"case_id": "case", "consult_id": "consult"},
                               writes=API_WRITE_SCOPED),
    "api notification-list": Line(reads=API_ANYONE),
    "api notification-read-all": Line(writes=API_WRITE),
    "api notification-unread-count": Line(reads=API_ANYONE),
    "api notification-detail": Line({"pk": "notification"}, reads=API_PERSONAL),
    "api notification-read": Line({"pk": "notification"}, writes=API_WRITE_SCOPED),
    "api outbox-message-list": Line(reads=API_MANAGERS),
    "api outbox-message-detail": Line({"pk": "message"}, reads=API_MANAGERS),
    "api outbox-message-redeliver": Line({"pk": "message"}, writes=API_WRITE),
    "api queue-list": Line(reads=API_ANYONE),
    "api queue-detail": Line({"slug": "queue"}, reads=API_SCOPED),
    "api queue-assignment": Line({"slug": "queue"}, reads=API_SCOPED, writes=API_WRITE),
    "api process-raci": Line({"slug": "process"}, reads=API_SCOPED, writes=API_WRITE),
    "api sla-policy-list": Line({"slug": "queue"}, reads=API_SCOPED, writes=API_WRITE),
    "api sla-policy-reapply": Line({"slug": "queue"}, writes=API_WRITE),
    "api sla-policy-detail": Line({"slug": "queue", "version": "sla_version"},
                                  reads=API_SCOPED),
    "api calendar-list": Line(reads=API_ANYONE),
    "api calendar-detail": Line({"pk": "calendar"}, reads=API_SCOPED),
    "api calendar-closure-list": Line({"pk": "calendar"}, writes=API_WRITE),
    "api calendar-closure-detail": Line({"pk": "calendar", "closure_id": "closure"},
                                        writes=API_WRITE),
    "api my-availability": Line(reads=API_ANYONE, writes=API_WRITE),
    "api my-preferences": Line(reads=API_ANYONE, writes=API_WRITE),
    # Someone else's availability: managers (and auditors, reading), 403 for the rest.
    "api reviewer-availability": Line({"username": "person"},
                                      reads=answers(401, (200, 403), 200, 200, 401),
                                      writes=API_WRITE),
    "api audit-event-list": Line(reads=API_AUDIT),
    # Asking for a check of the trail is the auditor's own work: it changes nothing else.
    "api audit-verification-list": Line(reads=API_AUDIT,
                                        writes=answers(401, 403, 202, 202, 401)),
    "api audit-verification-detail": Line({"pk": "verification"}, reads=API_AUDIT),
    "api audit-evidence-export": Line({"file_format": "evidence_format"}, PERIOD,
                                      reads=API_EVIDENCE),
    "api label-list": Line(reads=API_MANAGERS),
    "api label-export": Line({"file_format": "label_format"}, reads=API_MANAGERS),
    "api use-case-quality": Line({"slug": "use_case"}, reads=API_SCOPED),
    # The integration's API (AI systems).
    "api decision-create": Line(reads=API_AI, writes=API_AI_WRITE),
    "api decision-batch": Line(writes=API_AI_WRITE),
    "api decision-detail": Line({"pk": "decision"}, reads=API_AI_SCOPED),
    "api decision-withdraw": Line({"pk": "decision"}, writes=API_AI_WRITE_SCOPED),
    "api decision-documents": Line({"pk": "decision"}, writes=API_AI_WRITE_BODY_FIRST),
    "api resolution-feed": Line(reads=API_AI),
    # Documentation, probes.
    "api schema": Line(reads=PUBLIC),
    "api api-docs": Line(reads=PUBLIC),
    "api api-redoc": Line(reads=answers(*[302] * 5)),
    "favicon": Line(reads=answers(*[301] * 5)),
    "healthz": Line(reads=PUBLIC),
    "readyz": Line(reads=PUBLIC),
    "metrics": Line(reads=PUBLIC),
    "login": Line(reads=PUBLIC),
    "logout": Line(writes=answers(302, None, None, 302, 302)),
    # Pages.
    "home": Line(reads=PAGE),
    "next-case": Line(writes=PAGE_WRITE),
    "preferences": Line(writes=PAGE_WRITE),
    "approvals": Line(reads=PAGE),
    "case": Line({"pk": "case"}, reads=PAGE_SCOPED),
    **{f"case-{action}": Line({"pk": "case"}, writes=PAGE_WRITE_SCOPED) for action in (
        "claim", "release", "resolve", "request-info", "resume", "escalate", "approve",
        "send-back", "reassign", "cancel", "comment")},
    "notifications": Line(reads=PAGE),
    "notifications-read-all": Line(writes=PAGE_WRITE),
    "notification-read": Line({"pk": "notification"}, writes=PAGE_WRITE_SCOPED),
    "delivery-log": Line(reads=PAGE_MANAGERS),
    "redeliver-message": Line({"message_id": "message"}, writes=PAGE_WRITE),
    "profile": Line(reads=PAGE, writes=PAGE_WRITE),
    "raci-index": Line(reads=PAGE_READERS),
    "raci-matrix": Line({"slug": "process"}, reads=PAGE_READERS),
    "raci-cell": Line({"slug": "process", "activity": "activity", "role": "raci_role"},
                      reads=PAGE_MANAGERS, writes=PAGE_WRITE),
    "availability": Line(reads=PAGE, writes=PAGE_WRITE),
    "queue-index": Line(reads=PAGE_MANAGERS),
    "queue-members": Line({"slug": "queue"}, reads=PAGE_MANAGERS, writes=PAGE_WRITE),
    "my-consults": Line(reads=PAGE),
    "consult-answer-page": Line({"pk": "consult"}, writes=PAGE_WRITE_SCOPED),
    "sla-dashboard": Line(reads=PAGE_MANAGERS),
    "sla-dashboard-reassign": Line({"pk": "case"}, writes=PAGE_WRITE),
    "audit-log": Line(reads=PAGE_AUDIT),
    "audit-case-trail": Line({"pk": "case"}, reads=PAGE_AUDIT),
    "audit-verifications": Line(reads=PAGE_AUDIT, writes=answers(302, 403, 302, 302, 302)),
    "audit-verification": Line({"pk": "verification"}, reads=PAGE_AUDIT),
    "audit-evidence": Line(reads=PAGE_EVIDENCE),
    "use-cases": Line(reads=PAGE),
    "use-case": Line({"slug": "use_case"}, reads=PAGE_SCOPED),
    "use-case-monitoring": Line({"slug": "use_case"}, reads=PAGE_SCOPED),
    "decision-document": Line({"pk": "document"}, reads=PAGE_SCOPED),
    "labels": Line(reads=PAGE_MANAGERS),
    # Onboarding (managers set up AI systems and use cases) and governance as code.
    "api ai-system-list": Line(reads=API_ANYONE, writes=API_WRITE_MANAGERS),
    # A system is its owner's and managers' (and the auditor's, reading); the reviewer
    # owns none.
    "api ai-system-detail": Line({"slug": "system_slug"}, reads=answers(401, 404, 200, 200, 401),
                                 writes=API_WRITE_MANAGERS_UNSEEN, write_method="patch"),
    "api ai-system-keys": Line({"slug": "system_slug"}, writes=API_WRITE_MANAGERS_UNSEEN),
    "api ai-system-key-revoke": Line({"slug": "system_slug", "prefix": "key_prefix"},
                                     writes=API_WRITE_MANAGERS_UNSEEN),
    "api ai-system-secret-rotation": Line({"slug": "system_slug"},
                                          writes=API_WRITE_MANAGERS_UNSEEN),
    "api use-case-list": Line(reads=API_ANYONE, writes=API_WRITE_MANAGERS),
    "api use-case-detail": Line({"slug": "use_case"}, reads=API_SCOPED,
                                writes=API_WRITE_MANAGERS_SCOPED, write_method="patch"),
    "api governance-export": Line(reads=API_MANAGERS),
    "api governance-plan": Line(writes=API_WRITE_MANAGERS),
    "api governance-apply": Line(writes=API_WRITE_MANAGERS),
    "ai-systems": Line(reads=PAGE_MANAGERS),
    "ai-system-create": Line(reads=PAGE_MANAGERS, writes=PAGE_WRITE_MANAGERS),
    "ai-system": Line({"slug": "system_slug"}, reads=PAGE_MANAGERS, writes=PAGE_WRITE_MANAGERS),
    "ai-system-issue-key": Line({"slug": "system_slug"}, writes=PAGE_WRITE_MANAGERS),
    "ai-system-revoke-key": Line({"slug": "system_slug", "prefix": "key_prefix"},
                                 writes=PAGE_WRITE_MANAGERS),
    "ai-system-rotate-secret": Line({"slug": "system_slug"}, writes=PAGE_WRITE_MANAGERS),
    "use-case-create": Line(reads=PAGE_MANAGERS, writes=PAGE_WRITE_MANAGERS),
    "use-case-edit": Line({"slug": "use_case"}, reads=PAGE_MANAGERS, writes=PAGE_WRITE_MANAGERS),
    "queue-create": Line(reads=PAGE_MANAGERS, writes=PAGE_WRITE_MANAGERS),
    "queue-settings": Line({"slug": "queue"}, reads=PAGE_MANAGERS, writes=PAGE_WRITE_MANAGERS),
    # Stages and guardrails.
    "api use-case-stage-api": Line({"slug": "use_case"}, reads=API_SCOPED),
    **{f"api use-case-{action}": Line({"slug": "use_case"}, writes=API_WRITE_SCOPED)
       for action in ("stage-advance", "stage-lower", "kill-switch")},
    "api use-case-guardrails": Line({"slug": "use_case"}, writes=API_WRITE_SCOPED,
                                    write_method="patch"),
    "use-case-stage": Line({"slug": "use_case"}, reads=PAGE_SCOPED, writes=PAGE_WRITE_SCOPED),
    # Policy releases, backtests, shadows, threshold tuning.
    "api policy-list": Line({"slug": "use_case"}, reads=API_POLICIES, writes=API_WRITE_SCOPED),
    "api policy-rule-check": Line({"slug": "use_case"}, writes=API_WRITE_SCOPED),
    "api policy-detail": Line({"slug": "use_case", "number": "draft"}, reads=API_POLICIES,
                              writes=API_WRITE_SCOPED, write_method="patch"),
    "api policy-diff": Line({"slug": "use_case", "number": "proposed"}, reads=API_POLICIES),
    **{f"api policy-{step}": Line({"slug": "use_case", "number": "proposed"},
                                  writes=API_WRITE_SCOPED)
       for step in ("propose", "approve", "send-back", "activate", "rollback")},
    "api use-case-backtests": Line({"slug": "use_case"}, reads=API_SCOPED,
                                   writes=API_WRITE_SCOPED),
    "api use-case-thresholds": Line({"slug": "use_case"}, reads=API_SCOPED),
    "api backtest-detail": Line({"pk": "backtest"}, reads=API_SCOPED),
    "api use-case-shadows": Line({"slug": "use_case"}, reads=API_SCOPED,
                                 writes=API_WRITE_SCOPED),
    "api shadow-detail": Line({"pk": "shadow"}, reads=API_SCOPED),
    "api shadow-stop": Line({"pk": "shadow"}, writes=API_WRITE_SCOPED),
    "policy-approvals": Line(reads=PAGE),
    "policy-versions": Line({"slug": "use_case"}, reads=PAGE_POLICIES),
    "policy-new": Line({"slug": "use_case"}, writes=PAGE_WRITE_SCOPED),
    "policy-check-rule": Line({"slug": "use_case"}, writes=PAGE_WRITE_SCOPED),
    "policy-version": Line({"slug": "use_case", "number": "proposed"}, reads=PAGE_POLICIES),
    "policy-edit": Line({"slug": "use_case", "number": "draft"}, reads=PAGE_POLICIES,
                        writes=PAGE_WRITE_SCOPED),
    "policy-compare": Line({"slug": "use_case", "number": "proposed"}, reads=PAGE_POLICIES),
    "policy-step": Line({"slug": "use_case", "number": "proposed", "step": "policy_step"},
                        writes=PAGE_WRITE_SCOPED),
    "policy-approve-and-activate": Line({"slug": "use_case", "number": "proposed"},
                                        writes=PAGE_WRITE_SCOPED),
    "policy-backtests": Line({"slug": "use_case"}, reads=PAGE_SCOPED, writes=PAGE_WRITE_SCOPED),
    "threshold-tuning": Line({"slug": "use_case"}, reads=PAGE_SCOPED),
    "backtest": Line({"pk": "backtest"}, reads=PAGE_SCOPED),
    "shadow-start": Line({"slug": "use_case"}, writes=PAGE_WRITE_SCOPED),
    "shadow": Line({"pk": "shadow"}, reads=PAGE_SCOPED),
    "shadow-stop-page": Line({"pk": "shadow"}, writes=PAGE_WRITE_SCOPED),
    # The case list, its saved views (each its owner's) and bulk actions.
    "api case-bulk": Line(writes=API_WRITE),
    "case-index": Line(reads=PAGE),
    "case-bulk": Line(writes=PAGE_WRITE),
    "case-view-save": Line(writes=PAGE_WRITE),
    "case-view-delete": Line({"pk": "saved_view"}, writes=PAGE_WRITE_SCOPED),
}


def _routes(patterns=None, prefix=""):
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


def routes() -> dict[str, str]:
    """Every route of ours by its key in ``MATRIX``, with its path pattern."""
    found = {}
    for route, pattern in _routes():
        if route.startswith(NOT_OURS):
            continue
        name = pattern.name or route.split(".")[0]
        found[f"api {name}" if route.startswith("api/") else name] = route
    return found


def path(route: str, values: dict) -> str:
    """The route's pattern with its parameters filled in (path() and router regexes)."""
    filled = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: str(values[m.group(1)]), route)
    filled = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m.group(1)]), filled)
    return "/" + filled.replace("^", "").replace("$", "")


def world(mark: str, *, member, manager) -> dict:
    """A queue and everything hanging off it, worked by ``member``; ``manager`` sets up
    what only a manager may (a backtest and a shadow of a proposed policy)."""
    process = Process.objects.create(slug=f"{mark}-process", name=f"{mark} process")
    queue = QueueFactory(slug=f"{mark}-desk", name=f"{mark} desk", process=process)
    queue.members.add(member)
    now = timezone.now()
    calendar = office_calendar(f"{mark} office",
                               closures=[(now + timedelta(days=1), now + timedelta(days=2))])
    policy = publish(queue, calendar=calendar)
    use_case = UseCaseFactory(slug=f"{mark}-invoices", review_queue=queue, process=process)
    system = AiSystemFactory(slug=f"{mark}-ai", use_cases=[use_case])
    decision = decision_with_case(use_case, external_id=f"{mark}-1", ai_system=system)
    document = documents.upload_document(
        ai_system=system, decision_id=decision.pk,
        file=SimpleUploadedFile(f"{mark}.pdf", b"%PDF-1.4 invoice", "application/pdf"))
    consult = ConsultRequest.objects.create(case_id=decision.case_id, consultee=member,
                                            question="Your view?", created_at=now)
    outbox.notify_users(users=[member], text=f"{mark} notice", dedup_prefix=f"{mark}:1",
                        case=decision.case)
    outbox.relay_due()
    proposed = PolicyVersionFactory(use_case=use_case, status=PolicyStatus.PROPOSED,
                                    activated_at=None)
    draft = PolicyVersionFactory(use_case=use_case, status=PolicyStatus.DRAFT, activated_at=None)
    backtest = backtests.request_backtest(policy=proposed, actor=manager, last=10)
    shadow = shadows.start_shadow(policy=proposed, actor=manager, days=7)
    view = saved_views.save_view(user=member, name=f"{mark} view", filters=[("state", "open")])
    verification = audit_verifications.request_verification(actor=manager)
    key, _ = AiSystemAPIKey.objects.create_key(name=f"{mark} key", ai_system=system)
    return {
        "case": decision.case_id, "consult": consult.pk, "queue": queue.slug,
        "process": process.slug, "calendar": calendar.pk,
        "closure": calendar.closures.get().pk, "sla_version": policy.version,
        "notification": Notification.objects.get(user=member).pk,
        "message": OutboxMessage.objects.filter(recipient=str(member.pk)).first().pk,
        "person": member.username, "use_case": use_case.slug, "decision": decision.pk,
        "document": document.pk, "system": system, "system_slug": system.slug,
        "key_prefix": key.prefix, "proposed": proposed.number, "draft": draft.number,
        "backtest": backtest.pk,
        "shadow": shadow.pk, "saved_view": view.pk, "verification": verification.pk,
        "evidence_format": "csv", "label_format": "jsonl", "activity": "review",
        "raci_role": "R", "policy_step": "approve",
    }


@pytest.fixture
def people_and_worlds(monkeypatch):
    monkeypatch.setattr(outbox, "_nudge", lambda message_ids, webhooks=False: None)
    setup_roles(actor=SYSTEM)
    reviewer, stranger = UserFactory(username="riley"), UserFactory(username="sam")
    auditor = UserFactory(username="alex")
    auditor.groups.add(Group.objects.get(name="auditors"))
    manager = make_manager()
    inside = world("in", member=reviewer, manager=manager)
    outside = world("out", member=stranger, manager=manager)
    people = {"anonymous": None, "reviewer": reviewer, "manager": manager,
              "auditor": auditor, "ai": inside["system"]}
    return people, {"in": inside, "out": outside}


def client_of(role: str, person) -> Client:
    if role == "ai":
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {issue_key(person)}")
        return client
    client = APIClient()
    if person is not None:
        client.force_login(person)
    return client


def expected(answer, scope: str):
    return answer[0 if scope == "in" else 1] if isinstance(answer, tuple) else answer


def test_every_route_has_its_line_in_the_matrix():
    ours = routes()

    assert sorted(set(ours) - set(MATRIX)) == [], "new routes: add a line to MATRIX"
    assert sorted(set(MATRIX) - set(ours)) == [], "routes gone: remove their lines"


@pytest.mark.django_db
def test_every_route_answers_every_role_in_and_out_of_scope_as_the_matrix_says(
        people_and_worlds):
    people, worlds = people_and_worlds
    clients = {role: client_of(role, person) for role, person in people.items()}
    ours = routes()
    wrong = []
    for key, line in MATRIX.items():
        for method, table in (("get", line.reads), (line.write_method, line.writes)):
            for role, answer in (table or {}).items():
                for scope in ("in", "out") if line.objects else ("in",):
                    want = expected(answer, scope)
                    if want is None:
                        continue
                    values = {param: worlds[scope][name] for param, name in line.objects.items()}
                    url = path(ours[key], values) + (f"?{line.query}" if line.query else "")
                    # Signing out ends the session the other routes are asked with.
                    client = (client_of(role, people[role]) if key == "logout"
                              else clients[role])
                    response = getattr(client, method)(url)
                    if response.streaming:  # read a streamed file to its end (and close)
                        b"".join(response.streaming_content)
                    got = response.status_code
                    if got != want:
                        wrong.append(f"{method.upper()} {url} as {role} ({scope}): {got}, "
                                     f"expected {want}")

    assert wrong == [], "\n".join(wrong)
