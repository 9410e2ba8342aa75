"""The reviewer's path over HTTP, as people use it: gunicorn, PostgreSQL, separate clients.

    .venv/bin/python bench/reviewer_http.py [--cases 20000] [--duration 20] [--think 1.0]
                                            [--reviewers 1,20] [--port 8260]

What it does, in one run:

1. Uses ``bench/reviewer_cpu.py``'s database ``bs_reviewerbench`` and seed: the demo
   (``seed_demo``) plus open cases until ``--cases`` wait in ``invoice-review`` (the
   issue's size is 1,000,000; seeding goes through batch intake, about 0.5 ms a case).
   Twenty bench reviewers work that queue, each with an API token and a password.
2. Starts gunicorn (``config.wsgi``, the product's settings in the demo's configuration,
   2 sync workers) on PostgreSQL.
3. Each reviewer is a process of its own (``requests``): pages through a session
   signed in with the login form (CSRF token and cookie), the API with their token.
   One round of the path: Next case (``POST /api/v1/cases/claim-next/``), the case page,
   resolve through the API (a four-eyes case is then approved by the next reviewer),
   home, the queue list (home's htmx fragment), approvals, and the dashboard (as the
   demo's manager). Each step waits ``--think`` seconds on average (exponential) before
   it, as a person reading the page does; ``--think 0`` runs back to back.
4. For 1 and 20 reviewers, paced and back to back, ``--duration`` seconds each: p50
   and p99 per step, claims per second, and the server CPU per request (gunicorn's
   processes and the bench database's PostgreSQL backends, from /proc). Checks that
   no case was claimed twice, and stops gunicorn by its PID.

``--client wrk`` runs claim-next alone, back to back, from wrk (Debian's package ``wrk``)
instead of Python processes: ``--reviewers`` connections, each request with the next
reviewer's token; ``--wrk 403`` or ``--wrk 404`` asks instead, through the reviewers'
signed-in sessions, for a page they may not see or a case that does not exist. Twenty
Python clients take about a third of the two cores from the server they measure; wrk's
one thread takes a few percent, so its claims/s is what the server can do. Double claims
are counted from the audit trail (one ``case.claimed`` event per claim).

``--celery`` (with ``REDIS_URL`` set) runs the deployment's background processes beside
gunicorn, as the Procfile does: one Celery worker on every queue and beat, so the
dashboard finds the count beat keeps fresh instead of counting in a web worker, and
webhooks and notices are delivered. Their CPU is reported per request beside gunicorn's
(the PostgreSQL figure then includes their backends).

To compare two commits, run it from each checkout (it serves that checkout's code),
alternating.
"""

import argparse
import multiprocessing
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import intake  # gunicorn's start and stop, free ports, the /proc CPU probe
import reviewer_cpu  # the database and its seed
from support import ROOT, database_url, ensure_database, setup_django

DATABASE = reviewer_cpu.DATABASE
QUEUE = reviewer_cpu.QUEUE
REVIEWERS = 20
PASSWORD = "bench-reviewer-pass"
STEPS = ["next case", "case page", "resolve", "approve", "home", "queue list", "approvals",
         "dashboard"]


def prepare(cases: int) -> list[dict]:
    """The seed, and the bench's reviewers: name, password, API token."""
    from django.contrib.auth import get_user_model

    from workflows.actors import SystemActor
    from workflows.models import CaseState, Queue
    from workflows.services import tokens, transitions

    reviewer_cpu.seed(cases=cases)
    User = get_user_model()
    queue = Queue.objects.get(slug=QUEUE)
    people = []
    for n in range(REVIEWERS):
        user, made = User.objects.get_or_create(username=f"bench-reviewer{n:02d}")
        if made:
            user.set_password(PASSWORD)
            user.save()
        queue.members.add(user)
        # Whatever an interrupted run left in their hands goes back to the queue.
        for case_id in user.assigned_cases.filter(state=CaseState.ASSIGNED).values_list(
                "pk", flat=True):
            transitions.release(case_id=case_id, user=user)
        people.append({"username": user.username, "token": tokens.issue_user_token(
            user=user, actor=SystemActor(label="bench")).key})
    return people


