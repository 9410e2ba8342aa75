"""SLA clocks: due times in business time, stored on the case (I6).

A case has two clocks. The *response* clock runs from opening until the first claim;
the *resolution* clock runs until the case closes, paused while it waits for
information. Each has a warning (``warning_fraction`` of its target) and a deadline:

- ``response_warn_at`` / ``response_due_at`` and ``warn_at`` / ``due_at`` are the
  instants, computed with ``business_time`` over the policy's calendar;
- ``sla_next_check_at`` is the earliest of them still ahead: the only column the sweeper
  reads (``case_sla_check_idx``). Paused and closed cases have none.

Where the terms come from. A queue's current ``SlaPolicy`` version gives, per priority,
the two targets (the ``SlaTarget`` with the highest ``min_priority`` not above the
case's), a calendar (none: 24x7) and the warning fraction. A queue without a policy
uses its own wall-clock ``response_target`` / ``resolution_target`` and
``DEFAULT_WARNING_FRACTION``. A case keeps the version it opened under
(``case.sla_policy``): publishing a new version changes new cases only, until a
manager re-applies it to the open ones (``reapply_policy``, audited).

Levels. Breaching a deadline escalates the case one level (``sweeper`` calls
``escalation.escalate``). The response clock belongs to level 0 only. ``escalate``
chooses how long the case may stay at its new level (the chain's ``time_limit``, the
queue's target without a chain, none past the chain's end) and calls ``on_escalated``,
which sets the resolution clock for the level in business time, with its warning. A
deadline at or before the moment the case reached its level has been dealt with (it is
what escalated it, or the chain ended) and is no longer *live*; that is how these
functions tell a current deadline from a spent one without another column.

Every function here only sets fields on the case it is given; the caller saves, in
its transaction. ``now`` is always injectable.

The package, one module per seam: ``terms`` (which targets and calendar apply),
``clocks`` (pure arithmetic on a case's fields), ``hooks`` (what the case services call
as the case changes), ``policies`` (publish and re-apply), ``closures`` (calendar
closures and the clocks they move), ``nudges`` (short-ETA tasks after commit),
``status`` (on track, at risk, breached: the one definition, in Python and SQL).
Callers use the names re-exported here: ``from workflows.services import sla``.
"""

from workflows.services.sla.clocks import (
    deadline_live,
    next_check_at,
    resolution_target,
    response_running,
    warning_live,
)
from workflows.services.sla.closures import add_closure, remove_closure
from workflows.services.sla.hooks import (
    on_escalated,
    on_priority_change,
    on_reassign,
    pause,
    resume,
    start_clocks,
)
from workflows.services.sla.nudges import (
    NUDGE_MARGIN,
    nudge,
    nudge_horizon,
    send_nudges,
    uses_row_locks,
)
from workflows.services.sla.policies import REAPPLY_CHUNK, publish_sla_policy, reapply_policy
from workflows.services.sla.status import (
    SlaStatus,
    case_status,
    having_status,
    reached,
    reached_q,
    status_expression,
)
from workflows.services.sla.terms import (
    CLOSURE_LOOKBACK,
    DEFAULT_WARNING_FRACTION,
    Rules,
    SlaTerms,
    TermsBook,
    book_for,
    business_calendar,
    rules_for,
)

__all__ = [
    "CLOSURE_LOOKBACK",
    "DEFAULT_WARNING_FRACTION",
    "NUDGE_MARGIN",
    "REAPPLY_CHUNK",
    "Rules",
    "SlaStatus",
    "SlaTerms",
    "TermsBook",
    "add_closure",
    "book_for",
    "business_calendar",
    "case_status",
    "deadline_live",
    "having_status",
    "next_check_at",
    "nudge",
    "nudge_horizon",
    "on_escalated",
    "on_priority_change",
    "on_reassign",
    "pause",
    "publish_sla_policy",
    "reached",
    "reached_q",
    "reapply_policy",
    "remove_closure",
    "resolution_target",
    "response_running",
    "resume",
    "rules_for",
    "send_nudges",
    "start_clocks",
    "status_expression",
    "uses_row_locks",
    "warning_live",
]
