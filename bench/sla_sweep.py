"""The SLA sweep over a million open cases (PostgreSQL).

    .venv/bin/python bench/sla_sweep.py [--open 1000000] [--due 10000] [--breach-share 0.2]
                                        [--steps 100000,300000,1000000] [--step-due 2000]
                                        [--history 200000] [--lag-seconds 90] [--lag-rate 5]
                                        [--burst 2000] [--sweep-interval 15] [--reseed]
                                        [--skip-sweep] [--skip-lag]

What it does, in one run:

1. Uses its own database ``bs_slabench`` (created if missing, migrated) and fills it with
   ``INSERT ... SELECT generate_series``: open cases over 10 queues (each with a current
   SLA policy version and a member) whose next checks lie hours to days ahead, and
   ``--history`` resolved cases whose stale ``sla_next_check_at`` lies in the past (the
   partial index must leave them out).
2. Growth: at each ``--steps`` size of the open set it arms ``--step-due`` cases (their
   response warning due now), prints the plan of the sweep's batch query (a range scan of
   ``case_sla_check_idx``) and runs the real ``sweeper.sweep``: time, queries, per case.
   The work must follow the cases due, not the cases open.
3. At the full size, ``--due`` cases due at once, ``--breach-share`` of them breached
   (an escalation each, ``escalation.escalate``), the rest warnings: the sweep's time and
   queries.
4. Lag under a running worker: its own ``redis-server`` on a free port, a Celery worker
   (2 processes) and beat (``--sweep-interval``) against this database; cases opened at
   ``--lag-rate`` a second for ``--lag-seconds`` with a 20 s response target, through the
   intake path (``open_cases``, nudges after commit) (the trickle); then ``--burst``
   cases opened at one instant, so that all their warnings and then all their deadlines
   come due at the same moment (the burst). Escalation lag from the missed deadline,
   p50/p99, for each, twice: with the nudges, and with every nudge lost (the sweep alone;
   target p99 under the sweep interval + 5 s).

Armed cases are used up (warned or escalated); later runs arm others. ``--reseed`` starts
from an empty database.
"""

import argparse
import os
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import support

DATABASE = "bs_slabench"
QUEUES = 10
QUEUE_PREFIX = "slabench-q"


def setup_django() -> None:
    # No nudges from the bench itself until the lag phase points it at its own Redis.
    os.environ["SLA_NUDGES_ENABLED"] = "false"
    os.environ.pop("CELERY_BROKER_URL", None)
    support.setup_django(DATABASE)


# -- seeding ----------------------------------------------------------------------------------

def _case_insert_sql(*, closed: bool) -> str:
    """INSERT ... SELECT generate_series for workflows_case (``support.case_columns``)."""
    ahead = "now() + interval '1 hour' + make_interval(secs => (n * 7919) % 604800)"
    expressions = {
        "queue_id": "q.ids[1 + (n % array_length(q.ids, 1))::int]",
        "sla_policy_id": "p.ids[1 + (n % array_length(p.ids, 1))::int]",
        "state": "'resolved'" if closed else "'open'",
        "title": "'SLA bench case ' || n",
        "priority": "(ARRAY[90, 70, 50, 50, 50, 30, 10])[(1 + (n * 31) % 7)::int]",
        "requires_four_eyes": "false",
        "created_at": "now() - make_interval(secs => (n % 86400))",
        "response_warn_at": ahead,
        "response_due_at": f"{ahead} + interval '30 minutes'",
        "warn_at": f"{ahead} + interval '6 hours'",
        "due_at": f"{ahead} + interval '8 hours'",
        "sla_next_check_at": ahead,
        "escalation_level": "0",
        "time_spent_seconds": "0",
        "version": "1",
    }
    if closed:
        # Stale checks in the past: only the index's state predicate keeps them out.
        expressions.update(closed_at="now() - make_interval(secs => (n % 604800))",
                           sla_next_check_at="now() - make_interval(secs => 1 + n % 604800)")
    columns, values = support.case_columns(
        {column: sql.replace("%", "%%") for column, sql in expressions.items()})  # modulo
    return (f"INSERT INTO workflows_case ({', '.join(columns)}) "
            f"SELECT {', '.join(values)} "
            f"FROM generate_series(1::bigint, %s::bigint) AS n, "
            f"(SELECT array_agg(id ORDER BY queue_id) AS ids FROM workflows_slapolicy "
            f" WHERE is_current) AS p, "
            f"(SELECT array_agg(queue_id ORDER BY queue_id) AS ids FROM workflows_slapolicy "
            f" WHERE is_current) AS q")


