"""The managers' SLA dashboard and the /metrics scrape over a million cases (PostgreSQL).

    .venv/bin/python bench/dashboard.py [--closed 980000] [--open 20000] [--runs 15]
                                        [--reseed]

What it does, in one run:

1. Uses its own database ``bs_dashbench`` (created if missing), migrates it and, when it
   holds fewer cases than asked (or with ``--reseed``), fills it with
   ``INSERT ... SELECT generate_series``: ``--closed`` cases closed over the last 30 days
   (3% cancelled, the rest resolved; about 80% within their 8-hour deadline; most of
   the late ones escalated, with their escalation rows) and ``--open`` open cases in
   every open state, nine in ten opened in the last 12 hours and the rest over the last
   five days (8-hour deadlines: about half at risk or breached), in 10 queues of 5 processes
   worked by 40 reviewers. Then ``VACUUM ANALYZE``.
2. Prints EXPLAIN (ANALYZE, BUFFERS) of every query the dashboard runs (7-day period),
   with the indexes each one uses.
3. Times ``workflows.dashboard.dashboard`` (the selectors) per period, a full request of
   the page through Django's test client signed in as a manager, and a ``/metrics``
   scrape: p50, p99 and max over ``--runs`` runs after one warm-up, with the number of
   queries each does; the dashboard with the cache of complete hours and days warm (the
   steady state) and cold (cleared before every run: the first view after a flush). The
   cache is the settings' (local memory without ``REDIS_URL``).
"""

import argparse
import os
import re
import statistics
import time

from support import case_columns, ensure_database, setup_django

DATABASE = "bs_dashbench"
QUEUE_PREFIX = "dash-q"
QUEUES, PROCESSES, REVIEWERS = 10, 5, 40


# -- seeding ----------------------------------------------------------------------------------

# Pseudo-random but repeatable per row: u and v in [0, 1).
_U = "(((n * 7919) %% 10007) / 10007.0)"
_V = "(((n * 104729) %% 10009) / 10009.0)"
# Closed cases: closed n * 2.6 s before now (30 days for 980,000), first response 1 min
# to 2 h, resolution 5 min to 16 h on top: about 80% within the 8-hour target.
_RESPONSE = f"(60 + 7200 * {_V} * {_V})"
_RESOLUTION = f"({_RESPONSE} + 300 + 57600 * {_U} * {_U} * {_U})"
_CLOSED_AT = "(now() - make_interval(secs => n * {spacing}))"
_CREATED_CLOSED = f"({_CLOSED_AT} - make_interval(secs => {_RESOLUTION}))"
# Open cases: nine in ten opened in the last 12 hours, the rest up to 4.6 days ago.
_CREATED_OPEN = ("(now() - make_interval(secs => CASE WHEN n %% 10 = 0 THEN n * 20 "
                 "ELSE (n * 7) %% 43200 END))")
_OPEN_STATE = ("(ARRAY['open', 'open', 'open', 'open', 'assigned', 'assigned', 'assigned', "
               "'waiting', 'pending_approval', 'escalated'])[1 + (n %% 10)::int]")
_REVIEWER = "r.ids[1 + ((n * 31) %% array_length(r.ids, 1))::int]"


