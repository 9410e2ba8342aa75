"""Load on a real Backstop stack: upstream AI systems posting decisions while people work
the cases, and the sweeper runs.

    .venv/bin/python bench/reliability_load.py [--upstream 50] [--reviewers 6]
                                               [--duration 300] [--batch-size 50]

What it does, in one run:

1. Starts its own stack, stopped again (by process id) when the run ends: a
   ``redis-server`` on a free port from 6391 (no persistence, so that a restart or a
   flush loses what was queued, as a crash would), a fresh PostgreSQL database
   ``bs_reliability`` migrated and seeded with the demo (``seed_demo``: its use cases,
   contracts, rules, SLA policies and escalation chains), gunicorn (``config.wsgi``,
   2 sync workers), a Celery worker for each queue (``celery`` and ``webhooks``, as the
   Procfile runs them) and beat, and in this process the AI systems' webhook receivers.
2. Three AI systems post: ``demo-ai`` (80% of the upstream clients), whose receiver
   verifies every signature and answers at once, and ``timeout-ai`` and ``drip-ai``
   (10% each), whose receivers never answer in time: one says nothing for 30 s, the
   other sends its headers and then a byte a second. Resolutions go back to all three.
3. Upstream clients (Locust users) post single decisions and batches to
   ``/api/v1/decisions/`` and ``/batch/``, to ``invoice-approval`` and (a share set
   per run) ``intercompany-invoices``; about 20% of the items re-post a decision already
   answered (a duplicate), and a request whose answer is lost (no connection, a
   timeout, a 5xx or 429) is sent again with the same body, after ``Retry-After`` when
   given. Reviewers (``reviewer``, ``reviewer2``) claim the next ``invoice-review`` case
   through the API and resolve it; ``manager`` approves the four-eyes cases. Nobody
   works ``intercompany-review``: its SLA policy is republished with a response target
   of ``--response-target`` seconds, so that its cases come due during the run and the
   sweeper escalates them (the demo's chain: level 1 to a reviewer).
4. Every two seconds it samples the queue lag: the Redis queues' lengths, the age of
   the oldest audit event not yet sealed, the oldest SLA check that is due, and the
   resolution webhooks waiting; and the CPU each part used (from /proc).
5. Prints the sustained rates, p50/p99 per endpoint, the lag, the CPU per part and
   what saturates first. ``bench/reliability.py`` runs the same load with faults
   injected and checks the outcome.
"""

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import gevent
from gevent.pywsgi import WSGIServer
from locust import HttpUser, between, events, task
from locust.env import Environment
from standardwebhooks import Webhook

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import database_url, ensure_database, setup_django  # noqa: E402

DATABASE = "bs_reliability"
DUPLICATE_SHARE = 0.2
RETRYABLE = {0, 429, 500, 502, 503, 504}  # 0: no answer at all (Locust's code for it)
MAX_ATTEMPTS = 10
REQUEST_TIMEOUT = 30.0
# The receivers that never answer in time: past the webhook deadline either way.
SILENT_SECONDS = 30
DRIP_BYTES = 60
WEBHOOK_TIMEOUT_SECONDS = 10.0  # the product's default, stated for the receivers above
SLA_SWEEP_SECONDS = 5.0


def wall() -> float:
    return time.monotonic()


# --- What the clients saw -----------------------------------------------------------------


@dataclass
class Outcomes:
    """Everything the clients were answered, for the report and the checks."""

    started: float = field(default_factory=wall)
    # (AI system, external_id) -> the decision ids its answers carried (201 and 200).
    accepted: dict[tuple[str, str], set[int]] = field(default_factory=lambda: defaultdict(set))
    item_statuses: Counter = field(default_factory=Counter)
    retries: int = 0
    gave_up: int = 0
    duplicates_sent: int = 0
    # (seconds into the run, method and path, status, had Retry-After) of each 5xx.
    server_errors: list[tuple[float, str, int, bool]] = field(default_factory=list)
    no_answer: int = 0  # connections refused or cut, timeouts
    resolved: int = 0
    approved: int = 0
    conflicts: int = 0

    def server_error(self, what: str, status: int, retry_after: bool) -> None:
        self.server_errors.append((wall() - self.started, what, status, retry_after))


