"""Quality metrics from the daily rollups: a known history, figures computed by hand.

The history goes through the real intake and the real resolving services, so the
rollups are the ones production keeps.
"""

from datetime import UTC, date, datetime, timedelta

import pytest

from exceptions_app.models import DailyQuality, RuleAction, Stage
from exceptions_app.services import quality
from exceptions_app.services.intake import submit_decisions
from tests.exceptions_app.factories import (
    AiSystemFactory,
    PolicyVersionFactory,
    RuleFactory,
    UseCaseFactory,
)
from tests.exceptions_app.intake_support import invoice
from tests.factories import QueueFactory, UserFactory
from workflows.models import Case
from workflows.services import claiming, transitions

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY_1, DAY_2 = date(2026, 3, 2), date(2026, 3, 3)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def use_case(db):
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


@pytest.fixture
def people(use_case):
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


@pytest.fixture
def history(use_case, people, settings):
    settings.REVIEWER_HOURLY_COST = 36.0
    reviewer, approver = people
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


@pytest.mark.django_db
def test_a_known_history_gives_the_figures_computed_by_hand(use_case, history):
    report = quality.quality_report(use_case=use_case, since=DAY_1, until=DAY_2,
                                    model_version="m1")

    assert report.decisions == 11
    assert report.routes == {"auto": 4, "review": 6, "reject": 1}
    assert (report.exceptions.successes, report.exceptions.total) == (6, 11)
    # Overrides: r2 corrected, r3 rejected, f1 corrected in the end; of 6 reviewed.
    assert report.overrides.as_dict() == {
        "count": 3, "sample_size": 6, "rate": 0.5,
        "low": pytest.approx(0.187616, abs=1e-6), "high": pytest.approx(0.812384, abs=1e-6)}
    # Wilson 95% for 3 of 4: (p + z²/2n ± z√(p(1-p)/n + z²/4n²)) / (1 + z²/n).
    assert (report.qa_accuracy.successes, report.qa_accuracy.total) == (3, 4)
    assert report.qa_accuracy.interval == (pytest.approx(0.300642, abs=1e-6),
                                           pytest.approx(0.954413, abs=1e-6))
    assert report.auto_errors.interval == (pytest.approx(0.045587, abs=1e-6),
                                           pytest.approx(0.699358, abs=1e-6))
    # One of the two four-eyes resolutions was sent back.
    assert (report.human_errors.successes, report.human_errors.total) == (1, 2)

    by_bin = {round(b.low * 10): (b.resolved, b.agreed) for b in report.calibration if b.resolved}
    assert by_bin == {3: (2, 2), 4: (2, 0), 8: (1, 1), 9: (5, 3)}
    # ECE: 2/10·|1 - 0.365| + 2/10·|0 - 0.435| + 1/10·|1 - 0.85| + 5/10·|0.6 - 0.95|.
    assert report.expected_calibration_error == pytest.approx(0.404)

    # Review latencies 50, 720, 1500, 4000, 7260, 10860 s in buckets <60, 300-900,
    # 900-3600 and three in 3600-14400: p50 at the top of 900-3600, p90 0.8 into the last.
    assert report.latency_p50_seconds == pytest.approx(3600)
    assert report.latency_p90_seconds == pytest.approx(3600 + 0.8 * 10800)
    assert report.latency_p90_open_ended is False
    # 760 reviewer seconds over 10 resolutions; at 36 an hour, over 11 decisions.
    assert report.reviewer_minutes_per_decision == pytest.approx(760 / 60 / 10)
    assert report.cost_per_decision == pytest.approx(760 / 3600 * 36 / 11)
    assert [(day.day, day.decisions) for day in report.days] == [(DAY_1, 11)]


@pytest.mark.django_db
def test_all_model_versions_together_and_one_at_a_time(use_case, history):
    together = quality.quality_report(use_case=use_case, since=DAY_1, until=DAY_2)
    second = quality.quality_report(use_case=use_case, since=DAY_1, until=DAY_2,
                                    model_version="m2")

    assert together.decisions == 12
    assert [(day.day, day.decisions) for day in together.days] == [(DAY_1, 11), (DAY_2, 1)]
    assert (second.decisions, second.routes["auto"], second.qa_accuracy.total) == (1, 1, 0)
    assert second.qa_accuracy.interval is None and second.latency_p50_seconds is None
    assert quality.model_versions(use_case) == ["m1", "m2"]


@pytest.mark.django_db
def test_a_period_counts_only_its_days(use_case, history):
    report = quality.quality_report(use_case=use_case, since=DAY_2, until=DAY_2)

    assert report.decisions == 1 and report.expected_calibration_error is None


@pytest.mark.django_db
def test_an_unknown_model_version_is_named(use_case, history):
    with pytest.raises(quality.UnknownModelVersion, match="'m9'"):
        quality.quality_report(use_case=use_case, since=DAY_1, until=DAY_2, model_version="m9")


@pytest.mark.django_db
def test_batches_add_to_the_same_days_rollup(use_case):
    post(use_case, T0, ("one", 0.95, 4100.0, "m1"), ("two", 0.3, 4100.0, "m1"))
    post(use_case, T0 + timedelta(hours=3), ("three", 0.96, 4100.0, "m1"))

    rows = {row.route: (row.decisions, row.qa_sampled)
            for row in DailyQuality.objects.filter(day=DAY_1)}
    assert rows == {"auto": (2, 2), "review": (1, 0)}
    assert Case.objects.count() == 3  # two QA samples and one review
