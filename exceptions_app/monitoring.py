"""The monitoring page's charts as geometry for server-rendered SVG (no script, no CDN).

Pure functions of a ``QualityReport`` and a ``DriftSummary``: each chart is a dict of
coordinates in its SVG's ``viewBox`` units, which the templates in
``templates/exceptions_app/monitoring/`` draw. Every chart also carries the words a
screen reader reads (its ``<desc>``), so the figures are never only a picture.
"""

import math
from datetime import date, timedelta

from exceptions_app.models import Route
from exceptions_app.services.drift import DriftSummary
from exceptions_app.services.quality import DayQuality, Proportion, QualityReport
from exceptions_app.services.thresholds import ThresholdCurve

# Trend charts: a 640 x 180 viewBox, the plot inside these margins.
WIDTH, HEIGHT = 640, 180
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 8, 22
PLOT_WIDTH, PLOT_HEIGHT = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
ROUTES = [(Route.AUTO, "Passed"), (Route.REVIEW, "Reviewed"), (Route.REJECT, "Rejected")]
# Trend columns at most, before days are added up into weeks.
MAX_SLOTS = 62
# The reliability diagram: a square plot.
SQUARE, SQUARE_MARGIN = 260, 34


def _slot_days(report: QualityReport) -> int:
    """Days per column: one, or whole weeks when a period has more than 62 days, so a
    year is 53 columns, readable at a glance (and quick to draw)."""
    count = (report.until - report.since).days + 1
    return 1 if count <= MAX_SLOTS else 7 * math.ceil(count / (7 * MAX_SLOTS))


def _days(report: QualityReport) -> list[date]:
    """The first day of each column."""
    count, step = (report.until - report.since).days + 1, _slot_days(report)
    return [report.since + timedelta(days=n) for n in range(0, count, step)]


