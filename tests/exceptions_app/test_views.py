"""The reviewer's pages through Django's test client: what renders, who is refused,
and how refusals and errors come back to the person."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from exceptions_app.templatetags.policy_text import markdown
from tests.browser.workbench import build_workbench
from tests.factories import CaseFactory
from workflows.actors import SYSTEM
from workflows.models import Case, CaseState
from workflows.services import claiming, escalation, transitions
from workflows.templatetags.casework import render_data

pytestmark = pytest.mark.django_db

ORDINARY = "inv-2026-000123"  # low confidence: ordinary review
FOUR_EYES = "inv-2026-000124"  # over 10,000: needs a second person
QA_SAMPLE = "inv-2026-000125"  # passed, sampled into the blind QA queue


@pytest.fixture
def bench():
    return build_workbench()


def logged_in(client, user):
    client.force_login(user)
    return client


def claim(client, bench, external_id):
    """Take one particular case through its page's "Take this case" button."""
    case = bench.case(external_id)
    response = client.post(reverse("case-claim", args=[case.pk]),
                           {"claim-version": case.version})
    assert response.status_code == 302, response.content.decode()[:500]
    case.refresh_from_db()
    return case


def resolve_data(case, **fields):
    data = {"resolve-version": case.version, "resolve-verdict": "accepted",
            "resolve-reason_code": "", "resolve-notes": ""}
    data.update({f"resolve-{key}": value for key, value in fields.items()})
    return data


# -- pages render ------------------------------------------------------------------------

def test_login_page_has_labelled_fields(client):
    response = client.get(reverse("login"))

    assert response.status_code == 200
    page = response.content.decode()
    assert '<label for="id_username">' in page
    assert '<label for="id_password">' in page


def test_pages_ask_anonymous_people_to_sign_in(client, bench):
    case = bench.case(ORDINARY)
    for url in (reverse("home"), reverse("approvals"), reverse("case", args=[case.pk])):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_home_lists_the_reviewers_queues_with_counts(client, bench):
    response = logged_in(client, bench.reviewer).get(reverse("home"))

    assert response.status_code == 200
    page = response.content.decode()
    assert "Invoice review" in page and "Invoice QA" in page
    assert "Claims review" not in page  # not alice's queue
    summaries = {s.queue.slug: s.open_count for s in response.context["summaries"]}
    assert summaries == {"invoice-review": 2, "invoice-qa": 1}
    assert 'data-shortcut="n"' in page
    assert "Logout" not in page and 'action="/accounts/logout/"' in page  # a POST form


def test_home_does_a_fixed_number_of_queries(client, django_assert_max_num_queries):
    bench = build_workbench(extra_open_cases=30)
    client = logged_in(client, bench.reviewer)
    client.post(reverse("next-case"))
    client.post(reverse("next-case"))

    with django_assert_max_num_queries(12):
        response = client.get(reverse("home"))
    assert len(response.context["my_cases"]) == 2


def test_next_case_claims_the_most_urgent_case_and_opens_it(client, bench):
    response = logged_in(client, bench.reviewer).post(reverse("next-case"))

    case = bench.case(ORDINARY)  # priority 70 beats the four-eyes case's 60
    assert response.status_code == 302
    assert response["Location"] == reverse("case", args=[case.pk])
    assert case.state == CaseState.ASSIGNED and case.assignee == bench.reviewer


def test_next_case_from_one_queue(client, bench):
    response = logged_in(client, bench.reviewer).post(reverse("next-case"),
                                                      {"queue": "invoice-qa"})

    assert response["Location"] == reverse("case", args=[bench.case(QA_SAMPLE).pk])


def test_next_case_says_so_when_nothing_waits(client, bench):
    response = logged_in(client, bench.outsider).post(reverse("next-case"), follow=True)

    assert response.status_code == 200
    assert "Nothing is waiting for you right now" in response.content.decode()


