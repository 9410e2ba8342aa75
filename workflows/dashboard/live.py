"""Open cases now: counts, SLA status and age per queue, load per person, the urgent ones."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count, F, Max, Min, Q, QuerySet

from workflows.dashboard.figures import AGE_BUCKETS, Live, UrgentCase
from workflows.dashboard.queries import AT_RISK, BREACHED, next_deadline, open_cases, sla_status
from workflows.models import HELD_STATES, Case
from workflows.services.sla.status import reached

URGENT_LIMIT = 25
# How long the open cases' figures are shared between the managers who look: counting a
# million open cases by SLA status takes a second or more, and twenty managers (or one
# refreshing) would each pay it. The page says the time they were counted at.
LIVE_SECONDS = 10
# While one request counts again, the others show the last count, up to this old; only
# without any count at all does a request wait for one.
STALE_SECONDS = 300
# Beat's count of the whole desk reads about this many open cases at a time and then
# rests as long as they took: at a million open cases one statement held PostgreSQL's
# cores (it runs in parallel) for a second and a half, and every person's request
# meanwhile waited (the paced p99 of the reviewers' bench).
SLICE_ROWS = 20_000
# A count that took over a second is made again only after SPACING times what it took:
# at a million open cases one costs about ten seconds of a core, and counting back to
# back would take that core from the people working. Smaller desks are counted every
# LIVE_SECONDS (beat's: every 8 s), as before.
SPACING = 10
SLOW_COUNT_SECONDS = 1.0

# (after, up to): a range of open cases' ids.
IdRange = tuple[int, int]


def live_snapshot(*, queue_ids: Sequence[int] | None, now: datetime,
                  urgent_limit: int = URGENT_LIMIT, recount: bool = False
                  ) -> tuple[datetime, dict[int, Live], dict[int, int], list[UrgentCase]]:
    """``live_by_queue`` and ``urgent_cases`` as counted at most LIVE_SECONDS ago, or
    SPACING times the last count's duration after a slow one (in the shared cache), with
    the time they were counted at. One request at a time counts again (the others,
    meanwhile, get the last count): a web worker held by the count is one of the pool,
    never all of it. ``recount``: count unless another is counting or the last count is
    younger than SPACING times its duration (the beat job that keeps the whole desk's
    count fresh, off the web workers: it counts in slices, ``count_in_slices``; a look
    waits a little longer than beat would, so beat counts first)."""
    scope = "all" if queue_ids is None else ",".join(map(str, sorted(queue_ids)))
    key = f"dashboard:live:{scope}:{urgent_limit}"
    snapshot, took = (cache.get_many([key, f"{key}:took"]).get(name)
                      for name in (key, f"{key}:took"))
    took = took if took is not None and took > SLOW_COUNT_SECONDS else 0.0
    fresh_for = timedelta(seconds=SPACING * took if recount
                          else LIVE_SECONDS + (SPACING + 1) * took)
    # The cache's own expiry runs on its clock; the age is judged on ours.
    fresh = snapshot is not None and timedelta(0) <= now - snapshot[0] < fresh_for
    kept = max(STALE_SECONDS, 3 * fresh_for.total_seconds())
    if fresh or (snapshot is not None
                 and not cache.add(f"{key}:counting", True, timeout=kept)):
        return snapshot
    try:
        started = time.monotonic()
        if recount:
            live, load, urgent = count_in_slices(queue_ids=queue_ids, now=now,
                                                 urgent_limit=urgent_limit)
        else:
            live, load = live_by_queue(queue_ids=queue_ids, now=now)
            urgent = urgent_cases(queue_ids=queue_ids, now=now, limit=urgent_limit)
        snapshot = (now, live, load, urgent)
        cache.set_many({key: snapshot, f"{key}:took": time.monotonic() - started}, kept)
    finally:
        cache.delete(f"{key}:counting")
    return snapshot


def count_in_slices(*, queue_ids: Sequence[int] | None, now: datetime, urgent_limit: int
                    ) -> tuple[dict[int, Live], dict[int, int], list[UrgentCase]]:
    """``live_by_queue`` and ``urgent_cases`` read a range of open cases' ids at a time,
    about SLICE_ROWS cases, resting after each range as long as it took: the same
    figures (counts add up; the most urgent of all are the most urgent of each range's
    most urgent), at most half of one core's time while counting, without PostgreSQL's
    parallel workers (they would take the other core too). Each case is counted once, in
    the state it had when its range was read: the figures are those of ``now`` give or
    take the cases that moved during the count (a few seconds)."""
    live: dict[int, Live] = defaultdict(Live)
    load: dict[int, int] = defaultdict(int)
    urgent: list[UrgentCase] = []
    bounds = _in_scope(open_cases(), queue_ids).aggregate(first=Min("id"), last=Max("id"))
    if bounds["first"] is None:
        return {}, {}, []
    after, width = bounds["first"] - 1, SLICE_ROWS
    while after < bounds["last"]:
        started = time.monotonic()
        ids = (after, after + width)
        with transaction.atomic(), _without_parallel_workers():
            slice_live, slice_load = live_by_queue(queue_ids=queue_ids, now=now, ids=ids)
            slice_urgent = urgent_cases(queue_ids=queue_ids, now=now, limit=urgent_limit,
                                        ids=ids)
        for queue_id, figures in slice_live.items():
            live[queue_id].add(figures)
        for person_id, held in slice_load.items():
            load[person_id] += held
        urgent = sorted(urgent + slice_urgent, key=_urgency)[:urgent_limit]
        # Where open cases are sparse (most of a long history is closed), wider ranges.
        found = sum(figures.open for figures in slice_live.values())
        if found < SLICE_ROWS // 4:
            width *= 2
        elif found > 2 * SLICE_ROWS:
            width = max(SLICE_ROWS, width // 2)
        after = ids[1]
        time.sleep(time.monotonic() - started)
    return dict(live), dict(load), urgent


@contextmanager
def _without_parallel_workers() -> Iterator[None]:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
    yield


def _in_scope(rows: QuerySet[Case], queue_ids: Sequence[int] | None,
              ids: IdRange | None = None) -> QuerySet[Case]:
    if queue_ids is not None:
        rows = rows.filter(queue_id__in=list(queue_ids))
    if ids is not None:
        rows = rows.filter(id__gt=ids[0], id__lte=ids[1])
    return rows


def _urgency(row: UrgentCase) -> tuple:
    """``urgent_cases``' order: breached first, then by deadline (none last), priority."""
    return (-row.status, row.deadline is None, row.deadline or row.case.created_at,
            -row.case.priority, row.case.pk)


