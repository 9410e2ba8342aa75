"""Server CPU per single decision POST, in one process: what the intake code costs,
without the load generator, gunicorn's scheduling or the machine's other work.

    .venv/bin/python bench/intake_cpu.py [--posts 2000] [--rounds 3]

Run from a checkout's root, it measures that checkout's code: ``bench/intake.py``'s own
database, seed and invoice bodies (the demo's use case, contracts and rules), then
``--posts`` POSTs of ``/api/v1/decisions/`` through Django's test client (the real URLs,
middleware, API key authentication, serializer and intake), timed by
``time.process_time`` per round. To compare two commits, run it in each checkout,
alternating; the rounds' spread says how far to trust a difference.
"""

import argparse
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.getcwd(), "bench"))

import intake  # the checkout's own bench, for its seed and bodies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    key = intake.setup_database()
    from django.conf import settings
    from django.test import Client

    settings.ALLOWED_HOSTS = ["testserver"]
    client = Client(HTTP_AUTHORIZATION=f"Api-Key {key}")
    rng = random.Random(1)
    run = f"cpu-{time.time_ns()}"
    number = 0

    def post() -> int:
        nonlocal number
        number += 1
        return client.post("/api/v1/decisions/", intake.invoice_body(f"{run}-{number}", rng),
                           content_type="application/json").status_code

    for _ in range(50):
        assert post() == 201
    per_round = []
    for _ in range(args.rounds):
        started = time.process_time()
        for _ in range(args.posts):
            post()
        per_round.append(1000 * (time.process_time() - started) / args.posts)
    print(f"{os.path.basename(os.getcwd())}: CPU per POST "
          + ", ".join(f"{value:.3f}" for value in per_round)
          + f" ms (median {statistics.median(per_round):.3f}); load average "
          + " ".join(f"{value:.1f}" for value in os.getloadavg()))


if __name__ == "__main__":
    main()
