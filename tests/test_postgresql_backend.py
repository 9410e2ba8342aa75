"""A kept PostgreSQL connection is checked before each request's first query
(``CONN_HEALTH_CHECKS``): without a round trip while the server has said nothing on it,
with Django's ``SELECT 1`` once it has, and replaced when the server dropped it
(config/postgresql/base.py)."""

import select

import pytest
from django.db import close_old_connections, connection

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def from_another_connection(sql: str, params=()) -> None:
    other = connection.copy()
    try:
        with other.cursor() as cursor:
            cursor.execute(sql, params)
    finally:
        other.close()


def until_the_server_speaks(timeout: float = 10) -> None:
    socket = connection.connection.fileno()
    readable, _, _ = select.select([socket], [], [], timeout)
    assert readable, "the server said nothing on the connection"


@pytest.fixture
def checks_asked(monkeypatch):
    """The ``SELECT 1`` checks (Django's ``is_usable``) made, each with its answer."""
    asked = []
    is_usable = connection.is_usable

    def counted():
        asked.append(is_usable())
        return asked[-1]

    monkeypatch.setattr(connection, "is_usable", counted)
    return asked


def test_a_connection_the_server_said_nothing_on_is_used_without_asking_it(checks_asked):
    first = backend_pid()

    close_old_connections()  # as at the start of every request (request_started)

    assert backend_pid() == first
    assert checks_asked == []


def test_a_connection_the_server_dropped_is_replaced_before_the_next_request_uses_it(
        checks_asked):
    first = backend_pid()
    from_another_connection("SELECT pg_terminate_backend(%s)", [first])
    until_the_server_speaks()

    close_old_connections()

    assert backend_pid() != first
    assert checks_asked == [False]


def test_a_connection_the_server_spoke_on_is_asked_and_kept_when_well(checks_asked):
    with connection.cursor() as cursor:
        cursor.execute("LISTEN backstop_health_check")
    first = backend_pid()
    try:
        from_another_connection("NOTIFY backstop_health_check")
        until_the_server_speaks()

        close_old_connections()

        assert backend_pid() == first
        assert checks_asked == [True]
    finally:
        with connection.cursor() as cursor:
            cursor.execute("UNLISTEN backstop_health_check")
