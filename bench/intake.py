"""Decision intake under load: PostgreSQL, gunicorn, and a separate load process.

    .venv/bin/python bench/intake.py [--duration 10] [--port 8250] [--levels 1,8,32]

What it does, in one run:

1. (Re)creates its own database ``bs_intakebench``, migrates it and seeds, through
   the ORM, an ``invoice-approval`` use case (assist stage, input and output JSON
   Schemas, six CEL rules like the demo's), an AI system and its API key.
2. Starts gunicorn (``config.wsgi``, 2 sync workers) with ``bench.baseline_settings``:
   the product's URLs plus two bench-only baselines (``bench/baseline_urls.py``): a
   bare DRF endpoint (ModelSerializer, validating the same fields, saved through the
   ORM: the target's denominator) and a barer one inserting through a cursor.
3. From a separate load process (stdlib ``http.client``, one thread per client):
   single-decision POSTs at each concurrency level, to both baselines and to the
   intake, each for ``--duration`` seconds, with unique external_ids; then batch
   POSTs of 100 and 1000 decisions. Before each load the tables intake writes are
   ANALYZEd, as autovacuum would (it is off on some servers, this machine's included).
4. Measures the floor after each batch round, under the same conditions: a bare
   multi-row INSERT (and, for reference, COPY) of the rows intake wrote for one of
   its 1000-decision batches (the decisions, their cases, the audit events of both)
   straight into scratch copies of the tables.
5. Prints the figures and the ratios to the targets, checks that every 201 is
   stored exactly once, and stops gunicorn by its PID. Beside each figure, the CPU a
   decision cost gunicorn's processes, the bench database's PostgreSQL backends and
   the load process (from /proc): steadier than throughput on a shared machine.
"""

import argparse
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "bs_intakebench"
DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DATABASE}"
USE_CASE = "invoice-approval"
VENDORS = ["ACME GmbH", "Globex Corporation", "Initech Ltd", "Umbrella plc", "Stark Industries",
           "Wayne Enterprises", "Hooli Inc", "Vandelay Industries"]


# --- The bodies an upstream invoice AI posts ------------------------------------------------


def invoice_body(external_id: str, rng: random.Random) -> dict:
    """A realistic invoice decision; about 30% of them need a reviewer."""
    vendor = rng.choice(VENDORS)
    lines = [{"description": rng.choice(["Toner cartridge, black", "A4 paper, 80 g",
                                         "Service hours", "Laptop stand", "Licence seat"]),
              "quantity": rng.randint(1, 40), "unit_price": round(rng.uniform(5, 120), 2)}
             for _ in range(rng.randint(1, 4))]
    po_amount = round(sum(line["quantity"] * line["unit_price"] for line in lines), 2)
    unsure = rng.random() < 0.3
    return {
        "use_case": USE_CASE, "external_id": external_id,
        "model_version": "invoice-extractor-3.2.1",
        "confidence": round(rng.uniform(0.6, 0.89) if unsure else rng.uniform(0.91, 0.99), 3),
        "input": {"vendor": vendor, "invoice_number": f"INV-{rng.randint(10**5, 10**6)}",
                  "po_number": f"PO-{rng.randint(10**5, 10**6)}", "po_amount": po_amount,
                  "currency": rng.choice(["EUR", "USD", "GBP", "CHF"]), "line_items": lines},
        "output": {"action": "approve", "amount": po_amount, "vendor": vendor},
        "explanation": "Amount and vendor read from the invoice header; matches the PO.",
        "meta": {"pipeline": "ap-inbox", "document_pages": rng.randint(1, 3)},
    }


# --- Setup: database, seed, server ---------------------------------------------------------------


def setup_database() -> str:
    """A fresh database with the use case, its active policy and an AI system; its API key."""
    for command in (["dropdb", "--if-exists"], ["createdb"]):
        subprocess.run([*command, "-h", "127.0.0.1", "-U", "postgres", DATABASE], check=True)
    _django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return _seed()


