"""CEL policy rules: compiled once per policy version, evaluated per decision.

Rules see ``input``, ``output``, ``confidence``, ``model_version`` and ``meta``.
JSON numbers reach the rules as doubles, so ``input.amount * 1.02`` works whether
the upstream system sent ``4100`` or ``4100.0``. Write number literals in rules as
``5000.0`` when doing arithmetic; comparisons accept either.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import cel
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from exceptions_app.models import PolicyVersion, Rule, RuleAction

RULE_VARIABLES = ("input", "output", "confidence", "model_version", "meta")

# The parser's position: "<input>:1:13: Syntax error: ..." followed by a caret drawing.
_POSITION = re.compile(r"<input>:(\d+):(\d+): ")
_UNDEFINED = re.compile(r"Undefined variable or function: '([^']+)'")


@dataclass(frozen=True)
class CompiledRule:
    name: str
    description: str
    action: str
    queue_id: int | None
    priority: int
    four_eyes: bool
    program: cel.Program


@dataclass(frozen=True)
class CompiledPolicy:
    policy_id: int
    number: int
    rules: tuple[CompiledRule, ...]
    default_action: str
    default_reason: str
    default_priority: int
    # Of input, output and meta: the top-level keys the rules read (None: maybe any).
    keys_read: Mapping[str, frozenset[str] | None] | None = None
    # How deep list macros nest in its costliest rule: 0 means no rule loops over a list.
    list_macro_depth: int = 0


@dataclass(frozen=True)
class Evaluation:
    """The first rule that matched (None: the default applies) and any rule that failed;
    or, in ``not_evaluated``, why the rules did not judge the decision at all."""

    matched: CompiledRule | None
    errors: tuple[tuple[CompiledRule, str], ...] = ()
    not_evaluated: str | None = None


def check_expression(expression: str) -> cel.Program:
    """Compile a rule, or raise ValueError saying what is wrong and where.

    Syntax errors name the line and column. A name that is none of the rule
    variables (``amount`` for ``input.amount``, a misspelt function) is refused
    too: it would fail on every decision.
    """
    if not expression.strip():
        raise ValueError("The expression is empty.")
    try:
        program = cel.compile(expression)
    except ValueError as exc:
        raise ValueError(_describe_syntax_error(str(exc))) from None
    for confidence in (0.0, 1.0):  # both sides of a "confidence < x && ..." short circuit
        try:
            program.execute({"input": {}, "output": {}, "confidence": confidence,
                             "model_version": "", "meta": {}})
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # missing fields are expected on an empty decision
            if match := _UNDEFINED.search(str(exc)):
                raise ValueError(
                    f"Unknown name '{match.group(1)}': a rule can use "
                    f"{', '.join(RULE_VARIABLES)} (for example input.{match.group(1)}) "
                    f"and CEL's functions.") from None
    return program


# The list macros: each evaluates its body once per item, so nesting them multiplies the
# work by a list's length per level. The cel package has no cost limit or timeout, and
# a three-deep rule over 400 items held a web worker for ~50 s. Two deep is allowed: over
# a 1000-item list it costs about a second (measured here), still not bounded at intake.
LIST_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
MAX_NESTED_LIST_MACROS = 2
_MACRO_CALL = re.compile(r"\.\s*([A-Za-z_][A-Za-z0-9_]*)\s*\($")


def comprehension_depth(expression: str) -> int:
    """How deep list macros (``x.all(...)`` and the like) nest in ``expression``."""
    stack: list[bool] = []  # per open parenthesis: is it a list macro's?
    deepest, text, quote, n = 0, expression, None, 0
    while n < len(text):
        char = text[n]
        if quote:
            if char == "\\":
                n += 1
            elif text.startswith(quote, n):
                n += len(quote) - 1
                quote = None
        elif char in "\"'":
            quote = text[n:n + 3] if text[n:n + 3] in ('"""', "'''") else char
            n += len(quote) - 1
        elif char == "(":
            match = _MACRO_CALL.search(text[max(0, n - 40):n + 1])
            stack.append(bool(match and match.group(1) in LIST_MACROS))
            deepest = max(deepest, sum(stack))
        elif char == ")" and stack:
            stack.pop()
        n += 1
    return deepest


def check_rule(expression: str) -> cel.Program:
    """``check_expression``, and the rule's work bounded: at save time only, so a version
    saved before the bound still judges decisions."""
    program = check_expression(expression)
    depth = comprehension_depth(expression)
    if depth > MAX_NESTED_LIST_MACROS:
        raise ValueError(
            f"The rule nests {depth} list macros (all, exists, exists_one, map, filter) "
            f"inside each other; at most {MAX_NESTED_LIST_MACROS} are allowed. Each level "
            f"repeats the work for every item of a list, so three levels over a 400-item "
            f"invoice are 64 million steps and would hold up every decision behind it.")
    return program