def _signed_in(base: str, username: str, password: str):
    """A browser's session: the login form's CSRF token and cookie, then the form."""
    import requests

    session = requests.Session()
    form = session.get(f"{base}/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)[1]
    answer = session.post(f"{base}/accounts/login/", data={
        "csrfmiddlewaretoken": token, "username": username, "password": password},
        headers={"Referer": f"{base}/accounts/login/"}, allow_redirects=False)
    assert answer.status_code == 302, (username, answer.status_code)
    return session


def reviewer(spec: dict, barrier, results) -> None:
    """One person working the queue until the run's end."""
    import requests

    base, me, approver = spec["base"], spec["me"], spec["approver"]
    pages = _signed_in(base, me["username"], PASSWORD)
    manager = _signed_in(base, "manager", "manager-demo")
    api = requests.Session()
    api.headers["Authorization"] = f"Token {me['token']}"
    second = requests.Session()
    second.headers["Authorization"] = f"Token {approver['token']}"
    pauses = random.Random(spec["index"])
    timings = {step: [] for step in STEPS}
    claimed, failures = [], []

    def step(name, client, method, path, **request):
        if spec["think"]:
            time.sleep(pauses.expovariate(1 / spec["think"]))
        started = time.perf_counter()
        answer = client.request(method, f"{base}{path}", **request)
        timings[name].append(time.perf_counter() - started)
        if answer.status_code not in (200, 204):
            failures.append(f"{name}: {answer.status_code} {answer.text[:200]}")
        return answer

    chosen = spec["steps"]
    barrier.wait()
    end = time.monotonic() + spec["duration"]
    while time.monotonic() < end:
        answer = step("next case", api, "POST", "/api/v1/cases/claim-next/",
                      json={"queue": QUEUE})
        if answer.status_code == 200:
            case = answer.json()
            claimed.append(case["id"])
            if "case page" in chosen:
                step("case page", pages, "GET", f"/cases/{case['id']}/")
            if "resolve" in chosen:
                resolved = step("resolve", api, "POST",
                                f"/api/v1/cases/{case['id']}/resolve/",
                                json={"verdict": "accepted", "version": case["version"]})
                if (resolved.status_code == 200
                        and resolved.json()["state"] == "pending_approval"):
                    step("approve", second, "POST", f"/api/v1/cases/{case['id']}/approve/",
                         json={})
        if "home" in chosen:
            step("home", pages, "GET", "/")
        if "queue list" in chosen:
            step("queue list", pages, "GET", "/?fragment=queues",
                 headers={"HX-Request": "true"})
        if "approvals" in chosen:
            step("approvals", pages, "GET", "/approvals/")
        if "dashboard" in chosen:
            step("dashboard", manager, "GET", "/dashboard/")
    results.put((timings, claimed, failures))


def run(*, base: str, people: list[dict], count: int, think: float, duration: float,
        probe, steps: frozenset[str] = frozenset(STEPS)) -> dict:
    context = multiprocessing.get_context("spawn")  # no Django state in the clients
    barrier, results = context.Barrier(count + 1), context.Queue()
    workers = [context.Process(target=reviewer, args=(
        {"base": base, "me": people[n], "approver": people[(n + 1) % len(people)],
         "think": think, "duration": duration, "index": n, "steps": steps}, barrier,
        results))
               for n in range(count)]
    for worker in workers:
        worker.start()
    barrier.wait()  # every client signed in
    before, started = probe.sample(), time.perf_counter()
    outcomes = [results.get() for _ in workers]
    elapsed, after = time.perf_counter() - started, probe.sample()
    for worker in workers:
        worker.join()
    timings = {step: sorted(t for outcome in outcomes for t in outcome[0][step])
               for step in STEPS}
    claimed = [case_id for outcome in outcomes for case_id in outcome[1]]
    requests_made = sum(len(values) for values in timings.values())
    return {"timings": timings, "claimed": len(claimed), "elapsed": elapsed,
            "double": len(claimed) - len(set(claimed)), "requests": requests_made,
            "failures": [f for outcome in outcomes for f in outcome[2]],
            **probe.per_request(before, after, requests_made)}


WRK_SCRIPT = """
local headers = {%(headers)s}
local sent = 0
request = function()
  sent = sent + 1
  return wrk.format("%(method)s", "%(path)s", headers[sent %% #headers + 1], %(body)s)
end
done = function(summary, latency, requests)
  io.write(string.format("wrk %%d %%d %%d %%d %%d %%d\\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), summary.duration,
    summary.errors.status))
end
"""
# What wrk asks for: claim-next through the API (each request with the next reviewer's
# token), or, through their signed-in sessions, a page a reviewer may not see (403:
# the managers' dashboard) or a case that does not exist (404); those answer with that
# status, which wrk counts among its errors.
WRK_REQUESTS = {
    "claim-next": ("POST", "/api/v1/cases/claim-next/", 200),
    "403": ("GET", "/dashboard/", 403),
    "404": ("GET", "/cases/999999999/", 404),
}


def run_wrk(*, base: str, people: list[dict], count: int, duration: float, probe,
            asked: str = "claim-next") -> dict:
    """``asked`` (``WRK_REQUESTS``) back to back from ``count`` wrk connections (one
    thread)."""
    from django.db import connection

    method, path, status = WRK_REQUESTS[asked]
    if asked == "claim-next":
        headers = [f'["Authorization"] = "Token {p["token"]}", '
                   '["Content-Type"] = "application/json"' for p in people]
        body = f"'{{\"queue\": \"{QUEUE}\"}}'"
    else:
        cookies = [_signed_in(base, p["username"], PASSWORD).cookies for p in people]
        headers = [f'["Cookie"] = "sessionid={jar["sessionid"]}"' for jar in cookies]
        body = "nil"
    script = WRK_SCRIPT % {"headers": ", ".join(f"{{{h}}}" for h in headers),
                           "method": method, "path": path, "body": body}
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script)
        lua.flush()
        with connection.cursor() as cursor:
            cursor.execute("SELECT coalesce(max(id), 0) FROM workflows_auditevent")
            (since,) = cursor.fetchone()
        before = probe.sample()
        output = subprocess.run(
            ["wrk", "-t1", f"-c{count}", f"-d{duration:.0f}s", "-s", lua.name, base],
            capture_output=True, text=True, check=True).stdout
        after = probe.sample()
    done, errors, p50, p99, micros, other_status = (int(n) for n in re.search(
        r"^wrk (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)$", output, re.M).groups())
    if status != 200:  # the status asked for is no error here; any other would be
        errors -= other_status
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), count(DISTINCT object_id) FROM workflows_auditevent "
                       "WHERE id > %s AND verb = 'case.claimed'", [since])
        claims, cases = cursor.fetchone()
    return {"timings": {}, "percentiles": {asked: (done, p50 / 1e6, p99 / 1e6)},
            "claimed": claims,
            "elapsed": micros / 1e6, "double": claims - cases, "requests": done,
            "failures": [f"{errors} answers were errors or not answered"] if errors else [],
            **probe.per_request(before, after, done)}