def _django() -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.baseline_settings"
    os.environ["DATABASE_URL"] = DATABASE_URL
    os.environ.setdefault("BACKSTOP_DEMO", "1")  # the demo's keys; nothing here is exposed
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _seed() -> str:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from bench.baseline_urls import BASELINE_DDL
    from exceptions_app.models import (
        AiSystem,
        AiSystemAPIKey,
        PolicyStatus,
        PolicyVersion,
        Rule,
        RuleAction,
        Stage,
        UseCase,
    )
    from workflows.models import Queue

    owner = get_user_model().objects.create_user("bench-owner", password="bench-owner-pw")
    review = Queue.objects.create(slug="invoice-review", name="Invoice review")
    qa = Queue.objects.create(slug="invoice-qa", name="Invoice QA", blind=True)
    use_case = UseCase.objects.create(
        slug=USE_CASE, name="Invoice approval", stage=Stage.ASSIST,
        review_queue=review, qa_queue=qa,
        input_schema={"type": "object",
                      "required": ["vendor", "po_amount", "currency"],
                      "properties": {
                          "vendor": {"type": "string", "minLength": 1},
                          "po_amount": {"type": "number", "minimum": 0},
                          "currency": {"enum": ["EUR", "USD", "GBP", "CHF"]},
                          "line_items": {"type": "array", "items": {
                              "type": "object", "required": ["quantity", "unit_price"]}}}},
        output_schema={"type": "object", "required": ["action", "amount", "vendor"],
                       "properties": {"action": {"enum": ["approve", "hold", "reject"]},
                                      "amount": {"type": "number", "minimum": 0},
                                      "vendor": {"type": "string"}}})
    policy = PolicyVersion.objects.create(
        use_case=use_case, number=1, text="Approve small invoices that match their PO.",
        status=PolicyStatus.ACTIVE, default_action=RuleAction.REVIEW, created_by=owner)
    rules = [
        ("large-invoice", "output.amount > 50000.0", RuleAction.REVIEW, 90, True),
        ("low-confidence", "confidence < 0.9", RuleAction.REVIEW, 70, False),
        ("vendor-mismatch", "output.vendor != input.vendor", RuleAction.REVIEW, 65, False),
        ("po-mismatch", "output.amount > input.po_amount * 1.02 || "
                        "output.amount < input.po_amount * 0.98", RuleAction.REVIEW, 60, False),
        ("not-an-approval", 'output.action != "approve"', RuleAction.REVIEW, 50, False),
        ("small-matching", "output.amount < 5000.0", RuleAction.AUTO, 0, False),
    ]
    for position, (name, expression, action, priority, four_eyes) in enumerate(rules, 1):
        Rule.objects.create(policy=policy, position=position, name=name, expression=expression,
                            description=name.replace("-", " ").capitalize(), action=action,
                            priority=priority, four_eyes=four_eyes)
    system = AiSystem.objects.create(slug="bench-ai", name="Bench AI", owner=owner)
    system.use_cases.add(use_case)
    _, key = AiSystemAPIKey.objects.create_key(name="bench", ai_system=system)
    with connection.cursor() as cursor:
        cursor.execute(BASELINE_DDL)
    return key


def free_port(preferred: int) -> int:
    for port in [preferred, *range(8200, 8300)]:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit("No free port in 8200-8299.")


def start_gunicorn(port: int, var_dir: str) -> subprocess.Popen:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.baseline_settings",
           "DATABASE_URL": DATABASE_URL, "AI_SYSTEM_THROTTLE_RATE": "1000000/s",
           "LOG_LEVEL": "WARNING", "DEBUG": "false", "BACKSTOP_VAR_DIR": var_dir}
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "config.wsgi", "--workers", "2",
         "--worker-class", "sync", "--bind", f"127.0.0.1:{port}", "--chdir", str(ROOT),
         "--log-level", "warning", "--timeout", "120"],
        env=env, cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/api/bench-baseline/")
            if connection.getresponse().status == 405:
                return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("gunicorn did not come up")


def stop(server: subprocess.Popen) -> None:
    server.terminate()  # SIGTERM to the arbiter's PID: it stops its workers
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