def _describe_syntax_error(message: str) -> str:
    match = _POSITION.search(message)
    if match is None:
        return message
    line, column = match.groups()
    detail = message[match.end():]
    return f"line {line}, column {column}: {detail}"


def compile_policy(policy: PolicyVersion) -> CompiledPolicy:
    """Compile a policy's rules, cached for versions that can no longer change."""
    if not policy.is_frozen:
        return _compile(policy)
    # An id alone is not enough: SQLite hands a rolled-back row's id to the next
    # row, so the cache also checks the version's creation time.
    cached = _compiled.get(policy.pk)
    if cached is None or cached[0] != policy.created_at:
        if len(_compiled) >= _CACHE_SIZE:
            _compiled.clear()
        cached = _compiled[policy.pk] = (policy.created_at, _compile(policy))
    return cached[1]


# policy id -> (created_at, compiled); approved versions never change (services/policies.py).
_compiled: dict[int, tuple[datetime, CompiledPolicy]] = {}
_CACHE_SIZE = 256


def forget_compiled(policy_id: int | None) -> None:
    """Drop a version's compiled rules, e.g. when it or a rule of it is written."""
    _compiled.pop(policy_id, None)


@receiver([post_save, post_delete], sender=PolicyVersion)
def _policy_written(sender, instance, **kwargs):
    forget_compiled(instance.pk)


@receiver([post_save, post_delete], sender=Rule)
def _rule_written(sender, instance, **kwargs):
    forget_compiled(instance.policy_id)


def _compile(policy: PolicyVersion) -> CompiledPolicy:
    rules = list(policy.rules.order_by("position"))
    compiled = tuple(
        CompiledRule(name=rule.name, description=rule.description, action=rule.action,
                     queue_id=rule.queue_id, priority=rule.priority, four_eyes=rule.four_eyes,
                     program=check_expression(rule.expression))
        for rule in rules
    )
    return CompiledPolicy(policy_id=policy.pk, number=policy.number, rules=compiled,
                          default_action=policy.default_action,
                          default_reason=policy.default_reason,
                          default_priority=policy.default_priority,
                          keys_read=keys_read(rule.expression for rule in rules),
                          list_macro_depth=max((comprehension_depth(rule.expression)
                                                for rule in rules), default=0))


_OBJECT_VARIABLE = re.compile(r"\b(input|output|meta)\b")
# ".name" not followed by "(": a field, not a macro or method such as input.all(...).
_FIELD = re.compile(r"\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)\b(?!\s*\()")


def keys_read(expressions: Iterable[str]) -> dict[str, frozenset[str] | None]:
    """Of ``input``, ``output`` and ``meta``: the top-level keys the expressions read, or
    None where one may read the whole object (``input["x"]``, ``size(meta)``,
    ``input.all(...)``, ``"x" in output``).

    Converting a decision's JSON for CEL costs more than judging it; the keys no rule
    can read need not be converted. Any doubt (the names inside a string literal or a
    comment, a field of a field named like a variable) answers more keys or None, never
    fewer than are read.
    """
    keys: dict[str, set[str] | None] = {name: set() for name in ("input", "output", "meta")}
    for expression in expressions:
        for use in _OBJECT_VARIABLE.finditer(expression):
            name = use.group(1)
            if keys[name] is None:
                continue
            field = _FIELD.match(expression, use.end())
            if field is None:
                keys[name] = None
            else:
                keys[name].add(field.group(1))
    return {name: None if found is None else frozenset(found) for name, found in keys.items()}


def _as_cel_value(value):
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int):
        return float(value)  # intake refuses numbers beyond a double's range
    if isinstance(value, dict):
        return {key: _as_cel_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_cel_value(item) for item in value]
    return value


def evaluation_context(*, input, output, confidence, model_version, meta,
                       keys: Mapping[str, frozenset[str] | None] | None = None) -> cel.Context:
    """What a decision's rules see; converted to CEL values once for all of its rules.

    ``keys``: a policy's ``keys_read``; the other top-level keys of input, output and
    meta are left out, since no rule can read them.
    """
    keys = keys or {}
    return cel.Context({
        "input": _as_cel_value(_only(input, keys.get("input"))),
        "output": _as_cel_value(_only(output, keys.get("output"))),
        "confidence": float(confidence),
        "model_version": model_version,
        "meta": _as_cel_value(_only(meta or {}, keys.get("meta"))),
    })


