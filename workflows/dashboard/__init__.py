"""Read queries for the managers' SLA dashboard and the Prometheus scrape (``metrics``).

What the figures mean:

- **open**: cases in an open state (open, assigned, waiting, pending approval, escalated).
- **breached**: the resolution deadline in force has passed (``due_at < now``). A case
  waiting for information has its clock stopped: it counts as breached only if its
  deadline had passed when it paused (``due_at <= waiting_since``).
- **at risk**: not breached, but a warning is reached: the resolution warning
  (``warn_at <= now``), or, while nobody has claimed the case yet, the first-response
  warning (``response_warn_at <= now``). A missed first response is escalated by the
  sweeper and shows here as at risk until the resolution deadline passes too.
- **SLA met**: of the cases *resolved* in a period (cancelled ones are no decision and
  are left out), those resolved by their deadline and never escalated for a missed one.
  An escalation sets a new ``due_at`` for its level, so the deadline alone would forgive
  the breach that escalated the case; the escalation row remembers it.
- **time to first response / to resolution** ("decision latency"): wall-clock time from
  opening to the first claim / to the resolution, over the cases resolved in the
  period; median and p90.
- **backlog age**: open cases by time since they opened.
- **reviewer load**: open cases assigned to the person (assigned or waiting);
  **throughput**: cases they resolved (as first reviewer) in the period.
- **escalations**: escalation rows created in the period, by level and cause.
- A period is ``[now - length, now]``.

Cost: a fixed number of queries whatever the history (docs/PERFORMANCE.md, Dashboard).

- Open cases: ``state IN (open states)``, a few thousand rows however long the history
  (the partial index ``case_open_idx`` proposed in docs/PERFORMANCE.md serves it).
- Closed cases never change once closed. So their figures are kept as per-queue
  ``ClosedSummary`` objects (counts, and latency *sketches*: counts per logarithmic
  bucket, which add up) for each complete UTC hour and day, in Django's cache
  (``SUMMARY_TTL``). A request reads the database only for the part of each period that
  is not a complete hour yet (its first and last hour), through ``case_closed_idx``
  (queue, closed_at); hours and days not cached yet are computed once, grouped, in at
  most four more queries. An hour is complete ``FINAL_AFTER`` after it ended, so a close
  whose transaction commits late is still counted.
- Medians and p90s come from the sketches: every duration is known to within
  ``SKETCH_ACCURACY`` (1%), then interpolated between ranks as ``percentile_cont`` does.
  Exact ``percentile_cont`` would sort every case of the period on every request (1.2 s
  for 7 days at a million cases; see the benchmark), and exact medians cannot be added.
- Escalations: a range of ``escalation_created_idx``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import Case as SqlCase
from django.db.models import (
    CharField,
    Count,
    Exists,
    F,
    FloatField,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Ceil, Greatest, Ln, TruncDay, TruncHour
from django.utils import timezone

from workflows import selectors
from workflows.models import (
    HELD_STATES,
    OPEN_STATES,
    RUNNING_STATES,
    Case,
    CaseState,
    Escalation,
    EscalationCause,
    Process,
    Queue,
)

PERIODS: dict[str, timedelta] = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
PERIOD_LABELS = {"24h": "last 24 hours", "7d": "last 7 days", "30d": "last 30 days"}
DEFAULT_PERIOD = "7d"

# (key, label, opened at least this long ago, opened less than this long ago)
AGE_BUCKETS: tuple[tuple[str, str, timedelta, timedelta | None], ...] = (
    ("under_1h", "Under 1 h", timedelta(0), timedelta(hours=1)),
    ("1h_4h", "1\u20134 h", timedelta(hours=1), timedelta(hours=4)),
    ("4h_24h", "4\u201324 h", timedelta(hours=4), timedelta(hours=24)),
    ("1d_3d", "1\u20133 days", timedelta(hours=24), timedelta(days=3)),
    ("over_3d", "Over 3 days", timedelta(days=3), None),
)

# SLA status of an open case, as ``sla_status`` annotates it (higher is worse).
ON_TRACK, AT_RISK, BREACHED = 0, 1, 2
STATUS_LABELS = {ON_TRACK: "On track", AT_RISK: "At risk", BREACHED: "Breached"}

URGENT_LIMIT = 25
BREACH_CAUSES = (EscalationCause.RESPONSE_BREACH, EscalationCause.RESOLUTION_BREACH)

# Latency sketches: a duration of x seconds falls in bucket ceil(log(x) / log(gamma));
# the bucket's middle value is within SKETCH_ACCURACY of every duration in it.
SKETCH_ACCURACY = 0.01
SKETCH_GAMMA = (1 + SKETCH_ACCURACY) / (1 - SKETCH_ACCURACY)
# Closed cases of an hour are final this long after the hour ends (a close commits
# moments after its ``closed_at``); only then are the hour's figures cached.
FINAL_AFTER = timedelta(minutes=5)
SUMMARY_TTL = int(timedelta(days=35).total_seconds())
_GENERATION_KEY = "backstop:dashboard:generation"


# --- The pieces of a query ----------------------------------------------------------------


def open_cases() -> QuerySet[Case]:
    """Every open case: as many rows as there is open work, however long the history."""
    return Case.objects.filter(state__in=OPEN_STATES)


def sla_status(now: datetime) -> SqlCase:
    """``BREACHED``, ``AT_RISK`` or ``ON_TRACK`` for an open case, in SQL (first match wins)."""
    running, waiting = Q(state__in=RUNNING_STATES), Q(state=CaseState.WAITING)
    paused_at = F("waiting_since")
    return SqlCase(
        When(running & Q(due_at__lt=now), then=Value(BREACHED)),
        When(waiting & Q(due_at__lte=paused_at), then=Value(BREACHED)),
        When(running & Q(warn_at__lte=now), then=Value(AT_RISK)),
        When(running & Q(first_claimed_at__isnull=True, escalation_level=0,
                         response_warn_at__lte=now), then=Value(AT_RISK)),
        When(waiting & Q(warn_at__lte=paused_at), then=Value(AT_RISK)),
        default=Value(ON_TRACK), output_field=IntegerField())


def next_deadline() -> SqlCase:
    """The deadline a person should look at first: the first response while it runs and
    comes before the resolution deadline, else the resolution deadline."""
    response_first = (Q(first_claimed_at__isnull=True, escalation_level=0,
                        response_due_at__isnull=False)
                      & (Q(due_at__isnull=True) | Q(response_due_at__lt=F("due_at"))))
    return SqlCase(When(response_first, then=F("response_due_at")), default=F("due_at"))


def sla_met() -> Q:
    """A resolved case met its SLA: resolved by the deadline in force and never escalated
    for a missed deadline (the unique (case, level) index answers the EXISTS, asked only
    of escalated cases)."""
    breach = Escalation.objects.filter(case=OuterRef("pk"), cause__in=BREACH_CAUSES)
    return (Q(due_at__isnull=False, closed_at__lte=F("due_at"))
            & (Q(escalation_level=0) | ~Exists(breach)))


class Seconds(Func):
    """``end - start`` in seconds, as a float.

    ``date_part`` rather than ``EXTRACT``: PostgreSQL's EXTRACT answers ``numeric``, whose
    logarithms cost eight times as much over a month of cases (4.2 s against 0.56 s).
    """

    output_field = FloatField()
    arity = 2

    def as_sql(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, arg_joiner=" - ",
                              template="date_part('epoch', %(expressions)s)", **extra)

    def as_sqlite(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, arg_joiner=") - julianday(",
                              template="((julianday(%(expressions)s)) * 86400.0)", **extra)


def sketch_bucket(seconds) -> Cast:
    """The sketch bucket of a duration, in SQL; a second or less is bucket 0."""
    return Cast(Ceil(Ln(Greatest(seconds, Value(1.0))) / Value(math.log(SKETCH_GAMMA))),
                IntegerField())


def bucket_value(bucket: int) -> float:
    """The duration a bucket stands for: within ``SKETCH_ACCURACY`` of all it holds."""
    return 2 * SKETCH_GAMMA ** bucket / (SKETCH_GAMMA + 1)


def sketch_percentile(sketch: dict[int, int], fraction: float) -> float | None:
    """``percentile_cont`` over the sketched durations: linear interpolation between the
    two closest ranks, each known to within ``SKETCH_ACCURACY``."""
    total = sum(sketch.values())
    if not total:
        return None
    position = fraction * (total - 1)
    wanted = (math.floor(position), math.ceil(position))
    found: list[float] = []
    seen = 0
    for bucket in sorted(sketch):
        seen += sketch[bucket]
        while len(found) < 2 and wanted[len(found)] < seen:
            found.append(bucket_value(bucket))
    lower, upper = found
    return lower + (upper - lower) * (position - wanted[0])


# --- What the dashboard shows ---------------------------------------------------------------


@dataclass
class Live:
    """Open cases now."""

    open: int = 0
    at_risk: int = 0
    breached: int = 0
    ages: dict[str, int] = field(default_factory=lambda: {key: 0 for key, *_ in AGE_BUCKETS})

    @property
    def on_track(self) -> int:
        return self.open - self.at_risk - self.breached

    def add(self, other: Live) -> None:
        self.open += other.open
        self.at_risk += other.at_risk
        self.breached += other.breached
        for key, count in other.ages.items():
            self.ages[key] += count

    @property
    def age_buckets(self) -> list[dict]:
        return [{"key": key, "label": label, "count": self.ages[key]}
                for key, label, *_ in AGE_BUCKETS]


@dataclass
class ClosedSummary:
    """Cases of one queue resolved in some span of time. Summaries of two spans add up."""

    resolved: int = 0
    met: int = 0
    reviewers: dict[int, list[int]] = field(default_factory=dict)  # id: [resolved, seconds]
    response: dict[int, int] = field(default_factory=dict)  # sketch bucket: cases
    resolution: dict[int, int] = field(default_factory=dict)

    def add(self, other: ClosedSummary) -> None:
        self.resolved += other.resolved
        self.met += other.met
        for user_id, (resolved, spent) in other.reviewers.items():
            mine = self.reviewers.setdefault(user_id, [0, 0])
            mine[0] += resolved
            mine[1] += spent
        for mine, theirs in ((self.response, other.response),
                             (self.resolution, other.resolution)):
            for bucket, count in theirs.items():
                mine[bucket] = mine.get(bucket, 0) + count


@dataclass
class Compliance:
    resolved: int = 0
    met: int = 0

    @property
    def percent(self) -> float | None:
        return 100.0 * self.met / self.resolved if self.resolved else None

    def add(self, other: Compliance) -> None:
        self.resolved += other.resolved
        self.met += other.met


@dataclass
class Latency:
    """Seconds; None when no case of the period has the figure."""

    response_p50: float | None = None
    response_p90: float | None = None
    response_count: int = 0
    resolution_p50: float | None = None
    resolution_p90: float | None = None
    resolution_count: int = 0

    @classmethod
    def of(cls, summary: ClosedSummary) -> Latency:
        return cls(response_p50=sketch_percentile(summary.response, 0.5),
                   response_p90=sketch_percentile(summary.response, 0.9),
                   response_count=sum(summary.response.values()),
                   resolution_p50=sketch_percentile(summary.resolution, 0.5),
                   resolution_p90=sketch_percentile(summary.resolution, 0.9),
                   resolution_count=sum(summary.resolution.values()))


@dataclass
class Figures:
    """Everything the dashboard says about one queue, one process, or the whole scope."""

    key: str
    label: str
    live: Live = field(default_factory=Live)
    compliance: dict[str, Compliance] = field(
        default_factory=lambda: {key: Compliance() for key in PERIODS})
    # The chosen period's resolved cases; ``latency`` is read from it.
    period: ClosedSummary = field(default_factory=ClosedSummary)
    queue: Queue | None = None
    process: Process | None = None

    def add(self, other: Figures) -> None:
        self.live.add(other.live)
        for key, value in other.compliance.items():
            self.compliance[key].add(value)
        self.period.add(other.period)

    @property
    def latency(self) -> Latency:
        if not hasattr(self, "_latency"):
            self._latency = Latency.of(self.period)
        return self._latency


@dataclass
class ProcessGroup:
    figures: Figures
    queues: list[Figures]


@dataclass
class Reviewer:
    user: object
    open_assignments: int = 0
    resolved: int = 0
    time_spent_seconds: int = 0

    @property
    def mean_time_spent(self) -> float | None:
        return self.time_spent_seconds / self.resolved if self.resolved else None


@dataclass
class EscalationLevelCount:
    level: int
    by_cause: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_cause.values())


@dataclass
class UrgentCase:
    case: Case
    status: int
    deadline: datetime | None
    candidates: list = field(default_factory=list)  # who may take it over

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]

    @property
    def is_breached(self) -> bool:
        return self.status == BREACHED

    @property
    def deadline_is_response(self) -> bool:
        """The deadline shown is the first response's (nobody has claimed the case yet)."""
        case = self.case
        return (self.deadline is not None and case.first_claimed_at is None
                and case.escalation_level == 0 and self.deadline == case.response_due_at)


