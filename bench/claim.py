"""Claim-next and the queue page over a million open cases (PostgreSQL).

    .venv/bin/python bench/claim.py [--cases 1000000] [--history 1000000] [--queues 10]
                                    [--claims 2000] [--reseed]

What it does, in one run:

1. Uses its own database ``bs_claimbench`` (created if missing), migrates it and, when
   it holds fewer open cases than ``--cases`` (or with ``--reseed``), fills it with
   ``INSERT ... SELECT generate_series``: ``--cases`` open cases spread over
   ``--queues`` queues with mixed priorities and due times, plus ``--history``
   resolved cases, so the claim query proves it ignores history. Twenty reviewers
   each work three queues (a queue has six reviewers); one manager sees all.
2. Prints EXPLAIN (ANALYZE, BUFFERS) of the claim query and the queue page query,
   and checks both use the partial index ``case_claimable_idx``.
3. Claim-next, the real service (``claiming.claim_next``: FOR UPDATE SKIP LOCKED,
   the conditional save, one audit row, commit), closed loop without think time:
   1 reviewer, then 20 at once, each a separate process with its own connection;
   once across the reviewer's queues and once in one named queue. Reports p50, p99
   and max per call, and checks no case was claimed twice.
4. The queue page's server time: ``selectors.queue_page`` (the 50 most urgent waiting
   cases of a queue, as the page lists them) and ``selectors.queue_summaries`` (the
   home page's per-queue counts), alone and while 20 reviewers claim.

Claimed cases stay claimed: each run takes a few thousand of the million.
"""

import argparse
import multiprocessing
import os
import random
import sys
import time
from pathlib import Path

from support import case_columns, ensure_database, setup_django

DATABASE = "bs_claimbench"
QUEUE_PREFIX = "bench-q"
REVIEWERS = 20
QUEUES_PER_REVIEWER = 3
PAGE = 50


# -- seeding ----------------------------------------------------------------------------------

def _case_insert_sql(*, state: str, closed: bool) -> str:
    """INSERT ... SELECT generate_series for workflows_case (``support.case_columns``)."""
    expressions = {
        "queue_id": "q.ids[1 + (n % array_length(q.ids, 1))::int]",
        "state": f"'{state}'",
        "title": "'Bench case ' || n",
        # 10 priority levels, the urgent ones rarer, as in real queues.
        "priority": "(ARRAY[90, 70, 70, 50, 50, 50, 50, 30, 30, 10])[(1 + (n * 7919) % 10)::int]",
        "requires_four_eyes": "(n % 20 = 0)",
        "created_at": "now() - make_interval(secs => (n % 604800))",
        "response_due_at": "now() + make_interval(secs => (n * 104729) % 86400)",
        "due_at": "now() + make_interval(secs => (n * 15485863) % 604800)",
        "escalation_level": "0",
        "time_spent_seconds": "0",
        "version": "1",
    }
    if closed:
        expressions.update(closed_at="now() - make_interval(secs => (n % 604800))",
                           time_spent_seconds="60 + n % 600")
    columns, values = case_columns(
        {column: sql.replace("%", "%%") for column, sql in expressions.items()})  # modulo
    return (f"INSERT INTO workflows_case ({', '.join(columns)}) "
            f"SELECT {', '.join(values)} "
            f"FROM generate_series(1::bigint, %s::bigint) AS n, "
            f"(SELECT array_agg(id ORDER BY id) AS ids FROM workflows_queue "
            f" WHERE slug LIKE '{QUEUE_PREFIX}%%') AS q")


