"""Real Celery processes for the clock tests: a private Redis, workers and beats.

Everything here is started by the test and stopped by its own process id (or process
group: ``celery worker`` forks its pool). The machine's shared Redis on 6379 is never
touched: each test run gets ``redis-server`` on a free port, without persistence, so a
restart or a flush loses every queued task, which is the point.

The worker and beat use the pytest-created test database (``DATABASE_URL`` built from
``connection.settings_dict``), so the tests that use them are ``transaction=True``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import pytest
import redis
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
CELERY = str(Path(sys.executable).with_name("celery"))
WORKER_SETTINGS = "tests.workflows.celery_worker_settings"
_LOG_NUMBERS = itertools.count(1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(predicate, *, timeout: float, interval: float = 0.1, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"Timed out after {timeout} s waiting for {what or predicate}.")


class RedisServer:
    """``redis-server`` on a free loopback port, persistence off, owned by the test."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None
        self.restarts = 0

    def start(self) -> RedisServer:
        # The child keeps its own copy of the log's descriptor; ours is closed at once.
        with open(self.workdir / f"redis-{self.restarts}.log", "wb") as log:
            self.process = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--daemonize", "no",
                 "--dir", str(self.workdir)],
                stdout=log, stderr=subprocess.STDOUT)
        wait_until(self.ping, timeout=10, what=f"redis-server on port {self.port}")
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def ping(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.exceptions.ConnectionError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # like a crash: whatever it held is gone
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.restarts += 1
        self.start()

    def flush(self) -> None:
        self.client().flushall()


class CeleryProcess:
    """``celery worker`` or ``celery beat`` in its own process group."""

    def __init__(self, kind: str, *, env: dict, workdir: Path, name: str,
                 queues: str = "celery,notices,webhooks"):
        self.kind, self.env, self.workdir, self.name = kind, env, workdir, name
        self.queues = queues  # a worker consumes these (production splits them)
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def command(self) -> list[str]:
        if self.kind == "worker":
            return [CELERY, "-A", "config", "worker", "--loglevel=INFO", "--concurrency=3",
                    "--without-gossip", "--without-mingle", "--without-heartbeat",
                    "-Q", self.queues, "-n", f"{self.name}@%h"]
        return [CELERY, "-A", "config", "beat", "--loglevel=INFO",
                "-s", str(self.workdir / f"{self.name}-schedule")]

    def start(self) -> CeleryProcess:
        self.starts += 1
        number = next(_LOG_NUMBERS)
        with open(self.workdir / f"{self.name}-{number:02d}.log", "wb") as log:
            self.process = subprocess.Popen(self.command(), cwd=ROOT, env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        """``kill -9`` the process and its pool, as a crash would."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def stop(self, timeout: float = 15) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=timeout)
        self.kill9()  # the pool's children too, if the parent left any behind

    def logs(self, *, tail: int | None = 4000) -> str:
        """Each run's output, its last ``tail`` characters (None: all of it)."""
        texts = [path.read_text(errors="replace")
                 for path in sorted(self.workdir.glob(f"{self.name}-*.log"))]
        return "\n".join(text[-tail:] if tail else text for text in texts)


def worker_database_url() -> str:
    """The pytest-created database, for the worker and beat subprocesses."""
    settings = connection.settings_dict
    user = quote(settings["USER"] or "")
    password = f":{quote(settings['PASSWORD'])}" if settings.get("PASSWORD") else ""
    return (f"postgres://{user}{password}@{settings['HOST'] or '127.0.0.1'}:"
            f"{settings['PORT'] or 5432}/{settings['NAME']}")


def process_env(*, redis_url: str, workdir: Path, sweep_interval: float) -> dict:
    env = {key: value for key, value in os.environ.items()
           if key not in ("CELERY_TASK_ALWAYS_EAGER",)}
    env.update(DJANGO_SETTINGS_MODULE=WORKER_SETTINGS, DATABASE_URL=worker_database_url(),
               REDIS_URL=redis_url, CELERY_BROKER_URL=redis_url,
               BACKSTOP_VAR_DIR=str(workdir / "var"),
               SLA_SWEEP_INTERVAL_SECONDS=str(sweep_interval), LOG_LEVEL="INFO",
               CONN_MAX_AGE="0", PYTHONPATH=str(ROOT))
    return env


@contextlib.contextmanager
def publishing_to(redis_url: str):
    """Point this process's Celery app at the test's Redis (the nudges after commit)."""
    from config.celery import app

    def reset_pools():
        if app._pool is not None:
            app._pool.force_close_all()
        app._pool = None
        app.__dict__.get("amqp") and setattr(app.amqp, "_producer_pool", None)

    previous = app.conf.broker_url
    app.conf.broker_url = redis_url
    reset_pools()
    try:
        yield app
    finally:
        app.conf.broker_url = previous
        reset_pools()


def require_redis_server() -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")


def celery_stack(workdir: Path, *, sweep_interval: float):
    """For a fixture: a private Redis, and workers and beats started on demand (``start``);
    everything stopped, by process id, afterwards."""
    require_redis_server()
    server = RedisServer(workdir).start()
    env = process_env(redis_url=server.url, workdir=workdir, sweep_interval=sweep_interval)
    started: list[CeleryProcess] = []

    def start(kind: str, name: str, **extra_env) -> CeleryProcess:
        process = CeleryProcess(kind, env={**env, **extra_env}, workdir=workdir,
                                name=name).start()
        started.append(process)
        if kind == "worker":
            # The whole log: a worker started with tasks queued logs them past any tail.
            wait_until(lambda: " ready." in process.logs(tail=None) or not process.running,
                       timeout=60, what="the worker to be ready")
            assert process.running, process.logs()
        return process

    try:
        yield SimpleNamespace(redis=server, start=start, started=started)
    finally:
        for process in started:
            process.stop()
        server.stop()