class DeskProbe(intake.CpuProbe):
    """``intake.CpuProbe``, and the Celery worker's and beat's processes when they run."""

    def __init__(self, server_pid: int, *, database: str, celery_pids: Sequence[int] = ()):
        super().__init__(server_pid, database=database)
        self.celery_pids = set(celery_pids)

    def sample(self) -> dict[str, dict[int, float]]:
        children = [pid for pid, ppid in self._processes() if ppid in self.celery_pids]
        return super().sample() | {"celery": self._cpu([*self.celery_pids, *children])}

    def per_request(self, before: dict, after: dict, requests_made: int) -> dict[str, float]:
        """Milliseconds of CPU per request: gunicorn's, PostgreSQL's, Celery's."""
        return {f"{part}_ms": 1000 * self.used(before[part], after[part]) / requests_made
                for part in ("server", "db", "celery")}


def _pct(values: list[float], pct: float) -> float:
    return values[min(len(values) - 1, round(pct / 100 * (len(values) - 1)))] if values else 0.0


def report(label: str, figures: dict) -> None:
    print(f"\n{label}: {figures['requests']:,} requests in {figures['elapsed']:.0f} s, "
          f"{figures['claimed'] / figures['elapsed']:.1f} claims/s, double claims "
          f"{figures['double']}; server CPU per request: gunicorn "
          f"{figures['server_ms']:.2f} ms + PostgreSQL {figures['db_ms']:.2f} ms"
          + (f" + Celery {figures['celery_ms']:.2f} ms" if figures["celery_ms"] else ""))
    percentiles = {step: (len(values), _pct(values, 50), _pct(values, 99))
                   for step, values in figures["timings"].items() if values}
    for step, (count, p50, p99) in (percentiles | figures.get("percentiles", {})).items():
        print(f"  {step:12s} {count:6d}  p50 {1000 * p50:7.1f} ms  p99 {1000 * p99:7.1f} ms")
    for failure in figures["failures"][:5]:
        print(f"  FAILED {failure}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=20_000,
                        help="open cases waiting (the issue's size: 1,000,000)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per run")
    parser.add_argument("--think", type=float, default=1.0,
                        help="mean seconds before each step when paced")
    parser.add_argument("--reviewers", default=f"1,{REVIEWERS}")
    parser.add_argument("--port", type=int, default=8260)
    parser.add_argument("--client", choices=("python", "wrk"), default="python",
                        help="wrk: one request alone (--wrk), back to back, from wrk's "
                             "connections")
    parser.add_argument("--wrk", choices=tuple(WRK_REQUESTS), default="claim-next",
                        help="what wrk asks for: claim-next, or a 403 or 404 page")
    parser.add_argument("--steps", default=",".join(STEPS),
                        help="the steps of a round, comma-separated (Next case always: "
                             "'next case' alone is claim-next back to back)")
    parser.add_argument("--celery", action="store_true",
                        help="run a Celery worker and beat beside gunicorn (needs REDIS_URL)")
    args = parser.parse_args()
    if args.celery and not os.environ.get("REDIS_URL"):
        parser.error("--celery needs REDIS_URL: the worker and beat share the broker and cache")

    ensure_database(DATABASE)
    setup_django(DATABASE)
    from django.conf import settings
    from django.core.management import call_command

    settings.ALLOWED_HOSTS = ["testserver"]
    call_command("migrate", verbosity=0)
    people = prepare(args.cases)
    from workflows.models import CLAIMABLE_STATES, Case

    waiting = Case.objects.filter(queue__slug=QUEUE, state__in=CLAIMABLE_STATES).count()
    # The demo's configuration (as ``make demo`` runs it) on the bench's PostgreSQL.
    os.environ.update(BACKSTOP_DEMO="1", DATABASE_URL=database_url(DATABASE))
    intake.DATABASE_URL = database_url(DATABASE)
    port = intake.free_port(args.port)
    with tempfile.TemporaryDirectory() as var_dir:
        server = _start(port, var_dir)
        background = _start_celery(var_dir) if args.celery else []
        try:
            probe = DeskProbe(server.pid, database=DATABASE,
                              celery_pids=[process.pid for process in background])
            print(f"{os.path.basename(ROOT)}: gunicorn pid {server.pid}, 2 sync workers"
                  f"{', a Celery worker and beat' if background else ''}; "
                  f"{waiting:,} cases waiting in {QUEUE}; {os.cpu_count()} cores, load "
                  "average " + " ".join(f"{x:.1f}" for x in os.getloadavg()))
            double = 0
            for count in (int(n) for n in args.reviewers.split(",")):
                if args.client == "wrk":
                    figures = run_wrk(base=f"http://127.0.0.1:{port}", people=people,
                                      count=count, duration=args.duration, probe=probe,
                                      asked=args.wrk)
                    double += figures["double"]
                    report(f"{count} wrk connections, {args.wrk} back to back", figures)
                    continue
                for think in (args.think, 0.0):
                    figures = run(base=f"http://127.0.0.1:{port}", people=people,
                                  count=count, think=think, duration=args.duration,
                                  probe=probe, steps=frozenset(args.steps.split(",")))
                    double += figures["double"]
                    report(f"{count} reviewer{'s' if count > 1 else ''}, "
                           + (f"pausing {think:.1f} s before each step" if think
                              else "back to back"), figures)
        finally:
            for process in [server, *background]:
                intake.stop(process)
    print("\nload average after: " + " ".join(f"{x:.1f}" for x in os.getloadavg()))
    if double:
        sys.exit(f"{double} cases were claimed twice")


