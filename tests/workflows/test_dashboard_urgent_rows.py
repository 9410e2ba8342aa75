"""The dashboard's at-risk rows, written in Python (``urgent_row``), are what the
template wrote: the former template markup is kept here as the reference and both
render every kind of row, byte for byte."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.template import Context, Template
from django.test import RequestFactory
from django.utils import timezone

from workflows.dashboard.figures import AT_RISK, BREACHED, UrgentCase
from workflows.models import Case, CaseState, Queue, User
from workflows.templatetags.dashboard_charts import urgent_row

# The at-risk row of templates/workflows/dashboard/_body.html before the tag wrote it.
REFERENCE = Template(
    (Path(__file__).parent / "dashboard_urgent_row.html").read_text().removesuffix("\n"))

NOW = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
ANN = User(pk=7, username="ann", first_name="Ann", last_name="O'Neil <QA>")
BOB = User(pk=12345, username="bob")


def row(*, state=CaseState.ASSIGNED, title="Invoice <ACME> & Co", assignee=ANN,
        escalation_level=0, status=BREACHED, deadline=NOW - timedelta(hours=3),
        candidates=(ANN, BOB), responded=True) -> UrgentCase:
    case = Case(pk=4321, title=title, state=state, version=3,
                escalation_level=escalation_level, queue=Queue(pk=1, name="Invoices & co"),
                assignee=assignee, response_due_at=deadline,
                first_claimed_at=NOW - timedelta(hours=5) if responded else None)
    return UrgentCase(case=case, status=status, deadline=deadline,
                      overdue=deadline is not None and deadline <= NOW,
                      candidates=list(candidates))


ROWS = {
    "held, breached, escalated": row(escalation_level=2),
    "waiting": row(state=CaseState.WAITING, status=AT_RISK),
    "pending approval": row(state=CaseState.PENDING_APPROVAL, assignee=None),
    "escalated, unclaimed": row(state=CaseState.ESCALATED, assignee=None),
    "open, first response due": row(state=CaseState.OPEN, assignee=None, status=AT_RISK,
                                    deadline=NOW + timedelta(minutes=5), responded=False),
    "no deadline": row(deadline=None),
    "no title, nobody else": row(title="", candidates=()),
    "due in days": row(status=AT_RISK, deadline=NOW + timedelta(days=2, hours=4)),
}


@pytest.mark.parametrize("name", ROWS)
@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin"])
@pytest.mark.parametrize("csrf", [
    "token123", None,
    # Django's own {% csrf_token %} warns about its format_html("") there.
    pytest.param("NOTPROVIDED", marks=pytest.mark.filterwarnings(
        "ignore::django.utils.deprecation.RemovedInDjango60Warning"))])
def test_each_urgent_row_is_what_the_template_wrote(name, zone, csrf):
    request = RequestFactory().get("/dashboard/", {"queue": "invoices", "period": "7d"})
    context = {"row": ROWS[name], "board": {"now": NOW}, "request": request}
    if csrf is not None:
        context["csrf_token"] = csrf
    with timezone.override(zone):
        expected = REFERENCE.render(Context(context))
        assert urgent_row(Context(context), ROWS[name], NOW) == expected
