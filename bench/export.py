"""Labelled data export on PostgreSQL: rows/s and peak memory per format.

    .venv/bin/python bench/export.py                      # 1,000,000 examples
    .venv/bin/python bench/export.py --examples 200000 --reseed

1. Uses its own database ``bs_exportbench`` (created if missing), migrates it and runs
   the demo's seed (``seed_demo``: the invoice-approval use case, its contracts, rules,
   people and resolved cases), so rows carry the demo's real input and output shapes.
2. Adds labelled examples until there are ``--examples``: copies of the demo's resolved
   decisions, each a decision + labelled example of its own (``INSERT ... SELECT
   generate_series``), amounts and confidence varied, positions in order.
3. Runs ``manage.py export_labels --format F -o /dev/null`` in a child process for each
   format, as an operator would, and prints wall time, rows/s, CPU and peak RSS; beside
   it, the floor: ``COPY (SELECT <the same columns> ...) TO STDOUT`` by psql.

Targets (issue 12): JSON Lines >= 50,000 rows/s; peak RSS < 200 MB whatever the size.

``--base DIR`` runs each export in another checkout too (one of the commit before a
change), alternating base and this checkout ``--repeat`` times, so that a before/after
pair is measured under the same load; ``BENCH_DATABASE`` names another database (two
sizes side by side, or two engineers).
"""

import argparse
import os
import subprocess
import sys
import time

from support import ROOT, database_url, ensure_database, setup_django

DATABASE = os.environ.get("BENCH_DATABASE", "bs_exportbench")


def seed(total: int) -> int:
    from django.core.management import call_command
    from django.db import connection

    from exceptions_app.models import LabelledExample

    if not LabelledExample.objects.exists():
        call_command("seed_demo", "--no-key", verbosity=0)
    have = LabelledExample.objects.count()
    if have >= total:
        return have
    started = time.perf_counter()
    with connection.cursor() as cursor:
        # Templates: the demo's resolved decisions with their labels.
        cursor.execute("SELECT count(*) FROM exceptions_app_labelledexample")
        templates = cursor.fetchone()[0]
        cursor.execute("""
            CREATE TEMP TABLE template AS
            SELECT row_number() OVER (ORDER BY l.id) AS k, d.ai_system_id, d.use_case_id,
                   d.model_version, d.confidence, d.input, d.output, d.received_at,
                   d.policy_version_id, d.stage, d.route, d.reasons, d.qa_sampled,
                   l.human_output, l.verdict, l.reason_code, l.notes, l.blind, l.reviewer_id,
                   l.approver_id, l.time_spent_seconds, l.rules_fired
            FROM exceptions_app_labelledexample l
            JOIN exceptions_app_decision d ON d.id = l.decision_id""")
        cursor.execute("SELECT coalesce(max(position), 0) FROM exceptions_app_labelledexample")
        start = cursor.fetchone()[0]
        step = 100_000
        for first in range(have + 1, total + 1, step):
            last = min(first + step - 1, total)
            cursor.execute("""
                WITH made AS (
                    INSERT INTO exceptions_app_decision (
                        ai_system_id, use_case_id, external_id, body_hash, model_version,
                        confidence, input, output, explanation, meta, received_at,
                        policy_version_id, stage, route, reasons, qa_sampled)
                    SELECT t.ai_system_id, t.use_case_id, 'bench-' || n, repeat('0', 64),
                           t.model_version, least(1.0, 0.5 + (n %% 50) / 100.0),
                           t.input, jsonb_set(t.output::jsonb, '{amount}',
                                              to_jsonb(100 + n %% 90000)),
                           '', '{}'::jsonb, now() - make_interval(secs => n %% 2592000),
                           t.policy_version_id, t.stage, t.route, t.reasons, t.qa_sampled
                    FROM generate_series(%s::bigint, %s::bigint) AS n
                    JOIN template t ON t.k = 1 + n %% %s
                    RETURNING id, external_id, use_case_id, input, output, model_version,
                              policy_version_id, confidence, received_at, stage, route,
                              qa_sampled)
                INSERT INTO exceptions_app_labelledexample (
                    position, decision_id, use_case_id, input, ai_output, human_output, verdict,
                    reason_code, notes, model_version, policy_version_id, ai_confidence, blind,
                    reviewer_id, approver_id, time_spent_seconds, decided_at, created_at,
                    external_id, stage, route, rules_fired, qa_sample, received_at)
                SELECT %s + substr(m.external_id, 7)::bigint, m.id, m.use_case_id, m.input,
                       m.output, t.human_output, t.verdict, t.reason_code, t.notes,
                       m.model_version, m.policy_version_id, m.confidence, t.blind,
                       t.reviewer_id, t.approver_id, t.time_spent_seconds,
                       m.received_at + interval '17 minutes', now(), m.external_id, m.stage,
                       m.route, t.rules_fired, m.qa_sampled, m.received_at
                FROM made m
                JOIN template t ON t.k = 1 + substr(m.external_id, 7)::bigint %% %s""",
                [first, last, templates, start - have, templates])
            print(f"  seeded up to {last:,} examples", flush=True)
        cursor.execute("ANALYZE")
    print(f"seed: {total - have:,} examples in {time.perf_counter() - started:.0f} s")
    return LabelledExample.objects.count()


