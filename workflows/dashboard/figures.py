"""What the dashboard shows: the figures of a queue, a process or the whole scope."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlencode

from workflows.dashboard.queries import AT_RISK, BREACHED, ON_TRACK
from workflows.dashboard.sketches import sketch_percentile
from workflows.hooks import Alert
from workflows.models import OPEN_STATES, Case, Process, Queue

# How long a board made for the managers' looks (``page.shared_board``) and the parts of
# the page rendered from it are kept: it is current until the open cases' next count.
BOARD_KEPT_SECONDS = 300

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
STATUS_LABELS = {status: status.label for status in (ON_TRACK, AT_RISK, BREACHED)}


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


@dataclass(frozen=True)
class ListFilters:
    """Query strings of the case list (``/cases/?…``) matching a figure: its queue or
    use case (process), or everything, and the figure's SLA status or open states."""

    queue: Queue | None = None
    process: Process | None = None

    def _query(self, **filters) -> str:
        scope = ({"queue": self.queue.slug} if self.queue is not None
                 else {"process": self.process.slug} if self.process is not None else {})
        return urlencode({**scope, **filters}, doseq=True)

    @property
    def open(self) -> str:
        return self._query(state=[str(state) for state in OPEN_STATES])

    @property
    def at_risk(self) -> str:
        return self._query(sla="at_risk")

    @property
    def breached(self) -> str:
        return self._query(sla="breached")


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
    # The total's cases, where it is neither one queue's nor one process's.
    list_scope: ListFilters | None = None

    @property
    def list_filters(self) -> ListFilters:
        """The case list's filters for the cases each figure counts."""
        return self.list_scope or ListFilters(queue=self.queue, process=self.process)

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
    overdue: bool = False  # the deadline is reached (``sla.reached``: at its instant)
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
    # The queues counted (None: every queue), as ``live_snapshot`` takes them.
    scope: list[int] | None = None
    # The closed figures' generation (``forget_closed_figures``) it was made in.
    generation: int = 1
    # Which board this is: the page's parts that show only its figures (not the urgent
    # cases' reassign forms, made for the person looking) are rendered once per board
    # and kept in the cache under it (``templates/workflows/dashboard/_body.html``).
    edition: str = field(default_factory=lambda: uuid.uuid4().hex)
    # The domain's open alerts (drift...), through ``hooks.open_alerts``: read at every
    # look, never shared.
    alerts: list[Alert] = field(default_factory=list)

    @property
    def period_label(self) -> str:
        return PERIOD_LABELS[self.period]

    @property
    def kept_seconds(self) -> int:
        return BOARD_KEPT_SECONDS

    @property
    def queue_figures(self) -> list[Figures]:
        return [row for group in self.groups for row in group.queues]

    @property
    def list_filters(self) -> ListFilters:
        return ListFilters(queue=self.queue, process=self.process)

    @property
    def urgent_total(self) -> int:
        return self.total.live.at_risk + self.total.live.breached

    @property
    def escalation_total(self) -> int:
        return sum(level.total for level in self.escalations)