def test_case_page_shows_input_suggestion_reasons_policy_and_timeline(client, bench):
    client = logged_in(client, bench.reviewer)
    client.post(reverse("next-case"))
    case = bench.case(ORDINARY)

    response = client.get(reverse("case", args=[case.pk]))

    assert response.status_code == 200
    page = response.content.decode()
    assert "<dt>Po amount" in page and "Nordlicht" not in page  # fields, and only this one
    assert "<details" in page  # nested vendor address and lines fold away
    assert "62%" in page  # confidence
    assert "Read the total 4,180.00 EUR" in page  # explanation
    assert "Confidence under 0.9: a person checks the extraction" in page
    assert "<h3>Invoice approval policy</h3>" in page  # the policy's Markdown, rendered
    assert "Decision received" in page and "Claimed" in page  # timeline
    assert f'name="resolve-version" value="{case.version}"' in page
    assert '<option value="wrong-amount">The amount was extracted wrongly</option>' in page
    assert 'name="resolve-output__1"' in page and 'value="4180.0"' in page  # prefilled
    assert "Reassign" not in page  # managers only
    use_case = case.decision.use_case
    assert f'<a href="{reverse("use-case", args=[use_case.slug])}">{use_case.name}</a>' in page


def test_blind_case_hides_the_ai_output_until_resolved(client, bench):
    client = logged_in(client, bench.reviewer)
    case = claim(client, bench, QA_SAMPLE)

    page = client.get(reverse("case", args=[case.pk])).content.decode()

    assert "AI suggestion hidden" in page
    assert "98%" not in page and "Read the total" not in page
    assert "Matches its PO" not in page  # the rule that passed it would give it away
    assert "approve\" selected" not in page
    assert 'value="880' not in page  # the amount field starts empty
    assert 'value="accepted"' not in page  # nothing to accept without seeing it

    client.post(reverse("case-resolve", args=[case.pk]),
                resolve_data(case, verdict="corrected", output__0="approve",
                             output__1="880", output__2="EUR", reason_code="policy"))
    page = client.get(reverse("case", args=[case.pk])).content.decode()
    assert "98%" in page and "AI suggestion hidden" not in page


def test_an_escalation_for_a_late_first_response_shows_it_late_on_page_and_api(
        client, bench):
    case = bench.case(ORDINARY)
    escalation.escalate(actor=SYSTEM, case_id=case.pk, cause="response_breach", expected_level=0,
                        now=case.response_due_at)
    api = APIClient()
    api.force_authenticate(bench.manager)

    page = logged_in(client, bench.manager).get(reverse("case", args=[case.pk]))
    body = api.get(f"/api/v1/cases/{case.pk}/").json()

    sla = page.content.decode().split('id="sla"')[1].split("</section>")[0]
    assert "On time" not in sla
    assert "Late" in sla and "escalated before anyone responded" in sla
    assert body["escalation_level"] == 1 and body["first_claimed_at"] is None

    # The reviewer takes it later: their claim is the (late) first response.
    claiming.claim(case_id=case.pk, user=bench.reviewer,
                   now=case.response_due_at + timedelta(minutes=10))
    sla = client.get(reverse("case", args=[case.pk])).content.decode().split(
        'id="sla"')[1].split("</section>")[0]
    assert "Late" in sla and "responded" in sla
    assert api.get(f"/api/v1/cases/{case.pk}/").json()["first_claimed_at"] is not None


def test_manager_sees_reassign_and_cancel(client, bench):
    case = bench.case(ORDINARY)
    page = logged_in(client, bench.manager).get(reverse("case", args=[case.pk])).content
    assert b"Reassign" in page and b"Cancel the case" in page


# -- scope (I8) --------------------------------------------------------------------------

def test_outsider_gets_404_for_a_case_of_another_queue(client, bench):
    case = bench.case(ORDINARY)
    client = logged_in(client, bench.outsider)

    assert client.get(reverse("case", args=[case.pk])).status_code == 404
    for name in ("case-claim", "case-resolve", "case-escalate", "case-approve"):
        response = client.post(reverse(name, args=[case.pk]), {"claim-version": 1})
        assert response.status_code == 404, name
    case.refresh_from_db()
    assert case.state == CaseState.OPEN


