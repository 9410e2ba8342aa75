"""How good the AI's decisions are, per use case and model version, from the daily rollups.

The rollups (``DailyQuality``) are counted as things happen: ``count_intake`` adds a
batch's decisions in one upsert (intake is the hot path: one statement per batch,
whatever its size), and ``counting_resolution`` (``resolved.case_resolved``, inside the
resolving transaction) adds what the people said in one update of the row intake made. An
incremental count rather than a sweep: a sweep would have to find what changed since
its last run among tens of millions of decisions and could show a page minutes behind;
counting in the writing transaction costs one statement and is never behind or double.

``quality_report`` reads a period's rows (a few per day) and answers every figure of
the monitoring page and its API.
"""

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from exceptions_app.models import (
    CONFIDENCE_BINS,
    LATENCY_BUCKET_EDGES,
    DailyQuality,
    Decision,
    Route,
    UseCase,
    confidence_bin_fields,
    latency_bucket_field,
)
from workflows import db
from workflows.models import Verdict
from workflows.verbs import AuditVerb

# The normal quantile of a two-sided 95% interval.
Z_95 = 1.959963984540054


def decision_day(received_at: datetime) -> date:
    return received_at.astimezone(UTC).date()


def confidence_bin(confidence: float) -> int:
    """0 for [0, 0.1), ..., 9 for [0.9, 1] (a confidence of 1 is in the top bin)."""
    return min(int(confidence * CONFIDENCE_BINS), CONFIDENCE_BINS - 1)


def latency_bucket(seconds: float) -> int:
    for n, edge in enumerate(LATENCY_BUCKET_EDGES):
        if seconds < edge:
            return n
    return len(LATENCY_BUCKET_EDGES)


# --- Counting -------------------------------------------------------------------------------


def count_intake(decisions: Sequence[Decision]) -> None:
    """Add newly stored decisions to their rollups, one statement for the whole batch
    (``db.add_to_counters``): a concurrent batch adding to the same row waits for this
    one's commit and then adds to its sum."""
    db.add_to_counters(**intake_counts(decisions))


def intake_counts(decisions: Sequence[Decision]) -> dict:
    """What ``count_intake`` adds, as ``db.add_to_counters``' arguments (``db.write_at_once``
    takes them too)."""
    counts: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for decision in decisions:
        key = (decision_day(decision.received_at), decision.use_case_id,
               decision.model_version, decision.route)
        counts[key][0] += 1
        counts[key][1] += decision.qa_sampled
    # In key order: two batches adding to the same rows lock them in the same order.
    return {"model": DailyQuality, "key": ("day", "use_case_id", "model_version", "route"),
            "counters": ("decisions", "qa_sampled"),
            "rows": [(connection.ops.adapt_datefield_value(day), use_case_id, model_version,
                      route, count, sampled)
                     for (day, use_case_id, model_version, route), (count, sampled)
                     in sorted(counts.items())]}


def counting_resolution(*, case, resolution, decision: Decision) -> db.Write:
    """The update that adds a final resolution to its decision's rollup, to run with the
    resolution's other writes (``resolved.case_resolved``).

    Decisions stored before the rollups existed have no row: nothing is added for them.
    """
    agreed = resolution.verdict == Verdict.ACCEPTED
    resolved_at = case.closed_at or resolution.approved_at or resolution.created_at
    seconds = max((resolved_at - decision.received_at).total_seconds(), 0)
    qa = decision.route == Route.AUTO and decision.qa_sampled
    bin_resolved, bin_agreed, bin_confidence = confidence_bin_fields(
        confidence_bin(decision.confidence))
    bucket = latency_bucket_field(latency_bucket(seconds))
    second_reviewed = resolution.approved_by_id is not None
    # Whether the second person ever sent it back: asked inside the update, not before it.
    sent_back = (db.case_has_event(case_id=case.pk, verb=AuditVerb.CASE_SENT_BACK)
                 if second_reviewed else 0)
    # A plain statement (``db.adding_to_columns``): the ORM's form of this update, some
    # fifteen ``F()`` sums, cost more to build than the rest of the handlers together.
    return db.adding_to_columns(
        DailyQuality,
        where={"day": decision_day(decision.received_at), "use_case_id": decision.use_case_id,
               "model_version": decision.model_version, "route": decision.route},
        adds={"resolved": 1,
              "resolved_in_time": int(case.due_at is None or resolved_at <= case.due_at),
              "overridden": 0 if agreed else 1,
              "qa_reviewed": int(qa),
              "qa_agreed": int(qa and agreed),
              "second_reviewed": int(second_reviewed),
              "sent_back": sent_back,
              "reviewer_seconds": resolution.time_spent_seconds,
              "seconds_to_decision": round(seconds),
              bin_resolved: 1,
              bin_agreed: int(agreed),
              bin_confidence: decision.confidence,
              bucket: 1})


