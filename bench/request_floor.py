"""The fixed cost of a signed-in request (issue 15): what every page and API call pays
before its own work, in one process.

    .venv/bin/python bench/request_floor.py [--runs 300] [--profile "empty page"]

Run from a checkout's root, it measures that checkout's code on its own database
(``BENCH_DATABASE``, default ``bs_floorbench``: the demo's seed) and cache (``REDIS_URL``
if set, as in production; else the demo's per-process memory). Through Django's test
client, each request ``--runs`` times after a warm-up, timed by ``time.process_time``,
with its database queries counted:

- an empty page (a reviewer's ``/consults/``: the session, the person, the top bar and
  nothing else), home, a 403 (a reviewer opening the dashboard), a 404 (a case that
  does not exist), all signed in with a session;
- an API call that does nothing but answer the caller's own preferences
  (``/api/v1/me/preferences/``) with a token, and with the session.

``--profile LABEL`` prints where that request's time goes (cProfile, cumulative).
Budgets (issue 15): home <= 4 ms, a 403/404 <= 1 ms.
"""

import argparse
import cProfile
import os
import pstats
import statistics
import time

from support import ensure_database, setup_django

DATABASE = os.environ.get("BENCH_DATABASE", "bs_floorbench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--profile", default="", help="a request's label: profile it")
    args = parser.parse_args()

    ensure_database(DATABASE)
    setup_django(DATABASE)
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    from workflows.actors import SystemActor
    from workflows.services import tokens

    settings.ALLOWED_HOSTS = ["testserver"]
    call_command("migrate", verbosity=0)
    User = get_user_model()
    if not User.objects.filter(username="reviewer").exists():
        call_command("seed_demo", "--no-key", verbosity=0)
    reviewer = User.objects.get(username="reviewer")
    browser = Client()
    browser.force_login(reviewer)
    program = APIClient()
    program.credentials(HTTP_AUTHORIZATION="Token " + tokens.issue_user_token(
        user=reviewer, actor=SystemActor(label="bench")).key)

    requests = {
        "empty page": (lambda: browser.get("/consults/"), 200),
        "home": (lambda: browser.get("/"), 200),
        "403": (lambda: browser.get("/dashboard/"), 403),
        "404": (lambda: browser.get("/cases/999999999/"), 404),
        "API, token": (lambda: program.get("/api/v1/me/preferences/"), 200),
        "API, session": (lambda: browser.get("/api/v1/me/preferences/"), 200),
    }
    cpu: dict[str, list[float]] = {label: [] for label in requests}
    queries: dict[str, int] = {}
    for label, (call, expect) in requests.items():  # warm-up, and what each asks
        with CaptureQueriesContext(connection) as captured:
            response = call()
        assert response.status_code == expect, (label, response.status_code)
        queries[label] = len(captured.captured_queries)
    for _ in range(args.runs):  # interleaved, so a busy moment hurts every request alike
        for label, (call, _expect) in requests.items():
            started = time.process_time()
            call()
            cpu[label].append(time.process_time() - started)

    cache = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
    print(f"{os.path.basename(os.getcwd())}: {args.runs} runs, cache {cache}, sessions "
          f"{settings.SESSION_ENGINE.rsplit('.', 1)[-1]}; load average "
          + " ".join(f"{value:.1f}" for value in os.getloadavg()))
    for label in requests:
        print(f"  {label:14s} CPU median {1000 * statistics.median(cpu[label]):6.3f} ms  "
              f"mean {1000 * statistics.mean(cpu[label]):6.3f} ms  queries {queries[label]:2d}")

    if args.profile:
        call, _expect = requests[args.profile]
        profile = cProfile.Profile(time.process_time)  # CPU, not waiting
        profile.enable()
        for _ in range(args.runs):
            call()
        profile.disable()
        pstats.Stats(profile).sort_stats("cumulative").print_stats(60)
        with CaptureQueriesContext(connection) as captured:
            call()
        for query in captured.captured_queries:
            print(query["sql"][:400])


if __name__ == "__main__":
    main()
