"""A use case's summary fields: the figures an approver must see (vendor, amount), declared
on the use case, checked where it is saved, shown on the approvals list; without them
the list sends the approver to the case page instead of approving blind."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from exceptions_app.demo import data
from exceptions_app.services import use_cases
from tests.browser.workbench import build_workbench
from tests.exceptions_app.factories import UseCaseFactory
from tests.factories import make_manager
from workflows.models import CaseState
from workflows.services import claiming, transitions

pytestmark = pytest.mark.django_db

FOUR_EYES = "inv-2026-000124"  # over 10,000 EUR: needs a second person


@pytest.fixture
def bench():
    return build_workbench()


def waiting_for_approval(bench):
    case = bench.case(FOUR_EYES)
    claiming.claim(case_id=case.pk, user=bench.reviewer)
    transitions.resolve(case_id=case.pk, user=bench.reviewer, verdict="corrected",
                        output={"action": "approve", "amount": 12000.0, "currency": "EUR"},
                        reason_code="wrong-amount", notes="")
    case.refresh_from_db()
    assert case.state == CaseState.PENDING_APPROVAL
    return case


def test_the_approvals_list_shows_the_vendor_and_the_amount_being_approved(client, bench):
    case = waiting_for_approval(bench)
    client.force_login(bench.second_reviewer)

    page = client.get(reverse("approvals")).content.decode()

    assert "<dt>Vendor name</dt><dd>Nordlicht AG</dd>" in page.replace("\n", "")
    assert '<dt>Amount</dt><dd><span class="value--number">12,000.00</span></dd>' in page
    assert f'action="{reverse("case-approve", args=[case.pk])}"' in page
    assert (f"Approve Invoice approval: {FOUR_EYES}: Vendor name Nordlicht AG, "
            "Amount 12,000.00") in page


def test_without_summary_fields_the_list_sends_the_approver_to_the_case(client, bench):
    bench.use_case.summary_fields = []
    bench.use_case.save()
    case = waiting_for_approval(bench)
    client.force_login(bench.second_reviewer)

    page = client.get(reverse("approvals")).content.decode()

    assert f'action="{reverse("case-approve", args=[case.pk])}"' not in page
    assert f'href="{reverse("case", args=[case.pk])}">Review to approve</a>' in page


def test_summary_fields_are_checked_against_the_schemas_where_the_use_case_is_saved():
    manager = make_manager(username="maria")
    use_case = UseCaseFactory(input_schema=data.INPUT_SCHEMA, output_schema=data.OUTPUT_SCHEMA)

    with pytest.raises(ValidationError) as refused:
        use_cases.use_case_update(use_case=use_case, actor=manager,
                                  summary_fields=["input.vendor", "output.total", "amount"])

    assert refused.value.message_dict["summary_fields"] == [
        '"output.total": the output schema has no field "total".',
        "'amount' is not a field path: start it with \"input.\" or \"output.\", like "
        '"input.vendor".']
    use_cases.use_case_update(use_case=use_case, actor=manager,
                              summary_fields=data.SUMMARY_FIELDS)
    use_case.refresh_from_db()
    assert use_case.summary_fields == ["input.vendor", "output.amount"]
