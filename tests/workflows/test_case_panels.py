"""The case page's side panels, written in Python (``case_panels``), are what their
templates wrote: the former ``_actions.html``, ``_reason_form.html``,
``_resolve_form.html`` and ``_sla.html`` are kept in ``case_panels/`` as the reference,
and both render the panels of every state and person that changes what they show
(fresh and refused forms, consults pending, four eyes, blind review; every clock's
answer, in three time zones), byte for byte."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.template import Context, Engine
from django.test import Client
from django.urls import reverse, set_script_prefix
from django.utils import timezone

from tests.factories import QueueFactory, UserFactory, case_in_state, make_manager
from tests.workflows.test_widget_html import RESOLVE_FORM_DATA, RESOLVE_FORM_IDS, _resolve
from workflows.forms import CaseActionForm, CommentForm, ReasonForm
from workflows.models import Case, CaseState, ConsultRequest
from workflows.templatetags.case_panels import actions_panel, case_url, sla_panel

ROOT = Path(__file__).resolve().parents[2]
ENGINE = Engine(dirs=[Path(__file__).parent / "case_panels", ROOT / "templates"],
                libraries={"casework": "workflows.templatetags.casework"})
REFERENCE = ENGINE.get_template("workflows/_actions.html")
SLA_REFERENCE = ENGINE.get_template("workflows/_sla.html")
S = CaseState


def both(context: dict) -> tuple[str, str]:
    return actions_panel(Context(context)), REFERENCE.render(Context(context))


def both_sla(case) -> tuple[str, str]:
    with time_machine.travel(timezone.now(), tick=False):  # the countdowns' "now"
        return (sla_panel(Context({"case": case})),
                SLA_REFERENCE.render(Context({"case": case})))


def panel_of(response) -> dict:
    """What the page gave its panel."""
    assert response.status_code in (200, 400, 409), response.status_code
    return {name: response.context[name]
            for name in ("forms", "case", "consults_blocking", "csrf_token")}


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def people(db):
    queue = QueueFactory(slug="invoices", name="Invoices")
    holder, other = UserFactory(username="holder"), UserFactory(username="other")
    queue.members.add(holder, other)
    auditor = UserFactory(username="auditor")
    auditor.user_permissions.add(Permission.objects.get(codename="read_everything"))
    return SimpleNamespace(queue=queue, holder=holder, other=other, auditor=auditor,
                           manager=make_manager(username="boss"))


def consult(case, person, *, answered=False) -> None:
    now = timezone.now()
    ConsultRequest.objects.create(case=case, consultee=person, question="Sure?",
                                  required=True, created_at=now,
                                  answered_at=now if answered else None)


@pytest.mark.django_db
def test_the_panel_is_what_its_templates_wrote_for_every_state_and_person(people):
    p = people
    blind = QueueFactory(slug="blind", name="Blind", blind=True)
    blind.members.add(p.holder)
    cases = {state: case_in_state(state, queue=p.queue, assignee=p.holder, manager=p.manager)
             for state in (S.OPEN, S.ASSIGNED, S.WAITING, S.ESCALATED, S.PENDING_APPROVAL,
                           S.RESOLVED, S.CANCELLED)}
    four_eyes = case_in_state(S.ASSIGNED, queue=p.queue, assignee=p.holder, four_eyes=True)
    blind_case = case_in_state(S.ASSIGNED, queue=blind, assignee=p.holder)
    one_consult = case_in_state(S.ASSIGNED, queue=p.queue, assignee=p.holder)
    consult(one_consult, p.other)
    two_consults = case_in_state(S.ASSIGNED, queue=p.queue, assignee=p.holder)
    consult(two_consults, p.other)
    consult(two_consults, UserFactory(first_name="Zoë", last_name="<O'Neil>"))
    consult(two_consults, p.auditor, answered=True)
    to_approve = case_in_state(S.PENDING_APPROVAL, queue=p.queue, assignee=p.holder)
    consult(to_approve, p.auditor)

    shown, offers = [], set()
    for case in [*cases.values(), four_eyes, blind_case, one_consult, two_consults,
                 to_approve]:
        for person in (p.holder, p.other, p.manager, p.auditor):
            response = signed_in(person).get(reverse("case", args=[case.pk]))
            if response.status_code == 404:  # another queue's case (I8): no panel
                assert (person, case.queue) == (p.other, blind)
                continue
            context = panel_of(response)
            by_tag, by_templates = both(context)
            assert by_tag == by_templates, (case.state, person.username)
            assert len(set(both_sla(context["case"]))) == 1, (case.state, person.username)
            shown.append(by_tag)
            offers.add(frozenset(context["forms"]))
    # The matrix reaches every offer the panel words differently.
    assert {frozenset(), frozenset({"claim"}), frozenset({"approve", "send_back"})} <= offers
    for wanted in ({"resolve", "escalate", "request_info", "release"}, {"resume"},
                   {"reassign", "cancel"}):
        assert any(wanted <= offer for offer in offers), wanted
    page = "\n".join(shown)
    for words in ("This case is resolved.", "This case is cancelled.", "Nothing for you",
                  "answers the consult", "answer the consult", "cannot be approved",
                  "Submit for approval", "Your answer", "Corrected output"):
        assert words in page, words


@pytest.mark.django_db
@pytest.mark.parametrize("action, data, who", [
    ("case-escalate", {"escalate-reason": ""}, "holder"),
    ("case-request-info", {"request_info-reason": " "}, "holder"),
    ("case-resolve", {"resolve-notes": "no verdict <b>"}, "holder"),
    ("case-resolve", {"resolve-verdict": "sideways"}, "holder"),
    ("case-reassign", {"reassign-to_user": "999999"}, "manager"),
    ("case-cancel", {"cancel-reason": ""}, "manager"),
])
def test_a_refused_form_comes_back_as_its_templates_wrote_it(people, action, data, who):
    case = case_in_state(S.ASSIGNED, queue=people.queue, assignee=people.holder)
    prefix = data and next(iter(data)).split("-")[0]
    response = signed_in(getattr(people, who)).post(
        reverse(action, args=[case.pk]), {f"{prefix}-version": case.version, **data})

    context = panel_of(response)
    assert context["forms"][prefix.replace("-", "_")].errors
    by_tag, by_templates = both(context)
    assert by_tag == by_templates


@pytest.mark.django_db
def test_a_refused_send_back_comes_back_as_its_templates_wrote_it(people):
    case = case_in_state(S.PENDING_APPROVAL, queue=people.queue, assignee=people.holder)
    response = signed_in(people.other).post(
        reverse("case-send-back", args=[case.pk]),
        {"send_back-version": case.version, "send_back-comment": ""})

    context = panel_of(response)
    assert context["forms"]["send_back"].errors
    by_tag, by_templates = both(context)
    assert by_tag == by_templates
    assert "<details open>" in by_tag


def _refused(form):
    form.add_error(None, "Someone <else> changed it & more")
    return form


@pytest.mark.parametrize("data", RESOLVE_FORM_DATA, ids=RESOLVE_FORM_IDS)
@pytest.mark.parametrize("blind", [False, True])
@pytest.mark.parametrize("four_eyes", [False, True])
def test_a_resolve_form_with_corrections_is_what_its_template_wrote(data, blind, four_eyes):
    case = SimpleNamespace(pk=41, version=12, requires_four_eyes=four_eyes, is_open=True)
    forms = {"resolve": _resolve(None, data, blind=blind),
             "escalate": ReasonForm(case=case, prefix="escalate", label="Why <e>?",
                                    help_text="Next & last")}
    by_tag, by_templates = both({"forms": forms, "case": case, "consults_blocking": [],
                                 "csrf_token": "t0ken<&>"})
    assert by_tag == by_templates
    assert 'data-shortcut-focus="#id_resolve-output__0"' in by_tag


@pytest.mark.parametrize("action", ["claim", "resume", "release", "approve"])
def test_a_refused_one_button_form_is_what_its_template_wrote(action):
    case = SimpleNamespace(pk=7, version=3, is_open=True,
                           first_reviewer=SimpleNamespace(display_name="Ann & <Bob>"))
    forms = {action: _refused(CaseActionForm({f"{action}-version": "3"}, case=case,
                                             prefix=action))}
    if action == "approve":
        forms["send_back"] = _refused(CommentForm({"send_back-version": "3"}, case=case,
                                                  prefix="send_back"))
    by_tag, by_templates = both({"forms": forms, "case": case, "consults_blocking": [],
                                 "csrf_token": "abc"})
    assert by_tag == by_templates
    assert "Someone &lt;else&gt; changed it &amp; more" in by_tag


NOW = datetime(2026, 12, 4, 9, 5, 7, 123456, tzinfo=UTC)


def clocked(state=S.ASSIGNED, **fields) -> Case:
    values = {"pk": 41, "state": state, "response_due_at": NOW + timedelta(minutes=30),
              "due_at": NOW + timedelta(hours=3), "first_claimed_at": None,
              "closed_at": None, "lease_expires_at": None, "escalation_level": 0}
    return Case(**{**values, **fields})


CLOCKS = {
    "waiting for a first response": clocked(S.OPEN),
    "first response due soon": clocked(S.OPEN, response_due_at=NOW + timedelta(minutes=5)),
    "first response overdue": clocked(S.OPEN, response_due_at=NOW - timedelta(hours=2)),
    "no response clock": clocked(S.OPEN, response_due_at=None, due_at=None),
    "responded on time, lease held": clocked(
        first_claimed_at=NOW - timedelta(minutes=3), lease_expires_at=NOW + timedelta(minutes=9)),
    "responded late": clocked(first_claimed_at=NOW, response_due_at=NOW - timedelta(seconds=1)),
    "responded, no response clock": clocked(first_claimed_at=NOW, response_due_at=None),
    "escalated before anyone responded": clocked(S.ESCALATED, escalation_level=2),
    "waiting for information": clocked(S.WAITING, first_claimed_at=NOW,
                                       lease_expires_at=NOW + timedelta(minutes=9)),
    "resolved on time": clocked(S.RESOLVED, first_claimed_at=NOW, closed_at=NOW),
    "resolved late": clocked(S.RESOLVED, first_claimed_at=NOW,
                             closed_at=NOW + timedelta(hours=4)),
    "resolved, no clocks": clocked(S.RESOLVED, first_claimed_at=NOW, closed_at=NOW,
                                   due_at=None, response_due_at=None),
    "cancelled before anyone responded": clocked(S.CANCELLED, closed_at=NOW),
    "cancelled after escalating": clocked(S.CANCELLED, closed_at=NOW, escalation_level=1),
}


@pytest.mark.parametrize("case", CLOCKS.values(), ids=CLOCKS.keys())
@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/Los_Angeles"])
def test_the_sla_panel_is_what_its_template_wrote(case, zone):
    with timezone.override(zone), time_machine.travel(NOW, tick=False):
        by_tag, by_template = (sla_panel(Context({"case": case})),
                               SLA_REFERENCE.render(Context({"case": case})))
    assert by_tag == by_template


def test_the_sla_fragment_template_writes_the_panel():
    from django.template.loader import render_to_string

    case = CLOCKS["responded on time, lease held"]
    with time_machine.travel(NOW, tick=False):
        assert (render_to_string("workflows/_sla.html", {"case": case})
                == SLA_REFERENCE.render(Context({"case": case})))


CASE_ROUTES = ["case", "case-claim", "case-resume", "case-resolve", "case-approve",
               "case-send-back", "case-escalate", "case-request-info", "case-release",
               "case-reassign", "case-cancel"]


@pytest.mark.parametrize("name", CASE_ROUTES)
def test_a_case_route_is_the_url_tags_for_every_case(name):
    for pk in (1, 7, 41, 2_147_483_647):
        assert case_url(name, pk) == reverse(name, args=[pk])
    try:
        set_script_prefix("/backstop/")
        mounted = case_url(name, 7)
        assert mounted == reverse(name, args=[7])
    finally:
        set_script_prefix("/")
    assert mounted.startswith("/backstop/cases/7/")
    assert case_url(name, 7) == reverse(name, args=[7])
