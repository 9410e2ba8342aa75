"""Chain verification over a large audit trail (PostgreSQL): events verified a second.

    .venv/bin/python bench/audit_verify.py [--events 1000000] [--reseed] [--api 20000]

1. Uses its own database ``bs_auditbench`` (created if missing, migrated). Seeds
   ``--events`` audit events as intake writes them (``audit.row``: an AI system's
   ``decision.received`` with its routing data, row hash and MAC) by ``COPY``
   (``workflows.db.copy_rows``), 50,000 a transaction, each stamped when its batch
   starts (so none looks backdated), then their seals and a signed checkpoint every
   5,000 seals, exactly as ``audit.seal`` links them, also by ``COPY``. Seeding is not
   what is measured; a database that already holds the events is reused.
2. Runs ``audit.verify()`` over the whole chain, the product's code unchanged: wall time,
   events/s, the Python process's CPU time, and the report (it must be OK).
3. ``--api``: the same through ``GET /api/v1/audit/verify/`` as a manager (Django's
   test client in this process: the view, serializer and middleware, no socket).
4. ``--pages``: the audit log's page and API as a manager, unfiltered and with each
   filter, over this history: server CPU (this process's CPU time, Django's test
   client: no socket) and wall time per request, median of 20 after a warm-up.
5. ``--index-cost N``: what the audit log's indexes cost every writer: ``COPY`` of the
   same N intake events into a copy of the table with today's indexes and into one with
   the indexes before the audit log (``audit_object_idx`` on two columns, no verb, actor
   or period index), alternating, three rounds each.

Prints the load average before and after: the machine is shared, compare runs made in
one sitting.
"""

import argparse
import os
import resource
import time
from datetime import UTC, datetime

import support

DATABASE = "bs_auditbench"
BATCH = 50_000
CHECKPOINT_EVERY = 5_000  # audit.seal's batch size


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def seed(events: int) -> None:
    from django.db import connection, transaction
    from django.utils import timezone

    from workflows import db
    from workflows.models import AuditCheckpoint, AuditEvent, AuditSeal
    from workflows.services import audit

    (ids,) = db.reserve_ids((AuditEvent, events))
    head_seq, head_hash = 0, audit.GENESIS
    started = time.monotonic()
    for start in range(0, events, BATCH):
        now = timezone.now()
        batch_ids = ids[start:start + BATCH]
        rows, seals, checkpoints = [], [], []
        for event_id in batch_ids:
            values = audit.row(
                verb="decision.received", object_type="decision", object_id=event_id,
                actor_label="ai:bench-ai", now=now,
                data={"route": "review", "confidence": 0.82, "policy_version": 3,
                      "stage": "assist", "reasons": [{"rule": "low-confidence",
                                                      "action": "review"}]})
            rows.append((event_id, *values))
            row_hash = values[audit.ROW_COLUMNS.index("row_hash")]
            head_seq += 1
            head_hash = audit.chain_hash(head_hash, row_hash)
            seals.append((head_seq, event_id, head_hash))
            if head_seq % CHECKPOINT_EVERY == 0 or head_seq == events:
                checkpoints.append((head_seq, head_hash, audit.checkpoint_signature(
                    seq=head_seq, chain_hash=head_hash), now))
        with transaction.atomic():
            db.copy_rows(AuditEvent._meta.db_table, ["id", *audit.ROW_COLUMNS], rows)
            db.copy_rows(AuditSeal._meta.db_table, ["seq", "event_id", "chain_hash"], seals)
            db.copy_rows(AuditCheckpoint._meta.db_table,
                         ["seq", "chain_hash", "signature", "created_at"], checkpoints)
        done = start + len(batch_ids)
        print(f"  seeded {done:>9,} events ({done / (time.monotonic() - started):,.0f}/s)",
              flush=True)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE workflows_auditevent; ANALYZE workflows_auditseal; "
                       "ANALYZE workflows_auditcheckpoint")