# --- Reading --------------------------------------------------------------------------------


# The period shown when none is asked for: the last 30 days.
DEFAULT_PERIOD_DAYS = 30


def parse_period(params: Mapping[str, str], *, today: date | None = None) -> dict:
    """``since``, ``until`` (dates, inclusive) and ``model_version`` from query parameters,
    each bad one refused by name (ValidationError); by default the last 30 days."""
    errors: dict[str, list[str]] = {}
    today = today or timezone.now().astimezone(UTC).date()
    days = {}
    for name in ("since", "until"):
        raw = params.get(name, "")
        try:
            days[name] = date.fromisoformat(raw) if raw else None
        except ValueError:
            errors[name] = [f"'{raw}' is not a date: write it as YYYY-MM-DD."]
    until = days.get("until") or today
    since = days.get("since") or until - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
    if not errors and since > until:
        errors["until"] = ["The period ends before it starts."]
    if errors:
        raise ValidationError(errors)
    return {"since": since, "until": until,
            "model_version": params.get("model_version", "") or None}


@dataclass(frozen=True)
class Proportion:
    """``successes`` of ``total``, with its Wilson score 95% interval (sound near 0 and 1
    and for small samples, where the normal approximation is not)."""

    successes: int
    total: int

    @property
    def rate(self) -> float | None:
        return self.successes / self.total if self.total else None

    @property
    def interval(self) -> tuple[float, float] | None:
        if not self.total:
            return None
        n, p = self.total, self.successes / self.total
        z2 = Z_95 * Z_95
        denominator = 1 + z2 / n
        centre = (p + z2 / (2 * n)) / denominator
        half = Z_95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
        return max(centre - half, 0.0), min(centre + half, 1.0)

    def as_dict(self) -> dict:
        interval = self.interval
        return {"count": self.successes, "sample_size": self.total, "rate": self.rate,
                "low": interval[0] if interval else None,
                "high": interval[1] if interval else None}


@dataclass(frozen=True)
class CalibrationBin:
    low: float
    high: float
    resolved: int
    agreed: int
    confidence_sum: float

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.resolved if self.resolved else None

    @property
    def mean_confidence(self) -> float | None:
        return self.confidence_sum / self.resolved if self.resolved else None


@dataclass(frozen=True)
class DayQuality:
    day: date
    decisions: int
    routes: dict[str, int]
    overrides: Proportion
    qa_accuracy: Proportion


@dataclass(frozen=True)
class QualityReport:
    use_case: UseCase
    since: date
    until: date
    model_version: str | None
    decisions: int
    routes: dict[str, int]
    exceptions: Proportion  # decisions sent to review, of all
    overrides: Proportion  # reviewed decisions the reviewer corrected or rejected
    qa_accuracy: Proportion  # QA-sampled auto-passed decisions the reviewer accepted
    auto_errors: Proportion  # QA samples the reviewer did not accept
    human_errors: Proportion  # four-eyes first resolutions sent back by the second person
    calibration: list[CalibrationBin]
    latency_mean_seconds: float | None
    latency_p50_seconds: float | None
    latency_p90_seconds: float | None
    # The slowest bucket has no upper edge: a percentile in it is only known as "at least".
    latency_p90_open_ended: bool
    reviewer_minutes_per_decision: float | None
    cost_per_decision: float | None
    days: list[DayQuality] = field(default_factory=list)

    @property
    def expected_calibration_error(self) -> float | None:
        """Σ over bins of (bin's share of labelled decisions) x |agreement - confidence|."""
        labelled = sum(b.resolved for b in self.calibration)
        if not labelled:
            return None
        return sum(b.resolved / labelled * abs(b.agreement - b.mean_confidence)
                   for b in self.calibration if b.resolved)