class CpuProbe:
    """CPU seconds used so far by gunicorn's processes and by the bench database's
    PostgreSQL backends (other than the bench's own), read from /proc.

    On a shared machine throughput follows the neighbours; the CPU a request or a
    decision costs does not, and bounds what two cores could do.
    """

    def __init__(self, server_pid: int, *, database: str = DATABASE):
        self.server_pid = server_pid
        self.database = database
        self.tick = os.sysconf("SC_CLK_TCK")

    def sample(self) -> dict[str, dict[int, float]]:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s "
                           "AND pid <> pg_backend_pid()", [self.database])
            backends = [pid for (pid,) in cursor.fetchall()]
        workers = [self.server_pid] + [pid for pid, ppid in self._processes()
                                       if ppid == self.server_pid]
        return {"server": self._cpu(workers), "db": self._cpu(backends)}

    @staticmethod
    def used(before: dict[int, float], after: dict[int, float]) -> float:
        """CPU seconds used between two samples by the processes alive at the second (a
        backend that reconnected meanwhile counts from its start; one that ended is lost)."""
        return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())

    def _processes(self):
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                stat = self._stat(entry.name)
                if stat:
                    yield int(entry.name), int(stat[1])

    @staticmethod
    def _stat(pid) -> list[str] | None:
        try:  # the fields after "(command)": state, ppid, ... utime (12th), stime (13th)
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None

    def _cpu(self, pids) -> dict[int, float]:
        return {pid: (int(stat[11]) + int(stat[12])) / self.tick
                for pid in pids if (stat := self._stat(pid))}


probe: CpuProbe | None = None


# --- The load process ---------------------------------------------------------------------------


def analyze_tables() -> None:
    """Refresh the planner's statistics of the tables intake writes, between loads.

    Autovacuum does this on a production server; where it is off (as on the machine
    these figures come from), the planner knows nothing of how many decisions an AI
    system has and looks a batch's external_ids up by scanning all of them.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE exceptions_app_decision, workflows_case, workflows_auditevent")


def run_load(*, port: int, key: str, kind: str, clients: int, duration: float,
             batch_size: int = 1, tag: str) -> dict:
    """Run one load in a separate process; its raw figures as a dict."""
    analyze_tables()
    spec = {"port": port, "key": key, "kind": kind, "clients": clients, "duration": duration,
            "batch_size": batch_size, "tag": tag}
    before = probe.sample() if probe else None
    done = subprocess.run([sys.executable, __file__, "load", json.dumps(spec)],
                          capture_output=True, text=True, check=True)
    figures = json.loads(done.stdout)
    if before is not None:
        after = probe.sample()
        figures["cpu"] = {"server": probe.used(before["server"], after["server"]),
                          "db": probe.used(before["db"], after["db"]),
                          "load": figures["load_cpu"]}
    return figures


def load_process(spec: dict) -> None:
    """One thread per client, each posting as fast as answers come, for spec['duration'] s."""
    path = {"intake": "/api/v1/decisions/", "baseline": "/api/bench-baseline/",
            "raw": "/api/bench-baseline-raw/", "batch": "/api/v1/decisions/batch/"}[spec["kind"]]
    headers = {"Content-Type": "application/json", "Authorization": f"Api-Key {spec['key']}"}
    latencies: list[list[float]] = [[] for _ in range(spec["clients"])]
    statuses: dict[int, int] = {}
    items_by_status: dict[int, int] = {}
    lock = threading.Lock()
    rngs = [random.Random(f"{spec['tag']}-{number}") for number in range(spec["clients"])]
    sent = [0] * spec["clients"]

    def payload(number: int) -> bytes:
        if spec["kind"] == "batch":
            body = {"decisions": [
                invoice_body(f"{spec['tag']}-{number}-{sent[number] + n}", rngs[number])
                for n in range(spec["batch_size"])]}
        else:
            body = invoice_body(f"{spec['tag']}-{number}-{sent[number]}", rngs[number])
        sent[number] += spec["batch_size"]
        return json.dumps(body).encode()

    # An upstream system posts batches it has already put together: build them before
    # the clock starts (enough for 12,000 decisions/s in all), or the server would wait
    # for the load process's 20 ms of building a body between two batches.
    prebuilt: list[list[bytes]] = [[] for _ in range(spec["clients"])]
    if spec["kind"] == "batch":
        ahead = int(12_000 * spec["duration"] / spec["clients"] / spec["batch_size"]) + 1
        prebuilt = [[payload(number) for _ in range(ahead)]
                    for number in range(spec["clients"])]
        prebuilt = [list(reversed(payloads)) for payloads in prebuilt]
    start = time.monotonic() + 0.2
    stop_at = start + spec["duration"]

    def client(number: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", spec["port"], timeout=120)
        while time.monotonic() < start:
            time.sleep(0.001)
        while time.monotonic() < stop_at:
            body = prebuilt[number].pop() if prebuilt[number] else payload(number)
            began = time.perf_counter()
            connection.request("POST", path, body, headers)
            response = connection.getresponse()
            answer = response.read()
            latencies[number].append(time.perf_counter() - began)
            with lock:
                statuses[response.status] = statuses.get(response.status, 0) + 1
                if spec["kind"] == "batch" and response.status == 200:
                    for result in json.loads(answer)["results"]:
                        items_by_status[result["status"]] = (
                            items_by_status.get(result["status"], 0) + 1)
        connection.close()

    cpu_at_start = time.process_time()  # the bodies built ahead are not counted
    threads = [threading.Thread(target=client, args=(n,)) for n in range(spec["clients"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({
        "elapsed": time.monotonic() - start, "batch_size": spec["batch_size"],
        "load_cpu": time.process_time() - cpu_at_start,
        "latencies": [latency for per_client in latencies for latency in per_client],
        "statuses": statuses, "items_by_status": items_by_status,
    }))


def summarize(runs: list[dict]) -> dict:
    """One figure from several rounds of the same load."""
    every = sorted(latency for run in runs for latency in run["latencies"])
    elapsed = sum(run["elapsed"] for run in runs)
    statuses: dict[str, int] = {}
    items: dict[str, int] = {}
    for run in runs:
        for into, counts in ((statuses, run["statuses"]), (items, run["items_by_status"])):
            for status, count in counts.items():
                into[status] = into.get(status, 0) + count
    decisions = sum(len(run["latencies"]) * run["batch_size"] for run in runs)
    cpu = {part: 1000 * sum(run["cpu"][part] for run in runs) / max(decisions, 1)
           for part in ("server", "db", "load")} if all("cpu" in run for run in runs) else None
    return {
        "cpu_ms": cpu,  # per decision: gunicorn, PostgreSQL, the load process
        "requests": len(every), "requests_per_s": len(every) / elapsed,
        "decisions_per_s": len(every) * runs[0]["batch_size"] / elapsed,
        "p50_ms": 1000 * statistics.median(every) if every else float("nan"),
        "p99_ms": 1000 * every[min(len(every) - 1, int(len(every) * 0.99))]
        if every else float("nan"),
        "statuses": statuses, "items_by_status": items,
    }


def interleaved(*, port: int, key: str, loads: list[tuple[str, dict]], duration: float,
                rounds: int, tag: str) -> dict[str, dict]:
    """Each load for ``duration`` seconds in all, in ``rounds`` alternating slices, so a
    neighbour's burst of work falls on all of them alike."""
    runs: dict[str, list[dict]] = {name: [] for name, _ in loads}
    for round_ in range(rounds):
        for name, options in loads:
            runs[name].append(run_load(port=port, key=key, duration=duration / rounds,
                                       tag=f"{tag}-{name}-{round_}", **options))
    return {name: summarize(results) for name, results in runs.items()}


