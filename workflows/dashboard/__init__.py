"""Read queries for the managers' SLA dashboard and the Prometheus scrape (``metrics``).

What the figures mean:

- **open**: cases in an open state (open, assigned, waiting, pending approval, escalated).
- **breached**: the resolution deadline in force is reached (``due_at <= now``: a
  deadline is reached at its instant). A case waiting for information has its clock
  stopped: it counts as breached only if its deadline was reached when it paused
  (``due_at <= waiting_since``). The rule is ``workflows.services.sla.status``, the same
  one the case page and the sweeper use.
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
  (the partial index ``case_open_idx`` proposed in docs/PERFORMANCE.md serves it). A
  backlog of a million open cases takes a second or more to count, so a manager's look
  shares the count (and the urgent cases) of one made up to ``LIVE_SECONDS`` earlier
  (``live_snapshot``, in the shared cache) and the page says when it was counted; with
  Redis, beat's ``count_open_cases`` counts the whole desk every 8 s on a worker, so a
  look at it does not count in a web worker; it reads about ``SLICE_ROWS`` open cases
  at a time and rests between them, so it never holds a PostgreSQL core for long, and a
  count is made again only after ``SPACING`` times what the last one took (a million
  open cases: counted every three minutes or so, at about a twentieth of one core).
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
- The board as a whole: every figure of a look is as of the open cases' count it shows,
  so the first look after a count makes the board (``shared_board``; beat's count makes
  the default view's) and the looks until the next count read it from the cache, with
  the parts of the page that show only its figures rendered once (``Dashboard.edition``);
  only the domain's alerts and the urgent cases' reassign forms are made at every look.

The package, one module per seam: ``queries`` (the pieces of a query: open cases, SLA
status, next deadline, SLA met), ``sketches`` (latency sketches), ``figures`` (what the
page shows), ``live`` (open cases now), ``closed`` (closed cases, cached per hour and
day), ``page`` (the whole dashboard). Callers use the names re-exported here.
"""

from workflows.dashboard.closed import (
    FINAL_AFTER,
    SUMMARY_TTL,
    closed_figures,
    escalations_by_level,
    forget_closed_figures,
    plan_period,
    summarise,
)
from workflows.dashboard.figures import (
    AGE_BUCKETS,
    DEFAULT_PERIOD,
    PERIOD_LABELS,
    PERIODS,
    STATUS_LABELS,
    ClosedSummary,
    Compliance,
    Dashboard,
    EscalationLevelCount,
    Figures,
    Latency,
    Live,
    ProcessGroup,
    Reviewer,
    UrgentCase,
)
from workflows.dashboard.live import (
    LIVE_SECONDS,
    SLICE_ROWS,
    SPACING,
    URGENT_LIMIT,
    count_in_slices,
    live_by_queue,
    live_snapshot,
    urgent_cases,
)
from workflows.dashboard.page import dashboard, scope_queues, shared_board
from workflows.dashboard.queries import (
    AT_RISK,
    BREACH_CAUSES,
    BREACHED,
    ON_TRACK,
    Seconds,
    next_deadline,
    open_cases,
    sla_met,
    sla_status,
)
from workflows.dashboard.sketches import (
    SKETCH_ACCURACY,
    SKETCH_GAMMA,
    bucket_of,
    bucket_value,
    sketch_bucket,
    sketch_percentile,
)

__all__ = [
    "AGE_BUCKETS", "AT_RISK", "BREACHED", "BREACH_CAUSES", "DEFAULT_PERIOD", "FINAL_AFTER",
    "LIVE_SECONDS", "ON_TRACK", "PERIODS", "PERIOD_LABELS", "SKETCH_ACCURACY", "SKETCH_GAMMA",
    "SLICE_ROWS", "SPACING", "STATUS_LABELS",
    "SUMMARY_TTL", "URGENT_LIMIT", "ClosedSummary", "Compliance", "Dashboard",
    "EscalationLevelCount", "Figures", "Latency", "Live", "ProcessGroup", "Reviewer", "Seconds",
    "UrgentCase", "bucket_of", "bucket_value", "closed_figures", "count_in_slices", "dashboard",
    "escalations_by_level", "forget_closed_figures", "live_by_queue", "live_snapshot",
    "next_deadline",
    "open_cases", "plan_period", "scope_queues", "shared_board", "sketch_bucket",
    "sketch_percentile", "sla_met", "sla_status", "summarise", "urgent_cases",
]
