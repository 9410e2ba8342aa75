"""The policy release pages' server time on PostgreSQL, beside the use case page.

    .venv/bin/python bench/policy_pages.py [--repeat 40] [--reseed]

1. Uses its own database ``bs_policybench`` (created if missing), migrates it and runs
   the demo's seed (``seed_demo``: the invoice policy v1, six rules, its RACI matrix).
2. As ``reviewer2`` (Responsible for the policy), starts draft v2 from v1 if there is none.
3. Asks, through Django's test client, warm, for the use case page (for comparison, in
   the same run), the versions list, v1's page, the editor of v2, the v1 -> v2 diff and
   the editor's live check of one rule; prints the median and 90th percentile of the
   server time and the queries of one request.

Not hot paths: an owner opens these a few times per release. The live check runs once
per pause in typing.
"""

import argparse
import statistics
import time
from datetime import UTC, datetime

from support import ensure_database, setup_django

DATABASE = "bs_policybench"


def measure(repeat: int) -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from exceptions_app.models import PolicyStatus, PolicyVersion, UseCase
    from exceptions_app.services import policies

    if not UseCase.objects.exists():
        call_command("seed_demo", "--no-key", verbosity=0)
    drafter = get_user_model().objects.get(username="reviewer2")
    first = PolicyVersion.objects.get(use_case__slug="invoice-approval", number=1)
    draft = PolicyVersion.objects.filter(use_case=first.use_case,
                                         status=PolicyStatus.DRAFT).first()
    if draft is None:
        draft = policies.policy_create_draft(
            use_case=first.use_case, author=drafter, text=first.text + "\nOne more line.",
            rules=[policies.RuleSpec.of(rule) for rule in first.rules.order_by("position")],
            default_action=first.default_action, default_reason=first.default_reason)
    client = Client()
    client.force_login(drafter)
    base = "/use-cases/invoice-approval/policies/"
    cases = [
        ("use case page (for comparison)", "get", "/use-cases/invoice-approval/", None),
        ("versions", "get", base, None),
        ("version v1", "get", f"{base}1/", None),
        (f"editor of v{draft.number}", "get", f"{base}{draft.number}/edit/", None),
        (f"diff v1 -> v{draft.number}", "get", f"{base}{draft.number}/diff/?against=1", None),
        ("live rule check", "post", f"{base}check-rule/",
         {"rules-0-expression": 'confidence < "0.9"'}),
    ]
    for label, method, url, data in cases:
        ask = getattr(client, method)
        assert ask(url, data).status_code == 200  # warm: caches, connection
        timings = []
        for _ in range(repeat):
            started = time.perf_counter()
            response = ask(url, data)
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
        with CaptureQueriesContext(connection) as queries:
            ask(url, data)
        timings.sort()
        print(f"{label}: median {statistics.median(timings):.1f} ms, "
              f"p90 {timings[int(len(timings) * 0.9) - 1]:.1f} ms over {repeat}; "
              f"{len(queries.captured_queries)} queries")
    print(f"measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--reseed", action="store_true", help="drop the database first")
    args = parser.parse_args()
    ensure_database(DATABASE, recreate=args.reseed)
    setup_django(DATABASE)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    measure(args.repeat)


if __name__ == "__main__":
    main()