# --- The floor: a bare multi-row INSERT of the same rows --------------------------------


def measure_floor(run: str, rounds: int = 3) -> dict:
    """Decisions/s (median of ``rounds``) when the rows intake wrote for 1000 of them go
    straight into the tables.

    The rows are the real ones of a 1000-decision batch of this run: the decisions,
    their cases, and the audit events of both. Each round writes them, in one
    transaction, into empty scratch copies of the tables (same columns, indexes and
    constraints but foreign keys), by one multi-row INSERT per table, and by COPY.
    """
    import psycopg
    from psycopg.types.json import Jsonb

    tables = {"decision": "exceptions_app_decision", "case": "workflows_case",
              "event": "workflows_auditevent"}
    rates: dict[str, list[float]] = {"insert": [], "copy": []}
    with psycopg.connect(DATABASE_URL.replace("postgres://", "postgresql://"),
                         autocommit=True) as conn:
        columns = {scratch: [name for (name,) in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
            "AND column_name <> 'id' ORDER BY ordinal_position", [table])]
            for scratch, table in tables.items()}
        ids = [pk for (pk,) in conn.execute(
            "SELECT id FROM exceptions_app_decision WHERE external_id LIKE %s "
            "ORDER BY id LIMIT 1000", [f"batch-%-{run}-1000-%"])]
        case_ids = [pk for (pk,) in conn.execute(
            "SELECT case_id FROM exceptions_app_decision WHERE id = ANY(%s) "
            "AND case_id IS NOT NULL", [ids])]
        where = {
            "decision": ("id = ANY(%s)", [ids]),
            "case": ("id = ANY(%s)", [case_ids]),
            "event": ("(object_type = 'decision' AND object_id = ANY(%s)) OR "
                      "(object_type = 'case' AND object_id = ANY(%s))",
                      [[str(pk) for pk in ids], [str(pk) for pk in case_ids]]),
        }
        rows = {}
        for scratch, table in tables.items():
            condition, params = where[scratch]
            rows[scratch] = [
                tuple(Jsonb(value) if isinstance(value, dict | list) else value
                      for value in row)
                for row in conn.execute(f"SELECT {', '.join(columns[scratch])} FROM {table} "
                                        f"WHERE {condition}", params)]
        for scratch, table in tables.items():
            conn.execute(f"DROP TABLE IF EXISTS bench_floor_{scratch}")
            conn.execute(f"CREATE TABLE bench_floor_{scratch} (LIKE {table} INCLUDING ALL)")
        for _ in range(rounds):
            for method in ("insert", "copy"):
                for scratch in tables:
                    conn.execute(f"TRUNCATE bench_floor_{scratch}")
                began = time.perf_counter()
                with conn.transaction():
                    for scratch in tables:
                        _write(conn, f"bench_floor_{scratch}", columns[scratch], rows[scratch],
                               method)
                rates[method].append(len(ids) / (time.perf_counter() - began))
        for scratch in tables:
            conn.execute(f"DROP TABLE bench_floor_{scratch}")
    return {"decisions": len(ids), "cases": len(case_ids),
            "events": len(rows["event"]),
            "insert_decisions_per_s": statistics.median(rates["insert"]),
            "copy_decisions_per_s": statistics.median(rates["copy"])}


