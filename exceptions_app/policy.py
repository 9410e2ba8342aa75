"""CEL policy rules: compiled once per policy version, evaluated per decision.

Rules see ``input``, ``output``, ``confidence``, ``model_version`` and ``meta``.
JSON numbers reach the rules as doubles, so ``input.amount * 1.02`` works whether
the upstream system sent ``4100`` or ``4100.0``. Write number literals in rules as
``5000.0`` when doing arithmetic; comparisons accept either.
"""

from dataclasses import dataclass
from functools import lru_cache

import cel

from exceptions_app.models import PolicyVersion, RuleAction


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


@dataclass(frozen=True)
class Evaluation:
    """The first rule that matched (None: the default applies) and any rule that failed."""

    matched: CompiledRule | None
    errors: tuple[tuple[CompiledRule, str], ...] = ()


def check_expression(expression: str) -> cel.Program:
    """Compile a rule; a syntax error raises ValueError naming the position."""
    if not expression.strip():
        raise ValueError("The expression is empty.")
    try:
        return cel.compile(expression)
    except ValueError as exc:
        raise ValueError(str(exc).replace("<input>", "expression")) from None


def compile_policy(policy: PolicyVersion) -> CompiledPolicy:
    """Compile a policy's rules, cached for versions that can no longer change."""
    if policy.is_frozen:
        return _compile_frozen(policy.pk)
    return _compile(policy)


@lru_cache(maxsize=256)
def _compile_frozen(policy_id: int) -> CompiledPolicy:
    return _compile(PolicyVersion.objects.get(pk=policy_id))


def _compile(policy: PolicyVersion) -> CompiledPolicy:
    rules = tuple(
        CompiledRule(name=rule.name, description=rule.description, action=rule.action,
                     queue_id=rule.queue_id, priority=rule.priority, four_eyes=rule.four_eyes,
                     program=check_expression(rule.expression))
        for rule in policy.rules.order_by("position")
    )
    return CompiledPolicy(policy_id=policy.pk, number=policy.number, rules=rules,
                          default_action=policy.default_action,
                          default_reason=policy.default_reason,
                          default_priority=policy.default_priority)


def _as_cel_value(value):
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, dict):
        return {key: _as_cel_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_cel_value(item) for item in value]
    return value


def evaluation_context(*, input, output, confidence, model_version, meta) -> dict:
    return {
        "input": _as_cel_value(input),
        "output": _as_cel_value(output),
        "confidence": float(confidence),
        "model_version": model_version,
        "meta": _as_cel_value(meta or {}),
    }


def evaluate(policy: CompiledPolicy, context: dict) -> Evaluation:
    """First match wins. A rule that cannot be evaluated is reported, never raised:
    a rule that might have caught the decision failed, so nothing after it may pass it."""
    errors = []
    for rule in policy.rules:
        try:
            result = rule.program.execute(context)
        except (TypeError, KeyError, ValueError, RuntimeError) as exc:
            errors.append((rule, _describe_error(exc)))
            continue
        if result is True:
            return Evaluation(matched=rule, errors=tuple(errors))
        if not isinstance(result, bool):
            errors.append((rule, f"returned {type(result).__name__}, not true or false"))
    return Evaluation(matched=None, errors=tuple(errors))


def _describe_error(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"the field {exc.args[0]!r} is missing"
    return str(exc).split(". ")[0]


__all__ = ["CompiledPolicy", "CompiledRule", "Evaluation", "RuleAction", "check_expression",
           "compile_policy", "evaluate", "evaluation_context"]
