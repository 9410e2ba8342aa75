"""What the evidence loop's endpoints cost per request, on PostgreSQL, on the demo.

    .venv/bin/python bench/evidence_api.py [--examples 200000] [--runs 200] [--reseed]

1. Uses the export bench's database ``bs_exportbench`` (``bench/export.py`` seeds it:
   the demo plus ``--examples`` labelled examples copied from the demo's resolutions).
2. Through Django's test client, with the real URLs, authentication, serializers and
   templates, on one process: CPU per request (``time.process_time``, so what else runs
   on the machine does not count) and wall p50/p99 for

   - resolving a case through the API (``POST /api/v1/cases/{id}/resolve/``, after a
     claim), which now also gives the resolution its feed place and the labelled
     example its export place, each under a lock held to commit;
   - ``GET /api/v1/resolutions/`` (a page of 100, deep in the feed), and
     ``GET /api/v1/decisions/?external_id=``, with an AI system's key;
   - ``GET /api/v1/labels/?page_size=500`` deep in the export, and the ``/labels/``
     page, as a manager;

   against the budgets: an API call or transition <= 5 ms of server CPU, a page <= 8 ms.
"""

import argparse
import statistics
import time

from export import DATABASE, seed
from support import ensure_database, setup_django


def measure(label: str, call, runs: int, per: int = 1) -> None:
    cpu, wall = [], []
    call()  # warm-up
    for _ in range(runs):
        started_cpu, started = time.process_time(), time.perf_counter()
        status = call()
        cpu.append(time.process_time() - started_cpu)
        wall.append(time.perf_counter() - started)
        assert status < 400, (label, status)
    wall.sort()
    print(f"  {label:58s} CPU {1000 * statistics.mean(cpu) / per:6.2f} ms"
          f"   wall p50 {1000 * wall[len(wall) // 2]:6.1f} ms"
          f"  p99 {1000 * wall[min(len(wall) - 1, int(len(wall) * 0.99))]:6.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--reseed", action="store_true")
    args = parser.parse_args()

    ensure_database(DATABASE, recreate=args.reseed)
    setup_django(DATABASE)
    from django.conf import settings
    from django.core.management import call_command

    settings.ALLOWED_HOSTS = ["testserver"]
    call_command("migrate", verbosity=0)
    examples = seed(args.examples)

    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient

    from exceptions_app.api.serializers import validate_decisions
    from exceptions_app.demo.simulation import synthetic_decisions
    from exceptions_app.models import AiSystem, Decision, LabelledExample
    from exceptions_app.services.api_keys import issue_api_key
    from exceptions_app.services.intake import submit_decisions
    from workflows.actors import SystemActor
    from workflows.services import tokens

    User = get_user_model()
    reviewer, manager = User.objects.get(username="reviewer"), User.objects.get(username="manager")
    system = AiSystem.objects.get(slug="demo-ai")
    ai = APIClient()
    ai.credentials(HTTP_AUTHORIZATION="Api-Key " + issue_api_key(
        ai_system=system, name="bench", actor=SystemActor(label="bench")))
    person = APIClient()
    person.credentials(HTTP_AUTHORIZATION="Token " + tokens.issue_user_token(
        user=reviewer, actor=SystemActor(label="bench")).key)
    boss = APIClient()
    boss.credentials(HTTP_AUTHORIZATION="Token " + tokens.issue_user_token(
        user=manager, actor=SystemActor(label="bench")).key)
    page = APIClient()
    page.force_login(manager)

    # Cases to resolve: the demo's generator, low confidence, so every one is reviewed.
    run = f"evidence-{int(time.time())}"
    bodies = []
    for synthetic in synthetic_decisions(count=args.runs + 1, error_rate=0.0, seed=None):
        body = dict(synthetic.body, external_id=f"{run}-{len(bodies)}", confidence=0.5)
        bodies.append(body)
    results = submit_decisions(ai_system=system,
                               items=[item for item, _ in validate_decisions(bodies)])
    case_ids = iter([r.decision.case_id for r in results if r.decision.case_id])
    print(f"evidence API bench: {examples:,} labelled examples, "
          f"{Decision.objects.filter(feed_position__isnull=False).count():,} in the feed")

    def resolve():
        case_id = next(case_ids)
        claimed = person.post(f"/api/v1/cases/{case_id}/claim/", {}, format="json").json()
        return person.post(f"/api/v1/cases/{case_id}/resolve/", {
            "verdict": "accepted", "version": claimed["version"]}, format="json").status_code

    measure("claim + resolve (two API calls)", resolve, args.runs)
    feed_cursor = _cursor_near_end(ai, "/api/v1/resolutions/?page_size=100")
    measure("GET /api/v1/resolutions/ (100 a page)",
            lambda: ai.get(feed_cursor).status_code, args.runs)
    measure("GET /api/v1/decisions/?external_id=",
            lambda: ai.get("/api/v1/decisions/", {"external_id": f"{run}-3"}).status_code,
            args.runs)
    last = LabelledExample.objects.order_by("-position").values_list("position", flat=True)[0]
    labels_url = ("/api/v1/labels/?page_size=500&cursor="
                  + _feed_cursor(max(0, last - 1000)))
    measure("GET /api/v1/labels/ (500 a page, per row)",
            lambda: boss.get(labels_url).status_code, max(10, args.runs // 10), per=500)
    measure("GET /labels/ (the export page)", lambda: page.get("/labels/").status_code,
            args.runs)


def _feed_cursor(position: int) -> str:
    from workflows.api.pagination import FeedPagination

    return FeedPagination._encode(position)


def _cursor_near_end(client, url: str) -> str:
    from exceptions_app.models import Decision

    last = (Decision.objects.filter(feed_position__isnull=False)
            .order_by("-feed_position").values_list("feed_position", flat=True).first() or 0)
    return f"{url}&cursor={_feed_cursor(max(0, last - 100))}"


if __name__ == "__main__":
    main()