@dataclass
class Credentials:
    api_keys: dict[str, str]  # AI system slug -> key
    tokens: dict[str, str]  # username -> API token
    secrets: dict[str, str]  # AI system slug -> signing secret


# --- The webhook receivers -------------------------------------------------------------------


@dataclass
class Delivery:
    system: str
    webhook_id: str
    decision_id: int | None
    verified: bool


class Receivers:
    """The AI systems' callback endpoints, in this process (gevent's WSGI server).

    ``/demo-ai`` verifies the Standard Webhooks signature and answers 204 at once;
    ``/timeout-ai`` reads the request and says nothing for 30 s; ``/drip-ai`` answers
    200 with a 60-byte body announced and sends it a byte a second. Every request is
    recorded with its ``webhook-id`` and the decision it is about.
    """

    def __init__(self, secrets: dict[str, str] | None = None):
        self.secrets = secrets or {}
        self.deliveries: list[Delivery] = []
        self.server = WSGIServer(("127.0.0.1", 0), self._app, log=None, error_log=None)
        self.server.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def url(self, system: str) -> str:
        return f"{self.base_url}/{system}"

    def stop(self) -> None:
        self.server.stop(timeout=1)

    def _app(self, environ, start_response):
        system = environ["PATH_INFO"].strip("/")
        body = environ["wsgi.input"].read()
        headers = {key[5:].replace("_", "-").lower(): value for key, value in environ.items()
                   if key.startswith("HTTP_")}
        verified = False
        if system in self.secrets:
            try:
                Webhook(self.secrets[system]).verify(body, headers)
                verified = True
            except Exception:  # any refusal: recorded as not verified
                verified = False
        try:
            decision_id = json.loads(body)["data"]["decision_id"]
        except (ValueError, KeyError, TypeError):
            decision_id = None
        self.deliveries.append(Delivery(system=system, webhook_id=headers.get("webhook-id", ""),
                                        decision_id=decision_id, verified=verified))
        if system == "timeout-ai":
            gevent.sleep(SILENT_SECONDS)
            start_response("204 No Content", [])
            return []
        if system == "drip-ai":
            start_response("200 OK", [("Content-Length", str(DRIP_BYTES))])
            return self._drip()
        start_response("204 No Content" if verified else "401 Unauthorized", [])
        return []

    @staticmethod
    def _drip():
        for _ in range(DRIP_BYTES):
            gevent.sleep(1)
            yield b"."


# --- The stack ----------------------------------------------------------------------------------


def free_port(first: int) -> int:
    for port in range(first, first + 200):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit(f"No free port in {first}-{first + 199}.")


class Process:
    """One server process in its own session, so that ``kill`` reaches its children."""

    def __init__(self, name: str, command: list[str], *, env: dict, logs: Path):
        self.name, self.command, self.env, self.logs = name, command, env, logs
        self.popen: subprocess.Popen | None = None
        self.starts = 0
        self.held = False  # down on purpose (a fault): the supervisor leaves it alone

    def start(self) -> "Process":
        self.starts += 1
        with open(self.logs / f"{self.name}-{self.starts}.log", "wb") as log:
            self.popen = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill9(self) -> None:
        """``kill -9`` of the process and everything it started (a crash)."""
        if self.alive():
            os.killpg(self.pid, signal.SIGKILL)
            self.popen.wait()

    def stop(self) -> None:
        if not self.alive():
            return
        os.killpg(self.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill9()

    def children(self) -> list[int]:
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []

    def output(self) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
                         for path in sorted(self.logs.glob(f"{self.name}-*.log")))