def test_outsider_does_not_see_the_approvals_of_other_queues(client, bench):
    client = logged_in(client, bench.reviewer)
    case = claim(client, bench, FOUR_EYES)
    client.post(reverse("case-resolve", args=[case.pk]), resolve_data(case))

    page = logged_in(client, bench.outsider).get(reverse("approvals")).content.decode()
    assert "Nothing waits for your approval" in page


# -- resolving, errors and conflicts -----------------------------------------------------

def test_correcting_a_field_resolves_the_case_and_it_leaves_the_queue(client, bench):
    client = logged_in(client, bench.reviewer)
    client.post(reverse("next-case"))
    case = bench.case(ORDINARY)

    response = client.post(reverse("case-resolve", args=[case.pk]), resolve_data(
        case, verdict="corrected", output__0="approve", output__1="4100", output__2="EUR",
        reason_code="wrong-amount", notes="Footer misread"))

    case.refresh_from_db()
    assert case.state == CaseState.RESOLVED
    assert case.resolution.output == {"action": "approve", "amount": 4100.0,
                                      "currency": "EUR"}
    # Flow: the next waiting case is claimed and opened (the reviewer's preference).
    following = Case.objects.get(assignee=bench.reviewer, state=CaseState.ASSIGNED)
    assert response.status_code == 302
    assert response["Location"] == reverse("case", args=[following.pk])
    assert "resolved" in client.get(response["Location"]).content.decode()
    home = client.get(reverse("home"))
    assert {s.queue.slug: s.open_count for s in home.context["summaries"]}[
        "invoice-review"] == 0


def test_an_invalid_correction_shows_the_error_next_to_its_field(client, bench):
    client = logged_in(client, bench.reviewer)
    case = claim(client, bench, ORDINARY)

    response = client.post(reverse("case-resolve", args=[case.pk]), resolve_data(
        case, verdict="corrected", output__0="approve", output__1="-5", output__2="EUR",
        reason_code="wrong-amount"))

    assert response.status_code == 400
    form = response.context["forms"]["resolve"]
    assert form.errors["output__1"] == ["Amount must be 0 or more."]
    page = response.content.decode()
    assert 'id="id_resolve-output__1_error"' in page
    assert 'aria-invalid="true"' in page
    case.refresh_from_db()
    assert case.state == CaseState.ASSIGNED


def test_a_correction_identical_to_the_ai_output_is_refused_at_the_form(client, bench):
    client = logged_in(client, bench.reviewer)
    case = claim(client, bench, ORDINARY)
    ai_output = bench.case(ORDINARY).decision.output
    fields = {f"output__{n}": str(value) for n, value in enumerate(ai_output.values())}

    response = client.post(reverse("case-resolve", args=[case.pk]), resolve_data(
        case, verdict="corrected", reason_code="wrong-amount", **fields))

    assert response.status_code == 400
    form = response.context["forms"]["resolve"]
    assert form.non_field_errors() == [
        "Nothing differs from the AI's output: accept it, or change a field."]
    assert "Nothing differs from the AI&#x27;s output" in response.content.decode()
    case.refresh_from_db()
    assert case.state == CaseState.ASSIGNED


def test_a_number_that_is_not_one_is_refused_by_the_form(client, bench):
    client = logged_in(client, bench.reviewer)
    case = claim(client, bench, ORDINARY)

    response = client.post(reverse("case-resolve", args=[case.pk]), resolve_data(
        case, verdict="corrected", output__0="approve", output__1="a lot",
        output__2="EUR", reason_code="wrong-amount"))

    assert response.status_code == 400
    assert response.context["forms"]["resolve"].errors["output__1"] == [
        "Amount must be a number."]


