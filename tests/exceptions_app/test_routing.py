"""Each stage's routing, with the pure function; and the QA sample end to end."""

import pytest

from exceptions_app.models import Decision, Stage
from exceptions_app.policy import (
    CompiledPolicy,
    CompiledRule,
    check_expression,
    evaluate,
    evaluation_context,
)
from exceptions_app.routing import CaseSpec, UseCaseRouting, in_qa_sample, route_decision
from tests.exceptions_app.intake_support import invoice
from workflows.models import Case

REVIEW_QUEUE, QA_QUEUE, SENIOR_QUEUE = 1, 2, 3


def rule(name, expression, action, *, queue_id=None, priority=50, four_eyes=False):
    return CompiledRule(name=name, description=f"{name} (in words)", action=action,
                        queue_id=queue_id, priority=priority, four_eyes=four_eyes,
                        program=check_expression(expression))


POLICY = CompiledPolicy(
    policy_id=1, number=3, default_action="review", default_reason="Nothing matched",
    default_priority=40, rules=(
        rule("huge", "output.amount > 50000.0", "reject"),
        rule("senior", 'input.vendor == "Globex"', "review", queue_id=SENIOR_QUEUE,
             priority=90, four_eyes=True),
        rule("unsure", "confidence < 0.9", "review", priority=70),
        rule("matches-po", "output.amount <= input.po_amount * 1.02", "auto"),
    ))


def use_case(stage, *, automate=0.10, optimize=0.02, qa_queue_id=QA_QUEUE):
    return UseCaseRouting(slug="invoice-approval", stage=stage, review_queue_id=REVIEW_QUEUE,
                          qa_queue_id=qa_queue_id, automate_qa_rate=automate,
                          optimize_qa_rate=optimize)


def route(stage, *, external_id="inv-1", confidence=0.95, amount=4100.0, vendor="ACME",
          policy=POLICY, **use_case_options):
    evaluation = evaluate(policy, evaluation_context(
        input={"vendor": vendor, "po_amount": 4100.0}, output={"amount": amount},
        confidence=confidence, model_version="m", meta=None))
    return route_decision(use_case=use_case(stage, **use_case_options), policy=policy,
                          evaluation=evaluation, external_id=external_id)


# --- audit: everything to review ------------------------------------------------------------


@pytest.mark.parametrize(("options", "would"), [
    ({}, "pass"), ({"amount": 60000.0}, "reject"), ({"confidence": 0.5}, "send to review")])
def test_audit_stage_sends_everything_to_review_and_says_why(options, would):
    result = route(Stage.AUDIT, **options)

    assert result.route == "review"
    assert result.case is not None
    assert result.reasons[0]["text"] == (
        f"Audit stage: every decision is reviewed (the policy alone would {would} it)")
    assert len(result.reasons) == 2  # and the policy's own verdict follows


def test_audit_stage_keeps_the_rules_queue_and_priority():
    result = route(Stage.AUDIT, vendor="Globex")

    assert result.case == CaseSpec(SENIOR_QUEUE, 90, True)


# --- assist: the rules decide ------------------------------------------------------------------


def test_assist_passes_what_the_rules_pass_without_a_qa_sample():
    results = [route(Stage.ASSIST, external_id=f"inv-{n}") for n in range(200)]

    assert {result.route for result in results} == {"auto"}
    assert not any(result.case or result.qa_sampled for result in results)


def test_assist_rejects_what_the_rules_reject():
    result = route(Stage.ASSIST, amount=60000.0)

    assert (result.route, result.case, result.reasons[0]["rule"]) == ("reject", None, "huge")


def test_assist_reviews_with_the_rules_queue_priority_and_four_eyes():
    assert route(Stage.ASSIST, confidence=0.5).case == CaseSpec(REVIEW_QUEUE, 70, False)
    assert route(Stage.ASSIST, vendor="Globex").case == CaseSpec(SENIOR_QUEUE, 90, True)


def test_default_action_applies_when_no_rule_matches():
    result = route(Stage.ASSIST, amount=9000.0)

    assert result.route == "review"
    assert result.case == CaseSpec(REVIEW_QUEUE, 40, False)
    assert result.reasons == [{"rule": None, "action": "review", "text": "Nothing matched"}]


