"""Server CPU and queries per request on the reviewer's path, in one process.

    .venv/bin/python bench/reviewer_cpu.py [--cases 2000] [--runs 40] [--reseed]

Run from a checkout's root, it measures that checkout's code: its own database
``bs_reviewerbench`` (created if missing), the demo's seed (``seed_demo``: people,
queues, policy, SLA clocks, escalation chains) plus open cases until ``--cases`` wait
in the demo's queues, made by the demo's decision generator through batch intake (low
confidence, so every one is reviewed). Then, through Django's test client (the real
URLs, middleware, token or session authentication, serializers and templates), each
request ``--runs`` times after a warm-up, timed by ``time.process_time`` (what else
runs on the machine does not count, though it slows every instruction) with its
queries counted:

- claim-next, resolve and every other transition through the API (a reviewer's token;
  a manager's for reassign, priority and cancel; a second reviewer approves);
- the case API's list and detail;
- the case page, home, the queue list (managers' ``/queues/``), approvals, the dashboard
  (a look at the board another look made; the first look after a count, which makes it;
  the first look at a board beat's count made);
- a 403 (a reviewer opening the dashboard) and a 404 (a case that does not exist).

Each step's case is prepared through the services, unmeasured; only the request is.
Against the budgets of issue 15: claim-next and each transition <= 5 ms, the case API
<= 4 ms, the case page <= 8 ms, home <= 4 ms, a 403/404 <= 1 ms.
"""

import argparse
import os
import statistics
import sys
import time

from support import ensure_database, setup_django

# BENCH_DATABASE lets two engineers (or two checkouts) bench side by side.
DATABASE = os.environ.get("BENCH_DATABASE", "bs_reviewerbench")
QUEUE = "invoice-review"

BUDGETS_MS = {"claim-next": 5, "resolve": 5, "release": 5, "claim": 5, "request-info": 5,
              "resume": 5, "escalate": 5, "approve": 5, "send-back": 5, "reassign": 5,
              "priority": 5, "cancel": 5, "case API list": 4, "case API detail": 4,
              "case page": 8, "home": 4, "403": 1, "404": 1}


def seed(*, cases: int) -> None:
    """The demo, then open cases in its queues until ``cases`` wait there."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from exceptions_app.api.serializers import validate_decisions
    from exceptions_app.demo.simulation import synthetic_decisions
    from exceptions_app.models import AiSystem
    from exceptions_app.services.intake import submit_decisions
    from workflows.models import CLAIMABLE_STATES, Case

    if not get_user_model().objects.filter(username="reviewer").exists():
        call_command("seed_demo", "--no-key", verbosity=0)
    system = AiSystem.objects.get(slug="demo-ai")
    waiting = Case.objects.filter(state__in=CLAIMABLE_STATES, queue__slug=QUEUE)
    started = time.perf_counter()
    added = 0
    for large, wanted in ((False, cases), (True, cases // 8)):
        have = waiting.filter(requires_four_eyes=large).count()
        while have < wanted:
            count = min(1000, wanted - have)
            bodies = [_large(synthetic.body) if large else dict(synthetic.body, confidence=0.5)
                      for synthetic in synthetic_decisions(count=count, error_rate=0.0)]
            submit_decisions(ai_system=system,
                             items=[item for item, _ in validate_decisions(bodies)])
            added += count
            have = waiting.filter(requires_four_eyes=large).count()
    if added:
        # As autovacuum would in production (it is off on the bench machines): without
        # fresh statistics the planner takes a million waiting cases for a few dozen.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        print(f"seed: {added:,} decisions to review in {time.perf_counter() - started:.0f} s")


def _large(body: dict) -> dict:
    """A matching invoice over 50,000: the demo's policy wants two people (four eyes)."""
    amount = 60_000.0
    return dict(body, confidence=0.5,
                input=dict(body["input"], po_amount=amount, line_items=[
                    {"description": "Annual licence", "quantity": 1, "unit_price": amount}]),
                output=dict(body["output"], amount=amount))