def prepare(*, history: int) -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from workflows.models import Case, Queue
    from workflows.services import sla

    call_command("migrate", verbosity=0)
    User = get_user_model()
    if not Queue.objects.filter(slug__startswith=QUEUE_PREFIX).exists():
        manager = User.objects.create_user("slabench-manager", "manager@example.com", "x")
        manager.user_permissions.add(Permission.objects.get(codename="manage_cases"))
        for number in range(QUEUES):
            queue = Queue.objects.create(slug=f"{QUEUE_PREFIX}{number}",
                                         name=f"SLA bench {number}")
            queue.members.add(User.objects.create_user(
                f"slabench-reviewer-{number}", f"reviewer{number}@example.com", "x"))
            sla.publish_sla_policy(
                queue=queue, calendar=None, warning_fraction=0.75, actor=manager,
                now=timezone.now(),
                targets=[{"min_priority": 0, "response_target": timedelta(hours=1),
                          "resolution_target": timedelta(hours=8)},
                         {"min_priority": 80, "response_target": timedelta(minutes=15),
                          "resolution_target": timedelta(hours=2)}])
    closed = Case.objects.filter(state="resolved").count()
    if closed < history:
        with connection.cursor() as cursor:
            cursor.execute(_case_insert_sql(closed=True), [history - closed])


def grow_to(open_cases: int) -> float:
    """Add open cases up to ``open_cases``; answer the seconds it took."""
    from django.db import connection

    from workflows.models import Case

    started = time.perf_counter()
    have = Case.objects.filter(state="open").count()
    if have < open_cases:
        with connection.cursor() as cursor:
            cursor.execute(_case_insert_sql(closed=False), [open_cases - have])
            cursor.execute("ANALYZE workflows_case")
    return time.perf_counter() - started


def arm(*, warnings: int, breaches: int) -> None:
    """Make fresh open cases due now: response warnings, or response deadlines passed."""
    from django.db import connection

    pick = ("SELECT id FROM workflows_case c WHERE state = 'open' AND escalation_level = 0 "
            "AND first_claimed_at IS NULL AND sla_next_check_at > now() "
            "AND NOT EXISTS (SELECT 1 FROM workflows_slawarning w WHERE w.case_id = c.id) "
            "LIMIT %s")
    with connection.cursor() as cursor:
        if warnings:
            cursor.execute(
                "UPDATE workflows_case SET "
                " response_warn_at = now() - make_interval(secs => 1 + id %% 60),"
                " sla_next_check_at = now() - make_interval(secs => 1 + id %% 60),"
                " response_due_at = now() + interval '1 hour' "
                f"WHERE id IN ({pick})", [warnings])
        if breaches:
            cursor.execute(
                "UPDATE workflows_case SET "
                " response_due_at = now() - make_interval(secs => 1 + id %% 60),"
                " sla_next_check_at = now() - make_interval(secs => 1 + id %% 60),"
                " response_warn_at = now() - interval '1 hour' "
                f"WHERE id IN ({pick})", [breaches])


# -- measuring --------------------------------------------------------------------------------

def batch_plan() -> str:
    from django.utils import timezone

    from workflows.services import sweeper

    plan = (sweeper.due_cases(now=timezone.now())
            .values_list("id", "queue_id", "sla_policy_id", "escalation_level")[:500]
            .explain(analyze=True, buffers=True))
    assert "case_sla_check_idx" in plan, plan
    return plan


