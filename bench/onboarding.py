"""Onboarding pages and governance as code on PostgreSQL, with the demo's configuration.

    .venv/bin/python bench/onboarding.py [--runs 30] [--reseed]

1. Uses its own database ``bs_onboardbench`` (created if missing), migrates it and runs
   the demo's seed (two use cases, four queues, two calendars, RACI, chains, demo-ai).
2. Asks for each onboarding page through Django's test client signed in as the demo's
   manager, warm, ``--runs`` times: the process's CPU time (the server's share: the
   template, the ORM and the database driver; PostgreSQL's own work is apart) and the
   wall time, median and 90th percentile, and the queries of one request.
3. Times the governance file of the demo: export, plan of that export, and applying it
   (a no-op: nothing written), the same way.

Budget (docs/PERFORMANCE.md): a page at most 8 ms of server CPU.
"""

import argparse
import statistics
import time

from support import ensure_database, setup_django

DATABASE = "bs_onboardbench"


def measure(call, runs: int) -> tuple[list[float], list[float]]:
    call()  # warm: caches, compiled templates, connections
    cpu, wall = [], []
    for _ in range(runs):
        started_cpu, started = time.process_time(), time.perf_counter()
        call()
        cpu.append((time.process_time() - started_cpu) * 1000)
        wall.append((time.perf_counter() - started) * 1000)
    return cpu, wall


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--reseed", action="store_true")
    args = parser.parse_args()
    ensure_database(DATABASE, recreate=args.reseed)
    setup_django(DATABASE)

    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from exceptions_app.models import UseCase
    from exceptions_app.services import governance

    call_command("migrate", verbosity=0)
    if not UseCase.objects.exists():
        call_command("seed_demo", "--no-key", verbosity=0)
    manager = get_user_model().objects.get(username="manager")
    client = Client(HTTP_HOST="127.0.0.1", secure=True)
    client.force_login(manager)

    print(f"{'request':<44} {'cpu p50':>8} {'cpu p90':>8} {'wall p50':>9} {'queries':>8}")
    for label, url in [("use case page (with its onboarding part)",
                        "/use-cases/invoice-approval/"),
                       ("use case editor", "/use-cases/invoice-approval/edit/"),
                       ("AI systems", "/ai-systems/"),
                       ("AI system page", "/ai-systems/demo-ai/"),
                       ("queue settings", "/queues/invoice-review/settings/"),
                       ("API: AI system", "/api/v1/ai-systems/demo-ai/"),
                       ("API: use case", "/api/v1/use-cases/invoice-approval/"),
                       # Existing pages, for the ratio on a shared, noisy machine.
                       ("(compare) queue members page", "/queues/invoice-review/members/"),
                       ("(compare) RACI matrix page", "/raci/invoice-approval/")]:
        def get(url=url):
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
        cpu, wall = measure(get, args.runs)
        with CaptureQueriesContext(connection) as queries:
            get()
        print(f"{label:<44} {statistics.median(cpu):>6.1f}ms {p90(cpu):>6.1f}ms "
              f"{statistics.median(wall):>7.1f}ms {len(queries):>8}")

    text = governance.export_yaml()
    for label, call in [("governance export (the demo)", governance.export_yaml),
                        ("governance plan (of the export)", lambda: governance.plan(text)),
                        ("governance apply (of the export: no-op)",
                         lambda: governance.apply(text, actor=manager))]:
        cpu, wall = measure(call, max(5, args.runs // 3))
        with CaptureQueriesContext(connection) as queries:
            call()
        print(f"{label:<44} {statistics.median(cpu):>6.1f}ms {p90(cpu):>6.1f}ms "
              f"{statistics.median(wall):>7.1f}ms {len(queries):>8}")
    print(f"the demo's file: {len(text.splitlines())} lines, {len(text)} bytes")


if __name__ == "__main__":
    main()