def test_a_refused_correction_shows_every_problem_at_once_beside_its_field(client, bench):
    client = logged_in(client, bench.reviewer)
    case = claim(client, bench, ORDINARY)

    response = client.post(reverse("case-resolve", args=[case.pk]), resolve_data(
        case, verdict="corrected", output__0="", output__1="a lot", output__2=""))

    assert response.status_code == 400
    form = response.context["forms"]["resolve"]
    assert form.errors == {
        "output__0": ["Action: choose one of Approve, Hold, Reject."],
        "output__1": ["Amount must be a number."],
        "output__2": ["Currency: choose one of EUR, USD, GBP."],
        "reason_code": ["Say why with a reason code: choose one of The amount was extracted "
                        "wrongly (wrong-amount), No matching purchase order (no-po), "
                        "Duplicate invoice (duplicate), Against policy (policy)."]}
    page = response.content.decode()
    for name in ("output__0", "output__1", "output__2", "reason_code"):
        assert f'id="id_resolve-{name}_error"' in page
    assert '<option value="hold">Hold</option>' in page
    case.refresh_from_db()
    assert case.state == CaseState.ASSIGNED


def test_rejecting_needs_a_reason_code(client, bench):
    client = logged_in(client, bench.reviewer)
    case = claim(client, bench, ORDINARY)

    response = client.post(reverse("case-resolve", args=[case.pk]),
                           resolve_data(case, verdict="rejected"))

    assert response.status_code == 400
    assert "reason code" in response.context["forms"]["resolve"].errors["reason_code"][0]


def test_a_stale_page_gets_the_conflict_message(client, bench):
    client = logged_in(client, bench.reviewer)
    case = claim(client, bench, ORDINARY)
    stale_version = case.version
    client.post(reverse("case-request-info", args=[case.pk]),
                {"request_info-version": case.version,
                 "request_info-reason": "Need the PO scan"})
    client.post(reverse("case-resume", args=[case.pk]),
                {"resume-version": case.version + 1})

    response = client.post(reverse("case-resolve", args=[case.pk]),
                           resolve_data(case, version=stale_version))

    assert response.status_code == 409
    page = response.content.decode()
    assert ("This case changed since you opened it: you changed it in another tab or "
            "window.") in page
    assert "someone else changed" not in page
    assert response.context["conflict"].since.changes == [
        "You, in another tab or window: information requested, just now",
        "You, in another tab or window: resumed, just now"]
    assert f'href="{reverse("case", args=[case.pk])}">Reload' in page
    case.refresh_from_db()
    assert case.state == CaseState.ASSIGNED


def test_a_stale_page_names_who_changed_the_case_and_how_long_ago(client, bench):
    client = logged_in(client, bench.reviewer)
    case = claim(client, bench, ORDINARY)
    transitions.escalate(case_id=case.pk, user=bench.manager, reason="The vendor called",
                         now=timezone.now() - timedelta(minutes=2))

    response = client.post(reverse("case-resolve", args=[case.pk]), resolve_data(case))

    assert response.status_code == 409
    page = response.content.decode()
    assert "This case changed since you opened it: Maria Lindqvist changed it." in page
    assert "<li>Maria Lindqvist: escalated, 2\xa0minutes ago</li>" in page


def test_a_case_resolved_meanwhile_gets_the_conflict_message(client, bench):
    client = logged_in(client, bench.reviewer)
    case = claim(client, bench, ORDINARY)
    client.post(reverse("case-resolve", args=[case.pk]), resolve_data(case))

    response = client.post(reverse("case-escalate", args=[case.pk]),
                           {"escalate-version": case.version + 1, "escalate-reason": "x"})

    assert response.status_code == 409
    assert "This case changed since you opened it" in response.content.decode()


def test_escalating_needs_a_reason(client, bench):
    client = logged_in(client, bench.reviewer)
    case = claim(client, bench, ORDINARY)

    response = client.post(reverse("case-escalate", args=[case.pk]),
                           {"escalate-version": case.version, "escalate-reason": ""})

    assert response.status_code == 400
    assert response.context["forms"]["escalate"].errors["reason"]


def test_escalating_hands_the_case_up(client, bench):
    client = logged_in(client, bench.reviewer)
    case = claim(client, bench, ORDINARY)

    response = client.post(reverse("case-escalate", args=[case.pk]),
                           {"escalate-version": case.version,
                            "escalate-reason": "Vendor disputes the PO"})

    assert response.status_code == 302
    case.refresh_from_db()
    assert case.state == CaseState.ESCALATED and case.escalation_level == 1
    page = client.get(reverse("case", args=[case.pk])).content.decode()
    assert "Vendor disputes the PO" in page  # in the timeline


