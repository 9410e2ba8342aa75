"""The top bar written in Python (``{% top_bar %}``) is what ``base.html`` wrote: the
former ``base.html`` is kept in ``top_bar/`` as the reference, and a page's frame comes
out of both byte for byte, on every page's menu entry, for every kind of person: one who
works queues (with approvals and notifications waiting, and without), one who works
none, a manager, an auditor, someone signed out; and under a script prefix."""

from pathlib import Path

import pytest
from django.contrib.auth.models import AnonymousUser, Permission
from django.template import Context, Engine, engines
from django.test import RequestFactory
from django.urls import set_script_prefix
from django.utils import timezone

from tests.factories import QueueFactory, UserFactory, case_in_state, make_manager
from workflows.models import CaseState, Notification

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = Engine(dirs=[Path(__file__).parent / "top_bar", ROOT / "templates"],
                   libraries={"casework": "workflows.templatetags.casework"})
PAGE = '{% extends "base.html" %}{% block content %}<p>A page</p>{% endblock %}'
# Every menu entry a page names as its own, none, and one no entry has.
NAVS = [None, "home", "cases", "approvals", "use-cases", "consults", "availability",
        "notifications", "dashboard", "raci", "queues", "delivery-log", "audit", "profile"]


def frame_and_reference(person, nav) -> tuple[str, str]:
    """A page's frame as ``base.html`` writes it now, and as it wrote it, from one
    request's context (its context processors' answers, one CSRF token)."""
    request = RequestFactory().get("/")
    request.user = person
    request.session = {}
    values = {"nav": nav} if nav else {}
    for processor in engines["django"].engine.template_context_processors:
        values.update(processor(request))
    context = Context(values)
    return (engines["django"].engine.from_string(PAGE).render(context),
            REFERENCE.from_string(PAGE).render(context))


@pytest.fixture
def people(db):
    queue = QueueFactory(slug="invoices", name="Invoices")
    worker = UserFactory(username="ann<&>", first_name="Ann", last_name="O'Neil <R>")
    busy = UserFactory(username="busy", first_name="Bea")
    queue.members.add(worker, busy)
    # Bea has an approval waiting (four eyes: another's resolution) and unread notices.
    case_in_state(CaseState.PENDING_APPROVAL, queue=queue, assignee=worker)
    for _ in range(3):
        Notification.objects.create(user=busy, text="A case <b>",
                                    created_at=timezone.now())
    auditor = UserFactory(username="auditor", first_name="")
    auditor.user_permissions.add(Permission.objects.get(codename="read_everything"))
    return {"in a queue": worker, "with approvals and notices": busy,
            "in no queue": UserFactory(username="newcomer"), "manager": make_manager(),
            "auditor": auditor, "signed out": AnonymousUser()}


def test_the_top_bar_is_what_base_html_wrote_for_every_page_and_person(people):
    for who, person in people.items():
        for nav in NAVS:
            frame, reference = frame_and_reference(person, nav)
            assert frame == reference, (who, nav)
    frame, _ = frame_and_reference(people["with approvals and notices"], "cases")
    assert 'aria-label="3 unread"' in frame and 'aria-label="1 waiting"' in frame
    assert 'class="nav__form"' in frame
    assert "Delivery log" in frame_and_reference(people["manager"], "home")[0]
    assert "Audit log" in frame_and_reference(people["auditor"], "home")[0]
    signed_out, _ = frame_and_reference(people["signed out"], None)
    assert "usermenu" not in signed_out and "Skip to content" in signed_out


def test_the_top_bar_under_a_script_prefix_is_what_base_html_wrote(people):
    try:
        set_script_prefix("/backstop/")
        frame, reference = frame_and_reference(people["manager"], "queues")
    finally:
        set_script_prefix("/")
    assert frame == reference
    assert 'href="/backstop/queues/" aria-current="page"' in frame
