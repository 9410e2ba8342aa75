"""The fault battery at its small size (bench/reliability.py --size small): load on a real
stack (gunicorn, a Celery worker and beat, PostgreSQL, its own Redis) while web and Celery
workers are killed, Redis restarted and flushed, database connections terminated and two
webhook receivers never answer in time; then every check must pass (docs/RELIABILITY.md).

It starts its own processes and database (``bs_reliability``), so it is in the slow tier;
``-s`` shows the figures it prints.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.chaos, pytest.mark.postgres]


def test_under_load_and_faults_nothing_accepted_is_lost_or_doubled_and_nothing_stalls():
    battery = subprocess.run(
        [sys.executable, str(ROOT / "bench/reliability.py"), "--size", "small"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)

    print(battery.stdout)
    checks = [line for line in battery.stdout.splitlines()
              if line.startswith(("PASS  ", "FAIL  "))]
    assert battery.returncode == 0, battery.stdout[-6000:] + battery.stderr[-4000:]
    assert len(checks) == 7
    assert all(line.startswith("PASS") for line in checks)