class Stack:
    """Redis, PostgreSQL's bench database, gunicorn, two Celery workers and beat."""

    def __init__(self, *, response_target: float):
        self.workdir = Path(tempfile.mkdtemp(prefix="backstop-reliability-"))
        self.response_target = response_target
        self.redis_port = free_port(6391)
        self.web_port = free_port(8300)
        self.url = f"http://127.0.0.1:{self.web_port}"
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.env = {
            **{key: value for key, value in os.environ.items()
               if key not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")},
            "DATABASE_URL": database_url(DATABASE), "REDIS_URL": self.redis_url,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "BACKSTOP_DEMO": "1",  # the demo's people and public keys: nothing is exposed
            "BACKSTOP_VAR_DIR": str(self.workdir / "var"), "DEBUG": "false",
            "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
            # The clients are the load; the per-system budget is not what is measured.
            "AI_SYSTEM_THROTTLE_RATE": "1000000/s",
            # The receivers run on this host.
            "WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "1",
            "WEBHOOK_TIMEOUT_SECONDS": str(WEBHOOK_TIMEOUT_SECONDS),
            # The shortest lease the settings allow (deadline + 30 s), so that a message
            # whose worker was killed is sent again within the run.
            "OUTBOX_DELIVERY_LEASE_SECONDS": str(WEBHOOK_TIMEOUT_SECONDS + 30),
            "SLA_SWEEP_INTERVAL_SECONDS": str(SLA_SWEEP_SECONDS),
        }
        venv = ROOT / ".venv/bin"
        logs = self.workdir
        self.redis = Process("redis", [
            "redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(self.workdir)],
            env=self.env, logs=logs)
        self.web = Process("gunicorn", [
            str(venv / "gunicorn"), "config.wsgi", "--workers", "2", "--worker-class", "sync",
            "--bind", f"127.0.0.1:{self.web_port}", "--timeout", "60",
            "--log-level", "warning"], env=self.env, logs=logs)
        # A worker per queue, as the Procfile runs them: the slow receivers hold only the
        # webhook worker's slots and a storm of notices the notice worker's, never the
        # periodic jobs'.
        self.worker, self.notice_worker, self.webhook_worker = (
            Process(f"celery-{queue}-worker", [
                str(venv / "celery"), "-A", "config", "worker", "-Q", queue,
                "--concurrency", "2", "--loglevel", "WARNING",
                "-n", f"{queue}-{self.redis_port}@%h", "--without-gossip", "--without-mingle",
                "--without-heartbeat"], env=self.env, logs=logs)
            for queue in ("celery", "notices", "webhooks"))
        self.beat = Process("celery-beat", [
            str(venv / "celery"), "-A", "config", "beat", "--loglevel", "WARNING",
            "-s", str(self.workdir / "beat-schedule")], env=self.env, logs=logs)
        self.processes = [self.redis, self.web, self.worker, self.notice_worker,
                          self.webhook_worker, self.beat]
        self.receivers: Receivers | None = None

    def start(self) -> Credentials:
        self.redis.start()
        self.wait_for_redis()
        ensure_database(DATABASE, recreate=True)
        os.environ.update({key: self.env[key] for key in (
            "REDIS_URL", "BACKSTOP_VAR_DIR", "BACKSTOP_DEMO", "WEBHOOK_ALLOW_PRIVATE_ADDRESSES",
            "WEBHOOK_TIMEOUT_SECONDS", "OUTBOX_DELIVERY_LEASE_SECONDS")})
        setup_django(DATABASE)
        self.receivers = Receivers()
        credentials = seed(receivers=self.receivers, response_target=self.response_target)
        self.receivers.secrets = credentials.secrets
        for process in (self.web, self.worker, self.notice_worker, self.webhook_worker,
                        self.beat):
            process.start()
        self.wait_for_web()
        return credentials

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        if self.receivers is not None:
            self.receivers.stop()

    def redis_client(self):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.redis_port, socket_timeout=2)

    def wait_for_redis(self) -> None:
        import redis

        deadline = wall() + 10
        while wall() < deadline:
            try:
                if self.redis_client().ping():
                    return
            except redis.exceptions.ConnectionError:
                gevent.sleep(0.1)
        raise SystemExit(f"redis-server did not start on port {self.redis_port}.")

    def wait_for_web(self) -> None:
        import httpx

        deadline = wall() + 60
        while wall() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            gevent.sleep(0.3)
        raise SystemExit(f"gunicorn did not become ready:\n{self.web.output()}")

    def supervise(self, stop: threading.Event, exits: list[str], started: float) -> None:
        """Restart a server process that exited on its own, as systemd's
        ``Restart=always`` does in production (docs/DEPLOY.md); note each one."""
        while not stop.is_set():
            for process in (self.web, self.worker, self.notice_worker, self.webhook_worker,
                            self.beat):
                if not process.held and not process.alive():
                    exits.append(f"{wall() - started:6.1f} s  {process.name} exited "
                                 f"(code {process.popen.returncode}); started again")
                    process.start()
            gevent.sleep(1)

    def restart_redis(self, *, down_seconds: float) -> None:
        """Redis crashes and comes back empty after ``down_seconds``."""
        self.redis.kill9()
        gevent.sleep(down_seconds)
        self.redis.start()
        self.wait_for_redis()


def seed(*, receivers: Receivers, response_target: float) -> Credentials:
    """The demo, two more AI systems whose receivers are slow, keys, tokens, and an SLA
    on ``intercompany-review`` that comes due within the run."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.utils import timezone

    from exceptions_app.demo import data
    from exceptions_app.demo.setup import seed_demo
    from exceptions_app.services.api_keys import issue_api_key
    from exceptions_app.services.use_cases import ai_system_create
    from workflows.models import Calendar, Queue
    from workflows.services.sla import publish_sla_policy
    from workflows.services.tokens import issue_user_token

    call_command("migrate", verbosity=0)
    seeded = seed_demo(callback_url=receivers.url(data.AI_SYSTEM_SLUG))
    people = {user.username: user for user in get_user_model().objects.all()}
    manager = people["manager"]
    systems = {data.AI_SYSTEM_SLUG: seeded.ai_system}
    for slug in ("timeout-ai", "drip-ai"):
        systems[slug] = ai_system_create(
            actor=manager, use_cases=[seeded.use_case, seeded.second_use_case], slug=slug,
            name=f"Upstream with a slow receiver ({slug})", owner=manager,
            callback_url=receivers.url(slug))
    publish_sla_policy(
        queue=Queue.objects.get(slug="intercompany-review"),
        calendar=Calendar.objects.get(name=data.ALWAYS_OPEN_CALENDAR_NAME),
        targets=[{"min_priority": 0, "response_target": timedelta(seconds=response_target),
                  "resolution_target": timedelta(hours=2)}],
        warning_fraction=0.5, actor=manager, now=timezone.now())
    return Credentials(
        api_keys={slug: issue_api_key(ai_system=system, name="reliability load", actor=manager)
                  for slug, system in systems.items()},
        tokens={name: issue_user_token(user=people[name], actor=manager).key
                for name in ("reviewer", "reviewer2", "manager")},
        secrets={slug: system.signing_secret for slug, system in systems.items()})


# --- The users --------------------------------------------------------------------------------


def _retry_delay(response, attempt: int) -> float:
    retry_after = response.headers.get("Retry-After", "") if response is not None else ""
    if retry_after.isdigit():
        return min(float(retry_after), 10.0)
    return min(0.25 * 2 ** attempt, 5.0) * random.uniform(0.8, 1.2)


class Upstream(HttpUser):
    """An upstream AI system's client: singles and batches, duplicates and retries."""

    abstract = True  # made concrete, with its numbers, by ``run_load``
    wait_time = between(0.3, 1.2)
    outcomes: Outcomes
    credentials: Credentials
    batch_size: int
    intercompany_share: float  # of the decisions: the desk nobody works, escalated
    system_shares = (("demo-ai", 0.8), ("timeout-ai", 0.1), ("drip-ai", 0.1))
    _numbers = iter(range(1, 10**9))

    def on_start(self):
        number = next(self._numbers)
        self.rng = random.Random(number)
        self.system = self.rng.choices([slug for slug, _ in self.system_shares],
                                       [share for _, share in self.system_shares])[0]
        self.headers = {"Authorization": f"Api-Key {self.credentials.api_keys[self.system]}"}
        self.run = f"rel-{uuid.uuid4().hex[:8]}-{number}"
        self.sent = 0
        self.answered: list[dict] = []  # bodies answered 201/200: what duplicates re-post

    def _item(self) -> dict:
        if self.answered and self.rng.random() < DUPLICATE_SHARE:
            self.outcomes.duplicates_sent += 1
            return self.rng.choice(self.answered)
        from exceptions_app.demo.simulation import synthetic_decision

        self.sent += 1
        use_case = ("intercompany-invoices" if self.rng.random() < self.intercompany_share
                    else "invoice-approval")
        return synthetic_decision(self.rng, external_id=f"{self.run}-{self.sent:06d}",
                                  error_rate=0.1, use_case=use_case).body

    @task(3)
    def post_one(self):
        body = self._item()
        response = self._post("/api/v1/decisions/", body, name="POST /api/v1/decisions/")
        if response is not None:
            self._record(body, response.status_code, response.json())

    @task(1)
    def post_batch(self):
        # A duplicate drawn twice would be the same item twice in one batch: kept once.
        bodies = list({body["external_id"]: body
                       for body in (self._item() for _ in range(self.batch_size))}.values())
        response = self._post("/api/v1/decisions/batch/", {"decisions": bodies},
                              name="POST /api/v1/decisions/batch/")
        if response is not None:
            for body, result in zip(bodies, response.json()["results"], strict=True):
                self._record(body, result["status"], result.get("decision") or {})

    def _record(self, body: dict, status: int, answer: dict) -> None:
        self.outcomes.item_statuses[status] += 1
        if status in (200, 201):
            key = (self.system, body["external_id"])
            if key not in self.outcomes.accepted:
                self.answered.append(body)
            self.outcomes.accepted[key].add(answer["id"])

    def _post(self, path: str, payload: dict, *, name: str):
        """POST until answered; the same body each time, so a retry is a replay."""
        for attempt in range(MAX_ATTEMPTS):
            with self.client.post(path, json=payload, headers=self.headers, name=name,
                                  timeout=REQUEST_TIMEOUT, catch_response=True) as response:
                status = response.status_code
                if status >= 500:
                    self.outcomes.server_error(name, status, "Retry-After" in response.headers)
                if status == 0:
                    self.outcomes.no_answer += 1
                if status in RETRYABLE:
                    response.failure(f"{status}, sent again")
                elif status in (200, 201):
                    response.success()
                    return response
                else:
                    response.failure(f"{status}: {response.text[:200]}")
                    return None
            self.outcomes.retries += 1
            gevent.sleep(_retry_delay(response, attempt))
        self.outcomes.gave_up += 1
        return None


class Person(HttpUser):
    """Someone working cases through the API with their token."""

    abstract = True
    outcomes: Outcomes
    credentials: Credentials
    people: tuple[str, ...] = ()
    _numbers = iter(range(10**9))

    def on_start(self):
        person = self.people[next(self._numbers) % len(self.people)]
        self.headers = {"Authorization": f"Token {self.credentials.tokens[person]}"}

    def _post(self, path: str, payload: dict, *, name: str):
        with self.client.post(path, json=payload, headers=self.headers, name=name,
                              timeout=REQUEST_TIMEOUT, catch_response=True) as response:
            status = response.status_code
            if status >= 500:
                self.outcomes.server_error(name, status, "Retry-After" in response.headers)
            if status == 0:
                self.outcomes.no_answer += 1
            if status == 409:  # someone else moved the case first: a normal answer
                self.outcomes.conflicts += 1
                response.success()
            elif status in (200, 204):
                response.success()
            else:
                response.failure(f"{status}: {response.text[:200]}")
                return None
            return response


class Reviewer(Person):
    """A reviewer: claim the next invoice case, read it, resolve it."""

    abstract = True
    wait_time = between(0.5, 2.0)
    people = ("reviewer", "reviewer2")

    @task
    def claim_and_resolve(self):
        claimed = self._post("/api/v1/cases/claim-next/", {"queue": "invoice-review"},
                             name="POST /api/v1/cases/claim-next/")
        if claimed is None or claimed.status_code != 200:
            return
        case = claimed.json()
        gevent.sleep(random.uniform(0.2, 1.0))  # reading the case
        resolved = self._post(f"/api/v1/cases/{case['id']}/resolve/",
                              {"verdict": "accepted", "version": case["version"]},
                              name="POST /api/v1/cases/{id}/resolve/")
        if resolved is not None and resolved.status_code == 200:
            self.outcomes.resolved += 1


class Approver(Person):
    """The owner approving four-eyes resolutions as they come in."""

    abstract = True
    people = ("manager",)
    wait_time = between(1.0, 3.0)

    @task
    def approve_waiting(self):
        with self.client.get("/api/v1/cases/?state=pending_approval", headers=self.headers,
                             name="GET /api/v1/cases/?state=pending_approval",
                             timeout=REQUEST_TIMEOUT, catch_response=True) as listed:
            if listed.status_code >= 500:
                self.outcomes.server_error("GET /api/v1/cases/", listed.status_code,
                                           "Retry-After" in listed.headers)
            if listed.status_code != 200:
                listed.failure(str(listed.status_code))
                return
            waiting = listed.json()["results"]
        for case in waiting[:5]:
            approved = self._post(f"/api/v1/cases/{case['id']}/approve/",
                                  {"version": case["version"]},
                                  name="POST /api/v1/cases/{id}/approve/")
            if approved is not None and approved.status_code == 200:
                self.outcomes.approved += 1


# --- Sampling: queue lag and CPU -----------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _tree(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    children = [int(child) for child in path.read_text().split()] if path.exists() else []
    return [pid, *(grandchild for child in children for grandchild in _tree(child))]


@dataclass
class Sampler:
    """Every two seconds: the Redis queues, the sealing, SLA and webhook lag; the CPU."""

    stack: Stack
    samples: list[dict] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=Counter)
    _last: dict[int, tuple[str, float]] = field(default_factory=dict)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.samples.append(self.sample())
            self._account_cpu()
            gevent.sleep(2)

    def sample(self) -> dict:
        from django.db import connection
        from django.db.models import Min
        from django.utils import timezone

        from workflows.models import AuditEvent, Channel, OutboxMessage, OutboxStatus
        from workflows.services import sweeper

        now, taken = timezone.now(), {"at": wall()}
        try:
            redis = self.stack.redis_client()
            taken["celery_queue"] = redis.llen("celery")
            taken["webhooks_queue"] = redis.llen("webhooks")
        except Exception:  # Redis is down (a fault): no figure for this sample
            taken["celery_queue"] = taken["webhooks_queue"] = None
        try:
            oldest_unsealed = AuditEvent.objects.filter(seal__isnull=True).aggregate(
                oldest=Min("recorded_at"))["oldest"]
            # What the sweep would act on now (closed cases keep their last check time).
            oldest_check = sweeper.due_cases(now=now).aggregate(
                oldest=Min("sla_next_check_at"))["oldest"]
            waiting = OutboxMessage.objects.filter(
                channel=Channel.WEBHOOK, status=OutboxStatus.PENDING,
                recipient=self.stack.receivers.url("demo-ai"))
            taken["webhooks_waiting"] = waiting.count()
        except Exception:  # the database dropped this connection (a fault)
            connection.close()
            return taken
        taken["sealing_lag"] = (now - oldest_unsealed).total_seconds() if oldest_unsealed else 0
        taken["sla_lag"] = (now - oldest_check).total_seconds() if oldest_check else 0
        return taken

    def _parts(self) -> dict[int, str]:
        parts = {pid: "load generator and receivers" for pid in [os.getpid()]}
        for process, name in ((self.stack.web, "gunicorn"), (self.stack.worker, "celery worker"),
                              (self.stack.notice_worker, "notice worker"),
                              (self.stack.webhook_worker, "webhook worker"),
                              (self.stack.beat, "celery beat"), (self.stack.redis, "redis")):
            if process.alive():
                parts.update(dict.fromkeys(_tree(process.pid), name))
        for pid in _postgres_backends():
            parts[pid] = "postgresql"
        return parts

    def _account_cpu(self) -> None:
        for pid, part in self._parts().items():
            used = _cpu_seconds(pid)
            _, before = self._last.get(pid, (part, used))
            self.cpu[part] += max(0.0, used - before)
            self._last[pid] = (part, used)