@dataclass
class Dashboard:
    now: datetime
    period: str
    start: datetime
    process: Process | None
    queue: Queue | None
    queues: list[Queue]  # in scope
    all_queues: list[Queue]  # for the filter
    processes: list[Process]  # for the filter
    total: Figures
    groups: list[ProcessGroup]
    reviewers: list[Reviewer]
    escalations: list[EscalationLevelCount]
    urgent: list[UrgentCase]

    @property
    def period_label(self) -> str:
        return PERIOD_LABELS[self.period]

    @property
    def queue_figures(self) -> list[Figures]:
        return [row for group in self.groups for row in group.queues]

    @property
    def urgent_total(self) -> int:
        return self.total.live.at_risk + self.total.live.breached

    @property
    def escalation_total(self) -> int:
        return sum(level.total for level in self.escalations)


# --- Open cases --------------------------------------------------------------------------------


def live_by_queue(*, queue_ids: Sequence[int] | None, now: datetime
                  ) -> tuple[dict[int, Live], dict[int, int]]:
    """Open cases per queue (counts, SLA status, age buckets) and per assignee: one query,
    grouped by (queue, assignee, state), so its rows grow with queues x people, not cases.

    ``queue_ids`` None: every queue.
    """
    buckets = {}
    for key, _, older_than, younger_than in AGE_BUCKETS:
        condition = Q(created_at__lte=now - older_than) if older_than else Q()
        if younger_than is not None:
            condition &= Q(created_at__gt=now - younger_than)
        buckets[f"age_{key}"] = Count("id", filter=condition)
    rows = open_cases()
    if queue_ids is not None:
        rows = rows.filter(queue_id__in=list(queue_ids))
    rows = (rows.alias(sla=sla_status(now))
            .values("queue_id", "assignee_id", "state")
            .annotate(n=Count("id"), at_risk=Count("id", filter=Q(sla=AT_RISK)),
                      breached=Count("id", filter=Q(sla=BREACHED)), **buckets)
            .order_by())
    per_queue: dict[int, Live] = defaultdict(Live)
    load: dict[int, int] = defaultdict(int)
    for row in rows:
        live = per_queue[row["queue_id"]]
        live.add(Live(open=row["n"], at_risk=row["at_risk"], breached=row["breached"],
                      ages={key: row[f"age_{key}"] for key, *_ in AGE_BUCKETS}))
        if row["assignee_id"] is not None and row["state"] in HELD_STATES:
            load[row["assignee_id"]] += row["n"]
    return dict(per_queue), dict(load)