def index_cost(count: int) -> None:
    from django.db import connection, transaction
    from django.utils import timezone

    from workflows import db
    from workflows.services import audit

    now = timezone.now()
    rows = [audit.row(verb="decision.received", object_type="decision", object_id=n,
                      actor_label="ai:bench-ai", now=now,
                      data={"route": "review", "confidence": 0.82}) for n in range(count)]
    with connection.cursor() as cursor:
        for table in ("bench_audit_now", "bench_audit_before"):
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
            cursor.execute(f"CREATE TABLE {table} (LIKE workflows_auditevent INCLUDING ALL)")
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'bench_audit_before'")
        for (name,) in cursor.fetchall():
            if any(part in name for part in ("verb", "actor_label", "occurred", "object_type")):
                cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute("CREATE INDEX ON bench_audit_before (object_type, object_id)")
    timings = {"now": [], "before": []}
    for _ in range(3):
        for label in ("now", "before"):
            table = f"bench_audit_{label}"
            with connection.cursor() as cursor:
                cursor.execute(f"TRUNCATE {table}")
            started = time.monotonic()
            with transaction.atomic():
                db.copy_rows(table, list(audit.ROW_COLUMNS), rows)
            timings[label].append(time.monotonic() - started)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_audit_now; DROP TABLE bench_audit_before")
    best = {label: min(values) for label, values in timings.items()}
    print(f"COPY of {count:,} audit events, best of 3 (all: "
          + "; ".join(f"{label} " + ", ".join(f"{value * 1000:.0f}" for value in values)
                      + " ms" for label, values in timings.items())
          + f"): with the log's indexes {best['now'] / count * 1e6:.1f} µs an event, before "
          f"{best['before'] / count * 1e6:.1f} µs (x{best['now'] / best['before']:.2f})")


def pages() -> None:
    import statistics

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.test import Client

    manager, _ = get_user_model().objects.get_or_create(username="bench-manager")
    manager.user_permissions.add(Permission.objects.get(codename="manage_cases"))
    client = Client()
    client.force_login(manager)
    middle = 100_000
    # /notifications/ (empty): what any page of the product costs in this harness.
    for url in ("/notifications/", "/audit/", "/api/v1/audit/events/",
                "/audit/?verb=decision.received", "/audit/?actor=ai:bench-ai",
                f"/audit/?object_type=decision&object_id={middle}",
                "/audit/?since=2026-01-01&until=2026-01-31",
                f"/api/v1/audit/events/?actor=ai:bench-ai&before={middle}"):
        client.get(url)
        cpu, wall = [], []
        for _ in range(20):
            started_cpu, started = time.process_time(), time.monotonic()
            response = client.get(url)
            cpu.append(time.process_time() - started_cpu)
            wall.append(time.monotonic() - started)
            assert response.status_code == 200, (url, response.status_code)
        print(f"  GET {url:<58} CPU {statistics.median(cpu) * 1000:5.1f} ms, "
              f"wall {statistics.median(wall) * 1000:6.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--api", action="store_true",
                        help="also verify through GET /api/v1/audit/verify/")
    parser.add_argument("--skip-verify", action="store_true")
    parser.add_argument("--pages", action="store_true",
                        help="also time the audit log's page and API")
    parser.add_argument("--index-cost", type=int, default=0, metavar="N",
                        help="also time COPY of N events with and without the log's indexes")
    args = parser.parse_args()

    support.ensure_database(DATABASE, recreate=args.reseed)
    support.setup_django(DATABASE)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from workflows.models import AuditEvent
    from workflows.services import audit

    have = AuditEvent.objects.count()
    if have != args.events:
        if have:
            raise SystemExit(f"{DATABASE} holds {have:,} events, not {args.events:,}: "
                             f"run with --reseed.")
        print(f"Seeding {args.events:,} events (load {load()})")
        seed(args.events)

    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
          f"load average {load()}")
    if not args.skip_verify:
        cpu, started = cpu_seconds(), time.monotonic()
        report = audit.verify()
        wall, cpu = time.monotonic() - started, cpu_seconds() - cpu
        assert report.ok, report.problems[:5]
        print(f"audit.verify(): {report.sealed:,} sealed events in {wall:.1f} s: "
              f"{report.sealed / wall:,.0f} events/s (Python CPU {cpu:.1f} s, "
              f"{cpu / report.sealed * 1e6:.1f} µs an event), ok={report.ok}")

    if args.api:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Permission
        from django.test import Client

        manager, _ = get_user_model().objects.get_or_create(username="bench-manager")
        manager.user_permissions.add(Permission.objects.get(codename="manage_cases"))
        client = Client()
        client.force_login(manager)
        started = time.monotonic()
        response = client.get("/api/v1/audit/verify/")
        wall = time.monotonic() - started
        body = response.json()
        print(f"GET /api/v1/audit/verify/: {response.status_code} in {wall:.1f} s: "
              f"{body['sealed'] / wall:,.0f} events/s, ok={body['ok']}")
    if args.pages:
        pages()
    if args.index_cost:
        index_cost(args.index_cost)
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
