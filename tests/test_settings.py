"""Settings fail closed: outside the demo, Backstop needs its secrets and speaks HTTPS."""

import json
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
    "SITE_BASE_URL": "https://backstop.example.com",
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


def test_outside_the_demo_without_a_mail_server_e_mail_is_printed_and_a_warning_logged():
    sent = django("from django.core.mail import send_mail; "
                  "print(send_mail('Case escalated', 'Case 12 needs you.', None, "
                  "['a@example.com']))",
                  **PRODUCTION)

    assert sent.returncode == 0, sent.stderr  # no SMTP on localhost:25, no traceback
    assert "Subject: Case escalated" in sent.stdout
    assert sent.stdout.rstrip().endswith("1")
    assert "No mail server is configured" in sent.stderr
    assert "Traceback" not in sent.stderr


def test_email_url_configures_the_smtp_server_and_silences_the_warning():
    started = django("from django.conf import settings as s; "
                     "print(s.EMAIL_BACKEND, s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_HOST_USER, "
                     "s.EMAIL_USE_TLS, s.DEFAULT_FROM_EMAIL)",
                     EMAIL_URL="smtp+tls://backstop:pa55@mail.example.com:587",
                     DEFAULT_FROM_EMAIL="backstop@example.com", **PRODUCTION)

    assert started.returncode == 0, started.stderr
    assert started.stdout.split() == ["django.core.mail.backends.smtp.EmailBackend",
                                      "mail.example.com", "587", "backstop", "True",
                                      "backstop@example.com"]
    assert "No mail server" not in started.stderr


def test_outside_the_demo_without_site_base_url_a_warning_says_where_links_point():
    production = {key: value for key, value in PRODUCTION.items() if key != "SITE_BASE_URL"}
    started = django("from django.conf import settings; print(settings.SITE_BASE_URL)",
                     EMAIL_URL="consolemail://", **production)
    configured = django("from django.conf import settings; print(settings.SITE_BASE_URL)",
                        EMAIL_URL="consolemail://", **PRODUCTION)

    assert started.returncode == 0, started.stderr
    assert started.stdout.split() == ["http://localhost:8000"]
    assert ("SITE_BASE_URL is not set: the links in notices' e-mails point at "
            "http://localhost:8000") in started.stderr
    assert configured.stdout.split() == ["https://backstop.example.com"]
    assert "SITE_BASE_URL" not in configured.stderr


def test_the_separate_email_variables_configure_the_smtp_server():
    started = django("from django.conf import settings as s; "
                     "print(s.EMAIL_BACKEND, s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_USE_TLS)",
                     EMAIL_HOST="mail.example.com", EMAIL_PORT="587", EMAIL_USE_TLS="true",
                     **PRODUCTION)

    assert started.returncode == 0, started.stderr
    assert started.stdout.split() == ["django.core.mail.backends.smtp.EmailBackend",
                                      "mail.example.com", "587", "True"]
    assert "No mail server" not in started.stderr


def test_with_log_format_json_a_failure_is_logged_as_one_json_line():
    logged = django("import logging\n"
                    "try:\n    1 / 0\n"
                    "except ZeroDivisionError:\n"
                    "    logging.getLogger('backstop.test').exception('sweep failed')",
                    LOG_FORMAT="json", EMAIL_URL="consolemail://", **PRODUCTION)

    assert logged.returncode == 0, logged.stderr
    lines = logged.stderr.strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert (record["level"], record["logger"], record["message"]) == (
        "ERROR", "backstop.test", "sweep failed")
    assert "ZeroDivisionError" in record["exception"]


def test_an_unknown_log_format_stops_start_up_naming_the_choices():
    started = django("", LOG_FORMAT="yaml", **PRODUCTION)

    assert started.returncode != 0
    assert "set it to text or json" in started.stderr


@pytest.mark.parametrize(("setting", "prepared"), [(None, True), ("off", False)])
def test_on_postgresql_statements_are_prepared_unless_turned_off_for_a_pooler(setting,
                                                                              prepared):
    env = {"DATABASE_URL": "postgres://backstop@db.example.com/backstop", "BACKSTOP_DEMO": "1"}
    if setting is not None:
        env["DATABASE_PREPARED_STATEMENTS"] = setting

    started = django("from django.conf import settings; "
                     "options = settings.DATABASES['default']['OPTIONS']; "
                     "print(options.get('server_side_binding'), options.get('prepare_threshold'))",
                     **env)

    assert started.returncode == 0, started.stderr
    assert started.stdout.split() == (["True", "2"] if prepared else ["None", "None"])


@pytest.mark.django_db
def test_a_statement_run_again_and_again_is_no_longer_planned_at_each_run():
    from django.db import connection

    from workflows.models import Case

    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    for case_id in range(10):
        list(Case.objects.filter(pk=case_id).values_list("state"))

    with connection.cursor() as cursor:
        cursor.execute("SELECT custom_plans, generic_plans FROM pg_prepared_statements"
                       " WHERE statement LIKE %s", ['SELECT "workflows_case"."state" %'])
        (custom, generic), = cursor.fetchall()
    # PostgreSQL plans a prepared statement for its first five runs, then keeps one plan.
    assert custom == 5 and generic > 0
