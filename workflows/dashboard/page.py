"""The managers' SLA dashboard: every figure of the page, in a fixed number of queries."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.utils import timezone

from workflows import hooks, selectors
from workflows.dashboard.closed import GENERATION_KEY, closed_figures, escalations_by_level
from workflows.dashboard.figures import (
    BOARD_KEPT_SECONDS,
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
from workflows.dashboard.live import (
    URGENT_LIMIT,
    live_by_queue,
    live_snapshot,
    urgent_cases,
)
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
    others who look, and the whole page is as of the time they were counted: so the
    whole board is made once per count and shared too (``shared_board``). The domain's
    alerts are read at every look.
    """
    period = period if period in PERIODS else DEFAULT_PERIOD
    board = (make_board(process=process, queue=queue, period=period, now=now,
                        urgent_limit=urgent_limit) if now is not None
             else shared_board(process=process, queue=queue, period=period,
                               urgent_limit=urgent_limit))
    unknown = (process and board.process is None) or (queue and board.queue is None)
    scope = board.process or (board.queue.process if board.queue else None)
    board.alerts = [] if unknown else hooks.open_alerts(process_id=scope.pk if scope else None)
    return board


def shared_board(*, process: str, queue: str, period: str, urgent_limit: int) -> Dashboard:
    """The board as of the open cases' last count (``live_snapshot``), made by the first
    look after that count and kept in the shared cache for the looks that follow until
    the next one: each of them reads two cache entries and the count's time instead of
    a dozen queries. A board made before the closed figures were forgotten
    (``forget_closed_figures``) is made again."""
    key = board_key(process=process, queue=queue, period=period, urgent_limit=urgent_limit)
    found = cache.get_many([key, GENERATION_KEY])
    kept, generation = found.get(key), found.get(GENERATION_KEY, 1)
    now = timezone.now()
    if kept is not None and kept.generation == generation and kept.queues:
        snapshot = live_snapshot(queue_ids=kept.scope, now=now, urgent_limit=urgent_limit)
        if snapshot[0] == kept.now:
            return kept
    board = make_board(process=process, queue=queue, period=period, now=now,
                       urgent_limit=urgent_limit, shared=True)
    board.generation = generation
    if board.queues:
        cache.set(key, board, timeout=BOARD_KEPT_SECONDS)
    return board


def board_key(*, process: str, queue: str, period: str, urgent_limit: int) -> str:
    """Where ``shared_board`` keeps the board of these filters."""
    # The filters come from the address: hashed, so that any text makes a valid key.
    filters = hashlib.sha256(f"{process}\n{queue}".encode()).hexdigest()[:32]
    return f"dashboard:board:{filters}:{period}:{urgent_limit}"


def make_board(*, process: str, queue: str, period: str, now: datetime, urgent_limit: int,
               shared: bool = False) -> Dashboard:
    """The board as of ``now``; ``shared``: as of the open cases' last count instead."""
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

    return Dashboard(now=now, period=period, start=start, process=chosen_process,
                     queue=chosen_queue, queues=queues, all_queues=all_queues,
                     processes=processes, total=total, groups=ordered_groups,
                     reviewers=reviewers, escalations=escalations, urgent=urgent,
                     scope=scoped)