_COUNTERS = [f.name for f in DailyQuality._meta.concrete_fields
             if f.name not in ("id", "day", "use_case", "model_version", "route")]
_DAILY_COUNTERS = ["decisions", "resolved", "overridden", "qa_reviewed", "qa_agreed"]


def model_versions(use_case: UseCase) -> list[str]:
    return list(DailyQuality.objects.filter(use_case=use_case).order_by("model_version")
                .values_list("model_version", flat=True).distinct())


def check_model_version(*, use_case: UseCase, model_version: str) -> None:
    """Refuse, on ``model_version``, a version the use case never had."""
    if not DailyQuality.objects.filter(use_case=use_case, model_version=model_version).exists():
        raise ValidationError({"model_version": [
            f"The use case '{use_case.slug}' has no decisions of the model version "
            f"'{model_version}'; it has: {', '.join(model_versions(use_case)) or 'none'}."]})


def quality_report(*, use_case: UseCase, since: date, until: date,
                   model_version: str | None = None) -> QualityReport:
    """The figures of decisions received from ``since`` to ``until`` (days, inclusive),
    of one model version or all. A model version the use case never had is refused on
    ``model_version`` (ValidationError)."""
    rows = DailyQuality.objects.filter(use_case=use_case, day__gte=since, day__lte=until)
    if model_version is not None:
        check_model_version(use_case=use_case, model_version=model_version)
        rows = rows.filter(model_version=model_version)
    # Every counter per route for the period's figures; the few the trends need per day
    # (three rows a day, not fifty columns: a year reads in tens of milliseconds).
    totals = list(rows.values("route").order_by("route")
                  .annotate(**{name: Sum(name) for name in _COUNTERS}))
    daily = list(rows.values("day", "route").order_by("day", "route")
                 .annotate(**{name: Sum(name) for name in _DAILY_COUNTERS}))
    return _report(use_case=use_case, since=since, until=until, model_version=model_version,
                   rows=totals, daily=daily)


def _total(rows: Iterable[dict], name: str, route: str | None = None) -> int | float:
    return sum(row[name] for row in rows if route is None or row["route"] == route)


def _report(*, use_case, since, until, model_version, rows: list[dict],
            daily: list[dict]) -> QualityReport:
    decisions = _total(rows, "decisions")
    review = [row for row in rows if row["route"] == Route.REVIEW]
    calibration = []
    for n in range(CONFIDENCE_BINS):
        resolved, agreed, confidence_sum = confidence_bin_fields(n)
        calibration.append(CalibrationBin(
            low=n / CONFIDENCE_BINS, high=(n + 1) / CONFIDENCE_BINS,
            resolved=_total(rows, resolved), agreed=_total(rows, agreed),
            confidence_sum=_total(rows, confidence_sum)))
    # Latency is that of decisions people made: a QA sample was decided when it passed.
    buckets = [_total(review, latency_bucket_field(n))
               for n in range(len(LATENCY_BUCKET_EDGES) + 1)]
    p90, p90_open = _percentile(buckets, 0.9)
    resolved = _total(rows, "resolved")
    reviewer_hours = _total(rows, "reviewer_seconds") / 3600
    qa_reviewed, qa_agreed = _total(rows, "qa_reviewed"), _total(rows, "qa_agreed")
    by_day: dict[date, list[dict]] = defaultdict(list)
    for row in daily:
        by_day[row["day"]].append(row)
    return QualityReport(
        use_case=use_case, since=since, until=until, model_version=model_version,
        decisions=decisions,
        routes={route: _total(rows, "decisions", route) for route in Route.values},
        exceptions=Proportion(_total(review, "decisions"), decisions),
        overrides=Proportion(_total(review, "overridden"), _total(review, "resolved")),
        qa_accuracy=Proportion(qa_agreed, qa_reviewed),
        auto_errors=Proportion(qa_reviewed - qa_agreed, qa_reviewed),
        human_errors=Proportion(_total(rows, "sent_back"), _total(rows, "second_reviewed")),
        calibration=calibration,
        latency_mean_seconds=(_total(review, "seconds_to_decision") / _total(review, "resolved")
                              if _total(review, "resolved") else None),
        latency_p50_seconds=_percentile(buckets, 0.5)[0],
        latency_p90_seconds=p90, latency_p90_open_ended=p90_open,
        reviewer_minutes_per_decision=(reviewer_hours * 60 / resolved) if resolved else None,
        cost_per_decision=(reviewer_hours * settings.REVIEWER_HOURLY_COST / decisions
                           if decisions else None),
        days=[_day(day, day_rows) for day, day_rows in by_day.items()])


