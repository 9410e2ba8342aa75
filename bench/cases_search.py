"""Finding cases over a long history (PostgreSQL): the case list and its search, by 20
concurrent readers over HTTP, and a manager's bulk reassignment of 500 cases.

    .venv/bin/python bench/cases_search.py [--cases 1000000] [--seconds 30]
                                           [--readers 20] [--reseed]

What it does, in one run:

1. Uses its own database ``bs_casesearch`` (created if missing), migrates it and, when it
   holds fewer cases than ``--cases`` (or with ``--reseed``), fills it by COPY
   (``workflows.db.copy_rows``): invoice cases over 10 queues, 96% resolved, the rest
   open, assigned or waiting, each with the search text the product writes
   (``case_search.search_text`` over its title and an input of vendor, amount and
   currency). Twenty reviewers each work three queues; one manager sees all.
2. Prints EXPLAIN (ANALYZE, BUFFERS) of a search and of the list's first page.
3. The list page's server CPU per request (Django's test client, ``time.process_time``,
   in this process): a reviewer's first page, a search, and a manager's page with the
   bulk checkboxes. Budget: 8 ms.
4. gunicorn (``config.wsgi``, 2 sync workers, the demo's settings) and ``--readers``
   concurrent readers for ``--seconds``, once pausing about a second between requests
   (as people reading a list do) and once in a closed loop (``--think``), over
   the API with a token (the list, a queue's open cases, a vendor search, an external
   id search, breached cases) and, for a quarter of them, the ``/cases/`` page signed in;
   p50 and p99 per kind. Target: p99 < 200 ms.
5. ``POST /api/v1/cases/bulk/``: a manager reassigns 500 open cases. Target: < 5 s.
"""

import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

from support import ROOT, database_url, ensure_database, setup_django

# BENCH_DATABASE lets two engineers (or two checkouts) bench side by side.
DATABASE = os.environ.get("BENCH_DATABASE", "bs_casesearch")
QUEUE_PREFIX = "find-q"
QUEUES = 10
REVIEWERS = 20
QUEUES_PER_REVIEWER = 3
PASSWORD = "bench-password-not-secret"
BULK = 500
FIRST = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Wonka",
         "Tyrell", "Cyberdyne", "Soylent", "Vandelay", "Gringotts", "Oceanic", "Duff",
         "Nakatomi", "Monarch", "Aperture", "Massive", "Pied", "Sirius", "Virtucon",
         "Zorg", "Blue", "Bluth")
SECOND = ("GmbH", "AG", "Ltd", "plc", "SA", "BV", "Oy", "AB", "KG", "SpA", "Inc", "LLC",
          "SARL", "Srl", "ApS", "AS", "NV", "SE", "Kft", "sro")


def vendor(n: int) -> str:
    # 500 vendors: a vendor's cases are 1 in 500 of the history.
    return f"{FIRST[n % len(FIRST)]} {SECOND[(n // len(FIRST)) % len(SECOND)]}"


def external_id(n: int) -> str:
    return f"inv-2026-{n:07d}"


# -- seeding ----------------------------------------------------------------------------------