class Step:
    """One measured request: CPU (process time) and wall time per call, queries."""

    def __init__(self, label: str):
        self.label, self.cpu, self.wall, self.queries = label, [], [], []
        self.statements: list[str] = []  # the last call's SQL, for ``--show-queries``

    def time(self, call, *, expect: int):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            started_cpu, started = time.process_time(), time.perf_counter()
            response = call()
            self.cpu.append(time.process_time() - started_cpu)
            self.wall.append(time.perf_counter() - started)
        self.queries.append(len(queries.captured_queries))
        self.statements = [query["sql"] for query in queries.captured_queries]
        assert response.status_code == expect, (self.label, response.status_code,
                                                getattr(response, "content", b"")[:300])
        return response

    def line(self) -> str:
        cpu = 1000 * statistics.median(self.cpu)
        budget = BUDGETS_MS.get(self.label)
        verdict = "" if budget is None else (" ok" if cpu <= budget else f" over {budget} ms")
        return (f"  {self.label:16s} CPU median {cpu:6.2f} ms  mean "
                f"{1000 * statistics.mean(self.cpu):6.2f} ms  queries {max(self.queries):3d}"
                f"  wall p50 {1000 * statistics.median(self.wall):6.1f} ms{verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=2000,
                        help="open cases waiting in the demo's review queue")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--show-queries", action="append", default=[], metavar="STEP",
                        help="print the SQL of this step's last request (repeatable; "
                             "'all' for every step)")
    args = parser.parse_args()

    ensure_database(DATABASE, recreate=args.reseed)
    setup_django(DATABASE)
    from django.conf import settings
    from django.core.management import call_command

    settings.ALLOWED_HOSTS = ["testserver"]
    call_command("migrate", verbosity=0)
    seed(cases=args.cases + 16 * args.runs)

    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.test import Client
    from rest_framework.test import APIClient

    from workflows.actors import SystemActor
    from workflows.dashboard import DEFAULT_PERIOD, URGENT_LIMIT
    from workflows.dashboard.page import board_key
    from workflows.models import CLAIMABLE_STATES, Case, CaseState
    from workflows.services import claiming, tokens, transitions
    from workflows.tasks import count_open_cases

    User = get_user_model()
    reviewer, reviewer2, manager = (User.objects.get(username=name)
                                    for name in ("reviewer", "reviewer2", "manager"))

    def api(user) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION="Token " + tokens.issue_user_token(
            user=user, actor=SystemActor(label="bench")).key)
        return client

    def pages(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    me, second, boss = api(reviewer), api(reviewer2), api(manager)
    my_pages, second_pages, boss_pages = pages(reviewer), pages(reviewer2), pages(manager)
    steps: dict[str, Step] = {}

    def step(label: str) -> Step:
        return steps.setdefault(label, Step(label))

    def post(client, path, body=None):
        return lambda: client.post(path, body or {}, format="json")

    def claimed_case(*, four_eyes: bool = False) -> Case:
        """An open case of the review queue, claimed by the reviewer (unmeasured)."""
        case = (Case.objects.filter(queue__slug=QUEUE, state__in=CLAIMABLE_STATES,
                                    requires_four_eyes=four_eyes).order_by("-id").first())
        assert case is not None, f"no waiting case (four eyes: {four_eyes}); seed more"
        return claiming.claim(case_id=case.pk, user=reviewer)

    def one_round(measured: bool) -> None:
        def measure(label, call, *, expect=200):
            return (step(label).time(call, expect=expect) if measured else call())

        answer = measure("claim-next", post(me, "/api/v1/cases/claim-next/",
                                            {"queue": QUEUE})).json()
        case_id = answer["id"]
        measure("case API detail", lambda: me.get(f"/api/v1/cases/{case_id}/"))
        measure("case page", lambda: my_pages.get(f"/cases/{case_id}/"))
        resolved = measure("resolve", post(me, f"/api/v1/cases/{case_id}/resolve/",
                                           {"verdict": "accepted",
                                            "version": answer["version"]})).json()
        if resolved["state"] == CaseState.PENDING_APPROVAL:  # the approvals list stays short
            transitions.approve(case_id=case_id, user=reviewer2)
        case = claimed_case()
        path = f"/api/v1/cases/{case.pk}"
        measure("request-info", post(me, f"{path}/request-info/", {"reason": "Which PO?"}))
        measure("resume", post(me, f"{path}/resume/"))
        measure("release", post(me, f"{path}/release/"))
        measure("claim", post(me, f"{path}/claim/"))
        measure("escalate", post(me, f"{path}/escalate/", {"reason": "Looks off"}))
        measure("reassign", post(boss, f"{path}/reassign/", {"to_user": "reviewer"}))
        measure("priority", post(boss, f"{path}/priority/", {"priority": 70}))
        measure("cancel", post(boss, f"{path}/cancel/", {"reason": "Sent twice"}))
        for action in ("approve", "send-back"):
            case = claimed_case(four_eyes=True)
            transitions.resolve(case_id=case.pk, user=reviewer, verdict="accepted",
                                output=None, reason_code="")
            measure(action, post(second, f"/api/v1/cases/{case.pk}/{action}/",
                                 {"comment": "Check the PO"}))
        # Sent back to the reviewer: give it back, so their home lists the same work
        # in every round.
        transitions.release(case_id=case.pk, user=reviewer)
        measure("case API list", lambda: me.get("/api/v1/cases/"))
        measure("home", lambda: my_pages.get("/"))
        measure("queue list", lambda: boss_pages.get("/queues/"))
        measure("approvals", lambda: second_pages.get("/approvals/"))
        measure("dashboard", lambda: boss_pages.get("/dashboard/"))
        measure("403", lambda: my_pages.get("/dashboard/"), expect=403)
        measure("404", lambda: my_pages.get("/cases/999999999/"), expect=404)

    one_round(measured=False)  # warm-up: code paths run once, caches filled
    for _ in range(args.runs):
        one_round(measured=True)
    # The first look after a count makes the board the next looks share. Apart from the
    # rounds: a request that follows a 20 ms one costs more (the CPU's caches hold the
    # other's data), and the rounds' figures stay comparable with earlier runs.
    # With beat (Redis), its count makes the board: the look renders it.
    default_board = board_key(process="", queue="", period=DEFAULT_PERIOD,
                              urgent_limit=URGENT_LIMIT)
    for _ in range(args.runs):
        cache.delete(default_board)
        step("dashboard, first").time(lambda: boss_pages.get("/dashboard/"), expect=200)
        cache.delete(default_board)
        count_open_cases()
        step("dashboard, beat's").time(lambda: boss_pages.get("/dashboard/"), expect=200)
    waiting = Case.objects.filter(queue__slug=QUEUE, state__in=CLAIMABLE_STATES).count()
    print(f"{os.path.basename(os.getcwd())}: {args.runs} rounds, {waiting:,} cases waiting "
          f"in {QUEUE}, {Case.objects.filter(state=CaseState.RESOLVED).count():,} resolved; "
          "load average " + " ".join(f"{value:.1f}" for value in os.getloadavg()))
    for label in steps:
        print(steps[label].line())
    for label in steps:
        if label in args.show_queries or "all" in args.show_queries:
            print(f"\n{label}:")
            for number, sql in enumerate(steps[label].statements, 1):
                print(f"  {number:2d}. {sql[:400]}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