def _day(day: date, rows: list[dict]) -> DayQuality:
    review = [row for row in rows if row["route"] == Route.REVIEW]
    return DayQuality(
        day=day, decisions=_total(rows, "decisions"),
        routes={route: _total(rows, "decisions", route) for route in Route.values},
        overrides=Proportion(_total(review, "overridden"), _total(review, "resolved")),
        qa_accuracy=Proportion(_total(rows, "qa_agreed"), _total(rows, "qa_reviewed")))


def _percentile(buckets: list[int], q: float) -> tuple[float | None, bool]:
    """The ``q`` quantile of the bucketed seconds, interpolated linearly inside its
    bucket, and whether it fell in the open-ended last bucket (then its lower edge)."""
    count = sum(buckets)
    if not count:
        return None, False
    rank = q * count
    before = 0
    for n, in_bucket in enumerate(buckets):
        if in_bucket and before + in_bucket >= rank:
            low = LATENCY_BUCKET_EDGES[n - 1] if n else 0
            if n == len(LATENCY_BUCKET_EDGES):
                return float(low), True
            high = LATENCY_BUCKET_EDGES[n]
            return low + (rank - before) / in_bucket * (high - low), False
        before += in_bucket
    raise AssertionError("a quantile of a non-empty histogram lies in one of its buckets")


def report_as_dict(report: QualityReport) -> dict:
    """The report as the API answers it (and as the page's numbers read)."""
    return {
        "use_case": report.use_case.slug, "since": report.since, "until": report.until,
        "model_version": report.model_version, "decisions": report.decisions,
        "routes": report.routes, "exception_rate": report.exceptions.as_dict(),
        "override_rate": report.overrides.as_dict(),
        "qa_accuracy": report.qa_accuracy.as_dict(),
        "estimated_error_rate": {"auto_passed": report.auto_errors.as_dict(),
                                 "human_four_eyes": report.human_errors.as_dict()},
        "calibration": {
            "expected_calibration_error": report.expected_calibration_error,
            "bins": [{"low": b.low, "high": b.high, "decisions": b.resolved,
                      "agreed": b.agreed, "agreement": b.agreement,
                      "mean_confidence": b.mean_confidence} for b in report.calibration]},
        "latency_seconds": {"mean": report.latency_mean_seconds,
                            "p50": report.latency_p50_seconds,
                            "p90": report.latency_p90_seconds,
                            "p90_at_least": report.latency_p90_open_ended},
        "reviewer_minutes_per_decision": report.reviewer_minutes_per_decision,
        "cost_per_decision": report.cost_per_decision,
        "reviewer_hourly_cost": settings.REVIEWER_HOURLY_COST,
        "days": [{"day": day.day, "decisions": day.decisions, "routes": day.routes,
                  "override_rate": day.overrides.as_dict(),
                  "qa_accuracy": day.qa_accuracy.as_dict()} for day in report.days],
    }
