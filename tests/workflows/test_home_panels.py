"""Home's queue cards and cases in hand, written in Python (``home_panels``), are what
their templates wrote: the former ``home.html`` and ``_queues.html`` are kept in
``home_panels/`` as the reference, and the whole page, and its queue cards' htmx
refresh, come out of both byte for byte: no queue, several (blind, empty, capped,
oldest wait or none, names HTML must escape), every state a case in hand has, with a
title or none, due later, soon, overdue or never, in three time zones."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.template import Context, Engine
from django.test import Client
from django.test.utils import ContextList
from django.utils import timezone

from tests.factories import QueueFactory, UserFactory, make_case, make_manager
from workflows import selectors
from workflows.models import CaseState, ReviewerStatus

ROOT = Path(__file__).resolve().parents[2]
ENGINE = Engine(dirs=[Path(__file__).parent / "home_panels", ROOT / "templates"],
                libraries={"casework": "workflows.templatetags.casework",
                           "top_bar": "workflows.templatetags.top_bar"})
PAGE_REFERENCE = ENGINE.get_template("workflows/home.html")
CARDS_REFERENCE = ENGINE.get_template("workflows/_queues.html")
NOW = datetime(2026, 12, 4, 9, 5, 7, 123456, tzinfo=UTC)
ZONES = ["UTC", "Europe/Berlin", "America/Los_Angeles"]


def home_and_reference(person, *, fragment: bool = False) -> tuple[str, str]:
    """Home as the person gets it, and what the former templates write from the same
    context, in the person's zone at the same instant."""
    client = Client()
    client.force_login(person)
    with time_machine.travel(NOW, tick=False):
        if fragment:
            response = client.get("/?fragment=queues", HTTP_HX_REQUEST="true")
        else:
            response = client.get("/")
        assert response.status_code == 200
        context = Context(given(response.context))
        with timezone.override(person.time_zone):
            reference = (CARDS_REFERENCE if fragment else PAGE_REFERENCE).render(context)
    return response.content.decode(), reference


def given(context) -> dict:
    """What the view's templates were given: one template's context, or a page's and its
    base's (a list of them; the first that has a name answers for it)."""
    given = {}
    for each in reversed(context if isinstance(context, ContextList) else [context]):
        given.update(each.flatten())
    return given


def reviewer(zone: str, **fields):
    return UserFactory(first_name="Ann", last_name="O'Neil <R>", time_zone=zone, **fields)


@pytest.mark.django_db
@pytest.mark.parametrize("zone", ZONES)
def test_home_without_queues_is_what_its_templates_wrote(zone):
    page, reference = home_and_reference(reviewer(zone))

    assert page == reference
    assert "You are not a member of any queue yet." in page
    assert "Nothing in hand." in page
    assert 'hx-get="/?fragment=queues"' in page


@pytest.fixture
def desk(db, monkeypatch):
    """A reviewer's queues of every kind, and cases in hand of every kind."""
    # A waiting count caps at three here, to say "3+" without a thousand cases.
    monkeypatch.setattr(selectors, "OPEN_COUNT_CAP", 3)
    busy = QueueFactory(slug="invoices", name="Invoices & <refunds>")
    blind = QueueFactory(slug="blind-qa", name="Blind QA", blind=True)
    empty = QueueFactory(slug="quiet", name="Quiet")
    capped = QueueFactory(slug="backlog", name="Backlog")
    not_mine = QueueFactory(slug="elsewhere", name="Elsewhere")
    for queue in (busy, blind, capped):
        make_case(queue, now=NOW - timedelta(hours=3, minutes=7))
    make_case(busy, state=CaseState.ESCALATED, now=NOW - timedelta(minutes=1))
    for _ in range(4):
        make_case(capped, now=NOW - timedelta(days=2))
    make_case(not_mine)
    return {"queues": (busy, blind, empty, capped), "elsewhere": not_mine}


def in_hand(desk, person) -> None:
    busy, blind, _empty, capped = desk["queues"]
    for queue in desk["queues"]:
        queue.members.add(person)
    make_case(busy, state=CaseState.ASSIGNED, assignee=person, title="Refund <#12> & more",
              priority=90, due_at=NOW + timedelta(days=2, hours=3), now=NOW)
    make_case(busy, state=CaseState.ASSIGNED, assignee=person, title="", priority=70,
              due_at=NOW + timedelta(minutes=12), now=NOW)
    make_case(blind, state=CaseState.WAITING, assignee=person, title="Waiting on the PO",
              priority=70, due_at=NOW - timedelta(hours=1, minutes=5), now=NOW)
    make_case(capped, state=CaseState.ASSIGNED, assignee=person, title="No deadline",
              priority=10_000, due_at=None, now=NOW)
    make_case(capped, state=CaseState.ASSIGNED, assignee=person, title="Due this instant",
              due_at=NOW, now=NOW)
    make_case(busy, state=CaseState.RESOLVED, assignee=person, title="Done")  # not in hand


@pytest.mark.parametrize("zone", ZONES)
def test_home_with_queues_and_cases_in_hand_is_what_its_templates_wrote(desk, zone):
    person = reviewer(zone)
    in_hand(desk, person)

    page, reference = home_and_reference(person)

    assert page == reference
    for shown in ("Invoices &amp; &lt;refunds&gt;", "badge--blind", "3+", "—",
                  "Next from Quiet</button>", "Refund &lt;#12&gt; &amp; more",
                  "badge--waiting", "5 cases", "due--overdue", "due--soon", "due now",
                  "10000"):
        assert shown in page, shown
    assert "Elsewhere" not in page
    assert page.count(" disabled>") == 1  # the empty queue's button


@pytest.mark.parametrize("zone", ZONES)
def test_the_queue_cards_refresh_is_what_its_template_wrote(desk, zone):
    person = reviewer(zone)
    in_hand(desk, person)

    fragment, reference = home_and_reference(person, fragment=True)

    assert fragment == reference
    assert fragment.startswith('\n<div id="queues"') and "<html" not in fragment
    assert "3+" in fragment and "Your cases in hand" not in fragment


def test_a_manager_away_with_one_case_in_hand_sees_what_the_templates_wrote(desk):
    boss = make_manager(first_name="Bo", time_zone="Europe/Berlin")
    delegate = UserFactory(first_name="Del <egate>")
    ReviewerStatus.objects.create(user=boss, available=False, away_since=NOW, delegate=delegate)
    make_case(desk["elsewhere"], state=CaseState.WAITING, assignee=boss, title="Mine",
              due_at=NOW + timedelta(hours=5), now=NOW)

    page, reference = home_and_reference(boss)

    assert page == reference
    # A manager's cards are every queue's; one case is "1 case".
    assert "Elsewhere" in page and "1 case<" in page and "You are marked away" in page