def export_run(file_format: str, checkout=ROOT) -> dict:
    env = dict(os.environ, DATABASE_URL=database_url(DATABASE), BACKSTOP_DEMO="1",
               LOG_LEVEL="WARNING")
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "manage.py", "export_labels", "--format",
                              file_format, "-o", os.devnull, "--no-progress"],
                             cwd=checkout, env=env, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)  # this child's own CPU and peak memory
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"export_labels --format {file_format} failed ({child.returncode})")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
            "rss_mb": usage.ru_maxrss / 1024}


def copy_floor() -> float:
    """psql COPY of the same columns (with the joins the export reads) to /dev/null."""
    sql = ("COPY (SELECT l.position, l.decision_id, l.external_id, u.slug, l.model_version, "
           "p.number, l.stage, l.route, l.rules_fired, l.qa_sample, l.blind, l.input, "
           "l.ai_output, l.ai_confidence, l.human_output, l.verdict, l.reason_code, l.notes, "
           "l.reviewer_id, l.approver_id, l.received_at, l.decided_at, l.time_spent_seconds "
           "FROM exceptions_app_labelledexample l "
           "JOIN exceptions_app_usecase u ON u.id = l.use_case_id "
           "JOIN exceptions_app_policyversion p ON p.id = l.policy_version_id "
           "ORDER BY l.position) TO STDOUT")
    started = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-c", sql, DATABASE],
                       stdout=sink, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=1_000_000)
    parser.add_argument("--formats", default="jsonl,csv,parquet")
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--base", default="",
                        help="another checkout to run each export in too, alternating")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    ensure_database(DATABASE, recreate=args.reseed)
    setup_django(DATABASE)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    rows = seed(args.examples)
    load = os.getloadavg()
    print(f"export bench: {rows:,} labelled examples; load average {load[0]:.1f} "
          f"{load[1]:.1f} {load[2]:.1f}; {os.cpu_count()} cores")
    floor = copy_floor()
    print(f"  floor  psql COPY of the same columns: {floor:6.1f} s  {rows / floor:9,.0f} rows/s")
    checkouts = [("base", args.base), ("this", ROOT)] if args.base else [("", ROOT)]
    for _ in range(args.repeat):
        for file_format in args.formats.split(","):
            for name, checkout in checkouts:
                run = export_run(file_format, checkout)
                load = os.getloadavg()[0]
                print(f"  {file_format:7s} {name:4s} export_labels: {run['wall']:6.1f} s  "
                      f"{rows / run['wall']:9,.0f} rows/s  CPU {run['cpu']:6.1f} s  "
                      f"peak RSS {run['rss_mb']:6.0f} MB  ({floor / run['wall']:.0%} of COPY's "
                      f"rate; load {load:.1f})", flush=True)
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


if __name__ == "__main__":
    main()