def seed(*, cases: int, reseed: bool) -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.db import connection, transaction
    from django.utils import timezone

    from workflows import db
    from workflows.case_search import search_text
    from workflows.models import Case, Queue

    User = get_user_model()
    queues = [Queue.objects.get_or_create(slug=f"{QUEUE_PREFIX}{n:02d}",
                                          defaults={"name": f"Invoices {n:02d}"})[0]
              for n in range(QUEUES)]
    reviewers = []
    for n in range(REVIEWERS):
        user, _ = User.objects.get_or_create(username=f"find-reviewer{n:02d}")
        user.set_password(PASSWORD)
        user.save()
        user.review_queues.set([queues[(n + k) % QUEUES] for k in range(QUEUES_PER_REVIEWER)])
        reviewers.append(user)
    manager, _ = User.objects.get_or_create(username="find-manager")
    manager.set_password(PASSWORD)
    manager.save()
    manager.user_permissions.add(Permission.objects.get(codename="manage_cases"))

    have = Case.objects.count()
    if have >= cases and not reseed:
        print(f"seed: {have:,} cases already there (use --reseed to start over)")
        return
    started = time.perf_counter()
    now = timezone.now()
    with connection.cursor() as cursor:
        # Audit rows are append-only (a trigger refuses DELETE): TRUNCATE the bench's
        # own tables instead, in its own database.
        cursor.execute("TRUNCATE workflows_case, workflows_auditevent, workflows_auditseal, "
                       "workflows_auditcheckpoint, workflows_resolution CASCADE")
    fields = [field for field in Case._meta.concrete_fields if not field.primary_key]
    defaults = {field.attname: field.get_default() for field in fields}
    queue_ids = [queue.pk for queue in queues]
    # Reviewer n works queues n, n+1 and n+2 (mod the queue count): who may hold a case.
    workers = {queue.pk: [reviewer.pk for n, reviewer in enumerate(reviewers)
                          if (index - n) % QUEUES < QUEUES_PER_REVIEWER]
               for index, queue in enumerate(queues)}

    def rows():
        for n in range(1, cases + 1):
            queue_id = queue_ids[n % QUEUES]
            created = now - timedelta(seconds=(cases - n) * 30)  # newest last, as ids go
            kind = (n * 7919) % 1000
            state = ("open" if kind < 30 else "assigned" if kind < 37
                     else "waiting" if kind < 40 else "resolved")
            due = created + timedelta(hours=8)
            if state != "resolved":
                due = now + timedelta(minutes=(n * 104729) % 2880 - 240)  # some overdue
            title = f"Invoice approval: {external_id(n)}"
            subject = {"vendor": vendor(n), "po_amount": 100 + (n * 37) % 90000,
                       "currency": "EUR" if n % 3 else "USD"}
            values = dict(defaults)
            values.update(
                queue_id=queue_id, state=state, title=title,
                priority=(90, 70, 50, 50, 30)[n % 5], created_at=created,
                response_due_at=created + timedelta(hours=1), due_at=due,
                warn_at=due - timedelta(hours=2),
                search_text=search_text(title=title, values=subject.values()))
            if state in ("assigned", "waiting"):
                values.update(assignee_id=workers[queue_id][n % QUEUES_PER_REVIEWER],
                              first_claimed_at=created + timedelta(minutes=5))
            if state == "assigned":
                values.update(lease_expires_at=now + timedelta(minutes=30))
            if state == "waiting":
                values.update(waiting_since=now - timedelta(minutes=30))
            if state == "resolved":
                values.update(closed_at=created + timedelta(hours=2),
                              first_claimed_at=created + timedelta(minutes=5))
            yield [field.get_db_prep_save(values[field.attname], connection)
                   for field in fields]

    with transaction.atomic():
        db.copy_rows(Case._meta.db_table, [field.column for field in fields], rows())
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE workflows_case")  # autocommit: not in a transaction
    print(f"seed: {cases:,} cases over {QUEUES} queues in "
          f"{time.perf_counter() - started:.1f} s (COPY, search text as the product writes it)")


# -- EXPLAIN ----------------------------------------------------------------------------------

def explain() -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import RequestFactory

    from workflows import selectors
    from workflows.case_filters import CaseFilter

    reviewer = get_user_model().objects.get(username="find-reviewer00")
    request = RequestFactory().get("/")
    request.user = reviewer
    for label, params in (("search a vendor", {"search": "wonka"}),
                          ("search an external id", {"search": external_id(123_457)}),
                          ("first page, no filter", {}),
                          ("breached", {"sla": "breached"})):
        filters = CaseFilter(params, queryset=selectors.visible_cases(user=reviewer),
                             request=request)
        assert filters.is_valid(), filters.errors
        query = filters.qs.select_related("queue", "assignee").order_by("-id")[:51]
        sql, sql_params = query.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", sql_params)
            plan = [row[0] for row in cursor.fetchall()]
        print(f"\nEXPLAIN {label} (a reviewer's first page):")
        print("\n".join("    " + line for line in plan))


