"""Decision intake under load: PostgreSQL, gunicorn, and a separate load process.

    .venv/bin/python bench/intake.py [--duration 10] [--port 8250] [--levels 1,8,32]

What it does, in one run:

1. (Re)creates its own database ``bs_intakebench``, migrates it and seeds it with the
   demo (``seed_demo``: the ``invoice-approval`` use case as users configure it, its
   JSON Schemas declaring ``$schema``, its policy, rules, queues, SLA policies, and
   work in flight), then issues ``demo-ai`` a key. The bodies are the demo's
   synthetic upstream's (``demo.simulation.synthetic_decision``).
2. Starts gunicorn (``config.wsgi``, 2 sync workers, or ``--worker-class gthread``) with
   ``bench.baseline_settings``:
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
6. Profiles the server's CPU per decision step by step (parse, shape, contract, CEL,
   store, answer) in a process of its own, for batches of 1000 and single POSTs, with
   the whole request through Django's test client beside them (``--step-rounds``).

``--against DIR`` runs a second checkout's code (the code before a change, say) beside
this one, against the same database: a second gunicorn, every load and step profile
alternating between the two, so that both meet the same neighbours. With DIR this
checkout and ``--against-worker-class gthread``, it compares gunicorn's worker classes.
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
# BENCH_DATABASE lets two engineers (or two checkouts) bench side by side.
DATABASE = os.environ.get("BENCH_DATABASE", "bs_intakebench")
DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DATABASE}"
USE_CASE = "invoice-approval"


# --- The bodies an upstream invoice AI posts ------------------------------------------------


def invoice_body(external_id: str, rng: random.Random) -> dict:
    """An invoice decision as the demo's upstream extractor posts it (about 10% of its
    readings wrong); the demo's policy sends about four in ten to a reviewer."""
    from exceptions_app.demo.simulation import synthetic_decision

    body = synthetic_decision(rng, external_id=external_id, error_rate=0.1,
                              use_case=USE_CASE).body
    if os.environ.get("BENCH_ROUTE") == "review":
        # Below the demo policy's confidence threshold: every decision opens a case.
        body["confidence"] = 0.5
    return body


# --- Setup: database, seed, server ---------------------------------------------------------------


def setup_database() -> str:
    """A fresh database with the use case, its active policy and an AI system; its API key."""
    for command in (["dropdb", "--if-exists"], ["createdb"]):
        subprocess.run([*command, "-h", "127.0.0.1", "-U", "postgres", DATABASE], check=True)
    _django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return _seed()


def _django(root: Path = ROOT) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.baseline_settings"
    os.environ["DATABASE_URL"] = DATABASE_URL
    os.environ.setdefault("BACKSTOP_DEMO", "1")  # the demo's keys; nothing here is exposed
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("AI_SYSTEM_THROTTLE_RATE", "1000000/s")
    sys.path.insert(0, str(root))
    import django

    django.setup()


def _seed() -> str:
    """The demo as ``seed_demo`` sets it up, and a key for its AI system."""
    from django.db import connection

    from bench.baseline_urls import BASELINE_DDL
    from exceptions_app.demo.setup import seed_demo
    from exceptions_app.services.api_keys import issue_api_key
    from workflows.actors import SYSTEM

    seeded = seed_demo()
    key = issue_api_key(ai_system=seeded.ai_system, name="intake bench", actor=SYSTEM)
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


def start_gunicorn(port: int, var_dir: str, root: Path = ROOT, *,
                   worker_class: str = "sync", threads: int = 1) -> subprocess.Popen:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.baseline_settings",
           "DATABASE_URL": DATABASE_URL, "AI_SYSTEM_THROTTLE_RATE": "1000000/s",
           "LOG_LEVEL": "WARNING", "DEBUG": "false", "BACKSTOP_VAR_DIR": var_dir}
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "config.wsgi", "--workers", "2",
         "--worker-class", worker_class, "--threads", str(threads),
         "--bind", f"127.0.0.1:{port}", "--chdir", str(root),
         "--log-level", "warning", "--timeout", "120"],
        env=env, cwd=root)
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