def _only(value: dict, keys: frozenset[str] | None) -> dict:
    if keys is None:
        return value
    return {key: value[key] for key in keys if key in value}


def evaluate(policy: CompiledPolicy, context: cel.Context) -> Evaluation:
    """First match wins. A rule that cannot be evaluated is reported, never raised:
    a rule that might have caught the decision failed, so nothing after it may pass it."""
    errors = []
    for rule in policy.rules:
        try:
            result = rule.program.execute(context)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # a Rust panic inside CEL is a BaseException
            errors.append((rule, _describe_error(exc)))
            continue
        if result is True:
            return Evaluation(matched=rule, errors=tuple(errors))
        if result is not False:
            errors.append((rule, f"it returned {type(result).__name__}, not true or false"))
    return Evaluation(matched=None, errors=tuple(errors))


def judge(policy: CompiledPolicy, *, input, output, confidence, model_version, meta,
          max_list_items: int, prune: bool = True) -> Evaluation:
    """Evaluate a decision's rules, unless what they would loop over is too large.

    The cel package has no cost limit or timeout, and a list macro repeats its body for
    every item: two nested ones over n items take about n * n steps, each costlier the
    larger the values it touches (the worst rule allowed, on lists of 50/100/200/400
    numbers: 1/4/19/74 ms; of five-field invoice lines: 8/35/119/615 ms, measured here).
    So where a rule uses list macros and a list (or an object, whose keys a macro also
    loops over) the rules can reach holds more than ``max_list_items``, the rules are
    not run: ``not_evaluated`` says why, and a person reviews the decision. Nor are they
    run over more than ``max_list_items`` squared values in all: inside a macro, each
    use of a list or object copies it, so a step costs as much as what it touches.

    ``prune``: convert only the keys the rules read (``keys_read``); False converts
    everything (the reference path). Both reach the same verdict: the bound looks at
    what the rules can reach either way.
    """
    if policy.list_macro_depth:
        keys = policy.keys_read or {}
        reachable = {name: _only(value or {}, keys.get(name))
                     for name, value in (("input", input), ("output", output), ("meta", meta))}
        if reason := _too_large(reachable, limit=max_list_items):
            return Evaluation(matched=None, not_evaluated=reason)
    return evaluate(policy, evaluation_context(
        input=input, output=output, confidence=confidence, model_version=model_version,
        meta=meta, keys=policy.keys_read if prune else None))


def _too_large(reachable: dict[str, dict], *, limit: int) -> str | None:
    """Why the rules may not loop over ``reachable`` (input, output and meta), or None."""
    counted = [0]
    for name, value in reachable.items():
        if found := _too_long(value, name, limit, counted):
            path, container, length = found
            what = (f"a list in {path} has {length:,} items" if isinstance(container, list)
                    else f"the object {path} has {length:,} keys")
            return f"{what}, more than the {limit:,} the rules evaluate: a person reviews it"
    if counted[0] > limit * limit:
        return (f"the rules would read {counted[0]:,} values of this decision, more than "
                f"the {limit * limit:,} they evaluate: a person reviews it")
    return None


def _too_long(value, path: str, limit: int, counted: list[int]) -> tuple[str, object, int] | None:
    """The first list or object within ``value`` (itself included) holding more than
    ``limit`` items: its path, the container and its length. Counts the values seen
    into ``counted[0]``."""
    if isinstance(value, list):
        if len(value) > limit:
            return path, value, len(value)
        pairs = ((f"{path}[{n}]", item) for n, item in enumerate(value))
    elif isinstance(value, dict):
        if len(value) > limit:
            return path, value, len(value)
        pairs = ((_field_path(path, key), item) for key, item in value.items())
    else:
        return None
    counted[0] += len(value)
    for item_path, item in pairs:
        if isinstance(item, list | dict) and (found := _too_long(item, item_path, limit,
                                                                  counted)):
            return found
    return None


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _field_path(path: str, key: str) -> str:
    return f"{path}.{key}" if _IDENTIFIER.fullmatch(key) else f"{path}[{key!r}]"


def _describe_error(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"the field {exc.args[0]!r} is missing"
    if isinstance(exc, ZeroDivisionError):
        return "it divides by zero"
    return str(exc).split(". ")[0] or type(exc).__name__


__all__ = [
    "RULE_VARIABLES",
    "CompiledPolicy",
    "CompiledRule",
    "Evaluation",
    "RuleAction",
    "check_expression",
    "check_rule",
    "compile_policy",
    "comprehension_depth",
    "evaluate",
    "evaluation_context",
    "forget_compiled",
    "judge",
    "keys_read",
]
