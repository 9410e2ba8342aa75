"""CEL rules: compiled once per version, first match wins, failures reported, never raised."""

import pytest
from django.core.exceptions import ValidationError

from exceptions_app.policy import (
    check_expression,
    compile_policy,
    evaluate,
    evaluation_context,
    keys_read,
)
from tests.exceptions_app.factories import PolicyVersionFactory, RuleFactory


def context(*, confidence=0.95, amount=4100.0, po_amount=4100.0, **input_extra) -> dict:
    return evaluation_context(
        input={"vendor": "ACME GmbH", "po_amount": po_amount, **input_extra},
        output={"action": "approve", "amount": amount}, confidence=confidence,
        model_version="extractor-3.2.1", meta={"batch": "2026-11"})


def matched(policy, ctx) -> str | None:
    rule = evaluate(compile_policy(policy), ctx).matched
    return rule.name if rule else None


@pytest.mark.django_db
@pytest.mark.parametrize(("ctx", "rule", "action"), [
    (context(amount=60000.0, po_amount=60000.0), "huge-amount", "reject"),
    (context(confidence=0.5), "low-confidence", "review"),
    (context(), "matches-po", "auto"),
])
def test_each_action_is_reached_by_its_rule(invoice_policy, ctx, rule, action):
    evaluation = evaluate(compile_policy(invoice_policy), ctx)

    assert evaluation.matched.name == rule
    assert evaluation.matched.action == action
    assert evaluation.errors == ()


@pytest.mark.django_db
def test_review_rule_carries_its_priority_queue_and_four_eyes(invoice_policy):
    queue = invoice_policy.use_case.qa_queue
    RuleFactory(policy=invoice_policy, position=0, name="big-vendor",
                expression='input.vendor == "Globex"', action="review", priority=95,
                queue=queue, four_eyes=True)

    rule = evaluate(compile_policy(invoice_policy), context(vendor="Globex")).matched

    assert (rule.name, rule.priority, rule.queue_id, rule.four_eyes) == (
        "big-vendor", 95, queue.pk, True)


@pytest.mark.django_db
def test_first_matching_rule_wins(invoice_policy):
    # Both huge-amount (1) and low-confidence (2) match; the first decides.
    ctx = context(confidence=0.5, amount=60000.0, po_amount=60000.0)

    assert matched(invoice_policy, ctx) == "huge-amount"


@pytest.mark.django_db
def test_no_matching_rule_leaves_the_default(invoice_policy):
    evaluation = evaluate(compile_policy(invoice_policy), context(amount=9000.0))

    assert evaluation.matched is None
    assert compile_policy(invoice_policy).default_action == "auto"


@pytest.mark.django_db
def test_rules_see_every_variable():
    policy = PolicyVersionFactory()
    RuleFactory(policy=policy, position=1, name="all-of-them", expression=(
        'input.vendor == "ACME GmbH" && output.action == "approve" && confidence > 0.9 '
        '&& model_version.startsWith("extractor-3") && meta.batch == "2026-11"'))

    assert matched(policy, context()) == "all-of-them"


@pytest.mark.django_db
def test_whole_numbers_reach_rules_as_doubles_so_arithmetic_works():
    policy = PolicyVersionFactory()
    RuleFactory(policy=policy, position=1, name="within-2pct",
                expression="output.amount <= input.po_amount * 1.02")
    ctx = evaluation_context(input={"po_amount": 4100}, output={"amount": 4180},
                             confidence=1, model_version="m", meta=None)

    assert matched(policy, ctx) == "within-2pct"


@pytest.mark.django_db
@pytest.mark.parametrize(("expression", "problem"), [
    ("input.discount > 0.1", "the field 'discount' is missing"),
    ('input.vendor + 1 == "x"', "Unsupported operation: string + int"),
    ("int(output.amount) / 0 > 1", "it divides by zero"),
    ("output.amount", "it returned float, not true or false"),
])
def test_a_rule_that_fails_is_reported_and_evaluation_goes_on(expression, problem):
    policy = PolicyVersionFactory()
    RuleFactory(policy=policy, position=1, name="fragile", expression=expression)
    RuleFactory(policy=policy, position=2, name="anything", expression="true")

    evaluation = evaluate(compile_policy(policy), context())

    assert evaluation.matched.name == "anything"
    [(failed, message)] = evaluation.errors
    assert failed.name == "fragile"
    assert message.startswith(problem)