def _environment(var_dir: str) -> dict[str, str]:
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "LOG_LEVEL": "WARNING",
            "BACKSTOP_VAR_DIR": var_dir}


def _start_celery(var_dir: str) -> list[subprocess.Popen]:
    """One worker on every queue (the Procfile's worker, notices and webhooks) and beat."""
    from config.celery import app

    celery = [str(ROOT / ".venv/bin/celery"), "--quiet", "-A", "config"]
    processes = [subprocess.Popen(celery + arguments, env=_environment(var_dir), cwd=ROOT)
                 for arguments in (["worker", "-Q", "celery,notices,webhooks",
                                    "--concurrency", "1", "-n", "bench@%h", "-l", "warning"],
                                   ["beat", "-l", "warning"])]
    deadline = time.monotonic() + 60
    while not app.control.ping(timeout=1):  # its start-up is not the desk's cost
        if time.monotonic() > deadline:
            for process in processes:
                intake.stop(process)
            raise SystemExit("the Celery worker did not come up")
    return processes


def _start(port: int, var_dir: str):
    """gunicorn as ``intake.start_gunicorn`` starts it, with the product's own settings."""
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "config.wsgi", "--workers", "2",
         "--worker-class", "sync", "--bind", f"127.0.0.1:{port}", "--chdir", str(ROOT),
         "--log-level", "warning", "--timeout", "120"], env=_environment(var_dir), cwd=ROOT)
    import http.client

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.2)
    intake.stop(server)
    raise SystemExit("gunicorn did not come up")


if __name__ == "__main__":
    main()