def _slots(report: QualityReport) -> dict[date, DayQuality]:
    """The report's days added up per column, by the column's first day."""
    step = _slot_days(report)
    merged: dict[date, DayQuality] = {}
    for day in report.days:
        start = report.since + timedelta(days=(day.day - report.since).days // step * step)
        earlier = merged.get(start)
        if earlier is None:
            merged[start] = DayQuality(start, day.decisions, dict(day.routes), day.overrides,
                                       day.qa_accuracy)
            continue
        merged[start] = DayQuality(
            start, earlier.decisions + day.decisions,
            {route: earlier.routes.get(route, 0) + count for route, count in day.routes.items()},
            _add(earlier.overrides, day.overrides), _add(earlier.qa_accuracy, day.qa_accuracy))
    return merged


def _add(first: Proportion, second: Proportion) -> Proportion:
    return Proportion(first.successes + second.successes, first.total + second.total)


def _x(index: int, count: int) -> float:
    """The middle of the day's slot."""
    return round(LEFT + (index + 0.5) * PLOT_WIDTH / count, 2)


def _y(fraction: float) -> float:
    return round(TOP + (1 - fraction) * PLOT_HEIGHT, 2)


def _date_ticks(days: list[date]) -> list[dict]:
    step = max(1, len(days) // 6)
    return [{"x": _x(n, len(days)), "label": day.strftime("%d %b")}
            for n, day in enumerate(days) if n % step == 0]


def _frame(report: QualityReport, days: list[date], grid: list[tuple[float, str]]) -> dict:
    step = _slot_days(report)
    return {"per": "day" if step == 1 else "week" if step == 7 else f"{step // 7} weeks",
            "width": WIDTH, "height": HEIGHT, "left": LEFT, "right": WIDTH - RIGHT,
            "bottom": TOP + PLOT_HEIGHT, "label_y": HEIGHT - 6,
            "x_ticks": _date_ticks(days),
            "grid": [{"y": _y(fraction), "label": label} for fraction, label in grid]}


def volume_chart(report: QualityReport) -> dict:
    """Decisions per day, stacked by route."""
    days = _days(report)
    by_day = _slots(report)
    highest = max([day.decisions for day in by_day.values()] or [0]) or 1
    slot = PLOT_WIDTH / len(days)
    columns = []
    for n, day in enumerate(days):
        figures = by_day.get(day)
        top, segments = 0.0, []
        for route, label in ROUTES:
            count = figures.routes.get(route, 0) if figures else 0
            if count:
                segments.append({"route": route, "label": label, "count": count,
                                 "y": _y((top + count) / highest),
                                 "height": round(count / highest * PLOT_HEIGHT, 2)})
                top += count
        columns.append({"day": day, "x": round(LEFT + n * slot + slot * 0.15, 2),
                        "width": round(slot * 0.7, 2), "segments": segments,
                        "total": figures.decisions if figures else 0})
    desc = " ".join(
        f"{column['day']:%d %b}: {column['total']} decisions"
        + "".join(f", {s['count']} {s['label'].lower()}" for s in column["segments"]) + "."
        for column in columns if column["total"])
    return {**_frame(report, days, [(0, "0"), (0.5, f"{highest / 2:g}"), (1, f"{highest:g}")]),
            "columns": columns, "legend": ROUTES, "desc": desc or "No decisions."}


def rate_chart(report: QualityReport, which: str) -> dict:
    """A daily rate (``overrides`` or ``qa_accuracy``) as a line in its Wilson band."""
    days = _days(report)
    by_day = {start: getattr(figures, which) for start, figures in _slots(report).items()}
    points, upper, lower = [], [], []
    for n, day in enumerate(days):
        proportion: Proportion | None = by_day.get(day)
        if proportion is None or not proportion.total:
            continue
        x = _x(n, len(days))
        low, high = proportion.interval
        points.append({"x": x, "y": _y(proportion.rate), "day": day,
                       "rate": proportion.rate, "low": low, "high": high,
                       "count": proportion.successes, "total": proportion.total})
        upper.append(f"{x},{_y(high)}")
        lower.append(f"{x},{_y(low)}")
    desc = " ".join(f"{p['day']:%d %b}: {p['rate']:.0%} of {p['total']} "
                    f"(95% interval {p['low']:.0%} to {p['high']:.0%})." for p in points)
    return {**_frame(report, days, [(0, "0%"), (0.5, "50%"), (1, "100%")]),
            "points": points, "line": " ".join(f"{p['x']},{p['y']}" for p in points),
            "band": " ".join(upper + lower[::-1]), "desc": desc or "No reviewed decisions."}


def reliability_diagram(report: QualityReport) -> dict:
    """Agreement per confidence bin against the diagonal of perfect calibration."""
    size = SQUARE - 2 * SQUARE_MARGIN

    def x(value: float) -> float:
        return round(SQUARE_MARGIN + value * size, 2)

    def y(value: float) -> float:
        return round(SQUARE_MARGIN + (1 - value) * size, 2)

    bars = [{"x": x(b.low) + 1, "width": round(size / len(report.calibration) - 2, 2),
             "y": y(b.agreement), "height": round(b.agreement * size, 2),
             "dot_x": x(b.mean_confidence), "dot_y": y(b.mean_confidence),
             "low": b.low, "high": b.high, "agreement": b.agreement,
             "confidence": b.mean_confidence, "count": b.resolved}
            for b in report.calibration if b.resolved]
    ticks = [{"at": x(value), "y": y(value), "label": f"{value:.0%}"}
             for value in (0, 0.5, 1)]
    desc = " ".join(f"Confidence {b['low']:.0%} to {b['high']:.0%}: people agreed with "
                    f"{b['agreement']:.0%} of {b['count']} (mean confidence "
                    f"{b['confidence']:.0%})." for b in bars)
    return {"size": SQUARE, "origin": x(0), "end": x(1), "bars": bars, "ticks": ticks,
            "axis_y": SQUARE - 8, "desc": desc or "No labelled decisions.",
            "ece": report.expected_calibration_error}


def drift_chart(summary: DriftSummary) -> dict | None:
    """Each feature's PSI as a bar under its name, with the warning and alert thresholds
    as lines. Drawn as the dashboard's bars are: across in percent of the card's width,
    down in pixels, so the text keeps its size at any width."""
    if summary.reference is None or not summary.features:
        return None
    reference = summary.reference
    scale = max(0.5, reference.alert_threshold * 1.5,
                *(feature.psi for feature in summary.features))

    def x(value: float) -> float:
        return round(min(value, scale) / scale * 100, 2)

    row, bar_height = 40, 12
    rows = [{"label_y": 14 + n * row, "bar_y": 20 + n * row, "feature": f.feature,
             "psi": f.psi, "level": f.level or "ok", "width": x(f.psi)}
            for n, f in enumerate(summary.features)]
    height = 20 + len(rows) * row
    return {"height": height, "rows": rows, "bar_height": bar_height,
            "thresholds": [{"x": x(reference.warn_threshold), "label": "warn"},
                           {"x": x(reference.alert_threshold), "label": "alert"}],
            "warn": reference.warn_threshold, "alert": reference.alert_threshold,
            "bottom": height - 8,
            "desc": " ".join(f"{r['feature']}: PSI {r['psi']:.3f} ({r['level']})."
                             for r in rows)}


def threshold_chart(curve: ThresholdCurve) -> dict:
    """Over thresholds 0 to 1: the share of labelled decisions passed on their own, and
    their error rate in its Wilson band; a line marks the suggested threshold."""

    def x(threshold: float) -> float:
        return round(LEFT + threshold * PLOT_WIDTH, 2)

    passed = [f"{x(p.threshold)},{_y(p.auto_passed.rate)}" for p in curve.points
              if p.auto_passed.total]
    errors = [p for p in curve.points if p.errors.total]
    upper = [f"{x(p.threshold)},{_y(p.errors.interval[1])}" for p in errors]
    lower = [f"{x(p.threshold)},{_y(p.errors.interval[0])}" for p in errors]
    suggested = curve.suggested
    desc = " ".join(
        f"At {p.threshold:.2f}: {p.auto_passed.rate:.0%} passed, "
        f"{p.errors.rate:.1%} of them in error (95% up to {p.errors.interval[1]:.1%})."
        for p in errors if round(p.threshold * 100) % 10 == 0)
    return {"width": WIDTH, "height": HEIGHT, "left": LEFT, "right": WIDTH - RIGHT,
            "bottom": TOP + PLOT_HEIGHT, "label_y": HEIGHT - 6,
            "x_ticks": [{"x": x(value), "label": f"{value:.1f}"}
                        for value in (0, 0.2, 0.4, 0.6, 0.8, 1.0)],
            "grid": [{"y": _y(value), "label": label}
                     for value, label in ((0, "0%"), (0.5, "50%"), (1, "100%"))],
            "passed": " ".join(passed), "errors": " ".join(
                f"{x(p.threshold)},{_y(p.errors.rate)}" for p in errors),
            "band": " ".join(upper + lower[::-1]),
            "tolerated_y": _y(curve.tolerated_error),
            "suggested_x": x(suggested.threshold) if suggested else None,
            "desc": desc or "No labelled decisions in this period."}
