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
  period; median and p90 (``percentile_cont``, linear interpolation).
- **backlog age**: open cases by time since they opened.
- **reviewer load**: open cases assigned to the person (assigned or waiting);
  **throughput**: cases they resolved (as first reviewer) in the period.
- **escalations**: escalation rows created in the period, by level and cause.

Cost. A fixed number of queries whatever the history, each bounded by an index:

- open cases: ``open_cases`` splits the open states so that each arm matches a
  partial index (``case_claimable_idx``, ``case_sla_check_idx``); waiting cases, which
  neither covers, come from ``case_assignee_idx`` (see docs/PERFORMANCE.md, Dashboard);
- closed cases: ``queue_id IN (...) AND closed_at > start`` is a range of
  ``case_closed_idx`` (queue, closed_at) per queue;
- escalations: ``escalation_created_idx``.

Medians and p90s are aggregated in PostgreSQL (``percentile_cont`` over grouping sets:
per queue, per process and overall in one scan). SQLite, the embedded demo, has no
``percentile_cont``: there they are computed in Python from the latest
``SQLITE_LATENCY_SAMPLE`` cases resolved in the period.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Case as SqlCase
from django.db.models import (
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.utils import timezone

from workflows.models import (
    CLAIMABLE_STATES,
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
SQLITE_LATENCY_SAMPLE = 20_000
BREACH_CAUSES = (EscalationCause.RESPONSE_BREACH, EscalationCause.RESOLUTION_BREACH)
# The open states whose SLA clocks run (``waiting`` is paused).
_RUNNING = (CaseState.OPEN, CaseState.ASSIGNED, CaseState.PENDING_APPROVAL,
            CaseState.ESCALATED)
# Open cases held by a person: a reviewer's load.
_HELD = (CaseState.ASSIGNED, CaseState.WAITING)


# --- The pieces of a query ----------------------------------------------------------------


def open_cases() -> QuerySet[Case]:
    """Every open case, written so that PostgreSQL finds them by index, not by scanning
    all history: each arm of the OR implies a partial index's predicate
    (``case_claimable_idx``: open, escalated; ``case_sla_check_idx``: assigned, pending
    approval), and the waiting arm matches ``case_assignee_idx`` (assignee, state)."""
    return Case.objects.filter(
        Q(state__in=CLAIMABLE_STATES)
        | Q(state__in=[CaseState.ASSIGNED, CaseState.PENDING_APPROVAL])
        | Q(state=CaseState.WAITING))


def sla_status(now: datetime) -> SqlCase:
    """``BREACHED``, ``AT_RISK`` or ``ON_TRACK`` for an open case, in SQL (first match wins)."""
    running, waiting = Q(state__in=_RUNNING), Q(state=CaseState.WAITING)
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


@dataclass
class Figures:
    """Everything the dashboard says about one queue, one process, or the whole scope."""

    key: str
    label: str
    live: Live = field(default_factory=Live)
    compliance: dict[str, Compliance] = field(
        default_factory=lambda: {key: Compliance() for key in PERIODS})
    latency: Latency = field(default_factory=Latency)
    queue: Queue | None = None
    process: Process | None = None

    def add(self, other: Figures) -> None:
        """Counts add up; medians do not (they come from their own grouping set)."""
        self.live.add(other.live)
        for key, value in other.compliance.items():
            self.compliance[key].add(value)


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


# --- Queries ---------------------------------------------------------------------------------


def live_by_queue(*, queue_ids: Sequence[int], now: datetime
                  ) -> tuple[dict[int, Live], dict[int, int]]:
    """Open cases per queue (counts, SLA status, age buckets) and per assignee: one query,
    grouped by (queue, assignee), so its rows grow with queues x people, not cases."""
    buckets = {}
    for key, _, older_than, younger_than in AGE_BUCKETS:
        condition = Q(created_at__lte=now - older_than) if older_than else Q()
        if younger_than is not None:
            condition &= Q(created_at__gt=now - younger_than)
        buckets[f"age_{key}"] = Count("id", filter=condition)
    rows = (open_cases().filter(queue_id__in=list(queue_ids))
            .alias(sla=sla_status(now))
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
        if row["assignee_id"] is not None and row["state"] in _HELD:
            load[row["assignee_id"]] += row["n"]
    return dict(per_queue), dict(load)


def compliance_by_queue(*, queue_ids: Sequence[int], now: datetime
                        ) -> dict[int, dict[str, Compliance]]:
    """Resolved and SLA-met counts per queue over each period: one query over the longest
    period's range of ``case_closed_idx``."""
    met = sla_met()
    aggregates = {}
    for key, length in PERIODS.items():
        within = Q(closed_at__gt=now - length)
        aggregates[f"resolved_{key}"] = Count("id", filter=within)
        aggregates[f"met_{key}"] = Count("id", filter=within & met)
    rows = (Case.objects.filter(queue_id__in=list(queue_ids), state=CaseState.RESOLVED,
                                closed_at__gt=now - max(PERIODS.values()), closed_at__lte=now)
            .values("queue_id").annotate(**aggregates).order_by())
    return {row["queue_id"]: {key: Compliance(resolved=row[f"resolved_{key}"],
                                              met=row[f"met_{key}"]) for key in PERIODS}
            for row in rows}


@dataclass
class LatencyTable:
    queues: dict[int, Latency] = field(default_factory=dict)
    processes: dict[int | None, Latency] = field(default_factory=dict)
    overall: Latency = field(default_factory=Latency)


def latency(*, queues: Sequence[Queue], start: datetime, now: datetime) -> LatencyTable:
    """Median and p90 time to first response and to resolution, per queue, per process and
    overall, over the cases resolved in (start, now]."""
    if not queues:
        return LatencyTable()
    if connection.vendor == "postgresql":
        return _latency_postgres(queues=queues, start=start, now=now)
    return _latency_sample(queues=queues, start=start, now=now)


def _latency_postgres(*, queues: Sequence[Queue], start: datetime, now: datetime
                      ) -> LatencyTable:
    # One scan; the three grouping sets each sort their share. ``percentile_cont`` over an
    # array answers both fractions from one sort.
    sql = f"""
        SELECT c.queue_id, q.process_id, GROUPING(c.queue_id, q.process_id) AS grouping,
               percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (
                   ORDER BY EXTRACT(EPOCH FROM c.first_claimed_at - c.created_at))
                   FILTER (WHERE c.first_claimed_at IS NOT NULL) AS response,
               count(c.first_claimed_at) AS response_count,
               percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (
                   ORDER BY EXTRACT(EPOCH FROM c.closed_at - c.created_at)) AS resolution,
               count(*) AS resolution_count
          FROM {Case._meta.db_table} c
          JOIN {Queue._meta.db_table} q ON q.id = c.queue_id
         WHERE c.queue_id = ANY(%s) AND c.state = %s
           AND c.closed_at > %s AND c.closed_at <= %s
         GROUP BY GROUPING SETS ((c.queue_id), (q.process_id), ())
    """
    table = LatencyTable()
    with connection.cursor() as cursor:
        cursor.execute(sql, [[queue.pk for queue in queues], CaseState.RESOLVED, start, now])
        for queue_id, process_id, grouping, response, n_response, resolution, n_resolution \
                in cursor.fetchall():
            figures = Latency(
                response_p50=response[0] if response else None,
                response_p90=response[1] if response else None,
                response_count=n_response,
                resolution_p50=resolution[0] if resolution else None,
                resolution_p90=resolution[1] if resolution else None,
                resolution_count=n_resolution)
            if grouping == 0b01:  # grouped by queue
                table.queues[queue_id] = figures
            elif grouping == 0b10:  # grouped by process
                table.processes[process_id] = figures
            else:
                table.overall = figures
    return table


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """``percentile_cont``: linear interpolation between the closest ranks of sorted values."""
    if not values:
        return None
    position = fraction * (len(values) - 1)
    lower, upper = math.floor(position), math.ceil(position)
    return values[lower] + (values[upper] - values[lower]) * (position - lower)


def _latency_of(responses: list[float], resolutions: list[float]) -> Latency:
    responses.sort()
    resolutions.sort()
    return Latency(response_p50=percentile(responses, 0.5),
                   response_p90=percentile(responses, 0.9), response_count=len(responses),
                   resolution_p50=percentile(resolutions, 0.5),
                   resolution_p90=percentile(resolutions, 0.9),
                   resolution_count=len(resolutions))


def _latency_sample(*, queues: Sequence[Queue], start: datetime, now: datetime
                    ) -> LatencyTable:
    """SQLite: the latest ``SQLITE_LATENCY_SAMPLE`` resolved cases, computed in Python."""
    process_of = {queue.pk: queue.process_id for queue in queues}
    rows = (Case.objects.filter(queue_id__in=list(process_of), state=CaseState.RESOLVED,
                                closed_at__gt=start, closed_at__lte=now)
            .order_by("-closed_at")
            .values_list("queue_id", "created_at", "first_claimed_at", "closed_at")
            [:SQLITE_LATENCY_SAMPLE])
    groups: dict[tuple[str, object], tuple[list, list]] = defaultdict(lambda: ([], []))
    for queue_id, created_at, first_claimed_at, closed_at in rows:
        for key in (("queue", queue_id), ("process", process_of[queue_id]), ("all", None)):
            responses, resolutions = groups[key]
            if first_claimed_at is not None:
                responses.append((first_claimed_at - created_at).total_seconds())
            resolutions.append((closed_at - created_at).total_seconds())
    table = LatencyTable()
    for (kind, ident), (responses, resolutions) in groups.items():
        figures = _latency_of(responses, resolutions)
        if kind == "queue":
            table.queues[ident] = figures
        elif kind == "process":
            table.processes[ident] = figures
        else:
            table.overall = figures
    return table


def throughput_by_reviewer(*, queue_ids: Sequence[int], start: datetime, now: datetime
                           ) -> dict[int, tuple[int, int]]:
    """Cases each person resolved (first reviewer) in the period, with their time spent."""
    rows = (Case.objects.filter(queue_id__in=list(queue_ids), state=CaseState.RESOLVED,
                                closed_at__gt=start, closed_at__lte=now,
                                first_reviewer__isnull=False)
            .values("first_reviewer_id")
            .annotate(n=Count("id"), spent=Sum("time_spent_seconds")).order_by())
    return {row["first_reviewer_id"]: (row["n"], row["spent"] or 0) for row in rows}


def escalations_by_level(*, queue_ids: Sequence[int] | None, start: datetime,
                         now: datetime) -> list[EscalationLevelCount]:
    """Escalations created in the period by level and cause (``escalation_created_idx``).

    ``queue_ids`` None: every queue (no join to the cases).
    """
    rows = Escalation.objects.filter(created_at__gt=start, created_at__lte=now)
    if queue_ids is not None:
        rows = rows.filter(case__queue_id__in=list(queue_ids))
    levels: dict[int, dict[str, int]] = {}
    for row in rows.values("level", "cause").annotate(n=Count("id")).order_by():
        by_cause = levels.setdefault(row["level"], {cause: 0 for cause in EscalationCause.values})
        by_cause[row["cause"]] = by_cause.get(row["cause"], 0) + row["n"]
    return [EscalationLevelCount(level=level, by_cause=levels[level]) for level in sorted(levels)]


def urgent_cases(*, queue_ids: Sequence[int], now: datetime, limit: int = URGENT_LIMIT
                 ) -> list[UrgentCase]:
    """Breached cases, then those at risk, each by the deadline to look at first."""
    rows = (open_cases().filter(queue_id__in=list(queue_ids))
            .annotate(sla=sla_status(now), deadline=next_deadline())
            .filter(sla__in=[AT_RISK, BREACHED])
            .select_related("queue", "assignee")
            .order_by("-sla", F("deadline").asc(nulls_last=True), "-priority", "id")[:limit])
    return [UrgentCase(case=case, status=case.sla, deadline=case.deadline) for case in rows]


def queue_members(queue_ids: Iterable[int]) -> dict[int, set[int]]:
    """Who works each queue, directly or through a group: one query."""
    queue_ids = list(queue_ids)
    if not queue_ids:
        return {}
    direct = Queue.members.through.objects.filter(queue_id__in=queue_ids).values_list(
        "queue_id", "user_id")
    via_groups = Queue.member_groups.through.objects.filter(
        queue_id__in=queue_ids, group__user__isnull=False).values_list("queue_id", "group__user")
    members: dict[int, set[int]] = defaultdict(set)
    for queue_id, user_id in direct.union(via_groups):
        members[queue_id].add(user_id)
    return members


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
    filtered = len(queues) != len(all_queues)

    if queue_ids:
        live, load = live_by_queue(queue_ids=queue_ids, now=now)
        compliance = compliance_by_queue(queue_ids=queue_ids, now=now)
        latencies = latency(queues=queues, start=start, now=now)
        throughput = throughput_by_reviewer(queue_ids=queue_ids, start=start, now=now)
        escalations = escalations_by_level(queue_ids=queue_ids if filtered else None,
                                           start=start, now=now)
        urgent = urgent_cases(queue_ids=queue_ids, now=now, limit=urgent_limit)
        members = queue_members({row.case.queue_id for row in urgent})
    else:
        live, load, compliance, throughput, escalations, urgent, members = (
            {}, {}, {}, {}, [], [], {})
        latencies = LatencyTable()

    # People: reviewers with load or throughput, and who may take over an urgent case.
    people_ids = set(load) | set(throughput) | {
        user_id for user_ids in members.values() for user_id in user_ids}
    User = get_user_model()
    people = {user.pk: user for user in User.objects.filter(pk__in=people_ids)} \
        if people_ids else {}

    total = Figures(key="all", label="All queues", latency=latencies.overall)
    groups: dict[int | None, ProcessGroup] = {}
    for row in queues:
        figures = Figures(key=f"queue-{row.pk}", label=row.name, queue=row,
                          process=row.process, live=live.get(row.pk, Live()),
                          latency=latencies.queues.get(row.pk, Latency()))
        for key, value in compliance.get(row.pk, {}).items():
            figures.compliance[key] = value
        group = groups.get(row.process_id)
        if group is None:
            group = groups[row.process_id] = ProcessGroup(
                figures=Figures(key=f"process-{row.process_id or 'none'}",
                                label=row.process.name if row.process else "No process",
                                process=row.process,
                                latency=latencies.processes.get(row.process_id, Latency())),
                queues=[])
        group.queues.append(figures)
        group.figures.add(figures)
        total.add(figures)
    ordered_groups = sorted(groups.values(), key=lambda group: (
        group.figures.process is None, group.figures.label.casefold()))

    reviewers = [Reviewer(user=people[user_id], open_assignments=load.get(user_id, 0),
                          resolved=throughput.get(user_id, (0, 0))[0],
                          time_spent_seconds=throughput.get(user_id, (0, 0))[1])
                 for user_id in set(load) | set(throughput) if user_id in people]
    reviewers.sort(key=lambda row: (-row.open_assignments, -row.resolved,
                                    str(row.user.get_username())))
    for row in urgent:
        row.candidates = sorted(
            (people[user_id] for user_id in members.get(row.case.queue_id, ())
             if user_id in people and people[user_id].is_active
             and user_id != row.case.assignee_id),
            key=lambda user: (user.get_full_name() or user.get_username()).casefold())

    return Dashboard(now=now, period=period, start=start, process=chosen_process,
                     queue=chosen_queue, queues=queues, all_queues=all_queues,
                     processes=processes, total=total, groups=ordered_groups,
                     reviewers=reviewers, escalations=escalations, urgent=urgent)