@pytest.mark.parametrize(("expression", "where"), [
    ("confidence <", "line 1, column 13: Syntax error"),
    ("output.amount > > 3.0", "line 1, column 17: Syntax error"),
    ('input.vendor == "ACME', "line 1, column 17"),
])
def test_syntax_error_names_the_position(expression, where):
    with pytest.raises(ValueError, match=where):
        check_expression(expression)


@pytest.mark.parametrize(("expression", "name"), [
    ("amount > 5000.0", "amount"),
    ("confidence < 0.9 && vendor == 'ACME'", "vendor"),
    ("sizee(input) > 2", "sizee"),
])
def test_unknown_names_are_refused_at_save_time(expression, name):
    with pytest.raises(ValueError, match=f"Unknown name '{name}': a rule can use input, output"):
        check_expression(expression)


def test_empty_expression_is_refused():
    with pytest.raises(ValueError, match="empty"):
        check_expression("   ")


@pytest.mark.django_db
def test_rule_full_clean_rejects_a_bad_expression_with_its_position(invoice_policy):
    rule = RuleFactory.build(policy=invoice_policy, position=9, name="broken",
                             expression="output.amount >")

    with pytest.raises(ValidationError) as refused:
        rule.full_clean()

    [message] = refused.value.message_dict["expression"]
    assert message.startswith("line 1, column 16: Syntax error")


@pytest.mark.django_db
def test_frozen_version_is_compiled_once(invoice_policy, django_assert_num_queries):
    compile_policy(invoice_policy)

    with django_assert_num_queries(0):
        assert compile_policy(invoice_policy) is compile_policy(invoice_policy)


@pytest.mark.django_db
def test_a_draft_is_compiled_afresh_each_time():
    draft = PolicyVersionFactory(status="draft")
    RuleFactory(policy=draft, position=1, name="first", expression="true")
    assert [rule.name for rule in compile_policy(draft).rules] == ["first"]

    RuleFactory(policy=draft, position=2, name="second", expression="true")

    assert [rule.name for rule in compile_policy(draft).rules] == ["first", "second"]


@pytest.mark.django_db
def test_writing_a_rule_drops_its_versions_compiled_form(invoice_policy):
    compile_policy(invoice_policy)

    RuleFactory(policy=invoice_policy, position=0, name="everything", expression="true",
                action="reject")

    assert matched(invoice_policy, context()) == "everything"


# --- Only the keys rules can read are converted for CEL ----------------------------------------


@pytest.mark.parametrize(("expressions", "keys"), [
    (["output.amount > input.po_amount * 1.02", "has(input.vendor)"],
     {"input": {"po_amount", "vendor"}, "output": {"amount"}, "meta": set()}),
    (["input.line_items[0].quantity > 3", "input . currency == 'EUR'"],
     {"input": {"line_items", "currency"}, "output": set(), "meta": set()}),
    (['input["vendor"] == "ACME"', "size(meta) > 0", "output.all(k, k != '')"],
     {"input": None, "output": None, "meta": None}),
    (['"vendor" in input', "meta.batch == 'x' && meta.exists(k, k == 'y')"],
     {"input": None, "output": set(), "meta": None}),
])
def test_the_keys_rules_read_are_found_or_the_whole_object_is_kept(expressions, keys):
    found = keys_read(expressions)

    assert {name: None if read is None else set(read) for name, read in found.items()} == keys


@pytest.mark.django_db
@pytest.mark.parametrize("expression", [
    'input.vendor == "ACME GmbH" && input.po_amount > 100.0',
    "size(input) == 3",
    'input.all(key, key != "secret")',
    '"discount" in input',
    "has(input.discount)",
    'input["po_amount"] > 100.0',
    "input.lines.exists(line, line.qty > 2.0)",
    'meta.batch == "2026-11"',
])
def test_rules_judge_alike_whether_or_not_unread_keys_are_left_out(expression):
    policy = PolicyVersionFactory()
    RuleFactory(policy=policy, position=1, name="rule", expression=expression)
    compiled = compile_policy(policy)
    decision = {"input": {"vendor": "ACME GmbH", "po_amount": 4100.0,
                          "lines": [{"qty": 3}, {"qty": 1}]},
                "output": {"amount": 4100.0}, "confidence": 0.9, "model_version": "m",
                "meta": {"batch": "2026-11", "pages": 2}}

    whole = evaluate(compiled, evaluation_context(**decision))
    pruned = evaluate(compiled, evaluation_context(**decision, keys=compiled.keys_read))

    assert (pruned.matched, pruned.errors) == (whole.matched, whole.errors)