def seed(*, cases: int, history: int, queues: int, reseed: bool) -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.db import connection

    from workflows.models import Case, CaseState, Queue

    User = get_user_model()
    queue_objs = [Queue.objects.get_or_create(slug=f"{QUEUE_PREFIX}{n:02d}",
                                              defaults={"name": f"Bench queue {n:02d}"})[0]
                  for n in range(queues)]
    for n in range(REVIEWERS):
        user, _ = User.objects.get_or_create(username=f"bench-reviewer{n:02d}")
        # Reviewer n works queues n, n+1, n+2 (mod the queue count).
        mine = [queue_objs[(n + k) % queues] for k in range(QUEUES_PER_REVIEWER)]
        user.review_queues.set(mine)
    manager, _ = User.objects.get_or_create(username="bench-manager")
    manager.user_permissions.add(Permission.objects.get(codename="manage_cases"))

    open_now = Case.objects.filter(state=CaseState.OPEN,
                                   queue__slug__startswith=QUEUE_PREFIX).count()
    if open_now >= cases * 0.95 and not reseed:  # a run claims about 12,000
        print(f"seed: {open_now:,} open cases already there (use --reseed to start over)")
        return
    started = time.perf_counter()
    with connection.cursor() as cursor:
        # Audit rows are append-only (a trigger refuses DELETE): TRUNCATE the bench's
        # own tables instead, in its own database.
        cursor.execute("TRUNCATE workflows_case, workflows_auditevent, workflows_auditseal, "
                       "workflows_auditcheckpoint, workflows_resolution CASCADE")
        cursor.execute(_case_insert_sql(state="open", closed=False), [cases])
        if history:
            cursor.execute(_case_insert_sql(state="resolved", closed=True), [history])
        cursor.execute("VACUUM ANALYZE workflows_case")  # autocommit: not in a transaction
    print(f"seed: {cases:,} open and {history:,} resolved cases over {queues} queues "
          f"in {time.perf_counter() - started:.1f} s (INSERT ... SELECT generate_series)")


# -- EXPLAIN ----------------------------------------------------------------------------------

def explain() -> bool:
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from workflows import selectors
    from workflows.models import Queue
    from workflows.services import claiming

    reviewer = get_user_model().objects.get(username="bench-reviewer00")
    queue = Queue.objects.get(slug=f"{QUEUE_PREFIX}00")
    claim_one = (selectors.workable_cases(user=reviewer, queue=queue).select_related("queue")
                 .select_for_update(skip_locked=True, of=("self",))[:1])
    page = (selectors.workable_cases(user=reviewer, queue=queue)
            .select_related("queue", "assignee")[:PAGE])
    with transaction.atomic(), CaptureQueriesContext(connection) as across:
        claiming._locked_candidate(user=reviewer, queue=None)  # the statement, as run
        transaction.set_rollback(True)
    claim_across = across.captured_queries[-1]["sql"]
    ok = True
    for name, queryset in (("claim-next (one queue, FOR UPDATE SKIP LOCKED)", claim_one),
                           ("claim-next (across my 3 queues: LATERAL heads, then lock)",
                            claim_across),
                           ("queue page (50 most urgent)", page)):
        with transaction.atomic(), connection.cursor() as cursor:
            sql, params = ((queryset, ()) if isinstance(queryset, str)
                           else queryset.query.sql_with_params())
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            transaction.set_rollback(True)  # EXPLAIN ANALYZE took the lock: give it back
        uses = "case_claimable_idx" in plan
        ok &= uses
        print(f"\nEXPLAIN {name}: {'uses' if uses else 'DOES NOT USE'} case_claimable_idx")
        print("\n".join("    " + line for line in plan.splitlines()))
    return ok


# -- claim-next under load --------------------------------------------------------------------

def _claimer(index, claims, named_queue, think, barrier, results):
    """One reviewer in its own process, with its own database connection.

    ``think`` is the mean pause between claims (exponential), 0 for a closed loop.
    """
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from workflows.models import Queue
    from workflows.services import claiming

    connection.close()  # never share the parent's socket
    user = get_user_model().objects.get(username=f"bench-reviewer{index:02d}")
    user.has_perm("workflows.manage_cases")  # warm the permission cache, as a request would
    queue = Queue.objects.get(slug=f"{QUEUE_PREFIX}{index % 10:02d}") if named_queue else None
    # Warm up as a long-running web worker is: connected, code paths run once (then
    # rolled back, so nothing is claimed).
    with transaction.atomic():
        claiming.claim_next(user=user, queue=queue)
        transaction.set_rollback(True)
    timings, claimed = [], []
    pauses = random.Random(index)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    barrier.wait()
    cpu_client, cpu_server = time.process_time(), _process_cpu(backend)
    for _ in range(claims):
        if think:
            time.sleep(pauses.expovariate(1 / think))
        started = time.perf_counter()
        case = claiming.claim_next(user=user, queue=queue)
        timings.append(time.perf_counter() - started)
        if case is not None:
            claimed.append(case.pk)
    cpu = (time.process_time() - cpu_client, _process_cpu(backend) - cpu_server)
    connection.close()
    results.put((timings, claimed, cpu))


