"""Stage + policy evaluation -> route, reasons and the case to open. Pure functions."""

import hashlib
from dataclasses import dataclass

from exceptions_app.models import Route, RuleAction, Stage
from exceptions_app.policy import CompiledPolicy, Evaluation


@dataclass(frozen=True)
class CaseSpec:
    queue_id: int
    priority: int
    four_eyes: bool


@dataclass(frozen=True)
class RoutingResult:
    route: str
    reasons: list[dict]
    case: CaseSpec | None
    qa_sampled: bool = False


@dataclass(frozen=True)
class UseCaseRouting:
    """What routing needs to know of a use case, read once per request or batch."""

    slug: str
    stage: str
    review_queue_id: int
    qa_queue_id: int | None
    automate_qa_rate: float
    optimize_qa_rate: float

    @property
    def qa_rate(self) -> float:
        if self.stage == Stage.AUTOMATE:
            return self.automate_qa_rate
        if self.stage == Stage.OPTIMIZE:
            return self.optimize_qa_rate
        return 0.0


def in_qa_sample(*, use_case_slug: str, external_id: str, rate: float) -> bool:
    """Deterministic: the same decision is always in or out of the sample."""
    if rate <= 0:
        return False
    digest = hashlib.sha256(f"{use_case_slug}\x00{external_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def route_decision(*, use_case: UseCaseRouting, policy: CompiledPolicy,
                   evaluation: Evaluation, external_id: str) -> RoutingResult:
    """The route the use case's stage gives a decision the policy has judged.

    audit: everything to review. assist: the rules decide. automate and optimize:
    what the rules pass passes, and a deterministic sample of it goes to the QA queue.
    Whatever the stage, a decision the rules did not evaluate goes to review.
    """
    rule = evaluation.matched
    if evaluation.not_evaluated is not None:
        # The rules were not run (a list too long to loop over): a person judges it.
        action, priority, four_eyes = RuleAction.REVIEW, policy.default_priority, False
        queue_id = use_case.review_queue_id
        policy_reason = {"rule": None, "action": action, "text": evaluation.not_evaluated}
    elif rule is not None:
        action, priority, four_eyes = rule.action, rule.priority, rule.four_eyes
        queue_id = rule.queue_id or use_case.review_queue_id
        policy_reason = {"rule": rule.name, "action": action, "text": rule.description}
    else:
        action, priority, four_eyes = (policy.default_action, policy.default_priority, False)
        queue_id = use_case.review_queue_id
        policy_reason = {"rule": None, "action": action, "text": policy.default_reason}

    reasons = [policy_reason]
    failures = [{"rule": failed.name, "action": RuleAction.REVIEW,
                 "text": f"Rule '{failed.name}' could not be checked: {message}"}
                for failed, message in evaluation.errors]
    if failures and action != RuleAction.REVIEW:
        # A rule before the deciding one failed, and it might have caught this
        # decision with another action: neither pass nor reject it unseen.
        action, reasons = RuleAction.REVIEW, [*failures, policy_reason]
    else:
        reasons.extend(failures)

    if use_case.stage == Stage.AUDIT:
        reasons.insert(0, {"rule": None, "action": RuleAction.REVIEW,
                           "text": f"Audit stage: every decision is reviewed (the policy "
                                   f"alone would {_verb(action)} it)"})
        return RoutingResult(route=Route.REVIEW, reasons=reasons,
                             case=CaseSpec(queue_id, priority, four_eyes))

    if action == RuleAction.REVIEW:
        return RoutingResult(route=Route.REVIEW, reasons=reasons,
                             case=CaseSpec(queue_id, priority, four_eyes))
    if action == RuleAction.REJECT:
        return RoutingResult(route=Route.REJECT, reasons=reasons, case=None)

    if use_case.qa_queue_id and in_qa_sample(use_case_slug=use_case.slug,
                                             external_id=external_id, rate=use_case.qa_rate):
        return RoutingResult(route=Route.AUTO, reasons=reasons, qa_sampled=True,
                             case=CaseSpec(use_case.qa_queue_id, 10, False))
    return RoutingResult(route=Route.AUTO, reasons=reasons, case=None)


def _verb(action: str) -> str:
    return {RuleAction.AUTO: "pass", RuleAction.REVIEW: "send to review",
            RuleAction.REJECT: "reject"}[action]
