"""Backtest of a policy version over recorded decisions on PostgreSQL: decisions/s.

    .venv/bin/python bench/backtest.py                        # 1,000,000 decisions
    .venv/bin/python bench/backtest.py --decisions 200000 --reseed

1. Uses its own database ``bs_backtestbench`` and seeds it as ``bench/export.py`` does:
   the demo (``seed_demo``: the invoice-approval use case with its contracts, rules and
   people), then copies of its resolved decisions, each with its labelled example,
   amounts and confidence varied, until there are ``--decisions``.
2. Drafts the version an owner would try: the demo's policy with its low-confidence
   threshold lowered from 0.9 to 0.85, through the policies service.
3. Runs the backtest (``backtests.run``, what the Celery job calls) over the last
   ``--decisions`` decisions in this process and prints decisions/s and CPU; beside it,
   the floor: reading the same rows (JSON as text, parsed with orjson) without judging.
   Then the threshold curve over the same labelled history.

Target (issue 13): at least 20,000 decisions/s.
"""

import argparse
import os
import time

from export import seed
from support import ensure_database, setup_django

DATABASE = "bs_backtestbench"


def draft_lower_threshold():
    from exceptions_app.demo.data import POLICY_RULES, POLICY_TEXT
    from exceptions_app.models import PolicyStatus, PolicyVersion, UseCase
    from exceptions_app.services.policies import policy_create_draft
    from workflows.models import User

    use_case = UseCase.objects.get(slug="invoice-approval")
    existing = PolicyVersion.objects.filter(use_case=use_case, status=PolicyStatus.DRAFT,
                                            text__startswith="Bench:").first()
    if existing:
        return existing
    rules = [rule if rule.name != "low-confidence"
             else rule.__class__(**{**rule.__dict__, "expression": "confidence < 0.85"})
             for rule in POLICY_RULES]
    return policy_create_draft(use_case=use_case, text="Bench: " + POLICY_TEXT, rules=rules,
                               author=User.objects.get(username="manager"))


def read_floor(backtest) -> tuple[float, float, int]:
    """Read and parse the window's rows without judging them: wall, CPU, rows."""
    import orjson
    from django.db.models import F, TextField
    from django.db.models.functions import Cast

    from exceptions_app.services.backtests import CHUNK, window_decisions

    started, cpu = time.perf_counter(), time.process_time()
    rows = 0
    for row in (window_decisions(backtest)
                .annotate(input_text=Cast("input", TextField()),
                          output_text=Cast("output", TextField()),
                          meta_text=Cast("meta", TextField()),
                          verdict=F("labelled_example__verdict"))
                .values_list("id", "case_id", "external_id", "input_text", "output_text",
                             "meta_text", "confidence", "model_version", "verdict")
                .iterator(chunk_size=CHUNK)):
        orjson.loads(row[3])
        orjson.loads(row[4])
        rows += 1
    return time.perf_counter() - started, time.process_time() - cpu, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--reseed", action="store_true")
    args = parser.parse_args()

    ensure_database(DATABASE, recreate=args.reseed)
    setup_django(DATABASE)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    seed(args.decisions)

    from datetime import date, timedelta

    from exceptions_app.models import Decision
    from exceptions_app.services import backtests, thresholds
    from workflows.models import User

    draft = draft_lower_threshold()
    manager = User.objects.get(username="manager")
    total = Decision.objects.filter(use_case=draft.use_case).count()
    last = min(args.decisions, total)
    load = os.getloadavg()
    print(f"backtest bench: {total:,} decisions of {draft.use_case.slug}, window the last "
          f"{last:,}; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; "
          f"{os.cpu_count()} cores")

    backtest = backtests.request_backtest(policy=draft, actor=manager, last=last)
    wall, cpu, rows = read_floor(backtest)
    print(f"  floor  read + parse the rows: {wall:6.1f} s  {rows / wall:9,.0f} rows/s  "
          f"CPU {cpu:6.1f} s")
    started, cpu_started = time.perf_counter(), time.process_time()
    done = backtests.run(backtest.pk)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    result = done.result
    print(f"  backtest (both versions judged): {wall:6.1f} s  "
          f"{result['decisions'] / wall:9,.0f} decisions/s  CPU {cpu:6.1f} s "
          f"({cpu / result['decisions'] * 1e6:.1f} us a decision)")
    print(f"  changed routes: {result['decisions'] - result['unchanged']:,}; "
          + ", ".join(f"{c['from']}->{c['to']} {c['count']:,}" for c in result["changes"]))

    started = time.perf_counter()
    curve = thresholds.threshold_curve(use_case=draft.use_case,
                                       since=date.today() - timedelta(days=400),
                                       until=date.today())
    print(f"  threshold curve over {curve.labelled:,} labels: "
          f"{(time.perf_counter() - started) * 1000:.0f} ms")
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


if __name__ == "__main__":
    main()