def _write(conn, table, columns, values, method) -> None:
    if not values:
        return
    names = ", ".join(columns)
    if method == "copy":
        with conn.cursor().copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in values:
                copy.write_row(row)
        return
    row = "(" + ", ".join(["%s"] * len(columns)) + ")"
    conn.execute(f"INSERT INTO {table} ({names}) VALUES " + ", ".join([row] * len(values)),
                 [value for row_values in values for value in row_values])


# --- The run -----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0,
                        help="seconds per load level (default 10)")
    parser.add_argument("--port", type=int, default=8250)
    parser.add_argument("--levels", default="1,8,32", help="concurrent clients, single POSTs")
    parser.add_argument("--batch-clients", default="1,2",
                        help="concurrent clients posting batches")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating slices each level is measured in (default 3)")
    args = parser.parse_args()
    levels = [int(level) for level in args.levels.split(",")]
    batch_clients = [int(level) for level in args.batch_clients.split(",")]

    key = setup_database()
    port = free_port(args.port)
    run = uuid.uuid4().hex[:8]
    var_dir = f"/tmp/bs-intakebench-{run}"
    server = start_gunicorn(port, var_dir)
    global probe
    probe = CpuProbe(server.pid)
    print(f"gunicorn pid {server.pid} on 127.0.0.1:{port}, 2 sync workers; "
          f"database {DATABASE}; {args.duration:g} s per level", flush=True)
    figures: dict = {"single": {}, "baseline": {}, "raw": {}, "batch": {}, "floor": {}}
    try:
        for kind in ("baseline", "raw", "intake"):  # warm up: connections, compiled policy
            run_load(port=port, key=key, kind=kind, clients=2, duration=1,
                     tag=f"warm-{kind}-{run}")
        for clients in levels:
            load = os.getloadavg()[0]
            measured = interleaved(
                port=port, key=key, duration=args.duration, rounds=args.rounds,
                tag=f"single-{clients}-{run}",
                loads=[(kind, {"kind": kind, "clients": clients})
                       for kind in ("baseline", "raw", "intake")])
            for kind, into in (("baseline", "baseline"), ("raw", "raw"), ("intake", "single")):
                figures[into][clients] = measured[kind]
                _print_level(f"{kind:8} x{clients:<3}", measured[kind])
            print(f"  (load average {load:.1f} before, {os.getloadavg()[0]:.1f} after)")
        for clients in batch_clients:
            load = os.getloadavg()[0]
            runs: dict[int, list[dict]] = {100: [], 1000: []}
            floors = []
            for round_ in range(args.rounds):
                for size in (100, 1000):
                    runs[size].append(run_load(
                        port=port, key=key, kind="batch", clients=clients, batch_size=size,
                        duration=max(args.duration, 6) / args.rounds,
                        tag=f"batch-{clients}-{run}-{size}-{round_}"))
                # The floor, sampled under the same conditions as the batches just run.
                floors.append(measure_floor(run))
            for size in (100, 1000):
                figures["batch"][(size, clients)] = summarize(runs[size])
                _print_level(f"batch {size:<4} x{clients}", figures["batch"][(size, clients)])
            figures["floor"][clients] = floor = {
                key: statistics.mean(sample[key] for sample in floors) for key in floors[0]}
            print(f"floor x{clients}: the rows of {floor['decisions']:.0f} decisions "
                  f"({floor['cases']:.0f} cases, {floor['events']:.0f} audit events) by bare "
                  f"multi-row INSERT {floor['insert_decisions_per_s']:,.0f} decisions/s, by COPY "
                  f"{floor['copy_decisions_per_s']:,.0f} decisions/s (mean of {len(floors)} "
                  f"samples, one after each batch round)")
            print(f"  (load average {load:.1f} before, {os.getloadavg()[0]:.1f} after)")
    finally:
        stop(server)
    _check_stored(figures)
    _report(figures, levels, batch_clients)


