"""Threshold tuning: for a rule "confidence under T goes to review", what each T would do.

Over the labelled history of a use case (the decisions people resolved, QA samples
included), every threshold from 0.00 to 1.00 is scored by two figures: the share of
those decisions it would pass on their own (confidence at or above T), and the error
rate among them (the ones the reviewers did not accept as they were), with its Wilson
95% interval. Owners propose a threshold from this trade-off rather than by guess.

One grouped query reads a count per confidence hundredth, however long the history.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.core.exceptions import ValidationError
from django.db.models import Count, F, IntegerField, Q
from django.db.models.functions import Cast, Floor

from exceptions_app.models import LabelledExample, UseCase
from exceptions_app.services.quality import Proportion, check_model_version
from workflows.models import Verdict

STEPS = 100  # thresholds 0.00, 0.01, ..., 1.00
# The error rate a suggested threshold keeps the upper bound of its interval under.
DEFAULT_TOLERATED_ERROR = 0.02


@dataclass(frozen=True)
class ThresholdPoint:
    threshold: float
    auto_passed: Proportion  # labelled decisions at or above the threshold, of all labelled
    errors: Proportion  # of those, the ones the reviewers did not accept

    def as_dict(self) -> dict:
        return {"threshold": self.threshold, "auto_passed": self.auto_passed.as_dict(),
                "errors": self.errors.as_dict()}


@dataclass(frozen=True)
class ThresholdCurve:
    use_case: UseCase
    since: date
    until: date
    model_version: str | None
    labelled: int
    points: list[ThresholdPoint]
    tolerated_error: float
    # The lowest threshold whose error interval's upper bound is under ``tolerated_error``.
    suggested: ThresholdPoint | None

    def as_dict(self) -> dict:
        return {"use_case": self.use_case.slug, "since": self.since.isoformat(),
                "until": self.until.isoformat(), "model_version": self.model_version,
                "labelled": self.labelled, "tolerated_error": self.tolerated_error,
                "suggested": self.suggested.as_dict() if self.suggested else None,
                "points": [point.as_dict() for point in self.points]}


def threshold_curve(*, use_case: UseCase, since: date, until: date,
                    model_version: str | None = None,
                    tolerated_error: float = DEFAULT_TOLERATED_ERROR) -> ThresholdCurve:
    """The trade-off over decisions received from ``since`` to ``until`` (inclusive)."""
    labels = LabelledExample.objects.filter(
        use_case=use_case,
        received_at__gte=datetime.combine(since, time.min, tzinfo=UTC),
        received_at__lt=datetime.combine(until + timedelta(days=1), time.min, tzinfo=UTC))
    if model_version:
        check_model_version(use_case=use_case, model_version=model_version)
        labels = labels.filter(model_version=model_version)
    # A hundredth: 0.29 * 100 is 28.999... in binary, so a hair is added before flooring.
    rows = (labels.annotate(hundredth=Cast(Floor(F("ai_confidence") * STEPS + 1e-9),
                                           IntegerField()))
            .values("hundredth")
            .annotate(labelled=Count("pk"), accepted=Count("pk", filter=Q(
                verdict=Verdict.ACCEPTED)))
            .order_by())
    labelled_at = [0] * (STEPS + 1)
    accepted_at = [0] * (STEPS + 1)
    for row in rows:
        hundredth = min(max(row["hundredth"], 0), STEPS)
        labelled_at[hundredth] += row["labelled"]
        accepted_at[hundredth] += row["accepted"]
    total = sum(labelled_at)
    points, passed, accepted = [], 0, 0
    for hundredth in range(STEPS, -1, -1):  # from 1.00 down: what passes only grows
        passed += labelled_at[hundredth]
        accepted += accepted_at[hundredth]
        points.append(ThresholdPoint(threshold=hundredth / STEPS,
                                     auto_passed=Proportion(passed, total),
                                     errors=Proportion(passed - accepted, passed)))
    points.reverse()
    return ThresholdCurve(use_case=use_case, since=since, until=until,
                          model_version=model_version, labelled=total, points=points,
                          tolerated_error=tolerated_error,
                          suggested=_suggest(points, tolerated_error))


def _suggest(points: list[ThresholdPoint], tolerated_error: float) -> ThresholdPoint | None:
    """The lowest threshold (the most passed on their own) whose error interval stays
    under the tolerated rate; None when none does."""
    for point in points:
        interval = point.errors.interval
        if interval is not None and interval[1] <= tolerated_error:
            return point
    return None


def parse_tolerated_error(params) -> float:
    """``tolerated_error`` from query parameters: a fraction above 0 and below 1."""
    raw = params.get("tolerated_error", "")
    if not raw:
        return DEFAULT_TOLERATED_ERROR
    try:
        value = float(raw)
    except ValueError:
        value = None
    if value is None or not 0 < value < 1:
        raise ValidationError({"tolerated_error": [
            f"'{raw}' is not a fraction between 0 and 1 (0.02 tolerates 2% errors)."]})
    return value
