"""Rules cannot hold a web worker: a list macro repeats its body for every item, and the
CEL engine has no timeout, so a decision with a list longer than MAX_RULE_LIST_ITEMS is
not evaluated by rules that loop over lists: it is stored and sent to review, saying why.
"""

import os
import subprocess
import sys

import pytest

from exceptions_app import policy as policy_module
from exceptions_app.models import Decision
from exceptions_app.policy import compile_policy, judge
from exceptions_app.routing import UseCaseRouting, route_decision
from tests.exceptions_app.factories import PolicyVersionFactory, RuleFactory
from tests.exceptions_app.intake_support import invoice, stored
from workflows.models import AuditEvent, Case

URL = "/api/v1/decisions/"
BATCH_URL = "/api/v1/decisions/batch/"
CAP = 5


@pytest.fixture
def looping_policy(invoice_policy, settings):
    """The invoice policy, with a first rule that loops over the line items."""
    settings.MAX_RULE_LIST_ITEMS = CAP
    RuleFactory(policy=invoice_policy, position=0, name="bulk-line",
                description="A line of more than 100 units: rejected",
                expression="input.line_items.exists(line, line.qty > 100.0)",
                action="reject")
    return invoice_policy


def lines(count: int, **extra) -> list[dict]:
    return [{"sku": f"SKU-{n}", "qty": 1.0, **extra} for n in range(count)]


def with_lines(external_id: str, line_items: list, **extra) -> dict:
    body = invoice(external_id, **extra)
    body["input"]["line_items"] = line_items
    return body