def timed_sweep() -> dict:
    """The real sweep, drained (no batch limit): its wall time and every query it ran."""
    from django.db import connection

    from workflows.services import sweeper

    counted = {"queries": 0}

    def count(execute, sql, params, many, context):
        counted["queries"] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        started = time.perf_counter()
        result = sweeper.sweep(batch_size=500, max_batches=10_000)
        seconds = time.perf_counter() - started
    return {"result": result, "seconds": seconds, "queries": counted["queries"]}


def report_sweep(label: str, open_count: int, figures: dict) -> None:
    result = figures["result"]
    acted = max(1, result.checked)
    print(f"  {label:<28} open {open_count:>9,}  due {result.checked:>6,} "
          f"(warn {result.warnings:,}, esc {result.escalations:,})  "
          f"{figures['seconds']:7.2f} s  {figures['queries']:>7,} queries  "
          f"{1000 * figures['seconds'] / acted:6.1f} ms and {figures['queries'] / acted:4.1f} "
          f"queries per case  batches {result.batches}")


def growth(steps: list[int], step_due: int) -> None:
    from django.db import connection

    print(f"\n== Growth: {step_due:,} due (warnings) at each size of the open set")
    for size in steps:
        took = grow_to(size)
        arm(warnings=step_due, breaches=0)
        plan = batch_plan()
        scan = next(line.strip() for line in plan.splitlines() if "case_sla_check_idx" in line)
        timing = next((line.strip() for line in plan.splitlines()
                       if line.strip().startswith("Execution Time")), "")
        figures = timed_sweep()
        report_sweep(f"open {size:,} (+{took:.0f} s seed)", size, figures)
        print(f"      batch query: {scan}; {timing}")
        connection.close()


def full(open_count: int, due: int, breach_share: float) -> None:
    breaches = round(due * breach_share)
    print(f"\n== {due:,} due at once over {open_count:,} open cases "
          f"({due - breaches:,} warnings, {breaches:,} escalations)")
    grow_to(open_count)
    arm(warnings=due - breaches, breaches=breaches)
    report_sweep("full size", open_count, timed_sweep())


# -- lag under a running worker ------------------------------------------------------------------

def _lags(ids: list[int]) -> tuple[float, float, float, float]:
    """min, p50, p99 and max of the escalations' lag from the deadline they missed."""
    from workflows.models import Escalation

    lags = sorted((escalation.created_at - escalation.due_at).total_seconds()
                  for escalation in Escalation.objects.filter(case_id__in=ids, level=1))
    return (lags[0], statistics.median(lags),
            lags[min(len(lags) - 1, round(0.99 * (len(lags) - 1)))], lags[-1])


def _wait_escalated(ids: list[int], *, timeout: float) -> None:
    from tests.workflows.celery_support import wait_until
    from workflows.models import Escalation

    wait_until(lambda: Escalation.objects.filter(case_id__in=ids).count() >= len(ids),
               timeout=timeout, interval=0.5, what="every case escalated")


