"""Settings fail closed: outside the demo, Backstop needs its secrets and speaks HTTPS."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "SECRET_KEY": "k3y-" + "x" * 60,
    "AUDIT_SIGNING_KEY": "s1gn-" + "y" * 60,
    "ALLOWED_HOSTS": "backstop.example.com",
    "SECURE_HSTS_PRELOAD": "true",
}

# What the test suite sets for itself (the demo flag; the browser tests' async switch).
SUITE_ONLY = {"BACKSTOP_DEMO", "DJANGO_ALLOW_ASYNC_UNSAFE", "DJANGO_SETTINGS_MODULE",
              "SECRET_KEY", "AUDIT_SIGNING_KEY", "HTTPS"}


def django(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` after django.setup() in a fresh process with exactly this environment
    on top of the machine's (less what the test suite sets for the demo)."""
    clean = {key: value for key, value in os.environ.items()
             if key not in SUITE_ONLY}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); " + code],
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("missing", ["SECRET_KEY", "AUDIT_SIGNING_KEY"])
def test_outside_the_demo_a_missing_secret_stops_start_up_naming_it(missing):
    env = {key: value for key, value in PRODUCTION.items() if key != missing}

    started = django("", **env)

    assert started.returncode != 0
    assert f"Set {missing} in the environment" in started.stderr


def test_the_demo_runs_on_public_keys_over_plain_http():
    started = django("from django.conf import settings; "
                     "print(settings.SESSION_COOKIE_SECURE, settings.SECURE_SSL_REDIRECT, "
                     "settings.SECRET_KEY == settings.AUDIT_SIGNING_KEY)", BACKSTOP_DEMO="1")

    assert started.returncode == 0, started.stderr
    assert started.stdout.split() == ["False", "False", "True"]


def test_production_settings_pass_djangos_deploy_checks():
    checked = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env={**{key: value for key, value in os.environ.items() if key not in SUITE_ONLY},
             **PRODUCTION},
        cwd=ROOT, capture_output=True, text=True, timeout=120)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "no issues" in checked.stdout
