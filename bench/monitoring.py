"""The monitoring page's server time on PostgreSQL, with the rollups of 10,000,000 decisions.

    .venv/bin/python bench/monitoring.py                   # 10,000,000 decisions
    .venv/bin/python bench/monitoring.py --decisions 1000000 --reseed

1. Uses its own database ``bs_monitorbench`` (created if missing), migrates it and runs
   the demo's seed (``seed_demo``: the invoice-approval use case, people, decisions).
2. Writes the daily quality rollups that ``--decisions`` decisions leave over two years,
   four model versions and three routes (``DailyQuality``: what intake and resolution
   keep; the page reads nothing else of the decisions, which the printed tables of its
   queries show), and a drift reference with a checked PSI per feature.
3. Asks for the page through Django's test client signed in as a manager, warm, for the
   default 30 days, a year, and one model version over a year; then the API. Prints the
   median and 90th percentile of the server time and the queries of one request.

Target (issue 12): under 300 ms warm at 10,000,000 decisions.
"""

import argparse
import random
import re
import statistics
import time
from datetime import UTC, datetime, timedelta

from support import ensure_database, setup_django

DATABASE = "bs_monitorbench"
DAYS = 730
MODEL_VERSIONS = ["extractor-3.1.0", "extractor-3.2.0", "extractor-3.2.1", "extractor-4.0.0"]


def seed(decisions: int) -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.utils import timezone

    from exceptions_app.models import (
        CONFIDENCE_BINS,
        LATENCY_BUCKET_EDGES,
        DailyQuality,
        DriftReference,
        Route,
        UseCase,
        confidence_bin_fields,
        latency_bucket_field,
    )
    from exceptions_app.services import drift

    if not UseCase.objects.exists():
        call_command("seed_demo", "--no-key", verbosity=0)
    use_case = UseCase.objects.get(slug="invoice-approval")
    DailyQuality.objects.filter(use_case=use_case).delete()
    rng = random.Random(12)
    today = timezone.now().astimezone(UTC).date()
    per_day = decisions // DAYS
    rows = []
    for age in range(DAYS):
        day = today - timedelta(days=age)
        # Each model version serves half a year; the newest now.
        version = MODEL_VERSIONS[len(MODEL_VERSIONS) - 1 - min(age // 183, 3)]
        for route, share in ((Route.AUTO, 0.7), (Route.REVIEW, 0.25), (Route.REJECT, 0.05)):
            count = int(per_day * share)
            row = DailyQuality(day=day, use_case=use_case, model_version=version,
                               route=route, decisions=count)
            if route != Route.REJECT:
                row.resolved = count if route == Route.REVIEW else count // 10
                row.qa_sampled = row.qa_reviewed = count // 10 if route == Route.AUTO else 0
                row.qa_agreed = int(row.qa_reviewed * 0.97)
                row.overridden = int(row.resolved * rng.uniform(0.05, 0.2))
                row.reviewer_seconds = row.resolved * 90
                for n in range(CONFIDENCE_BINS):
                    resolved, agreed, confidence_sum = confidence_bin_fields(n)
                    setattr(row, resolved, row.resolved // CONFIDENCE_BINS)
                    setattr(row, agreed, int(row.resolved // CONFIDENCE_BINS * n / 10))
                    setattr(row, confidence_sum, row.resolved // CONFIDENCE_BINS * (n + .5) / 10)
                for n in range(len(LATENCY_BUCKET_EDGES) + 1):
                    setattr(row, latency_bucket_field(n), row.resolved // 8)
            rows.append(row)
    DailyQuality.objects.bulk_create(rows, batch_size=2000)
    total = sum(row.decisions for row in rows)
    features = drift.declared_features(use_case)
    manager = get_user_model().objects.filter(is_superuser=True).first() or \
        get_user_model().objects.first()
    now = timezone.now()
    DriftReference.objects.update_or_create(use_case=use_case, defaults={
        "since": now - timedelta(days=60), "until": now - timedelta(days=30),
        "decisions": 20_000, "set_by": manager, "set_at": now - timedelta(days=30),
        "distributions": {feature: {"kind": kind, "edges": [], "categories": [],
                                    "shares": [1.0]} for feature, kind in features.items()},
        "checked_at": now, "checked_decisions": 1000,
        "last_psi": {feature: rng.uniform(0, 0.3) for feature in features}})
    print(f"rollups: {len(rows)} rows for {total:,} decisions over {DAYS} days, "
          f"{len(MODEL_VERSIONS)} model versions; drift features: {len(features)}")


def measure(repeat: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from workflows.selectors import is_manager

    manager = next(user for user in get_user_model().objects.all() if is_manager(user))
    client = Client()
    client.force_login(manager)
    today = timezone.now().astimezone(UTC).date()
    year = {"since": (today - timedelta(days=364)).isoformat(), "until": today.isoformat()}
    cases = [
        ("page, last 30 days", "/use-cases/invoice-approval/monitoring/", {}),
        ("page, a year", "/use-cases/invoice-approval/monitoring/", year),
        ("page, a year, one model version", "/use-cases/invoice-approval/monitoring/",
         {**year, "model_version": "extractor-3.2.1"}),
        ("API, a year", "/api/v1/use-cases/invoice-approval/quality/", year),
    ]
    for label, url, params in cases:
        assert client.get(url, params).status_code == 200  # warm: caches, connection
        timings = []
        for _ in range(repeat):
            started = time.perf_counter()
            response = client.get(url, params)
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
        with CaptureQueriesContext(connection) as queries:
            client.get(url, params)
        tables = sorted({table for query in queries.captured_queries
                         for table in re.findall(r'FROM "(\w+)"', query["sql"])})
        timings.sort()
        print(f"{label}: median {statistics.median(timings):.1f} ms, "
              f"p90 {timings[int(len(timings) * 0.9) - 1]:.1f} ms over {repeat}; "
              f"{len(queries.captured_queries)} queries ({', '.join(tables)})")
    print(f"measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--reseed", action="store_true", help="drop the database first")
    args = parser.parse_args()
    ensure_database(DATABASE, recreate=args.reseed)
    setup_django(DATABASE)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    seed(args.decisions)
    measure(args.repeat)


if __name__ == "__main__":
    main()