@pytest.mark.django_db
def test_a_decision_with_a_list_over_the_cap_is_stored_and_sent_to_review_saying_why(
        ai_client, looping_policy):
    response = ai_client.post(URL, with_lines("inv-1", lines(1200)), format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["route"] == "review"
    assert body["reasons"] == [{
        "rule": None, "action": "review",
        "text": "a list in input.line_items has 1,200 items, more than the 5 the rules "
                "evaluate: a person reviews it"}]
    decision = Decision.objects.get()
    assert decision.route == "review" and decision.reasons == body["reasons"]
    case = Case.objects.get()
    assert case.decision == decision and case.queue == looping_policy.use_case.review_queue
    received = AuditEvent.objects.get(verb="decision.received")
    assert received.data["reasons"] == body["reasons"]


@pytest.mark.django_db
def test_a_decision_within_the_cap_is_evaluated_as_before(ai_client, looping_policy):
    passed = ai_client.post(URL, with_lines("inv-1", lines(CAP)), format="json")
    rejected = ai_client.post(URL, with_lines("inv-2", lines(CAP, qty=500.0)), format="json")

    assert passed.status_code == rejected.status_code == 201
    assert passed.json()["route"] == "auto"
    assert passed.json()["reasons"][0]["rule"] == "matches-po"
    assert rejected.json()["route"] == "reject"
    assert rejected.json()["reasons"][0]["rule"] == "bulk-line"


@pytest.mark.django_db
def test_in_a_batch_only_the_decision_over_the_cap_is_sent_to_review(ai_client,
                                                                     looping_policy):
    items = [with_lines("inv-a", lines(CAP)),
             with_lines("inv-b", lines(CAP + 1)),
             with_lines("inv-c", lines(2, qty=500.0))]
    before = stored()

    response = ai_client.post(BATCH_URL, {"decisions": items}, format="json")

    assert response.status_code == 200
    results = response.json()["results"]
    assert [result["status"] for result in results] == [201, 201, 201]
    assert [result["decision"]["route"] for result in results] == ["auto", "review", "reject"]
    assert results[1]["decision"]["reasons"][0]["text"].startswith(
        "a list in input.line_items has 6 items, more than the 5 the rules evaluate")
    assert stored().decisions - before.decisions == 3
    assert stored().cases - before.cases == 1


@pytest.mark.django_db
def test_a_nested_list_over_the_cap_is_named_by_its_path(ai_client, looping_policy):
    line_items = lines(2)
    line_items[1]["taxes"] = [{"rate": 0.19}] * 40

    response = ai_client.post(URL, with_lines("inv-1", line_items), format="json")

    assert response.json()["route"] == "review"
    assert response.json()["reasons"][0]["text"].startswith(
        "a list in input.line_items[1].taxes has 40 items")


@pytest.mark.django_db
def test_an_object_with_more_keys_than_the_cap_is_not_looped_over_either(ai_client,
                                                                         looping_policy):
    body = with_lines("inv-1", lines(1))
    body["input"]["line_items"][0]["attributes"] = {f"a{n}": n for n in range(9)}

    response = ai_client.post(URL, body, format="json")

    assert response.json()["route"] == "review"
    assert response.json()["reasons"][0]["text"].startswith(
        "the object input.line_items[0].attributes has 9 keys, more than the 5")


@pytest.mark.django_db
def test_short_lists_that_are_large_in_all_are_not_looped_over_either(ai_client,
                                                                      looping_policy):
    # Inside a macro each use of a list copies it: a step costs what it touches.
    wide_lines = lines(CAP, price=1.0, tax=0.19, unit="pc")  # 5 lines of 5 fields

    response = ai_client.post(URL, with_lines("inv-1", wide_lines), format="json")

    assert response.json()["route"] == "review"
    assert response.json()["reasons"][0]["text"] == (
        "the rules would read 33 values of this decision, more than the 25 they "
        "evaluate: a person reviews it")  # po_amount, line_items, output.amount, 5 lines of 5


@pytest.mark.django_db
def test_a_long_list_no_rule_can_read_is_no_reason_to_skip_the_rules(ai_client,
                                                                     looping_policy):
    body = with_lines("inv-1", lines(1))
    body["input"]["scanned_pages"] = list(range(1000))  # no rule reads input.scanned_pages

    response = ai_client.post(URL, body, format="json")

    assert response.json()["route"] == "auto"


@pytest.mark.django_db
def test_a_policy_without_list_macros_judges_any_list(ai_client, invoice_policy, settings):
    settings.MAX_RULE_LIST_ITEMS = CAP
    RuleFactory(policy=invoice_policy, position=0, name="many-lines",
                description="More than 500 lines: a person checks",
                expression="size(input.line_items) > 500", action="review")

    response = ai_client.post(URL, with_lines("inv-1", lines(50)), format="json")

    assert response.json()["route"] == "auto"


@pytest.mark.django_db
def test_the_data_contract_still_refuses_a_list_it_caps_with_a_400(ai_client, looping_policy):
    use_case = looping_policy.use_case
    use_case.input_schema = {"type": "object", "properties": {
        "line_items": {"type": "array", "maxItems": 3}}}
    use_case.save()

    response = ai_client.post(URL, with_lines("inv-1", lines(4)), format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["input"]
    assert stored() == (0, 0, 0)


@pytest.mark.django_db
@pytest.mark.parametrize("expression", [
    "int(input.po_amount) / 0 > 0",                  # divides by zero
    "input.vendor.startsWith(1)",                    # no such overload
    "input.line_items.map(l, l.qty)",                # a list, not true or false
    "input.line_items.all(l, l.missing > 1.0)",      # a field missing inside a macro
    "9223372036854775807 + int(input.po_amount) > 0",  # integer overflow
])
def test_a_rule_that_fails_to_evaluate_is_a_reason_to_review_never_a_500(
        ai_client, invoice_policy, expression):
    RuleFactory(policy=invoice_policy, position=0, name="faulty", expression=expression,
                action="reject")

    response = ai_client.post(URL, with_lines("inv-1", lines(2)), format="json")

    assert response.status_code == 201
    assert response.json()["route"] == "review"
    assert response.json()["reasons"][0]["text"].startswith(
        "Rule 'faulty' could not be checked: ")


# --- the bound holds on the fast path and the reference path alike ---------------------


ROUTING = UseCaseRouting(slug="invoices", stage="assist", review_queue_id=1, qa_queue_id=None,
                         automate_qa_rate=0.0, optimize_qa_rate=0.0)


@pytest.mark.django_db
@pytest.mark.parametrize("expression", [
    "input.line_items.exists(line, line.qty > 100.0)",
    "input.all(key, key != 'secret')",
    "output.lines.all(a, output.lines.exists(b, a == b))",
    "meta.pages.exists(p, p > 3.0) || confidence < 0.5",
    "size(input.line_items) > 3",
])
@pytest.mark.parametrize("decision", [
    {"input": {"line_items": lines(3)}, "output": {"lines": [1, 2]}, "meta": {"pages": [1]}},
    {"input": {"line_items": lines(9)}, "output": {"lines": []}, "meta": {}},
    {"input": {"line_items": lines(1), "unread": list(range(50))}, "output": {"lines": [1]},
     "meta": None},
    {"input": {"line_items": [{"taxes": list(range(7))}]}, "output": {}, "meta": {}},
    {"input": {}, "output": {"lines": list(range(6))}, "meta": {"pages": [1.0] * 6}},
    {"input": {f"k{n}": n for n in range(8)}, "output": {}, "meta": {}},
])
def test_fast_and_reference_paths_route_alike(expression, decision):
    policy = PolicyVersionFactory()
    RuleFactory(policy=policy, position=1, name="rule", expression=expression,
                action="reject")
    compiled = compile_policy(policy)
    fields = {**decision, "confidence": 0.9, "model_version": "m", "max_list_items": CAP}

    fast = judge(compiled, **fields)
    reference = judge(compiled, **fields, prune=False)

    assert (fast.matched, fast.errors, fast.not_evaluated) == (
        reference.matched, reference.errors, reference.not_evaluated)
    assert route_decision(use_case=ROUTING, policy=compiled, evaluation=fast,
                          external_id="x") == route_decision(
        use_case=ROUTING, policy=compiled, evaluation=reference, external_id="x")


# --- the guard: what the rules see is capped (counted, not timed) ----------------------


def _longest_and_count(value) -> tuple[int, int]:
    """The longest list or object within ``value`` and the number of values in it."""
    if not isinstance(value, list | dict):
        return 0, 0
    items = list(value.values() if isinstance(value, dict) else value)
    inner = [_longest_and_count(item) for item in items]
    return (max([len(items), *(longest for longest, _ in inner)]),
            len(items) + sum(count for _, count in inner))


@pytest.mark.django_db
@pytest.mark.parametrize("prune", [True, False])
@pytest.mark.parametrize("length", [0, CAP - 1, CAP, CAP + 1, 400])
def test_looping_rules_never_see_a_list_longer_than_the_cap(monkeypatch, prune, length):
    seen = []
    real_context = policy_module.evaluation_context

    def recording(**fields):
        context = real_context(**fields)
        found = [_longest_and_count(fields[name] if fields.get("keys") is None else
                                    policy_module._only(fields[name] or {},
                                                        fields["keys"].get(name)))
                 for name in ("input", "output", "meta")]
        seen.append((max(longest for longest, _ in found), sum(count for _, count in found)))
        return context

    monkeypatch.setattr(policy_module, "evaluation_context", recording)
    policy = PolicyVersionFactory()
    RuleFactory(policy=policy, position=1, name="pairs", action="review",
                expression="input.items.all(a, input.items.exists_one(b, a == b))")
    compiled = compile_policy(policy)

    evaluation = judge(compiled, input={"items": list(range(length)), "nested": [[0] * length]},
                       output={}, confidence=0.9, model_version="m", meta={},
                       max_list_items=CAP, prune=prune)

    if length > CAP:
        assert seen == [] and evaluation.not_evaluated
    else:
        [(longest, values)] = seen
        assert longest <= CAP and values <= CAP * CAP and evaluation.not_evaluated is None


def _settings_with(**env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "import config.settings as s; print(s.MAX_RULE_LIST_ITEMS)"],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("value", ["0", "1000000"])
def test_a_list_cap_out_of_range_is_refused_at_start_up(value):
    refused = _settings_with(MAX_RULE_LIST_ITEMS=value)

    assert refused.returncode != 0
    assert "ImproperlyConfigured" in refused.stderr
    assert f"MAX_RULE_LIST_ITEMS ({value}) must be between 1 and 10000" in refused.stderr
