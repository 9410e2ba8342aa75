"""Probes: /healthz answers while the process lives; /readyz only while the database
(and Redis, where configured) answer; both for anyone, over plain HTTP."""

import pytest
from django.test import Client

from tests.workflows.test_errors import _terminate_this_connection, lost_connection  # noqa: F401


def test_liveness_answers_anyone_without_touching_the_database(client):
    # No django_db mark: a query (a session, a user lookup) would raise here.
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_readiness_answers_200_with_each_check_when_the_database_and_redis_answer(client,
                                                                                    settings):
    response = client.get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert ("redis" in body["checks"]) == bool(settings.REDIS_URL)
    assert all(check["ok"] for check in body["checks"].values())


@pytest.mark.django_db
def test_readiness_answers_503_with_retry_after_when_redis_does_not_answer(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": settings.REDIS_URL}}

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"] == {"ok": False, "error": "ConnectionError"}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_readiness_answers_503_json_when_the_database_is_lost_and_recovers_after(
        lost_connection):  # noqa: F811
    client = Client(raise_request_exception=False)
    _terminate_this_connection()

    lost = client.get("/readyz")
    again = client.get("/readyz")

    assert lost.status_code == 503
    assert lost["Content-Type"] == "application/json"
    assert lost["Retry-After"] == "5"
    assert lost.json()["checks"]["database"]["ok"] is False
    assert again.status_code == 200  # the broken connection was not kept


@pytest.mark.django_db
def test_probes_are_not_redirected_to_https_where_everything_else_is(settings):
    settings.SECURE_SSL_REDIRECT = True
    client = Client()

    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/accounts/login/").status_code == 301


@pytest.mark.django_db
def test_the_probes_only_read(client):
    assert client.post("/healthz").status_code == 405
    assert client.post("/readyz").status_code == 405
