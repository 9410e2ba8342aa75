"""The diff between two versions, as an approver reads it."""

from exceptions_app.policy_diff import rule_diff, text_diff


def rule(position, name, expression="true", action="review"):
    return {"position": position, "name": name, "description": name, "expression": expression,
            "action": action, "queue": None, "priority": 50, "four_eyes": False}


def test_a_rule_added_above_shifts_the_others_without_moving_them():
    old = [rule(1, "a"), rule(2, "b")]
    new = [rule(1, "new"), rule(2, "a"), rule(3, "b")]

    assert [(c.kind, c.name) for c in rule_diff(old, new)] == [
        ("added", "new"), ("same", "a"), ("same", "b")]


def test_rules_swapped_are_moved_and_a_removed_one_shows_where_it_stood():
    old = [rule(1, "a"), rule(2, "gone"), rule(3, "b"), rule(4, "c")]
    new = [rule(1, "a"), rule(2, "c", action="auto"), rule(3, "b")]

    changes = [(c.kind, c.name, c.fields) for c in rule_diff(old, new)]

    assert changes == [("same", "a", ()), ("removed", "gone", ()),
                       ("changed", "c", ("action", "position")), ("moved", "b", ("position",))]


def test_long_unchanged_runs_fold_around_the_changed_lines():
    old = "\n".join(f"line {n}" for n in range(1, 21))
    new = old.replace("line 10", "line ten")

    lines = [(line.kind, line.text) for line in text_diff(old, new)]

    assert lines == [("skipped", "7 unchanged lines"), ("same", "line 8"), ("same", "line 9"),
                     ("removed", "line 10"), ("added", "line ten"), ("same", "line 11"),
                     ("same", "line 12"), ("skipped", "8 unchanged lines")]