@pytest.mark.parametrize("deciding", ["auto", "reject"])
def test_a_failed_rule_before_the_deciding_one_sends_to_review(deciding):
    policy = CompiledPolicy(
        policy_id=2, number=1, default_action="auto", default_reason="", default_priority=40,
        rules=(rule("needs-discount", "input.discount > 0.1", "reject"),
               rule("decides", "true", deciding)))

    result = route(Stage.AUTOMATE, policy=policy, automate=0.0)

    assert result.route == "review"
    assert result.case == CaseSpec(REVIEW_QUEUE, 50, False)
    assert result.reasons[0] == {
        "rule": "needs-discount", "action": "review",
        "text": "Rule 'needs-discount' could not be checked: the field 'discount' is missing"}
    assert result.reasons[1]["rule"] == "decides"


# --- automate and optimize: pass in-scope, sample some into QA -------------------------------


@pytest.mark.parametrize(("stage", "rate"), [(Stage.AUTOMATE, 0.10), (Stage.OPTIMIZE, 0.02)])
def test_qa_sample_rate_holds_over_10000_decisions(stage, rate):
    results = [route(stage, external_id=f"inv-2026-{n:06d}") for n in range(10_000)]

    sampled = [result for result in results if result.qa_sampled]
    # Four binomial standard deviations: a hash that sampled badly would fail this.
    tolerance = 4 * (10_000 * rate * (1 - rate)) ** 0.5
    assert abs(len(sampled) - 10_000 * rate) < tolerance
    assert all(result.route == "auto" for result in results)
    assert all(result.case == CaseSpec(QA_QUEUE, 10, False) for result in sampled)
    assert not any(result.case for result in results if not result.qa_sampled)


def test_each_stage_uses_its_own_rate():
    ids = [f"inv-{n}" for n in range(2000)]

    automate = sum(route(Stage.AUTOMATE, external_id=i, automate=0.5).qa_sampled for i in ids)
    optimize = sum(route(Stage.OPTIMIZE, external_id=i, automate=0.5).qa_sampled for i in ids)

    assert 900 < automate < 1100
    assert 10 < optimize < 80


def test_same_external_id_always_samples_the_same_way():
    first = [in_qa_sample(use_case_slug="invoice-approval", external_id=f"inv-{n}", rate=0.1)
             for n in range(1000)]
    again = [in_qa_sample(use_case_slug="invoice-approval", external_id=f"inv-{n}", rate=0.1)
             for n in range(1000)]

    assert first == again
    assert any(first) and not all(first)


def test_samples_of_a_higher_rate_contain_those_of_a_lower_one():
    ids = [f"inv-{n}" for n in range(2000)]
    low = {i for i in ids if in_qa_sample(use_case_slug="u", external_id=i, rate=0.02)}
    high = {i for i in ids if in_qa_sample(use_case_slug="u", external_id=i, rate=0.10)}

    assert low < high


def test_automate_still_reviews_and_rejects_out_of_scope_decisions():
    assert route(Stage.AUTOMATE, confidence=0.5).route == "review"
    assert route(Stage.AUTOMATE, amount=60000.0).route == "reject"


def test_no_qa_queue_means_no_sample():
    results = [route(Stage.AUTOMATE, external_id=f"inv-{n}", automate=1.0, qa_queue_id=None)
               for n in range(50)]

    assert not any(result.qa_sampled or result.case for result in results)


# --- End to end: the QA sample through the API -----------------------------------------------


@pytest.mark.django_db
def test_qa_sample_through_the_api_opens_hidden_qa_cases(ai_client, invoice_policy):
    use_case = invoice_policy.use_case
    use_case.stage = Stage.AUTOMATE
    use_case.automate_qa_rate = 0.25
    use_case.save()
    items = [invoice(f"inv-e2e-{n}") for n in range(400)]

    response = ai_client.post("/api/v1/decisions/batch/", {"decisions": items}, format="json")

    results = response.json()["results"]
    assert {item["status"] for item in results} == {201}
    assert {item["decision"]["route"] for item in results} == {"auto"}
    # The AI system sees its route only; the QA case is the reviewers' business.
    assert all(item["decision"]["case"] is None for item in results)
    sampled = Decision.objects.filter(qa_sampled=True)
    assert 60 < sampled.count() < 140  # 100 expected; 4 standard deviations either side
    assert Case.objects.filter(queue=use_case.qa_queue).count() == sampled.count()
    assert set(sampled.values_list("external_id", flat=True)) == {
        item["external_id"] for item in items
        if in_qa_sample(use_case_slug=use_case.slug, external_id=item["external_id"],
                        rate=0.25)}
