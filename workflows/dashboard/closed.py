"""Closed cases: summaries per complete hour and day, cached (they never change once
closed); the incomplete hours at either end of a period read from the database."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from django.conf import settings
from django.core.cache import cache
from django.db.models import Case as SqlCase
from django.db.models import CharField, Count, F, Q, Sum, Value, When
from django.db.models.functions import TruncDay, TruncHour

from workflows.dashboard.figures import ClosedSummary, EscalationLevelCount
from workflows.dashboard.queries import Seconds, sla_met
from workflows.dashboard.sketches import sketch_bucket
from workflows.models import Case, CaseState, Escalation, EscalationCause

# Closed cases of an hour are final this long after the hour ends (a close commits
# moments after its ``closed_at``); only then are the hour's figures cached.
FINAL_AFTER = timedelta(minutes=5)
SUMMARY_TTL = int(timedelta(days=35).total_seconds())
GENERATION_KEY = "backstop:dashboard:generation"


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def _floor_hour(moment: datetime) -> datetime:
    return _utc(moment).replace(minute=0, second=0, microsecond=0)


def _ceil_hour(moment: datetime) -> datetime:
    floor = _floor_hour(moment)
    return floor if floor == moment else floor + timedelta(hours=1)


def _floor_day(moment: datetime) -> datetime:
    return _floor_hour(moment).replace(hour=0)


def _ceil_day(moment: datetime) -> datetime:
    floor = _floor_day(moment)
    return floor if floor == moment else floor + timedelta(days=1)


@dataclass(frozen=True)
class Span:
    """Cases closed in ``[start, end)`` (``[start, end]`` when ``closed``)."""

    start: datetime
    end: datetime
    closed: bool = False

    @property
    def q(self) -> Q:
        end = Q(closed_at__lte=self.end) if self.closed else Q(closed_at__lt=self.end)
        return Q(closed_at__gte=self.start) & end


@dataclass(frozen=True)
class PeriodPlan:
    """A period cut into what the cache keeps (complete hours and days) and what a
    request reads from the database (the incomplete hours at either end)."""

    raw: tuple[Span, ...]
    hours: tuple[datetime, ...]
    days: tuple[datetime, ...]


def plan_period(*, start: datetime, now: datetime) -> PeriodPlan:
    final = _floor_hour(now - FINAL_AFTER)  # hours before this one are complete
    first = _ceil_hour(start)
    if first >= final:
        return PeriodPlan(raw=(Span(start, now, closed=True),), hours=(), days=())
    first_day, last_day = _ceil_day(first), _floor_day(final)
    if first_day < last_day:
        days = tuple(first_day + timedelta(days=n) for n in range((last_day - first_day).days))
        hour_spans = ((first, first_day), (last_day, final))
    else:
        days, hour_spans = (), ((first, final),)
    hours = tuple(lo + timedelta(hours=n) for lo, hi in hour_spans
                  for n in range(int((hi - lo) / timedelta(hours=1))))
    raw = tuple(span for span in (Span(start, first), Span(final, now, closed=True))
                if span.end > span.start or span.closed)
    return PeriodPlan(raw=raw, hours=hours, days=days)


def _cache_key(grain: str, moment: datetime, generation: int, part: str) -> str:
    database = settings.DATABASES["default"]["NAME"]
    return f"backstop:dashboard:{generation}:{database}:{grain}:{moment:%Y-%m-%dT%H}:{part}"


def summarise(*, queue_ids: Sequence[int], where: Q, bucket) -> dict[tuple, ClosedSummary]:
    """Resolved cases matching ``where`` per (``bucket``, queue): two queries.

    ``bucket`` is an expression of the row (a truncated ``closed_at``, a span's label).
    """
    rows = (Case.objects.filter(where, queue_id__in=list(queue_ids), state=CaseState.RESOLVED)
            .annotate(bucket=bucket).order_by())
    summaries: dict[tuple, ClosedSummary] = defaultdict(ClosedSummary)
    counts = (rows.values("bucket", "queue_id", "first_reviewer_id")
              .annotate(n=Count("id"), met=Count("id", filter=sla_met()),
                        spent=Sum("time_spent_seconds")))
    for row in counts:
        summary = summaries[(_bucket_id(row["bucket"]), row["queue_id"])]
        summary.resolved += row["n"]
        summary.met += row["met"]
        if row["first_reviewer_id"] is not None:
            summary.reviewers[row["first_reviewer_id"]] = [row["n"], row["spent"] or 0]
    response = (rows.filter(first_claimed_at__isnull=False)
                .annotate(clock=Value("response", output_field=CharField()),
                          sketch=sketch_bucket(Seconds(F("first_claimed_at"), F("created_at"))))
                .values("clock", "bucket", "queue_id", "sketch").annotate(n=Count("id")))
    resolution = (rows.annotate(clock=Value("resolution", output_field=CharField()),
                                sketch=sketch_bucket(Seconds(F("closed_at"), F("created_at"))))
                  .values("clock", "bucket", "queue_id", "sketch").annotate(n=Count("id")))
    for row in response.union(resolution, all=True):
        sketch = getattr(summaries[(_bucket_id(row["bucket"]), row["queue_id"])], row["clock"])
        sketch[row["sketch"]] = sketch.get(row["sketch"], 0) + row["n"]
    return summaries


def _bucket_id(value) -> str:
    return f"{_utc(value):%Y-%m-%dT%H}" if isinstance(value, datetime) else str(value)


def _by_moment(summaries: dict[tuple, ClosedSummary], moments: Iterable[datetime]
               ) -> dict[datetime, dict[int, ClosedSummary]]:
    found: dict[str, dict[int, ClosedSummary]] = defaultdict(dict)
    for (bucket, queue_id), summary in summaries.items():
        found[bucket][queue_id] = summary
    return {moment: found.get(f"{moment:%Y-%m-%dT%H}", {}) for moment in moments}


def _complete(moments: Sequence[datetime], *, detailed: set[datetime], grain: str,
              length: timedelta, all_queue_ids: Sequence[int], generation: int
              ) -> dict[datetime, dict[int, ClosedSummary]]:
    """Summaries of complete hours or days, from the cache, computing the missing ones.

    Each is cached twice: its counts alone, and in full (reviewers, sketches). Only the
    ``detailed`` moments are read in full; of the others, a few bytes per queue.
    """
    if not moments:
        return {}
    keys = {moment: _cache_key(grain, moment, generation,
                               "full" if moment in detailed else "counts")
            for moment in moments}
    cached = cache.get_many(keys.values())
    found: dict[datetime, dict[int, ClosedSummary]] = {}
    for moment, key in keys.items():
        if key in cached:
            value = cached[key]
            found[moment] = value if moment in detailed else {
                queue_id: ClosedSummary(resolved=resolved, met=met)
                for queue_id, (resolved, met) in value.items()}
    missing = sorted(moment for moment in moments if moment not in found)
    if missing:
        # Consecutive moments make one range, so the query reads only what is missing.
        runs, where = [], Q()
        for moment in missing:
            if runs and runs[-1][1] == moment:
                runs[-1][1] = moment + length
            else:
                runs.append([moment, moment + length])
        for lo, hi in runs:
            where |= Span(lo, hi).q
        truncate = TruncHour if grain == "hour" else TruncDay
        computed = _by_moment(summarise(queue_ids=all_queue_ids, where=where,
                                        bucket=truncate("closed_at", tzinfo=UTC)), missing)
        entries = {}
        for moment, value in computed.items():
            entries[_cache_key(grain, moment, generation, "full")] = value
            entries[_cache_key(grain, moment, generation, "counts")] = {
                queue_id: (summary.resolved, summary.met) for queue_id, summary in value.items()}
        cache.set_many(entries, timeout=SUMMARY_TTL)
        found.update(computed)
    return found


def closed_figures(*, queue_ids: Sequence[int], all_queue_ids: Sequence[int],
                   starts: dict[str, datetime], detail: str, now: datetime
                   ) -> dict[str, dict[int, ClosedSummary]]:
    """Per period (``starts``: its first instant) and queue of ``queue_ids``: the cases
    resolved in ``[start, now]``; reviewers and latency sketches for the ``detail``
    period only, counts for the others. At most six queries, two when the cache is warm.
    """
    plans = {key: plan_period(start=start, now=now) for key, start in starts.items()}
    generation = cache.get_or_set(GENERATION_KEY, 1, timeout=None)
    parts = {}
    for grain, length in (("hour", timedelta(hours=1)), ("day", timedelta(days=1))):
        moments = sorted({moment for plan in plans.values()
                          for moment in getattr(plan, f"{grain}s")})
        parts[grain] = _complete(moments, detailed=set(getattr(plans[detail], f"{grain}s")),
                                 grain=grain, length=length, all_queue_ids=all_queue_ids,
                                 generation=generation)
    spans = sorted({span for plan in plans.values() for span in plan.raw},
                   key=lambda span: span.start)
    labels = {span: f"span{n}" for n, span in enumerate(spans)}
    raw: dict[tuple, ClosedSummary] = {}
    if spans and queue_ids:
        # Periods share their last hour; their first hours are days apart, never overlapping.
        assert all(a.end <= b.start for a, b in pairwise(spans)), spans
        where, whens = Q(), []
        for span in spans:
            where |= span.q
            whens.append(When(span.q, then=Value(labels[span])))
        raw = summarise(queue_ids=queue_ids, where=where,
                        bucket=SqlCase(*whens, output_field=CharField()))
    result = {}
    for key, plan in plans.items():
        per_queue = {queue_id: ClosedSummary() for queue_id in queue_ids}
        pieces = ([parts["hour"][hour] for hour in plan.hours]
                  + [parts["day"][day] for day in plan.days]
                  + [{queue_id: raw[(labels[span], queue_id)] for queue_id in queue_ids
                      if (labels[span], queue_id) in raw} for span in plan.raw])
        for piece in pieces:
            for queue_id, summary in piece.items():
                if queue_id not in per_queue:
                    continue
                if key == detail:
                    per_queue[queue_id].add(summary)
                else:
                    per_queue[queue_id].resolved += summary.resolved
                    per_queue[queue_id].met += summary.met
        result[key] = per_queue
    return result


def forget_closed_figures() -> None:
    """Stop using the cached summaries, in every process sharing the cache: after
    importing closed cases with a past ``closed_at``, say. They expire on their own."""
    try:
        cache.incr(GENERATION_KEY)
    except ValueError:  # not there: nothing was cached under it
        cache.set(GENERATION_KEY, 2, timeout=None)


def escalations_by_level(*, queue_ids: Sequence[int] | None, start: datetime,
                         now: datetime) -> list[EscalationLevelCount]:
    """Escalations created in the period by level and cause (``escalation_created_idx``).

    ``queue_ids`` None: every queue (no join to the cases).
    """
    rows = Escalation.objects.filter(created_at__gte=start, created_at__lte=now)
    if queue_ids is not None:
        rows = rows.filter(case__queue_id__in=list(queue_ids))
    levels: dict[int, dict[str, int]] = {}
    for row in rows.values("level", "cause").annotate(n=Count("id")).order_by():
        by_cause = levels.setdefault(row["level"], {cause: 0 for cause in EscalationCause.values})
        by_cause[row["cause"]] = by_cause.get(row["cause"], 0) + row["n"]
    return [EscalationLevelCount(level=level, by_cause=levels[level]) for level in sorted(levels)]