def _case_insert_sql(*, closed: bool, spacing: float) -> str:
    """INSERT ... SELECT generate_series for workflows_case (``support.case_columns``)."""
    created = _CREATED_CLOSED if closed else _CREATED_OPEN
    expressions = {
        "queue_id": "q.ids[1 + (n %% array_length(q.ids, 1))::int]",
        "title": "'Bench case ' || n",
        "priority": "(ARRAY[90, 70, 50, 50, 30])[1 + (n %% 5)::int]",
        "requires_four_eyes": "false",
        "created_at": created,
        "response_due_at": f"{created} + interval '1 hour'",
        "response_warn_at": f"{created} + interval '45 minutes'",
        "due_at": f"{created} + interval '8 hours'",
        "warn_at": f"{created} + interval '6 hours'",
        "time_spent_seconds": "60 + n %% 900",
        "version": "1",
    }
    if closed:
        expressions.update(
            state="CASE WHEN n %% 33 = 0 THEN 'cancelled' ELSE 'resolved' END",
            closed_at=_CLOSED_AT,
            first_claimed_at=f"{created} + make_interval(secs => {_RESPONSE})",
            assignee_id=_REVIEWER, first_reviewer_id=_REVIEWER,
            # Three in four late cases were escalated by the sweeper (level 1).
            escalation_level=f"CASE WHEN {_RESOLUTION} > 28800 AND n %% 4 <> 0 THEN 1 ELSE 0 END")
    else:
        state = _OPEN_STATE
        held = f"{state} IN ('assigned', 'waiting')"
        expressions.update(
            state=state,
            first_claimed_at=f"CASE WHEN {held} OR {state} = 'pending_approval' "
                             f"THEN {created} + interval '10 minutes' END",
            assignee_id=f"CASE WHEN {held} THEN {_REVIEWER} END",
            first_reviewer_id=f"CASE WHEN {state} = 'pending_approval' THEN {_REVIEWER} END",
            waiting_since=f"CASE WHEN {state} = 'waiting' THEN now() - interval '1 hour' END",
            escalation_level=f"CASE WHEN {state} = 'escalated' THEN 1 ELSE 0 END",
            lease_expires_at=f"CASE WHEN {state} = 'assigned' "
                             "THEN now() + interval '30 minutes' END",
            sla_next_check_at=f"CASE WHEN {state} <> 'waiting' "
                              f"THEN {created} + interval '8 hours' END")
    columns, values = case_columns(
        {column: sql.replace("{spacing}", f"{spacing:.6f}") for column, sql in expressions.items()})
    return (f"INSERT INTO workflows_case ({', '.join(columns)}) "
            f"SELECT {', '.join(values)} "
            f"FROM generate_series(1::bigint, %s::bigint) AS n, "
            f"(SELECT array_agg(id ORDER BY id) AS ids FROM workflows_queue "
            f" WHERE slug LIKE '{QUEUE_PREFIX}%%') AS q, "
            f"(SELECT array_agg(id ORDER BY id) AS ids FROM workflows_user "
            f" WHERE username LIKE 'dash-reviewer%%') AS r")


ESCALATIONS_SQL = """
    INSERT INTO workflows_escalation (case_id, level, cause, reason, due_at, created_at)
    SELECT id, 1,
           CASE WHEN state IN ('resolved', 'cancelled') THEN 'resolution_breach'
                ELSE 'response_breach' END,
           '',
           CASE WHEN state IN ('resolved', 'cancelled') THEN due_at ELSE response_due_at END,
           CASE WHEN state IN ('resolved', 'cancelled') THEN due_at ELSE response_due_at END
      FROM workflows_case WHERE escalation_level >= 1
"""
# A few went to level 2 by hand.
LEVEL_TWO_SQL = """
    INSERT INTO workflows_escalation (case_id, level, cause, reason, created_at)
    SELECT id, 2, 'manual', 'bench', due_at + interval '2 hours'
      FROM workflows_case WHERE escalation_level = 1 AND id % 10 = 0
"""


def seed(*, closed: int, open_cases: int, reseed: bool) -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.db import connection

    from workflows.models import Case, Process, Queue

    User = get_user_model()
    processes = [Process.objects.get_or_create(slug=f"dash-process-{n}",
                                               defaults={"name": f"Bench use case {n}"})[0]
                 for n in range(PROCESSES)]
    queues = [Queue.objects.get_or_create(
        slug=f"{QUEUE_PREFIX}{n:02d}",
        defaults={"name": f"Bench queue {n:02d}", "process": processes[n % PROCESSES]})[0]
        for n in range(QUEUES)]
    for n in range(REVIEWERS):
        user, _ = User.objects.get_or_create(username=f"dash-reviewer{n:02d}")
        user.review_queues.set([queues[n % QUEUES], queues[(n + 3) % QUEUES]])
    manager, _ = User.objects.get_or_create(username="dash-manager")
    manager.user_permissions.add(Permission.objects.get(codename="manage_cases"))

    total = Case.objects.count()
    if total >= closed + open_cases and not reseed:
        print(f"seed: {total:,} cases already there (use --reseed to start over)")
        return
    started = time.perf_counter()
    spacing = 30 * 86400 / max(1, closed) * 0.98
    with connection.cursor() as cursor:
        # Audit rows are append-only (a trigger refuses DELETE): TRUNCATE the bench's own
        # tables instead, in its own database.
        cursor.execute("TRUNCATE workflows_case, workflows_escalation, workflows_auditevent, "
                       "workflows_auditseal, workflows_auditcheckpoint, workflows_resolution "
                       "CASCADE")
        cursor.execute(_case_insert_sql(closed=True, spacing=spacing), [closed])
        cursor.execute(_case_insert_sql(closed=False, spacing=spacing), [open_cases])
        cursor.execute(ESCALATIONS_SQL)
        cursor.execute(LEVEL_TWO_SQL)
        cursor.execute("VACUUM ANALYZE workflows_case")  # autocommit: not in a transaction
        cursor.execute("VACUUM ANALYZE workflows_escalation")
    print(f"seed: {closed:,} closed and {open_cases:,} open cases over {QUEUES} queues in "
          f"{time.perf_counter() - started:.1f} s (INSERT ... SELECT generate_series)")


