"""What changed between two policy versions, readable by the people who approve it:
the text as a line diff (difflib), the rules as added / removed / changed / moved
(matched by name, since reasons name rules), and the default. Pure: reads the two
versions' rows and computes."""

import difflib
from dataclasses import asdict, dataclass, field

from exceptions_app.models import PolicyVersion

# Rule fields compared, in the order a table shows them.
RULE_FIELDS = ("description", "expression", "action", "queue", "priority", "four_eyes")
DEFAULT_FIELDS = (("default_action", "Action"), ("default_reason", "Reason"),
                  ("default_priority", "Priority"))
# Unchanged lines kept around a change; longer unchanged runs fold into one marker.
CONTEXT_LINES = 2


@dataclass(frozen=True)
class TextLine:
    kind: str  # "same", "added", "removed" or "skipped" (``text`` says how many lines)
    text: str
    old_number: int | None = None
    new_number: int | None = None


@dataclass(frozen=True)
class RuleChange:
    kind: str  # "added", "removed", "changed", "moved" or "same"
    name: str
    before: dict | None
    after: dict | None
    fields: tuple[str, ...] = ()  # the fields that differ ("position" when it moved)


@dataclass(frozen=True)
class PolicyDiff:
    old_number: int
    new_number: int
    text: list[TextLine]
    rules: list[RuleChange]
    default: list[dict] = field(default_factory=list)  # {"field", "label", "before", "after"}

    @property
    def text_changed(self) -> bool:
        return any(line.kind in ("added", "removed") for line in self.text)

    @property
    def rules_changed(self) -> bool:
        return any(change.kind != "same" for change in self.rules)

    @property
    def counts(self) -> dict[str, int]:
        counts = {"added": 0, "removed": 0, "changed": 0, "moved": 0}
        for change in self.rules:
            if change.kind in counts:
                counts[change.kind] += 1
        return counts

    def as_dict(self) -> dict:
        return {"from": self.old_number, "to": self.new_number,
                "text_changed": self.text_changed, "rules_changed": self.rules_changed,
                "text": [asdict(line) for line in self.text],
                "rules": [{**asdict(change), "fields": list(change.fields)}
                          for change in self.rules],
                "default": self.default}


def diff_versions(*, old: PolicyVersion, new: PolicyVersion) -> PolicyDiff:
    return PolicyDiff(old_number=old.number, new_number=new.number,
                      text=text_diff(old.text, new.text),
                      rules=rule_diff(_rules(old), _rules(new)),
                      default=[{"field": name, "label": label,
                                "before": getattr(old, name), "after": getattr(new, name)}
                               for name, label in DEFAULT_FIELDS
                               if getattr(old, name) != getattr(new, name)])


def text_diff(old: str, new: str) -> list[TextLine]:
    old_lines, new_lines = old.splitlines(), new.splitlines()
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    lines: list[TextLine] = []
    opcodes = matcher.get_opcodes()
    for index, (tag, i1, i2, j1, j2) in enumerate(opcodes):
        if tag == "equal":
            same = [TextLine("same", old_lines[i], i + 1, j1 + i - i1 + 1) for i in range(i1, i2)]
            head = same[:CONTEXT_LINES] if index > 0 else []
            tail = same[-CONTEXT_LINES:] if index < len(opcodes) - 1 else []
            if len(same) > len(head) + len(tail):
                hidden = len(same) - len(head) - len(tail)
                lines += [*head, TextLine("skipped", f"{hidden} unchanged line"
                                                     f"{'s' if hidden != 1 else ''}"), *tail]
            else:
                lines += same
            continue
        lines += [TextLine("removed", old_lines[i], old_number=i + 1) for i in range(i1, i2)]
        lines += [TextLine("added", new_lines[j], new_number=j + 1) for j in range(j1, j2)]
    return lines


def _rules(policy: PolicyVersion) -> list[dict]:
    return [{"position": rule.position, "name": rule.name, "description": rule.description,
             "expression": rule.expression, "action": rule.action,
             "queue": rule.queue.slug if rule.queue else None, "priority": rule.priority,
             "four_eyes": rule.four_eyes}
            for rule in policy.rules.select_related("queue").order_by("position")]


def rule_diff(old: list[dict], new: list[dict]) -> list[RuleChange]:
    """Each rule of ``new`` in its order (added, changed, moved or the same), with each
    rule only ``old`` has (removed) where it stood."""
    before = {rule["name"]: rule for rule in old}
    after = {rule["name"]: rule for rule in new}
    # A move is a change of place among the rules both versions keep, not a shift
    # caused by a rule added or removed above it.
    kept_old = [rule["name"] for rule in old if rule["name"] in after]
    kept_new = [rule["name"] for rule in new if rule["name"] in before]
    changes: list[tuple[float, RuleChange]] = []
    for rule in new:
        name = rule["name"]
        if name not in before:
            changes.append((rule["position"], RuleChange("added", name, None, rule)))
            continue
        fields = tuple(f for f in RULE_FIELDS if before[name][f] != rule[f])
        moved = kept_old.index(name) != kept_new.index(name)
        kind = "changed" if fields else ("moved" if moved else "same")
        changes.append((rule["position"], RuleChange(
            kind, name, before[name], rule, fields + (("position",) if moved else ()))))
    for rule in old:
        if rule["name"] not in after:
            # Just before whatever now holds its place.
            changes.append((rule["position"] - 0.5,
                            RuleChange("removed", rule["name"], rule, None)))
    return [change for _, change in sorted(changes, key=lambda pair: pair[0])]