def test_releasing_gives_the_case_back(client, bench):
    client = logged_in(client, bench.reviewer)
    case = claim(client, bench, ORDINARY)

    client.post(reverse("case-release", args=[case.pk]), {"release-version": case.version})

    case.refresh_from_db()
    assert case.state == CaseState.OPEN and case.assignee is None


# -- four eyes ---------------------------------------------------------------------------

def test_four_eyes_resolution_waits_for_a_second_person(client, bench):
    client = logged_in(client, bench.reviewer)
    case = claim(client, bench, FOUR_EYES)
    client.post(reverse("case-resolve", args=[case.pk]), resolve_data(case))
    case.refresh_from_db()
    assert case.state == CaseState.PENDING_APPROVAL

    own = client.get(reverse("approvals")).content.decode()
    assert "Nothing waits for your approval" in own  # never your own

    client = logged_in(client, bench.second_reviewer)
    page = client.get(reverse("approvals")).content.decode()
    assert f'action="{reverse("case-approve", args=[case.pk])}"' in page
    response = client.post(reverse("case-approve", args=[case.pk]),
                           {"approve-version": case.version})

    assert response["Location"] == reverse("approvals")
    case.refresh_from_db()
    assert case.state == CaseState.RESOLVED
    assert case.resolution.approved_by == bench.second_reviewer


def test_sending_back_needs_a_comment_and_reopens_the_case_for_the_first_reviewer(
        client, bench):
    client = logged_in(client, bench.reviewer)
    case = claim(client, bench, FOUR_EYES)
    client.post(reverse("case-resolve", args=[case.pk]), resolve_data(case))
    case.refresh_from_db()
    client = logged_in(client, bench.second_reviewer)

    refused = client.post(reverse("case-send-back", args=[case.pk]),
                          {"send_back-version": case.version, "send_back-comment": ""})
    assert refused.status_code == 400

    client.post(reverse("case-send-back", args=[case.pk]),
                {"send_back-version": case.version,
                 "send_back-comment": "Check the second line"})
    case.refresh_from_db()
    assert case.state == CaseState.ASSIGNED and case.assignee == bench.reviewer


# -- presentation helpers ----------------------------------------------------------------

def test_policy_markdown_is_rendered_without_scripts():
    html = markdown("**bold** <script>alert(1)</script> [x](javascript:alert(1))")

    assert "<strong>bold</strong>" in html
    assert "<script" not in html and "javascript:" not in html


def test_structured_data_escapes_and_folds_nested_values():
    html = render_data({"name": "<b>ACME</b>", "address": {"city": "Köln"}, "tags": [],
                        "paid": False, "note": None})

    assert "&lt;b&gt;ACME&lt;/b&gt;" in html
    assert "<details open><summary>1 field</summary>" in html
    assert ">No<" in html and "empty" in html and "no items" in html


# -- managers, waiting, htmx fragments ---------------------------------------------------

def test_manager_reassigns_a_case_to_a_queue_member(client, bench):
    case = bench.case(ORDINARY)
    client = logged_in(client, bench.manager)

    refused = client.post(reverse("case-reassign", args=[case.pk]),
                          {"reassign-version": case.version,
                           "reassign-to_user": bench.outsider.pk})
    assert refused.status_code == 400  # not offered: oscar does not work the queue
    assert refused.context["forms"]["reassign"].errors["to_user"]

    response = client.post(reverse("case-reassign", args=[case.pk]),
                           {"reassign-version": case.version,
                            "reassign-to_user": bench.second_reviewer.pk})

    assert response.status_code == 302
    case.refresh_from_db()
    assert case.state == CaseState.ASSIGNED and case.assignee == bench.second_reviewer
    page = client.get(reverse("case", args=[case.pk])).content.decode()
    assert "to Bob Okafor" in page  # the timeline names people, not ids