def live_by_queue(*, queue_ids: Sequence[int] | None, now: datetime,
                  ids: IdRange | None = None) -> tuple[dict[int, Live], dict[int, int]]:
    """Open cases per queue (counts, SLA status, age buckets) and per assignee: one query,
    grouped by (queue, assignee, state), so its rows grow with queues x people, not cases.

    ``queue_ids`` None: every queue. ``ids``: only the open cases in that range.
    """
    buckets = {}
    for key, _, older_than, younger_than in AGE_BUCKETS:
        condition = Q(created_at__lte=now - older_than) if older_than else Q()
        if younger_than is not None:
            condition &= Q(created_at__gt=now - younger_than)
        buckets[f"age_{key}"] = Count("id", filter=condition)
    rows = (_in_scope(open_cases(), queue_ids, ids).alias(sla=sla_status(now))
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
                 limit: int = URGENT_LIMIT, ids: IdRange | None = None) -> list[UrgentCase]:
    """Breached cases, then those at risk, each by the deadline to look at first."""
    rows = _in_scope(open_cases(), queue_ids, ids)
    # No join: PostgreSQL would join every at-risk case before keeping the first few; the
    # caller attaches queues and people it reads anyway.
    rows = (rows.annotate(sla=sla_status(now), deadline=next_deadline())
            .filter(sla__in=[AT_RISK, BREACHED])
            .order_by("-sla", F("deadline").asc(nulls_last=True), "-priority", "id")[:limit])
    return [UrgentCase(case=case, status=case.sla, deadline=case.deadline,
                       overdue=reached(case.deadline, now)) for case in rows]