def lag(*, seconds: int, rate: float, burst: int, sweep_interval: float) -> None:
    from django.conf import settings
    from django.db import connection, transaction
    from django.utils import timezone

    from tests.workflows.celery_support import (
        CeleryProcess,
        RedisServer,
        process_env,
        publishing_to,
        wait_until,
    )
    from workflows.actors import SYSTEM
    from workflows.models import Queue
    from workflows.services import sla
    from workflows.services.cases import NewCase, open_cases

    queue = Queue.objects.get(slug=f"{QUEUE_PREFIX}lag") if Queue.objects.filter(
        slug=f"{QUEUE_PREFIX}lag").exists() else Queue.objects.create(
        slug=f"{QUEUE_PREFIX}lag", name="SLA bench lag")
    sla.publish_sla_policy(
        queue=queue, calendar=None, warning_fraction=0.5, actor=SYSTEM, now=timezone.now(),
        targets=[{"min_priority": 0, "response_target": timedelta(seconds=20),
                  "resolution_target": timedelta(hours=8)}])
    target = f"(target p99 < {sweep_interval + 5:.0f} s)"

    for nudges in (True, False):
        label = "nudges on" if nudges else "nudges lost, sweep alone"
        workdir = Path(tempfile.mkdtemp(prefix="slabench-"))
        server = RedisServer(workdir).start()
        env = process_env(redis_url=server.url, workdir=workdir, sweep_interval=sweep_interval)
        env.update(SLA_NUDGES_ENABLED=str(nudges).lower(), CONN_MAX_AGE="60")
        worker = CeleryProcess("worker", env=env, workdir=workdir, name="worker").start()
        beat = CeleryProcess("beat", env=env, workdir=workdir, name="beat").start()
        try:
            wait_until(lambda w=worker: " ready." in w.logs(), timeout=60, what="the worker")
            settings.SLA_NUDGES_ENABLED = nudges
            with publishing_to(server.url):
                if seconds:
                    # A trickle: cases opened one by one, each due 20 s later.
                    opened = []
                    started = time.monotonic()
                    for tick in range(int(seconds * rate)):
                        time.sleep(max(0.0, started + tick / rate - time.monotonic()))
                        with transaction.atomic():
                            opened += open_cases(specs=[NewCase(queue=queue, title="lag")],
                                                 actor_label="bench", now=timezone.now())
                    ids = [case.pk for case in opened]
                    _wait_escalated(ids, timeout=20 + 3 * sweep_interval + seconds)
                    _, p50, p99, worst = _lags(ids)
                    print(f"  trickle, {label:<24} {len(ids):>5} escalations  lag p50 "
                          f"{p50:5.2f} s  p99 {p99:5.2f} s  max {worst:5.2f} s {target}",
                          flush=True)
                if burst:
                    # A burst: ``burst`` cases opened at one instant, so that their
                    # warnings (10 s) and their deadlines (20 s) all come due at once.
                    opened_at = timezone.now()
                    opened = []
                    for start in range(0, burst, 500):
                        with transaction.atomic():
                            opened += open_cases(
                                specs=[NewCase(queue=queue, title="burst")
                                       for _ in range(min(500, burst - start))],
                                actor_label="bench", now=opened_at)
                    took = (timezone.now() - opened_at).total_seconds()
                    ids = [case.pk for case in opened]
                    _wait_escalated(ids, timeout=120 + 3 * sweep_interval + burst / 10)
                    first, p50, p99, worst = _lags(ids)
                    # The first escalation waits for a sweep (or its nudge); the spread
                    # after it is how long the burst took to drain.
                    print(f"  burst,   {label:<24} {len(ids):>5} escalations  lag p50 "
                          f"{p50:5.2f} s  p99 {p99:5.2f} s  max {worst:5.2f} s {target}; "
                          f"first {first:.2f} s, drained in {worst - first:.1f} s "
                          f"(opened in {took:.1f} s)", flush=True)
        finally:
            settings.SLA_NUDGES_ENABLED = False
            beat.stop()
            worker.stop()
            server.stop()
            connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--open", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--breach-share", type=float, default=0.2)
    parser.add_argument("--steps", default="100000,300000,1000000")
    parser.add_argument("--step-due", type=int, default=2000)
    parser.add_argument("--history", type=int, default=200_000)
    parser.add_argument("--lag-seconds", type=int, default=90)
    parser.add_argument("--lag-rate", type=float, default=5.0)
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--skip-sweep", action="store_true")
    parser.add_argument("--sweep-interval", type=float, default=15.0)
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--skip-lag", action="store_true")
    options = parser.parse_args()

    support.ensure_database(DATABASE, recreate=options.reseed)
    setup_django()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    print(f"SLA sweep bench: PostgreSQL {version}, {os.cpu_count()} cores, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    prepare(history=options.history)
    if not options.skip_sweep:
        growth([int(step) for step in options.steps.split(",")], options.step_due)
        full(options.open, options.due, options.breach_share)
    if not options.skip_lag:
        grow_to(options.open)
        print(f"\n== Escalation lag under a running worker (2 processes, beat every "
              f"{options.sweep_interval:.0f} s) over {options.open:,} open cases: "
              f"{options.lag_rate:g} cases/s for {options.lag_seconds} s (trickle), then "
              f"{options.burst:,} due at one instant (burst)")
        lag(seconds=options.lag_seconds, rate=options.lag_rate, burst=options.burst,
            sweep_interval=options.sweep_interval)
    print(f"\nload average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