def _postgres_backends() -> list[int]:
    answer = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc",
         f"SELECT pid FROM pg_stat_activity WHERE datname = '{DATABASE}'", "postgres"],
        capture_output=True, text=True)
    return [int(line) for line in answer.stdout.split()]


# --- Running the load ---------------------------------------------------------------------------


@dataclass
class LoadRun:
    outcomes: Outcomes
    environment: Environment
    sampler: Sampler
    seconds: float
    exits: list[str]  # server processes that exited on their own, restarted


def run_load(stack: Stack, credentials: Credentials, *, upstream: int, reviewers: int,
             duration: float, batch_size: int, intercompany_share: float,
             during=None) -> LoadRun:
    """Run the users for ``duration`` seconds; ``during(outcomes)`` runs beside them."""
    outcomes = Outcomes()
    shared = {"outcomes": outcomes, "credentials": credentials}
    user_classes = [
        type("UpstreamClient", (Upstream,), {**shared, "batch_size": batch_size,
                                             "intercompany_share": intercompany_share,
                                             "fixed_count": upstream, "abstract": False}),
        type("ReviewerClient", (Reviewer,), {**shared, "fixed_count": reviewers,
                                             "abstract": False}),
        type("ApproverClient", (Approver,), {**shared, "fixed_count": 1, "abstract": False}),
    ]
    environment = Environment(user_classes=user_classes, host=stack.url, events=events)
    runner = environment.create_local_runner()
    sampler = Sampler(stack)
    sampler._account_cpu()  # the baseline
    stop = threading.Event()
    sampling = gevent.spawn(sampler.run, stop)
    started = wall()
    outcomes.started = started
    exits: list[str] = []
    supervising = gevent.spawn(stack.supervise, stop, exits, started)
    runner.start(upstream + reviewers + 1, spawn_rate=max(10, upstream))
    beside = gevent.spawn(during, outcomes) if during is not None else None
    gevent.sleep(duration)
    runner.quit()
    seconds = wall() - started
    if beside is not None:
        beside.join()
    stop.set()
    sampling.join()
    supervising.join()
    return LoadRun(outcomes=outcomes, environment=environment, sampler=sampler, seconds=seconds,
                   exits=exits)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))] if ordered else 0.0


