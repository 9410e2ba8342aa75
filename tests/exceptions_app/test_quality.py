"""Quality metrics from the daily rollups: a known history, figures computed by hand.

The history goes through the real intake and the real resolving services, so the
rollups are the ones production keeps.
"""

import pytest
from django.core.exceptions import ValidationError

from exceptions_app.models import DailyQuality
from exceptions_app.services import quality
from tests.exceptions_app.quality_support import (
    DAY_1,
    DAY_2,
    T0,
    known_history,
    post,
    quality_use_case,
    queue_people,
)
from workflows.models import Case


@pytest.fixture
def use_case(db):
    return quality_use_case()


@pytest.fixture
def history(use_case, settings):
    settings.REVIEWER_HOURLY_COST = 36.0
    return known_history(use_case, *queue_people(use_case))


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
    assert report.latency_mean_seconds == pytest.approx(24390 / 6)
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
    with pytest.raises(ValidationError) as refused:
        quality.quality_report(use_case=use_case, since=DAY_1, until=DAY_2, model_version="m9")

    assert refused.value.message_dict == {"model_version": [
        "The use case 'inv' has no decisions of the model version 'm9'; it has: m1, m2."]}


@pytest.mark.django_db
def test_batches_add_to_the_same_days_rollup(use_case):
    post(use_case, T0, ("one", 0.95, 4100.0, "m1"), ("two", 0.3, 4100.0, "m1"))
    post(use_case, T0.replace(hour=12), ("three", 0.96, 4100.0, "m1"))

    rows = {row.route: (row.decisions, row.qa_sampled)
            for row in DailyQuality.objects.filter(day=DAY_1)}
    assert rows == {"auto": (2, 2), "review": (1, 0)}
    assert Case.objects.count() == 3  # two QA samples and one review
