"""What guardrails cost intake, and what the stage page's evidence costs, in one process.

    .venv/bin/python bench/guardrails.py [--posts 1000] [--batches 40] [--rounds 3]

Run from a checkout's root. ``bench/intake.py``'s seed (the demo-like use case, its
contracts and six CEL rules, an AI system and its key) in a database of its own
(``bs_guardrailbench``), then, alternating in each round so that the machine's noise
falls on both alike:

- server CPU (``time.process_time``) per single-decision POST of ``/api/v1/decisions/``
  and per decision in batches of 100, with no guardrails, then with daily caps on count
  and value and probation of new model versions switched on (the caps' three statements
  and probation's two per request or batch);
- server CPU per GET of the stage evidence (``/api/v1/use-cases/<slug>/stage/``) and of
  the stage page, over the decisions the rounds posted.
"""

import argparse
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.getcwd(), "bench"))

import intake  # the checkout's own bench, for its seed and bodies

intake.DATABASE = "bs_guardrailbench"
intake.DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{intake.DATABASE}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    key = intake.setup_database()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    from exceptions_app.models import UseCase
    from exceptions_app.stage_models import Guardrails

    settings.ALLOWED_HOSTS = ["testserver"]
    client = Client(HTTP_AUTHORIZATION=f"Api-Key {key}")
    reader = Client()
    reader.force_login(get_user_model().objects.create_superuser("bench-reader", password="x"))
    use_case = UseCase.objects.get(slug=intake.USE_CASE)
    guardrails = Guardrails.objects.create(use_case=use_case)
    rng = random.Random(1)
    run = f"guard-{time.time_ns()}"
    numbers = iter(range(10**9))

    def body() -> dict:
        return intake.invoice_body(f"{run}-{next(numbers)}", rng)

    def single() -> None:
        response = client.post("/api/v1/decisions/", body(), content_type="application/json")
        assert response.status_code == 201, response.content

    def batch() -> None:
        response = client.post("/api/v1/decisions/batch/",
                               {"decisions": [body() for _ in range(100)]},
                               content_type="application/json")
        assert response.status_code == 200, response.content

    def switch(on: bool) -> None:
        guardrails.daily_auto_cap = 10**9 if on else None
        guardrails.daily_value_cap = 1e15 if on else None
        guardrails.value_field = "po_amount" if on else ""
        guardrails.probation_decisions = 1 if on else 0
        guardrails.save()

    def cpu_ms(work, times: int, per: int = 1) -> float:
        started = time.process_time()
        for _ in range(times):
            work()
        return 1000 * (time.process_time() - started) / (times * per)

    for on in (False, True):  # warm both paths
        switch(on)
        for _ in range(30):
            single()
        batch()
    figures = {name: [] for name in ("single off", "single on", "batch off", "batch on",
                                     "stage api", "stage page")}
    for _ in range(args.rounds):
        for on in (False, True):
            switch(on)
            label = "on" if on else "off"
            figures[f"single {label}"].append(cpu_ms(single, args.posts))
            figures[f"batch {label}"].append(cpu_ms(batch, args.batches, per=100))
        figures["stage api"].append(cpu_ms(
            lambda: reader.get(f"/api/v1/use-cases/{intake.USE_CASE}/stage/"), 200))
        figures["stage page"].append(cpu_ms(
            lambda: reader.get(f"/use-cases/{intake.USE_CASE}/stage/"), 200))
    from exceptions_app.models import Decision

    print(f"{os.path.basename(os.getcwd())}: {Decision.objects.count()} decisions stored; "
          f"load average " + " ".join(f"{value:.1f}" for value in os.getloadavg()))
    for name, values in figures.items():
        unit = "per decision" if name.startswith("batch") else "per request"
        print(f"  {name:11s} CPU {unit}: " + ", ".join(f"{v:.3f}" for v in values)
              + f" ms (median {statistics.median(values):.3f})")
    off, on = (statistics.median(figures[f"single {s}"]) for s in ("off", "on"))
    print(f"  caps + probation on a single POST: {100 * (on / off - 1):+.1f}%")
    off, on = (statistics.median(figures[f"batch {s}"]) for s in ("off", "on"))
    print(f"  caps + probation per decision of a batch of 100: {100 * (on / off - 1):+.1f}%")


if __name__ == "__main__":
    main()
