"""Failures answer in the caller's language, and a lost database or Redis answers 503 to
retry."""

import select
import socket

import psycopg
import pytest
from django.db import close_old_connections, connection
from django.template import loader
from django.test import Client
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy

from tests.factories import UserFactory
from workflows import errors
from workflows.middleware import AUDITOR_REFUSED
from workflows.models import Case
from workflows.services.tokens import issue_user_token


def _terminate_this_connection():
    """What a database restart or an idle-connection reaper does to a kept connection."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    params = connection.get_connection_params()
    with psycopg.connect(**{key: params[key] for key in ("dbname", "user", "host", "port")
                            if params.get(key)}, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    # Until the server has said so on the connection, it is not dropped yet (the backend
    # ends after the call returns): a kept connection is checked by that word.
    readable, _, _ = select.select([connection.connection.fileno()], [], [], 10)
    assert readable, "the terminated backend said nothing"


@pytest.fixture
def lost_connection():
    """The test terminates the connection; the next test gets a new one."""
    yield
    connection.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_connection_the_server_dropped_is_replaced_at_the_next_request(lost_connection):
    _terminate_this_connection()
    close_old_connections()  # what Django does as each request starts

    assert Case.objects.count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_api_answers_503_json_with_retry_after_when_the_database_is_lost(lost_connection):
    user = UserFactory()
    client = Client(raise_request_exception=False)
    client.force_login(user)
    _terminate_this_connection()

    response = client.get("/api/v1/cases/")

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == "5"
    assert "try again" in response.json()["detail"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_page_answers_503_with_what_to_do_when_the_database_is_lost(lost_connection):
    user = UserFactory()
    client = Client(raise_request_exception=False)
    client.force_login(user)
    _terminate_this_connection()

    response = client.get("/")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert b"The database cannot be reached right now" in response.content


@pytest.mark.django_db
def test_an_api_failure_answers_json_not_a_html_page(monkeypatch):
    client = Client(raise_request_exception=False)
    client.force_login(UserFactory())

    def fail(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("workflows.api.views.CaseViewSet.list", fail)
    response = client.get("/api/v1/cases/")

    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert "logged the error" in response.json()["detail"]
    assert "a bug" not in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/no-such-endpoint/", "/api/v1/cases/not-a-number/"])
def test_a_path_no_api_endpoint_answers_is_a_json_404(path):
    client = Client()
    client.force_login(UserFactory())

    response = client.get(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "no API endpoint answers this path" in response.json()["detail"]


@pytest.mark.django_db
def test_a_page_that_does_not_exist_is_still_a_page():
    client = Client()
    client.force_login(UserFactory())

    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("words", [
    "", "Only the case's holder may resolve it.", "<script>alert('x')</script> & \"more\"",
    mark_safe("<b>already</b> safe"), gettext_lazy("Not yours."), 42])
def test_a_refusal_page_is_what_its_template_renders(words):
    """Error pages are rendered once per process; the refusal's words put in as the
    template would put them (escaped, unless already safe)."""
    assert errors.refusal_page(words) == loader.render_to_string("403.html",
                                                                 {"exception": words})
    assert errors.page("404.html") == loader.render_to_string("404.html")


@pytest.mark.django_db
def test_an_error_page_follows_its_settings(settings):
    client = Client()
    client.force_login(UserFactory())
    assert b'href="/static/' in client.get("/no-such-page/").content

    settings.STATIC_URL = "/assets/"

    assert b'href="/assets/' in client.get("/no-such-page/").content


@pytest.mark.django_db
def test_an_auditor_refused_a_change_reads_why_on_the_error_page():
    from django.contrib.auth.models import Permission

    auditor = UserFactory()
    auditor.user_permissions.add(Permission.objects.get(codename="read_everything"))
    client = Client()
    client.force_login(auditor)

    refused = client.post("/consults/")

    assert refused.status_code == 403
    assert refused.content.decode() == loader.render_to_string(
        "403.html", {"exception": AUDITOR_REFUSED})


@pytest.mark.django_db
def test_an_api_request_django_cannot_read_answers_a_json_400(settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 3
    client = Client()
    client.force_login(UserFactory())

    response = client.get("/api/v1/cases/", {"state": ["open", "assigned", "waiting", "escalated"]})

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "could not read this request" in response.json()["detail"]


@pytest.fixture
def redis_gone(settings):
    """Redis (the cache that token checks and sign-in limits count in) stops answering:
    the cache points at a loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": f"redis://127.0.0.1:{port}/0"}}


@pytest.mark.django_db
def test_the_api_answers_503_json_with_retry_after_while_redis_is_down(redis_gone):
    user = UserFactory()
    token = issue_user_token(user=user, actor=user).key
    client = Client(raise_request_exception=False)

    response = client.get("/api/v1/cases/", HTTP_AUTHORIZATION=f"Token {token}")

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == "5"
    assert "(Redis) cannot be reached" in response.json()["detail"]


@pytest.mark.django_db
def test_signing_in_while_redis_is_down_answers_503_with_what_to_do(redis_gone):
    UserFactory(username="ana")
    client = Client(raise_request_exception=False)

    response = client.post("/accounts/login/", {"username": "ana", "password": "wrong"})

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert b"Try again in a few seconds" in response.content