def _process_cpu(pid: int) -> float:
    """CPU seconds a local process has used (the PostgreSQL backend serving a claimer)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0  # PostgreSQL on another host: server CPU is not measured
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def claim_run(*, reviewers: int, claims_each: int, named_queue: bool,
              think: float = 0.0) -> dict:
    from django.db import connection

    connection.close()
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(reviewers), context.Queue()
    workers = [context.Process(target=_claimer,
                               args=(n, claims_each, named_queue, think, barrier, results))
               for n in range(reviewers)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    outcomes = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    timings = sorted(t for outcome in outcomes for t in outcome[0])
    claimed = [pk for outcome in outcomes for pk in outcome[1]]
    cpu_client = sum(outcome[2][0] for outcome in outcomes) / max(1, len(timings))
    cpu_server = sum(outcome[2][1] for outcome in outcomes) / max(1, len(timings))
    return {"reviewers": reviewers, "calls": len(timings), "elapsed": elapsed,
            "p50": _percentile(timings, 50), "p99": _percentile(timings, 99),
            "max": timings[-1], "claimed": len(claimed),
            "cpu_client": cpu_client, "cpu_server": cpu_server,
            "double": len(claimed) - len(set(claimed))}


def _percentile(sorted_values, pct) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, round(pct / 100 * (len(sorted_values) - 1)))
    return sorted_values[index]


# -- the queue page ---------------------------------------------------------------------------

def page_timings(*, runs: int) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from workflows import selectors
    from workflows.models import Queue

    connection.close()
    reviewer = get_user_model().objects.get(username="bench-reviewer05")
    reviewer.has_perm("workflows.manage_cases")
    queues = list(Queue.objects.filter(slug__startswith=QUEUE_PREFIX))
    mine = [q for q in queues if q in set(selectors.member_queues(user=reviewer))]
    page, summaries = [], []
    for n in range(runs):
        started = time.perf_counter()
        rows = selectors.queue_page(user=reviewer, queue=mine[n % len(mine)], limit=PAGE)
        page.append(time.perf_counter() - started)
        assert len(rows) == PAGE
        if n % 10 == 0:
            started = time.perf_counter()
            selectors.queue_summaries(user=reviewer)
            summaries.append(time.perf_counter() - started)
    page.sort()
    summaries.sort()
    return {"page_p50": _percentile(page, 50), "page_p99": _percentile(page, 99),
            "summaries_p50": _percentile(summaries, 50),
            "summaries_p99": _percentile(summaries, 99)}


def _page_under_load(*, claims_each: int, think: float) -> dict:
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    loader = context.Process(target=lambda: out.put(
        claim_run(reviewers=REVIEWERS, claims_each=claims_each, named_queue=False,
                  think=think)))
    loader.start()
    time.sleep(0.5)  # let the claimers start
    figures = page_timings(runs=100)
    loader.join()
    return figures


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--history", type=int, default=1_000_000)
    parser.add_argument("--queues", type=int, default=10)
    parser.add_argument("--claims", type=int, default=2000,
                        help="claims per run; shared among the reviewers")
    parser.add_argument("--think", default="1.0,0.25",
                        help="mean seconds paced reviewers wait between claims, one run each")
    parser.add_argument("--reseed", action="store_true")
    args = parser.parse_args()

    ensure_database(DATABASE, recreate=args.reseed)
    setup_django(DATABASE)
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    seed(cases=args.cases, history=args.history, queues=args.queues, reseed=args.reseed)
    with connection.cursor() as cursor:
        cursor.execute("SELECT state, count(*) FROM workflows_case GROUP BY state ORDER BY 1")
        print("cases:", ", ".join(f"{state} {count:,}" for state, count in cursor.fetchall()))
    index_ok = explain()

    print(f"\nmachine: {os.cpu_count()} cores, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} before the runs")
    print("\nclaim-next (claiming.claim_next, closed loop, no think time):")
    print(f"  {'reviewers':>9} {'where':<14} {'calls':>6} {'p50':>10} {'p99':>10} "
          f"{'max':>10} {'claims/s':>9} {'double':>6}  CPU per claim (client + server)")
    runs = []

    def report(label, reviewers, named, figures):
        runs.append((label, reviewers, figures))
        print(f"  {reviewers:>9} {'one queue' if named else 'my 3 queues':<14} "
              f"{figures['calls']:>6} {ms(figures['p50'])} {ms(figures['p99'])} "
              f"{ms(figures['max'])} {figures['claimed'] / figures['elapsed']:>9.0f} "
              f"{figures['double']:>6}  {figures['cpu_client'] * 1000:.1f} + "
              f"{figures['cpu_server'] * 1000:.1f} ms")

    for reviewers in (1, REVIEWERS):
        for named in (False, True):
            report("closed", reviewers, named,
                   claim_run(reviewers=reviewers, claims_each=args.claims // reviewers,
                             named_queue=named))
    thinks = [float(value) for value in args.think.split(",")]
    for think in thinks:
        offered = (f"{REVIEWERS / think:.0f} claims/s offered" if think
                   else "back to back, as many as they get")
        print(f"\nclaim-next, {REVIEWERS} paced reviewers, each pausing {think:.2f} s on "
              f"average between claims ({offered}; people claim about once a minute):")
        for named in (False, True):
            report(f"paced {think}", REVIEWERS, named,
                   claim_run(reviewers=REVIEWERS, claims_each=args.claims // REVIEWERS,
                             named_queue=named, think=think))

    alone = page_timings(runs=300)
    busy = _page_under_load(claims_each=150, think=thinks[-1])
    loaded = _page_under_load(claims_each=150, think=0.0)
    print("\nqueue page (selectors.queue_page, 50 rows) and home summaries "
          f"(selectors.queue_summaries, {args.queues} queues over the open cases):")
    for label, figures in (("alone", alone), (f"{REVIEWERS} claimers pausing {thinks[-1]} s", busy),
                           (f"{REVIEWERS} closed-loop claimers", loaded)):
        print(f"  {label:<26} page p50 {ms(figures['page_p50'])}  p99 "
              f"{ms(figures['page_p99'])}   summaries p50 {ms(figures['summaries_p50'])}  "
              f"p99 {ms(figures['summaries_p99'])}")

    paced = {think: max(f["p99"] for label, _, f in runs if label == f"paced {think}")
             for think in thinks}
    saturated = max(f["p99"] for label, r, f in runs if label == "closed" and r == REVIEWERS)
    doubles = sum(f["double"] for _, _, f in runs)
    print("\ntargets:")
    for think, p99 in paced.items():
        print(f"  claim-next p99 at {REVIEWERS} reviewers pausing {think:.2f} s < 50 ms: "
              f"{ms(p99)} {'OK' if p99 < 0.050 else 'MISSED'}")
    print(f"  claim-next p99 at {REVIEWERS} reviewers in a closed loop < 50 ms: "
          f"{ms(saturated)} {'OK' if saturated < 0.050 else 'MISSED'}")
    print(f"  queue page p99 < 200 ms, {REVIEWERS} claimers pausing {thinks[-1]:.2f} s: "
          f"{ms(busy['page_p99'])} {'OK' if busy['page_p99'] < 0.200 else 'MISSED'}")
    print(f"  queue page p99 < 200 ms, {REVIEWERS} closed-loop claimers busy: "
          f"{ms(loaded['page_p99'])} {'OK' if loaded['page_p99'] < 0.200 else 'MISSED'}")
    print(f"  double claims: {doubles} {'OK' if doubles == 0 else 'FAILED'}")
    print(f"  EXPLAIN uses case_claimable_idx: {'OK' if index_ok else 'FAILED'}")
    if doubles or not index_ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
