"""The managers' SLA dashboard: every figure of the page, in a fixed number of queries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.contrib.auth import get_user_model
from django.utils import timezone

from workflows import hooks, selectors
from workflows.dashboard.closed import closed_figures, escalations_by_level
from workflows.dashboard.figures import (
    DEFAULT_PERIOD,
    PERIODS,
    ClosedSummary,
    Compliance,
    Dashboard,
    Figures,
    ListFilters,
    Live,
    ProcessGroup,
    Reviewer,
)
from workflows.dashboard.live import URGENT_LIMIT, live_by_queue, live_snapshot, urgent_cases
from workflows.models import Process, Queue


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
    SLA compliance is always given for every period). Without ``now`` (a manager looking
    now) the open cases' figures may be up to ``LIVE_SECONDS`` old, shared with the
    others who look, and the whole page is as of the time they were counted.
    """
    shared = now is None
    now = now or timezone.now()
    period = period if period in PERIODS else DEFAULT_PERIOD
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
        if shared:
            now, live, load, urgent = live_snapshot(queue_ids=scoped, now=now,
                                                    urgent_limit=urgent_limit)
        else:
            live, load = live_by_queue(queue_ids=scoped, now=now)
            urgent = urgent_cases(queue_ids=scoped, now=now, limit=urgent_limit)
        start = now - PERIODS[period]
        closed = closed_figures(queue_ids=queue_ids, all_queue_ids=[row.pk for row in all_queues],
                                starts={key: now - length for key, length in PERIODS.items()},
                                detail=period, now=now)
        escalations = escalations_by_level(queue_ids=scoped, start=start, now=now)
        members = selectors.queue_worker_ids({row.case.queue_id for row in urgent})
    else:
        live, load, escalations, urgent, members = {}, {}, [], [], {}
        closed = {key: {} for key in PERIODS}
        start = now - PERIODS[period]

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

    total = Figures(key="all", label="All queues", list_scope=ListFilters(
        queue=chosen_queue, process=chosen_process))
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

    scope = chosen_process or (chosen_queue.process if chosen_queue else None)
    alerts = ([] if (process and chosen_process is None) or (queue and chosen_queue is None)
              else hooks.open_alerts(process_id=scope.pk if scope else None))
    return Dashboard(now=now, period=period, start=start, process=chosen_process,
                     queue=chosen_queue, queues=queues, all_queues=all_queues,
                     processes=processes, total=total, groups=ordered_groups,
                     reviewers=reviewers, escalations=escalations, urgent=urgent,
                     alerts=alerts)