# -- the page's server CPU --------------------------------------------------------------------

def page_cpu(*, runs: int) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client

    User = get_user_model()
    print(f"\n/cases/ page, server CPU per request (test client, process_time, {runs} runs "
          "after a warm-up; p50 / p90):")
    for label, username, url, params in (
            # The reference in the same run: a page of the same layout with nothing on it
            # (the top bar's queries, the session, the middleware), so that the figures
            # compare as ratios on a shared, noisy machine.
            ("reviewer, an empty page (/consults/)", "find-reviewer00", "/consults/", {}),
            ("reviewer, first page", "find-reviewer00", "/cases/", {}),
            ("reviewer, vendor search", "find-reviewer00", "/cases/", {"search": "wonka"}),
            # Queue 05: never one the bulk reassignment below empties of open cases.
            ("reviewer, open in a queue", "find-reviewer05", "/cases/",
             {"queue": f"{QUEUE_PREFIX}05", "state": "open"}),
            ("manager, first page (bulk checkboxes)", "find-manager", "/cases/", {}),
            ("manager, breached", "find-manager", "/cases/", {"sla": "breached"})):
        client = Client()
        client.force_login(User.objects.get(username=username))
        for _ in range(5):
            assert client.get(url, params).status_code == 200
        cpu, wall = [], []
        for _ in range(runs):
            started_cpu, started = time.process_time(), time.perf_counter()
            response = client.get(url, params)
            cpu.append(time.process_time() - started_cpu)
            wall.append(time.perf_counter() - started)
            assert response.status_code == 200
        cpu.sort()
        wall.sort()
        rows = response.content.count(b'data-label="Case"')
        print(f"  {label:<42} CPU {ms(percentile(cpu, 50))} / {ms(percentile(cpu, 90))}"
              f"   wall {ms(percentile(wall, 50))}   {rows} rows")


# -- readers over HTTP ------------------------------------------------------------------------

def percentile(sorted_values, pct) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, round(pct / 100 * (len(sorted_values) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:6.1f} ms"


def start_gunicorn(port: int, workdir: Path) -> subprocess.Popen:
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(DATABASE_URL=database_url(DATABASE), DJANGO_SETTINGS_MODULE="config.settings",
               BACKSTOP_DEMO="1", DEBUG="false", LOG_LEVEL="WARNING",
               BACKSTOP_VAR_DIR=str(workdir))
    log = open(workdir / "gunicorn.log", "w")  # noqa: SIM115 (closed with the process)
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "config.wsgi", "--workers", "2",
         "--worker-class", "sync", "--bind", f"127.0.0.1:{port}", "--timeout", "120",
         "--log-level", "warning"], cwd=ROOT, env=env, stdout=log, stderr=log)
    import requests

    for _ in range(300):
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except requests.RequestException:  # not listening yet, or still starting
            pass
        time.sleep(0.1)
    server.terminate()
    raise SystemExit(f"gunicorn did not start: {(workdir / 'gunicorn.log').read_text()}")