def urgent_cases(*, queue_ids: Sequence[int] | None, now: datetime,
                 limit: int = URGENT_LIMIT) -> list[UrgentCase]:
    """Breached cases, then those at risk, each by the deadline to look at first."""
    rows = open_cases()
    if queue_ids is not None:
        rows = rows.filter(queue_id__in=list(queue_ids))
    # No join: PostgreSQL would join every at-risk case before keeping the first few; the
    # caller attaches queues and people it reads anyway.
    rows = (rows.annotate(sla=sla_status(now), deadline=next_deadline())
            .filter(sla__in=[AT_RISK, BREACHED])
            .order_by("-sla", F("deadline").asc(nulls_last=True), "-priority", "id")[:limit])
    return [UrgentCase(case=case, status=case.sla, deadline=case.deadline) for case in rows]


# --- Closed cases: summaries per complete hour and day, cached ---------------------------------


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


def bucket_of(seconds: float) -> int:
    """``sketch_bucket`` in Python."""
    return max(0, math.ceil(math.log(max(seconds, 1.0)) / math.log(SKETCH_GAMMA)))


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
    generation = cache.get_or_set(_GENERATION_KEY, 1, timeout=None)
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
        cache.incr(_GENERATION_KEY)
    except ValueError:  # not there: nothing was cached under it
        cache.set(_GENERATION_KEY, 2, timeout=None)


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