def _print_level(label: str, result: dict) -> None:
    cpu = result["cpu_ms"]
    print(f"{label}: {result['requests_per_s']:8.1f} req/s  {result['decisions_per_s']:8.1f} "
          f"decisions/s  p50 {result['p50_ms']:7.1f} ms  p99 {result['p99_ms']:7.1f} ms  "
          f"statuses {result['statuses']}"
          + (f"\n    CPU per decision: gunicorn {cpu['server']:.3f} ms, PostgreSQL "
             f"{cpu['db']:.3f} ms, load process {cpu['load']:.3f} ms: at most "
             f"{2000 / sum(cpu.values()):,.0f} decisions/s on two idle cores" if cpu else ""),
          flush=True)


def _check_stored(figures: dict) -> None:
    from exceptions_app.models import Decision

    created = sum(result["statuses"].get("201", 0) for result in figures["single"].values())
    created += sum(result["items_by_status"].get("201", 0)
                   for result in figures["batch"].values())
    stored = Decision.objects.exclude(external_id__startswith="warm-").count()
    verdict = "ok" if stored == created else "MISMATCH"
    print(f"stored check: {created} answered 201, {stored} stored ({verdict})")


def _report(figures: dict, levels: list[int], batch_clients: list[int]) -> None:
    print("\nratios to targets")
    for clients in levels:
        intake = figures["single"][clients]["requests_per_s"]
        ratio = intake / figures["baseline"][clients]["requests_per_s"]
        raw = intake / figures["raw"][clients]["requests_per_s"]
        print(f"  single x{clients:<3} intake/bare DRF = {ratio:5.0%}  (target >= 50%) "
              f"{'met' if ratio >= 0.5 else 'MISSED'}; intake/raw-insert DRF = {raw:4.0%}"
              f"{_cpu_ratio(figures['single'][clients], figures['baseline'][clients])}")
    for clients in batch_clients:
        rate = figures["batch"][(1000, clients)]["decisions_per_s"]
        floor = figures["floor"][clients]
        ratio = rate / floor["insert_decisions_per_s"]
        print(f"  batch 1000 x{clients}: {rate:,.0f} decisions/s (target >= 5,000) "
              f"{'met' if rate >= 5000 else 'MISSED'}; "
              f"{ratio:.0%} of the bare INSERT (target >= 25%) "
              f"{'met' if ratio >= 0.25 else 'MISSED'}; "
              f"{rate / floor['copy_decisions_per_s']:.0%} of COPY")
        if cpu := figures["batch"][(1000, clients)]["cpu_ms"]:
            print(f"    {sum(cpu.values()):.3f} ms of CPU per decision in all: at most "
                  f"{2000 / sum(cpu.values()):,.0f} decisions/s on two idle cores")


def _cpu_ratio(intake: dict, baseline: dict) -> str:
    """Throughput both would have on the same idle cores, from their CPU per request."""
    if not (intake["cpu_ms"] and baseline["cpu_ms"]):
        return ""
    ratio = sum(baseline["cpu_ms"].values()) / sum(intake["cpu_ms"].values())
    return (f"; by CPU per request ({sum(intake['cpu_ms'].values()):.2f} against "
            f"{sum(baseline['cpu_ms'].values()):.2f} ms) {ratio:.0%}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "load":
        load_process(json.loads(sys.argv[2]))
    else:
        main()