# The CPU probe of the gunicorn serving each port.
probes: dict[int, CpuProbe] = {}


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
    probe = probes.get(port)
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
    sys.path.insert(0, str(ROOT))  # the demo's synthetic upstream writes the bodies
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
        "kind": spec["kind"],
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
        "kind": runs[0]["kind"],
        "cpu_ms": cpu,  # per decision: gunicorn, PostgreSQL, the load process
        "requests": len(every), "requests_per_s": len(every) / elapsed,
        "decisions_per_s": len(every) * runs[0]["batch_size"] / elapsed,
        "p50_ms": 1000 * statistics.median(every) if every else float("nan"),
        "p99_ms": 1000 * every[min(len(every) - 1, int(len(every) * 0.99))]
        if every else float("nan"),
        "statuses": statuses, "items_by_status": items,
    }


def interleaved(*, key: str, loads: list[tuple[str, dict]], duration: float,
                rounds: int, tag: str) -> dict[str, dict]:
    """Each load for ``duration`` seconds in all, in ``rounds`` alternating slices, so a
    neighbour's burst of work falls on all of them alike."""
    runs: dict[str, list[dict]] = {name: [] for name, _ in loads}
    for round_ in range(rounds):
        for name, options in loads:
            runs[name].append(run_load(key=key, duration=duration / rounds,
                                       tag=f"{tag}-{name.replace(' ', '-')}-{round_}",
                                       **options))
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
    parser.add_argument("--step-rounds", type=int, default=3,
                        help="rounds of the step-by-step profile (default 3; 0: none)")
    parser.add_argument("--against", type=Path, default=None,
                        help="a second checkout whose code runs beside this one, alternating")
    parser.add_argument("--worker-class", default="sync",
                        help="gunicorn's worker class for this checkout (sync, gthread)")
    parser.add_argument("--against-worker-class", default=None,
                        help="the second checkout's worker class (default: --worker-class); "
                             "with --against naming this checkout, compares worker classes")
    parser.add_argument("--threads", type=int, default=4,
                        help="threads per gthread worker (default 4)")
    parser.add_argument("--route", choices=("mixed", "review"), default="mixed",
                        help="review: every decision posted opens a case (the issue's single "
                             "POST that opens a case); mixed: the demo's upstream as it is")
    args = parser.parse_args()
    os.environ["BENCH_ROUTE"] = args.route  # read by the load processes too
    levels = [int(level) for level in args.levels.split(",")]
    batch_clients = [int(level) for level in args.batch_clients.split(",")]
    # The code measured: this checkout ("now") and, with --against, the other ("against").
    codes = {"now": ROOT, **({"against": args.against.resolve()} if args.against else {})}

    key = setup_database()
    run = uuid.uuid4().hex[:8]
    servers, ports = {}, {}
    figures: dict = {"single": {}, "baseline": {}, "raw": {}, "batch": {}, "floor": {},
                     "steps": {}}
    try:
        for code, root in codes.items():
            ports[code] = free_port(args.port + len(ports))
            worker_class = (args.against_worker_class or args.worker_class
                            if code == "against" else args.worker_class)
            servers[code] = start_gunicorn(
                ports[code], f"/tmp/bs-intakebench-{run}-{code}", root,
                worker_class=worker_class,
                threads=args.threads if worker_class == "gthread" else 1)
            probes[ports[code]] = CpuProbe(servers[code].pid)
            print(f"{code}: {root.name}, gunicorn pid {servers[code].pid} on "
                  f"127.0.0.1:{ports[code]}, 2 {worker_class} workers", flush=True)
        print(f"database {DATABASE}; {args.duration:g} s per level", flush=True)
        port = ports["now"]
        for kind in ("baseline", "raw"):  # warm up: connections, compiled policy
            run_load(port=port, key=key, kind=kind, clients=2, duration=1,
                     tag=f"warm-{kind}-{run}")
        for code in codes:
            run_load(port=ports[code], key=key, kind="intake", clients=2, duration=1,
                     tag=f"warm-intake-{code}-{run}")
        singles = [("baseline", {"kind": "baseline", "port": port}),
                   ("raw", {"kind": "raw", "port": port}),
                   *((f"intake {code}", {"kind": "intake", "port": ports[code]})
                     for code in codes)]
        for clients in levels:
            load = os.getloadavg()[0]
            measured = interleaved(
                key=key, duration=args.duration, rounds=args.rounds,
                tag=f"single-{clients}-{run}",
                loads=[(name, {**options, "clients": clients}) for name, options in singles])
            for name, _ in singles:
                figures["single"][(name, clients)] = measured[name]
                _print_level(f"{name:14} x{clients:<3}", measured[name])
            print(f"  (load average {load:.1f} before, {os.getloadavg()[0]:.1f} after)")
        for clients in batch_clients:
            load = os.getloadavg()[0]
            runs: dict[tuple, list[dict]] = {}
            floors = []
            for round_ in range(args.rounds):
                for code in codes:
                    for size in (100, 1000):
                        runs.setdefault((code, size), []).append(run_load(
                            port=ports[code], key=key, kind="batch", clients=clients,
                            batch_size=size, duration=max(args.duration, 6) / args.rounds,
                            tag=f"batch-{clients}-{run}-{code}-{size}-{round_}"))
                # The floor, sampled under the same conditions as the batches just run.
                floors.append(measure_floor(f"{run}-now"))
            for (code, size), results in runs.items():
                figures["batch"][(code, size, clients)] = summarize(results)
                _print_level(f"batch {size:<4} {code:7} x{clients}",
                             figures["batch"][(code, size, clients)])
            figures["floor"][clients] = floor = {
                key: statistics.mean(sample[key] for sample in floors) for key in floors[0]}
            print(f"floor x{clients}: the rows of {floor['decisions']:.0f} decisions "
                  f"({floor['cases']:.0f} cases, {floor['events']:.0f} audit events) by bare "
                  f"multi-row INSERT {floor['insert_decisions_per_s']:,.0f} decisions/s, by COPY "
                  f"{floor['copy_decisions_per_s']:,.0f} decisions/s (mean of {len(floors)} "
                  f"samples, one after each batch round)")
            print(f"  (load average {load:.1f} before, {os.getloadavg()[0]:.1f} after)")
    finally:
        for server in servers.values():
            stop(server)
    if args.step_rounds:
        load = os.getloadavg()[0]
        profiles: dict[str, list[dict]] = {code: [] for code in codes}
        for round_ in range(args.step_rounds):
            for code, root in codes.items():
                profiles[code].append(step_profile(root=root, key=key,
                                                   tag=f"steps-{run}-{code}-{round_}"))
        for code in codes:
            figures["steps"][code] = _median_steps(profiles[code])
        _print_steps(figures["steps"], load)
    _check_stored(figures, run)
    _report(figures, levels, batch_clients, list(codes))