# --- The page --------------------------------------------------------------------------------


def scope_queues(*, process: Process | None, queue: Queue | None,
                 all_queues: Sequence[Queue]) -> list[Queue]:
    queues = list(all_queues)
    if process is not None:
        queues = [row for row in queues if row.process_id == process.pk]
    if queue is not None:
        queues = [row for row in queues if row.pk == queue.pk]
    return queues


def dashboard(*, process: str = "", queue: str = "", period: str = DEFAULT_PERIOD,
              now: datetime | None = None, urgent_limit: int = URGENT_LIMIT) -> Dashboard:
    """Every figure of the managers' SLA dashboard, in a fixed number of queries.

    ``process`` and ``queue`` are slugs ("" for all); an unknown one selects nothing.
    ``period`` is a key of ``PERIODS`` (the latency, throughput and escalation window;
    SLA compliance is always given for every period).
    """
    now = now or timezone.now()
    period = period if period in PERIODS else DEFAULT_PERIOD
    start = now - PERIODS[period]
    all_queues = list(Queue.objects.select_related("process").order_by("name", "pk"))
    processes = list(Process.objects.order_by("name", "pk"))
    chosen_process = next((row for row in processes if row.slug == process), None)
    chosen_queue = next((row for row in all_queues if row.slug == queue), None)
    queues = scope_queues(process=chosen_process, queue=chosen_queue, all_queues=all_queues)
    if (process and chosen_process is None) or (queue and chosen_queue is None):
        queues = []
    queue_ids = [row.pk for row in queues]
    # Everything: no queue condition, so the open-state index serves the whole query.
    scoped = queue_ids if len(queues) != len(all_queues) else None

    if queue_ids:
        live, load = live_by_queue(queue_ids=scoped, now=now)
        closed = closed_figures(queue_ids=queue_ids, all_queue_ids=[row.pk for row in all_queues],
                                starts={key: now - length for key, length in PERIODS.items()},
                                detail=period, now=now)
        escalations = escalations_by_level(queue_ids=scoped, start=start, now=now)
        urgent = urgent_cases(queue_ids=scoped, now=now, limit=urgent_limit)
        members = selectors.queue_worker_ids({row.case.queue_id for row in urgent})
    else:
        live, load, escalations, urgent, members = {}, {}, [], [], {}
        closed = {key: {} for key in PERIODS}

    throughput: dict[int, list[int]] = {}
    for summary in closed[period].values():
        for user_id, (resolved, spent) in summary.reviewers.items():
            mine = throughput.setdefault(user_id, [0, 0])
            mine[0] += resolved
            mine[1] += spent

    # People: reviewers with load or throughput, who holds an urgent case and who may
    # take it over.
    people_ids = set(load) | set(throughput) | {
        user_id for user_ids in members.values() for user_id in user_ids} | {
        row.case.assignee_id for row in urgent if row.case.assignee_id}
    User = get_user_model()
    people = {user.pk: user for user in User.objects.filter(pk__in=people_ids)} \
        if people_ids else {}

    total = Figures(key="all", label="All queues")
    groups: dict[int | None, ProcessGroup] = {}
    for row in queues:
        figures = Figures(key=f"queue-{row.pk}", label=row.name, queue=row,
                          process=row.process, live=live.get(row.pk, Live()))
        for key in PERIODS:
            summary = closed[key].get(row.pk, ClosedSummary())
            figures.compliance[key] = Compliance(resolved=summary.resolved, met=summary.met)
        figures.period = closed[period].get(row.pk, ClosedSummary())
        group = groups.get(row.process_id)
        if group is None:
            group = groups[row.process_id] = ProcessGroup(
                figures=Figures(key=f"process-{row.process_id or 'none'}",
                                label=row.process.name if row.process else "No process",
                                process=row.process),
                queues=[])
        group.queues.append(figures)
        group.figures.add(figures)
        total.add(figures)
    ordered_groups = sorted(groups.values(), key=lambda group: (
        group.figures.process is None, group.figures.label.casefold()))

    reviewers = [Reviewer(user=people[user_id], open_assignments=load.get(user_id, 0),
                          resolved=throughput.get(user_id, [0, 0])[0],
                          time_spent_seconds=throughput.get(user_id, [0, 0])[1])
                 for user_id in set(load) | set(throughput) if user_id in people]
    reviewers.sort(key=lambda row: (-row.open_assignments, -row.resolved,
                                    str(row.user.get_username())))
    queue_by_id = {row.pk: row for row in all_queues}
    for row in urgent:
        row.case.queue = queue_by_id[row.case.queue_id]
        if row.case.assignee_id in people:
            row.case.assignee = people[row.case.assignee_id]
        row.candidates = sorted(
            (people[user_id] for user_id in members.get(row.case.queue_id, ())
             if user_id in people and people[user_id].is_active
             and user_id != row.case.assignee_id),
            key=lambda user: user.display_name.casefold())

    return Dashboard(now=now, period=period, start=start, process=chosen_process,
                     queue=chosen_queue, queues=queues, all_queues=all_queues,
                     processes=processes, total=total, groups=ordered_groups,
                     reviewers=reviewers, escalations=escalations, urgent=urgent)
