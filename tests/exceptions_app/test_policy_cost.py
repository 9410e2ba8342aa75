"""A rule's work must stay bounded: list macros nested more than two deep multiply the
work by a list's length at every level (three deep over 400 items: 64 million steps),
so such a rule is refused at save, naming the rule and saying why."""

import pytest
from django.core.exceptions import ValidationError

from exceptions_app.policy import check_rule, comprehension_depth
from exceptions_app.services.policies import RuleSpec, policy_create_draft
from tests.exceptions_app.factories import UseCaseFactory
from tests.factories import UserFactory

CUBIC = "input.items.all(a, input.items.all(b, input.items.all(c, a != null)))"


@pytest.mark.parametrize(("expression", "depth"), [
    ("confidence < 0.9", 0),
    ("input.items.all(i, i.qty > 0.0)", 1),
    ("input.items.exists(i, i.qty > 0.0) && output.lines.map(l, l.x).size() > 0", 1),
    ("input.items.all(a, input.items.exists_one(b, a == b))", 2),
    (CUBIC, 3),
    ("input.a.filter(x, x.b.map(y, y.c.exists(z, z > 1.0)).size() > 0).size() > 0", 3),
    ('input.note == "x.all(a, b.all(c, d.all(e, true)))"', 0),  # text, not macros
])
def test_nesting_of_list_macros_is_counted(expression, depth):
    assert comprehension_depth(expression) == depth


def test_a_rule_nesting_three_list_macros_is_refused_saying_why():
    with pytest.raises(ValueError, match="nests 3 list macros") as refused:
        check_rule(CUBIC)

    assert "at most 2" in str(refused.value)


def test_two_nested_list_macros_are_allowed():
    check_rule("input.items.all(a, input.items.exists_one(b, a == b))")


@pytest.mark.django_db
def test_a_draft_with_a_too_costly_rule_is_refused_naming_the_rule():
    owner = UserFactory()
    use_case = UseCaseFactory(owner=owner)

    with pytest.raises(ValidationError) as refused:
        policy_create_draft(use_case=use_case, text="t", author=owner, rules=[
            RuleSpec(name="every-triple", description="d", expression=CUBIC,
                     action="review")])

    [problem] = refused.value.message_dict["rules"]
    assert problem.startswith("Rule 1 'every-triple', expression:")
    assert "nests 3 list macros" in problem