def report(run: LoadRun) -> list[str]:
    """The figures, as lines: rates, latencies, lag, CPU, what saturates first."""
    lines = [f"Load for {run.seconds:.0f} s on {os.cpu_count()} cores:"]
    lines.append(f"  {'endpoint':<46}{'requests':>9}{'per s':>8}{'failed':>8}"
                 f"{'p50 ms':>9}{'p99 ms':>9}")
    entries = sorted(run.environment.stats.entries.values(), key=lambda entry: entry.name)
    for entry in [*entries, run.environment.stats.total]:
        if not entry.num_requests:
            continue
        lines.append(f"  {entry.name:<46}{entry.num_requests:>9}"
                     f"{entry.num_requests / run.seconds:>8.1f}{entry.num_failures:>8}"
                     f"{entry.get_response_time_percentile(0.5):>9.0f}"
                     f"{entry.get_response_time_percentile(0.99):>9.0f}")
    outcomes = run.outcomes
    new = outcomes.item_statuses[201]
    lines.append(f"  decisions: {new / run.seconds:.1f}/s stored (201), "
                 f"{outcomes.item_statuses[200]} replays answered 200, "
                 f"{len(outcomes.accepted)} distinct "
                 f"accepted; item answers {dict(sorted(outcomes.item_statuses.items()))}; "
                 f"{outcomes.duplicates_sent} duplicates sent, {outcomes.retries} retries, "
                 f"{outcomes.no_answer} requests without an answer, {outcomes.gave_up} gave up")
    lines.append(f"  cases: {outcomes.resolved} resolved, {outcomes.approved} approved, "
                 f"{outcomes.conflicts} lost races (409)")
    lines.append("  processes that exited on their own (restarted, as systemd would): "
                 + ("; ".join(" ".join(line.split()) for line in run.exits) or "none"))
    samples = run.sampler.samples
    for key, label, unit in (("celery_queue", "Celery queue 'celery'", "tasks"),
                             ("webhooks_queue", "Celery queue 'webhooks'", "tasks"),
                             ("sealing_lag", "oldest unsealed audit event", "s"),
                             ("sla_lag", "oldest due SLA check", "s"),
                             ("webhooks_waiting", "demo-ai webhooks waiting", "")):
        values = [sample[key] for sample in samples if sample.get(key) is not None]
        if values:
            lines.append(f"  {label}: p50 {statistics.median(values):.1f} {unit}, "
                         f"p99 {_percentile(values, 0.99):.1f}, max {max(values):.1f}")
    capacity = {"gunicorn": 2, "celery worker": 2, "webhook worker": 2,
                "postgresql": os.cpu_count()}
    used = {part: seconds / run.seconds for part, seconds in run.sampler.cpu.items()}
    lines.append("  CPU (cores busy on average): " + ", ".join(
        f"{part} {share:.2f}" for part, share in sorted(used.items(), key=lambda kv: -kv[1])))
    machine = sum(used.values()) / (os.cpu_count() or 1)
    busiest = max(capacity, key=lambda part: used.get(part, 0) / capacity[part])
    lines.append(f"  the machine was {machine:.0%} busy; of the parts, {busiest} ran closest "
                 f"to its capacity ({used.get(busiest, 0):.2f} of {capacity[busiest]} cores)"
                 f"{': the machine saturates first' if machine > 0.9 else ''}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", type=int, default=50, help="upstream clients")
    parser.add_argument("--reviewers", type=int, default=6)
    parser.add_argument("--duration", type=float, default=300, help="seconds of load")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--response-target", type=float, default=60,
                        help="intercompany-review's first-response target, in seconds")
    parser.add_argument("--intercompany-share", type=float, default=0.03,
                        help="share of the decisions posted to intercompany-invoices, whose "
                             "review desk nobody works (each of its cases escalates)")
    args = parser.parse_args()
    stack = Stack(response_target=args.response_target)
    try:
        credentials = stack.start()
        run = run_load(stack, credentials, upstream=args.upstream, reviewers=args.reviewers,
                       duration=args.duration, batch_size=args.batch_size,
                       intercompany_share=args.intercompany_share)
        print("\n".join(report(run)))
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