# --- Where a decision's server CPU goes, step by step ---------------------------------


STEPS = ("parse", "shape", "contract", "CEL", "store", "answer")


def step_profile(*, root: Path, key: str, tag: str) -> dict:
    """One round of ``steps_process`` in ``root``'s code, in a process of its own."""
    spec = {"root": str(root), "key": key, "tag": tag}
    done = subprocess.run([sys.executable, __file__, "steps", json.dumps(spec)], cwd=root,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def steps_process(spec: dict, *, batches: int = 6, singles: int = 300) -> None:
    """Server CPU per decision of each step of intake (``time.process_time``), for
    batches of 1000 and single decisions, in ``spec['root']``'s code, and of the whole
    request through Django's test client (the URLs, middleware, key check, throttle).

    Each step is timed on its own over the same bodies: parse (the view's parser),
    shape (``validate_decisions``), contract (``_refusal``: the data contracts), CEL
    (the rules and the route), store (``submit_decisions`` less the contract and CEL
    it includes), answer (``DecisionOutSerializer`` and the renderer's bytes).
    """
    import gc
    import io

    _django(Path(spec["root"]))
    from django.conf import settings
    from django.test import Client
    from rest_framework.settings import api_settings

    from exceptions_app.api.serializers import DecisionOutSerializer, validate_decisions
    from exceptions_app.api.views import DecisionsView
    from exceptions_app.models import AiSystem
    from exceptions_app.policy import judge
    from exceptions_app.routing import route_decision
    from exceptions_app.services import intake

    settings.ALLOWED_HOSTS = ["testserver"]
    client = Client(HTTP_AUTHORIZATION=f"Api-Key {spec['key']}")
    ai_system = AiSystem.objects.get(slug="demo-ai")
    parser = DecisionsView.parser_classes[0]()
    renderer = api_settings.DEFAULT_RENDERER_CLASSES[0]()
    rng = random.Random(spec["tag"])
    numbers = iter(range(10**9))

    def bodies(count: int) -> list[dict]:
        return [invoice_body(f"{spec['tag']}-{next(numbers)}", rng) for _ in range(count)]

    def timed(work) -> float:
        started = time.process_time()
        work()
        return time.process_time() - started

    def steps_of(items: list[dict], *, batch: bool) -> dict[str, float]:
        raw = json.dumps({"decisions": items} if batch else items[0]).encode()
        seconds = {"parse": timed(lambda: parser.parse(io.BytesIO(raw)))}
        checked = []
        seconds["shape"] = timed(lambda: checked.extend(validate_decisions(items)))
        valid = [item for item, errors in checked if errors is None]
        entries = intake._targets(ai_system=ai_system, slugs={USE_CASE})
        target = entries[USE_CASE]
        seconds["contract"] = timed(lambda: [intake._refusal(item, entries) for item in valid])
        max_items = settings.MAX_RULE_LIST_ITEMS

        def rules():
            for item in valid:
                route_decision(use_case=target.routing, policy=target.compiled,
                               evaluation=judge(
                                   target.compiled, input=item["input"], output=item["output"],
                                   confidence=item["confidence"],
                                   model_version=item["model_version"], meta=item.get("meta"),
                                   max_list_items=max_items),
                               external_id=item["external_id"])
        seconds["CEL"] = timed(rules)
        results = []
        submitted = timed(lambda: results.extend(
            intake.submit_decisions(ai_system=ai_system, items=valid)))
        seconds["store"] = submitted - seconds["contract"] - seconds["CEL"]

        def answer():
            written = DecisionOutSerializer([result.decision for result in results], many=True).data
            renderer.render({"results": [{"status": 201, "decision": decision}
                                         for decision in written]} if batch else written[0])
        seconds["answer"] = timed(answer)
        return seconds

    def whole(items: list[dict], *, batch: bool) -> float:
        path = "/api/v1/decisions/batch/" if batch else "/api/v1/decisions/"
        body = {"decisions": items} if batch else items[0]
        return timed(lambda: client.post(path, body, content_type="application/json"))

    for _ in range(20):  # warm: caches, compiled policy and contracts
        whole(bodies(1), batch=False)
    whole(bodies(1000), batch=True)
    gc.freeze()  # as config.wsgi does
    figures = {}
    for kind, count, repeat in (("batch", 1000, batches), ("single", 1, singles)):
        totals = dict.fromkeys(STEPS, 0.0)
        for _ in range(repeat):
            for step, value in steps_of(bodies(count), batch=kind == "batch").items():
                totals[step] += value
        requests = sum(whole(bodies(count), batch=kind == "batch") for _ in range(repeat))
        decisions = count * repeat
        figures[kind] = {**{step: 1000 * totals[step] / decisions for step in STEPS},
                         "whole request": 1000 * requests / decisions}
    print(json.dumps(figures))


def _median_steps(profiles: list[dict]) -> dict:
    return {kind: {step: statistics.median(profile[kind][step] for profile in profiles)
                   for step in profiles[0][kind]} for kind in profiles[0]}


def _print_steps(steps: dict, load: float) -> None:
    print(f"\nserver CPU per decision, step by step (ms, medians of alternating rounds; "
          f"load average {load:.1f} before, {os.getloadavg()[0]:.1f} after)")
    for kind in ("batch", "single"):
        names = [*STEPS, "whole request"]
        print(f"  {kind + ' (1000)' if kind == 'batch' else kind:12} "
              + " ".join(f"{name:>13}" for name in names))
        for code, figures in steps.items():
            print(f"  {code:12} " + " ".join(f"{figures[kind][name]:13.4f}" for name in names))


def _print_level(label: str, result: dict) -> None:
    cpu = result["cpu_ms"]
    print(f"{label}: {result['requests_per_s']:8.1f} req/s  {result['decisions_per_s']:8.1f} "
          f"decisions/s  p50 {result['p50_ms']:7.1f} ms  p99 {result['p99_ms']:7.1f} ms  "
          f"statuses {result['statuses']}"
          + (f"\n    CPU per decision: gunicorn {cpu['server']:.3f} ms, PostgreSQL "
             f"{cpu['db']:.3f} ms, load process {cpu['load']:.3f} ms: at most "
             f"{2000 / sum(cpu.values()):,.0f} decisions/s on two idle cores" if cpu else ""),
          flush=True)


def _check_stored(figures: dict, run: str) -> None:
    from exceptions_app.models import Decision

    created = sum(result["statuses"].get("201", 0) for result in figures["single"].values()
                  if result["kind"] == "intake")
    created += sum(result["items_by_status"].get("201", 0)
                   for result in figures["batch"].values())
    stored = Decision.objects.filter(external_id__regex=rf"^(single|batch)-\d+-{run}-").count()
    errors = sum(count for result in [*figures["single"].values(), *figures["batch"].values()]
                 for status, count in result["statuses"].items() if status.startswith("5"))
    verdict = "ok" if stored == created else "MISMATCH"
    print(f"stored check: {created} answered 201, {stored} stored ({verdict}); "
          f"{errors} answers 5xx")


def _report(figures: dict, levels: list[int], batch_clients: list[int],
            codes: list[str]) -> None:
    print("\nagainst the targets (server CPU per decision, gunicorn + PostgreSQL)")
    for code in codes:
        for clients in levels:
            intake = figures["single"][(f"intake {code}", clients)]
            baseline = figures["single"][("baseline", clients)]
            ratio = intake["requests_per_s"] / baseline["requests_per_s"]
            print(f"  {code:7} single x{clients:<3} {_server_cpu(intake)} (target <= 4 ms); "
                  f"{intake['requests_per_s']:,.0f}/s, p50 {intake['p50_ms']:.1f} ms, "
                  f"p99 {intake['p99_ms']:.1f} ms; intake/bare DRF {ratio:.0%}"
                  f"{_cpu_ratio(intake, baseline)}")
        for clients in batch_clients:
            batch = figures["batch"][(code, 1000, clients)]
            floor = figures["floor"][clients]
            rate = batch["decisions_per_s"]
            print(f"  {code:7} batch 1000 x{clients}: {_server_cpu(batch)} (target <= 0.25 ms); "
                  f"{rate:,.0f} decisions/s, p50 {batch['p50_ms']:.0f} ms, "
                  f"p99 {batch['p99_ms']:.0f} ms; "
                  f"{rate / floor['insert_decisions_per_s']:.0%} of the bare INSERT, "
                  f"{rate / floor['copy_decisions_per_s']:.0%} of COPY")


def _server_cpu(result: dict) -> str:
    cpu = result["cpu_ms"]
    if not cpu:
        return "no CPU figures"
    server = cpu["server"] + cpu["db"]
    return (f"{server:.3f} ms ({cpu['server']:.3f} + {cpu['db']:.3f}; 2 cores / it = "
            f"{2000 / server:,.0f}/s)")


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
    elif len(sys.argv) == 3 and sys.argv[1] == "steps":
        steps_process(json.loads(sys.argv[2]))
    else:
        main()