def signed_in(base: str, username: str):
    import requests

    session = requests.Session()
    page = session.get(f"{base}/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    answer = session.post(f"{base}/accounts/login/", allow_redirects=False, data={
        "username": username, "password": PASSWORD, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{base}/accounts/login/"})
    assert answer.status_code == 302, answer.status_code
    return session


def reader(index: int, *, base: str, token: str, clock: dict, ready: threading.Barrier,
           go: threading.Event, think: float, timings: dict, errors: list,
           lock: threading.Lock) -> None:
    import requests

    pick = random.Random(index)
    own_queue = f"{QUEUE_PREFIX}{index % QUEUES:02d}"
    api = requests.Session()
    api.headers["Authorization"] = f"Token {token}"
    page = signed_in(base, f"find-reviewer{index:02d}") if index % 4 == 0 else None
    kinds = [
        ("api list", lambda: api.get(f"{base}/api/v1/cases/")),
        ("api open in a queue", lambda: api.get(f"{base}/api/v1/cases/",
                                                params={"queue": own_queue, "state": "open"})),
        ("api vendor search", lambda: api.get(f"{base}/api/v1/cases/", params={
            "search": FIRST[pick.randrange(len(FIRST))].lower()})),
        ("api external id search", lambda: api.get(f"{base}/api/v1/cases/", params={
            "search": external_id(pick.randrange(1, 10 ** 6))[-7:]})),
        ("api breached", lambda: api.get(f"{base}/api/v1/cases/", params={"sla": "breached"})),
    ]
    if page is not None:
        kinds += [("page first", lambda: page.get(f"{base}/cases/")),
                  ("page search", lambda: page.get(f"{base}/cases/", params={
                      "search": FIRST[pick.randrange(len(FIRST))].lower()}))]
    # Signing in (a password hash of about a second's CPU) and each kind's first request
    # (the workers' first queries of a shape) happen before the clock starts.
    for _, call in kinds:
        call()
    ready.wait()
    go.wait()
    until = clock["until"]
    mine: dict[str, list[float]] = {kind: [] for kind, _ in kinds}
    while time.perf_counter() < until:
        if think:
            time.sleep(pick.expovariate(1 / think))
        kind, call = kinds[pick.randrange(len(kinds))]
        started = time.perf_counter()
        response = call()
        mine[kind].append(time.perf_counter() - started)
        if response.status_code != 200:
            errors.append(f"{kind}: {response.status_code}")
    with lock:
        for kind, values in mine.items():
            timings.setdefault(kind, []).extend(values)


def http_readers(*, base: str, readers: int, seconds: float, think: float) -> dict:
    from django.contrib.auth import get_user_model

    from workflows.actors import SystemActor
    from workflows.services import tokens

    User = get_user_model()
    keys = [tokens.issue_user_token(user=User.objects.get(username=f"find-reviewer{n:02d}"),
                                    actor=SystemActor(label="bench")).key
            for n in range(readers)]
    timings: dict[str, list[float]] = {}
    errors: list[str] = []
    lock = threading.Lock()
    clock: dict[str, float] = {}
    ready, go = threading.Barrier(readers + 1), threading.Event()
    threads = [threading.Thread(target=reader, args=(n,), kwargs=dict(
        base=base, token=keys[n], clock=clock, ready=ready, go=go, think=think,
        timings=timings, errors=errors, lock=lock))
               for n in range(readers)]
    for thread in threads:
        thread.start()
    ready.wait()  # every reader signed in and warmed up
    clock["until"] = time.perf_counter() + seconds
    go.set()
    for thread in threads:
        thread.join()
    return {"timings": timings, "errors": errors}


def bulk_reassign(base: str) -> tuple[float, dict]:
    import requests
    from django.contrib.auth import get_user_model

    from workflows.actors import SystemActor
    from workflows.models import Case
    from workflows.services import tokens

    User = get_user_model()
    key = tokens.issue_user_token(user=User.objects.get(username="find-manager"),
                                  actor=SystemActor(label="bench")).key
    # find-reviewer00 works queues 00, 01 and 02: every case is theirs to take.
    chosen = list(Case.objects.filter(
        queue__slug__in=[f"{QUEUE_PREFIX}{n:02d}" for n in range(QUEUES_PER_REVIEWER)],
        state="open").order_by("-id").values_list("pk", flat=True)[:BULK])
    to_user = "find-reviewer00"
    started = time.perf_counter()
    response = requests.post(f"{base}/api/v1/cases/bulk/", json={
        "action": "reassign", "to_user": to_user, "cases": chosen},
        headers={"Authorization": f"Token {key}"}, timeout=120)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text[:500]
    outcomes: dict[str, int] = {}
    for item in response.json()["results"]:
        outcomes[item["result"]] = outcomes.get(item["result"], 0) + 1
    return elapsed, {"cases": len(chosen), **outcomes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--readers", type=int, default=REVIEWERS)
    parser.add_argument("--think", default="1.0,0",
                        help="mean seconds readers pause between requests, one run each "
                             "(0: a closed loop)")
    parser.add_argument("--cpu-runs", type=int, default=100)
    parser.add_argument("--port", type=int, default=8391)
    parser.add_argument("--reseed", action="store_true")
    args = parser.parse_args()

    os.environ["DEBUG"] = "false"
    ensure_database(DATABASE, recreate=args.reseed)
    setup_django(DATABASE)
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    seed(cases=args.cases, reseed=args.reseed)
    with connection.cursor() as cursor:
        cursor.execute("SELECT state, count(*) FROM workflows_case GROUP BY state ORDER BY 1")
        print("cases:", ", ".join(f"{state} {count:,}" for state, count in cursor.fetchall()))
        cursor.execute("SHOW server_version")
        print(f"PostgreSQL {cursor.fetchone()[0]}; machine: {os.cpu_count()} cores, load "
              f"average {' '.join(f'{x:.2f}' for x in os.getloadavg())} before the runs")
    explain()
    page_cpu(runs=args.cpu_runs)

    workdir = Path(f"/tmp/bench-cases-search-{os.getpid()}")
    workdir.mkdir(parents=True, exist_ok=True)
    connection.close()
    server = start_gunicorn(args.port, workdir)
    base = f"http://127.0.0.1:{args.port}"
    try:
        worst = 0.0
        for think in [float(value) for value in args.think.split(",")]:
            load_before = os.getloadavg()[0]
            run = http_readers(base=base, readers=args.readers, seconds=args.seconds,
                               think=think)
            pacing = (f"each pausing {think:.1f} s on average between requests" if think
                      else "closed loop, no think time")
            print(f"\n{args.readers} concurrent readers for {args.seconds:.0f} s over HTTP "
                  f"(gunicorn, 2 sync workers; {pacing}; load average "
                  f"{load_before:.2f} → {os.getloadavg()[0]:.2f}):")
            everything = []
            for kind, values in sorted(run["timings"].items()):
                values.sort()
                everything += values
                print(f"  {kind:<24} {len(values):>6} calls  p50 {ms(percentile(values, 50))}"
                      f"  p99 {ms(percentile(values, 99))}  max {ms(values[-1])}")
            everything.sort()
            total = len(everything)
            print(f"  {'all':<24} {total:>6} calls  p50 {ms(percentile(everything, 50))}  "
                  f"p99 {ms(percentile(everything, 99))}  ({total / args.seconds:.0f} "
                  f"requests/s); errors: {len(run['errors'])}")
            if run["errors"]:
                print("errors:", statistics.mode(run["errors"]),
                      f"({len(run['errors'])} in all)")
                sys.exit(1)
            if think:
                worst = max(worst, percentile(everything, 99))
        elapsed, outcomes = bulk_reassign(base)
        print(f"\nbulk reassign over HTTP (POST /api/v1/cases/bulk/, {outcomes['cases']} "
              f"cases, each its own transition and audit event): {elapsed:.2f} s "
              f"({outcomes}) {'OK' if elapsed < 5 else 'MISSED'} (target < 5 s)")
        print(f"\ntargets: list and search p99 < 200 ms, paced readers: {ms(worst)} "
              f"{'OK' if worst < 0.2 else 'MISSED'}; bulk reassign of {BULK} < 5 s: "
              f"{elapsed:.2f} s {'OK' if elapsed < 5 else 'MISSED'}")
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} after the runs")


if __name__ == "__main__":
    main()