def test_a_reviewer_is_not_offered_manager_actions_and_cannot_force_them(client, bench):
    client = logged_in(client, bench.reviewer)
    case = claim(client, bench, ORDINARY)

    response = client.post(reverse("case-cancel", args=[case.pk]),
                           {"cancel-version": case.version, "cancel-reason": "tidy up"})

    assert response.status_code == 403
    case.refresh_from_db()
    assert case.state == CaseState.ASSIGNED


def test_requesting_information_parks_the_case_until_resumed(client, bench):
    client = logged_in(client, bench.reviewer)
    case = claim(client, bench, ORDINARY)

    client.post(reverse("case-request-info", args=[case.pk]),
                {"request_info-version": case.version,
                 "request_info-reason": "Need the PO scan"})
    case.refresh_from_db()
    assert case.state == CaseState.WAITING
    page = client.get(reverse("case", args=[case.pk])).content.decode()
    assert "Resume the case" in page and "Paused" in page

    client.post(reverse("case-resume", args=[case.pk]), {"resume-version": case.version})
    case.refresh_from_db()
    assert case.state == CaseState.ASSIGNED


def test_htmx_refreshes_the_queue_counts_and_the_sla_as_fragments(client, bench):
    client = logged_in(client, bench.reviewer)
    case = bench.case(ORDINARY)

    queues = client.get(reverse("home") + "?fragment=queues", HTTP_HX_REQUEST="true")
    sla = client.get(reverse("case", args=[case.pk]) + "?fragment=sla",
                     HTTP_HX_REQUEST="true")

    assert queues.status_code == 200 and sla.status_code == 200
    assert queues.content.decode().lstrip().startswith('<div id="queues"')
    assert "<html" not in queues.content.decode()
    assert 'id="sla"' in sla.content.decode() and "<html" not in sla.content.decode()


def test_the_case_page_shows_when_the_claim_lapses(client, bench):
    client = logged_in(client, bench.reviewer)
    case = claim(client, bench, ORDINARY)

    page = client.get(reverse("case", args=[case.pk])).content.decode()

    case.refresh_from_db()
    assert f'<time datetime="{case.lease_expires_at.isoformat()}">' in page
    assert "Claim held until" in page


def test_the_holder_keeps_the_claim_alive_by_having_the_page_open(client, bench):
    client = logged_in(client, bench.reviewer)
    case = claim(client, bench, ORDINARY)
    soon = timezone.now() + timedelta(minutes=2)
    Case.objects.filter(pk=case.pk).update(lease_expires_at=soon)  # taken a while ago

    client.get(reverse("case", args=[case.pk]) + "?fragment=sla", HTTP_HX_REQUEST="true")

    renewed = Case.objects.get(pk=case.pk)
    assert renewed.lease_expires_at >= soon + case.queue.lease_time - timedelta(minutes=3)
    assert renewed.version == case.version  # the holder's open forms are still current


def test_another_persons_view_does_not_renew_the_claim(client, bench):
    case = claim(logged_in(client, bench.reviewer), bench, ORDINARY)
    soon = timezone.now() + timedelta(minutes=2)
    Case.objects.filter(pk=case.pk).update(lease_expires_at=soon)

    logged_in(client, bench.manager).get(reverse("case", args=[case.pk]))

    assert Case.objects.get(pk=case.pk).lease_expires_at == soon


def test_the_case_page_does_a_bounded_number_of_queries(
        client, bench, django_assert_max_num_queries):
    client = logged_in(client, bench.reviewer)
    case = claim(client, bench, ORDINARY)
    for reason in ("one", "two", "three"):
        client.post(reverse("case-request-info", args=[case.pk]),
                    {"request_info-version": case.version, "request_info-reason": reason})
        case.refresh_from_db()
        client.post(reverse("case-resume", args=[case.pk]), {"resume-version": case.version})
        case.refresh_from_db()

    with django_assert_max_num_queries(15):
        response = client.get(reverse("case", args=[case.pk]))
    assert response.status_code == 200


def test_a_case_without_a_decision_still_has_a_page(client, bench):
    case = CaseFactory(queue=bench.queue, title="Manual check")

    response = logged_in(client, bench.reviewer).get(reverse("case", args=[case.pk]))

    assert response.status_code == 200
    assert "Take this case" in response.content.decode()
