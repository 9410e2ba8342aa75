"""A known history of decisions and resolutions, through the real intake and resolving
services, whose quality figures the tests compute by hand (``test_quality.py``)."""

from datetime import UTC, date, datetime, timedelta

from exceptions_app.models import PolicyStatus, RuleAction, Stage
from exceptions_app.services.intake import submit_decisions
from tests.exceptions_app.factories import (
    AiSystemFactory,
    PolicyVersionFactory,
    RuleFactory,
    UseCaseFactory,
)
from tests.exceptions_app.intake_support import invoice
from tests.factories import QueueFactory, UserFactory
from workflows.services import claiming, transitions

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY_1, DAY_2 = date(2026, 3, 2), date(2026, 3, 3)


def quality_use_case():
    """Automate stage, every auto-passed decision QA-sampled; a policy that rejects
    garbage, sends large amounts to four-eyes review and unsure ones to review."""
    use_case = UseCaseFactory(slug="inv", stage=Stage.AUTOMATE, automate_qa_rate=1.0,
                              qa_queue=QueueFactory(slug="inv-qa", blind=False))
    policy = PolicyVersionFactory(use_case=use_case, default_action=RuleAction.AUTO)
    RuleFactory(policy=policy, position=1, name="garbage", expression="confidence < 0.1",
                action=RuleAction.REJECT)
    RuleFactory(policy=policy, position=2, name="large", expression="output.amount > 10000.0",
                action=RuleAction.REVIEW, four_eyes=True)
    RuleFactory(policy=policy, position=3, name="unsure", expression="confidence < 0.5",
                action=RuleAction.REVIEW)
    return use_case


def lowered_threshold_draft(use_case):
    """A draft of ``quality_use_case``'s policy with its "unsure" rule lowered from 0.5 to
    0.4: of the known history, r2 (0.45) and r3 (0.42) would pass on their own."""
    draft = PolicyVersionFactory(use_case=use_case, number=2, status=PolicyStatus.DRAFT,
                                 default_action=RuleAction.AUTO, activated_at=None)
    RuleFactory(policy=draft, position=1, name="garbage", expression="confidence < 0.1",
                action=RuleAction.REJECT)
    RuleFactory(policy=draft, position=2, name="large", expression="output.amount > 10000.0",
                action=RuleAction.REVIEW, four_eyes=True)
    RuleFactory(policy=draft, position=3, name="unsure", expression="confidence < 0.4",
                action=RuleAction.REVIEW)
    return draft


def queue_people(use_case):
    reviewer, approver = UserFactory(username="reviewer"), UserFactory(username="approver")
    for queue in (use_case.review_queue, use_case.qa_queue):
        queue.members.add(reviewer, approver)
    return reviewer, approver


def post(use_case, now, *items):
    system = AiSystemFactory(slug="bot", use_cases=[use_case])
    results = submit_decisions(ai_system=system, now=now, items=[
        invoice(external_id, use_case=use_case.slug, model_version=version,
                confidence=confidence, amount=amount)
        for external_id, confidence, amount, version in items])
    assert {result.status for result in results} == {201}
    return {result.decision.external_id: result.decision for result in results}


def work(decision, user, *, claimed, resolved, verdict):
    """Claim at T0 + ``claimed`` seconds, resolve at T0 + ``resolved`` seconds."""
    claiming.claim(case_id=decision.case_id, user=user, now=T0 + timedelta(seconds=claimed))
    corrected = {"action": "hold", "amount": 1.0} if verdict == "corrected" else None
    transitions.resolve(case_id=decision.case_id, user=user, verdict=verdict,
                        output=corrected,
                        reason_code="" if verdict == "accepted" else "wrong-amount",
                        now=T0 + timedelta(seconds=resolved))


def known_history(use_case, reviewer, approver):
    """The history the quality tests compute their figures from by hand (see there)."""
    d = post(use_case, T0,
             ("r1", 0.35, 4100.0, "m1"), ("r2", 0.45, 4100.0, "m1"),
             ("r3", 0.42, 4100.0, "m1"), ("r4", 0.38, 4100.0, "m1"),
             ("f1", 0.95, 20000.0, "m1"), ("f2", 0.96, 20000.0, "m1"),
             ("a1", 0.95, 4100.0, "m1"), ("a2", 0.92, 4100.0, "m1"),
             ("a3", 0.97, 4100.0, "m1"), ("a4", 0.85, 4100.0, "m1"),
             ("x1", 0.05, 4100.0, "m1"))
    post(use_case, T0 + timedelta(days=1), ("b1", 0.9, 4100.0, "m2"))

    # Review: seconds spent 120, 300, 60, 20; from post to resolution 720, 1500, 7260, 50.
    work(d["r1"], reviewer, claimed=600, resolved=720, verdict="accepted")
    work(d["r2"], reviewer, claimed=1200, resolved=1500, verdict="corrected")
    work(d["r3"], reviewer, claimed=7200, resolved=7260, verdict="rejected")
    work(d["r4"], reviewer, claimed=30, resolved=50, verdict="accepted")
    # Four-eyes: f1 accepted, sent back, corrected (100 + 60 seconds), approved at 4000 s;
    # f2 accepted in 30 seconds and approved at 10,860 s.
    work(d["f1"], reviewer, claimed=3600, resolved=3700, verdict="accepted")
    transitions.send_back(case_id=d["f1"].case_id, user=approver, comment="Look again",
                          now=T0 + timedelta(seconds=3800))
    transitions.resolve(case_id=d["f1"].case_id, user=reviewer, verdict="corrected",
                        output={"action": "hold", "amount": 1.0}, reason_code="wrong-amount",
                        now=T0 + timedelta(seconds=3860))
    transitions.approve(case_id=d["f1"].case_id, user=approver,
                        now=T0 + timedelta(seconds=4000))
    work(d["f2"], reviewer, claimed=10800, resolved=10830, verdict="accepted")
    transitions.approve(case_id=d["f2"].case_id, user=approver,
                        now=T0 + timedelta(seconds=10860))
    # QA samples of auto-passed decisions: 10, 10, 40, 10 seconds; a3 was wrong.
    work(d["a1"], reviewer, claimed=100, resolved=110, verdict="accepted")
    work(d["a2"], reviewer, claimed=200, resolved=210, verdict="accepted")
    work(d["a3"], reviewer, claimed=300, resolved=340, verdict="corrected")
    work(d["a4"], reviewer, claimed=400, resolved=410, verdict="accepted")
    return d