# -- measuring --------------------------------------------------------------------------------

def _percentile(sorted_values, fraction) -> float:
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def timed(function, *, runs: int, before=lambda: None) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    function()  # warm-up: connection, caches, plan of the first query
    timings, queries = [], 0
    for _ in range(runs):
        before()
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            function()
            timings.append(time.perf_counter() - started)
        queries = len(captured.captured_queries)
    timings.sort()
    return {"p50": statistics.median(timings), "p99": _percentile(timings, 0.99),
            "max": timings[-1], "queries": queries}


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def explain(period: str) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of every SELECT the dashboard runs, with its indexes."""
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from workflows import dashboard

    cache.clear()  # cold: every query the dashboard can run
    with CaptureQueriesContext(connection) as captured:
        dashboard.dashboard(period=period)
    print(f"\nEXPLAIN ANALYZE of the dashboard's {len(captured.captured_queries)} queries "
          f"on a cold cache (period {period}):")
    with connection.cursor() as cursor:
        for number, query in enumerate(captured.captured_queries, 1):
            sql = query["sql"]
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
            plan = [row[0] for row in cursor.fetchall()]
            text = "\n".join(plan)
            indexes = sorted(set(re.findall(r"(?:Index|Index Only|Bitmap Index) Scan "
                                            r"(?:Backward )?(?:using|on) (\w+)", text)))
            seq = sorted(set(re.findall(r"Seq Scan on (\w+)", text)))
            runtime = re.search(r"Execution Time: ([\d.]+) ms", text)
            what = re.sub(r"\s+", " ", sql)[:110]
            print(f"  {number:2d}. {float(runtime.group(1)) if runtime else 0:8.1f} ms  "
                  f"indexes: {', '.join(indexes) or '-'}"
                  f"{'  SEQ SCAN: ' + ', '.join(seq) if seq else ''}\n      {what}")
            if os.environ.get("BENCH_PLANS"):
                print("\n".join("        " + line for line in plan))


def measure(*, runs: int) -> None:
    """Each figure twice: with the cache of complete hours and days warm (every request
    but the first after a cache flush), and cold (cleared before every run)."""
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.test import Client

    from workflows import dashboard

    client = Client()
    client.force_login(get_user_model().objects.get(username="dash-manager"))

    def page(period):
        response = client.get("/dashboard/", {"period": period})
        assert response.status_code == 200, response.status_code

    def scrape():
        response = client.get("/metrics")
        assert response.status_code == 200, response.status_code

    print(f"\nServer time over {runs} runs (cold: {max(3, runs // 3)}) after a warm-up "
          "(p50 / p99 / max; queries):")
    cold_runs = max(3, runs // 3)
    for label, before, count in (("warm cache", lambda: None, runs),
                                 ("cold cache", cache.clear, cold_runs)):
        for period in dashboard.PERIODS:
            figures = timed(lambda period=period: dashboard.dashboard(period=period),
                            runs=count, before=before)
            print(f"  {label}, selectors, {period:>3}:    {ms(figures['p50'])} "
                  f"{ms(figures['p99'])} {ms(figures['max'])}   {figures['queries']} queries")
        for period in dashboard.PERIODS:
            figures = timed(lambda period=period: page(period), runs=count, before=before)
            print(f"  {label}, page request, {period:>3}: {ms(figures['p50'])} "
                  f"{ms(figures['p99'])} {ms(figures['max'])}   {figures['queries']} queries")
    figures = timed(scrape, runs=runs)
    print(f"  /metrics scrape:                {ms(figures['p50'])} {ms(figures['p99'])} "
          f"{ms(figures['max'])}   {figures['queries']} queries")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--closed", type=int, default=980_000)
    parser.add_argument("--open", type=int, default=20_000, dest="open_cases")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--reseed", action="store_true")
    args = parser.parse_args()

    ensure_database(DATABASE)
    setup_django(DATABASE)
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    seed(closed=args.closed, open_cases=args.open_cases, reseed=args.reseed)
    from workflows.models import Case, Escalation

    still_open = Case.objects.filter(closed_at__isnull=True).count()
    print(f"data: {Case.objects.count():,} cases ({still_open:,} open), "
          f"{Escalation.objects.count():,} escalations")
    print(f"machine: {os.cpu_count()} cores, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} before the runs")
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
        cursor.execute("SHOW jit")
        print(f"PostgreSQL {version}, jit {cursor.fetchone()[0]}")

    explain("7d")
    measure(runs=args.runs)
    print(f"\nload average {' '.join(f'{x:.2f}' for x in os.getloadavg())} after the runs")


if __name__ == "__main__":
    main()
