"""A use case with an owner, decisions posted through the real intake and reviewed through
the real transitions: the evidence the stage and guardrail tests read."""

from datetime import UTC, datetime, timedelta

from exceptions_app.models import RuleAction, Stage
from exceptions_app.services.intake import submit_decisions
from exceptions_app.stage_models import Guardrails
from tests.exceptions_app.factories import (
    AiSystemFactory,
    PolicyVersionFactory,
    RuleFactory,
    UseCaseFactory,
)
from tests.exceptions_app.intake_support import invoice
from tests.factories import QueueFactory, UserFactory
from workflows.services import claiming, transitions

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
INPUT_SCHEMA = {"type": "object",
                "properties": {"vendor": {"type": "string"}, "po_amount": {"type": "number"},
                               "currency": {"type": "string"}}}


def staged_use_case(stage=Stage.AUDIT, **settings):
    """A use case at ``stage`` whose business owner ``owner`` (Accountable for review,
    hence for stage changes) signs off; confident decisions pass, under 0.9 are reviewed,
    and at automate every passed one is QA-sampled. ``settings`` are its guardrails."""
    owner = UserFactory(username="owner")
    use_case = UseCaseFactory(slug="inv", stage=stage, owner=owner, automate_qa_rate=1.0,
                              input_schema=INPUT_SCHEMA,
                              qa_queue=QueueFactory(slug="inv-qa", blind=False))
    policy = PolicyVersionFactory(use_case=use_case, default_action=RuleAction.AUTO)
    RuleFactory(policy=policy, position=1, name="unsure", expression="confidence < 0.9",
                action=RuleAction.REVIEW)
    if settings:
        Guardrails.objects.create(use_case=use_case, **settings)
    reviewer = UserFactory(username="reviewer")
    for queue in (use_case.review_queue, use_case.qa_queue):
        queue.members.add(reviewer)
    use_case.review_queue.members.add(owner)  # so the owner sees the use case (I8)
    return use_case, owner, reviewer


def post(use_case, count: int, *, confidence=0.95, model_version="m1", now=NOW,
         prefix="inv", **fields):
    """``count`` decisions in one batch; answers them in order."""
    system = AiSystemFactory(slug="bot", use_cases=[use_case])
    results = submit_decisions(ai_system=system, now=now, items=[
        invoice(f"{prefix}-{model_version}-{n}", use_case=use_case.slug, confidence=confidence,
                model_version=model_version, **fields) for n in range(count)])
    assert {result.status for result in results} == {201}
    return [result.decision for result in results]


def review(decisions, reviewer, *, agree: int, now=NOW, minutes=10):
    """The reviewer accepts the first ``agree`` decisions' cases and corrects the rest,
    each ``minutes`` after it was posted."""
    for n, decision in enumerate(decisions):
        at = now + timedelta(minutes=minutes)
        claiming.claim(case_id=decision.case_id, user=reviewer, now=at)
        accepted = n < agree
        transitions.resolve(case_id=decision.case_id, user=reviewer,
                            verdict="accepted" if accepted else "corrected",
                            output=None if accepted else {"action": "hold", "amount": 1.0},
                            reason_code="" if accepted else "wrong-amount", now=at)
