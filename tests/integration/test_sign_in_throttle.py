"""Password guessing is slowed: after too many failed sign-ins for one person (or from one
address) within the window, signing in is refused with 429 until the window has passed,
on the sign-in page and the admin's alike; and an address that keeps sending bad API
tokens or keys gets 429 instead of another 401."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from tests.exceptions_app.factories import AiSystemFactory, issue_key
from tests.factories import UserFactory
from workflows.services.tokens import issue_user_token

PASSWORD = "correct-horse-battery"
LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"


def sign_in(client, username, password, url=LOGIN, **extra):
    return client.post(url, {"username": username, "password": password}, **extra)


def fail(client, username, times, url=LOGIN, **extra):
    for _ in range(times):
        response = sign_in(client, username, "wrong-guess", url, **extra)
        assert response.status_code == 200  # the form again, saying the password is wrong


@pytest.fixture
def alice(db):
    return UserFactory(username="alice")


@pytest.mark.django_db
def test_the_eleventh_attempt_is_refused_even_with_the_right_password(client, alice):
    fail(client, "alice", 10)

    response = sign_in(client, "alice", PASSWORD)

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    page = response.content.decode()
    assert "Too many failed sign-ins" in page and "try again" in page
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_signing_in_works_again_once_the_window_has_passed(client, alice):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        fail(client, "alice", 10)
        assert sign_in(client, "alice", PASSWORD).status_code == 429

    with time_machine.travel(start + timedelta(minutes=16), tick=False):
        response = sign_in(client, "alice", PASSWORD)

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(alice.pk)


@pytest.mark.django_db
def test_another_person_signs_in_while_one_is_locked_out(client, alice):
    bob = UserFactory(username="bob")
    fail(client, "alice", 10)

    response = sign_in(client, "bob", PASSWORD)

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(bob.pk)


@pytest.mark.django_db
def test_a_different_spelling_of_the_name_counts_for_the_same_person(client, alice):
    fail(client, "alice", 5)
    fail(client, "ALICE", 5)

    assert sign_in(client, "alice", PASSWORD).status_code == 429


@pytest.mark.django_db
def test_the_admin_sign_in_is_throttled_too(client, db):
    UserFactory(username="root", is_staff=True, is_superuser=True)
    fail(client, "root", 10, url=ADMIN_LOGIN)

    response = sign_in(client, "root", PASSWORD, url=ADMIN_LOGIN)

    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_failures_on_either_page_count_together(client, alice):
    fail(client, "alice", 5, url=ADMIN_LOGIN)
    fail(client, "alice", 5)

    assert sign_in(client, "alice", PASSWORD).status_code == 429


@pytest.mark.django_db
def test_an_address_guessing_many_names_is_stopped(client, alice, settings):
    settings.SIGN_IN_FAILURES_PER_ADDRESS = 20
    for n in range(20):
        fail(client, f"guess{n}", 1, REMOTE_ADDR="203.0.113.9")

    refused = sign_in(client, "alice", PASSWORD, REMOTE_ADDR="203.0.113.9")
    elsewhere = sign_in(client, "alice", PASSWORD, REMOTE_ADDR="198.51.100.7")

    assert refused.status_code == 429
    assert elsewhere.status_code == 302


@pytest.mark.django_db
def test_a_successful_sign_in_forgets_the_persons_earlier_failures(client, alice):
    fail(client, "alice", 9)
    assert sign_in(client, "alice", PASSWORD).status_code == 302
    client.logout()

    fail(client, "alice", 9)

    assert sign_in(client, "alice", PASSWORD).status_code == 302


# --- the API: bad tokens and keys, per address -----------------------------------------


@pytest.mark.django_db
def test_an_address_sending_bad_api_keys_is_throttled_then_let_in_again(settings):
    settings.API_AUTH_FAILURES_PER_ADDRESS = 5
    good = issue_key(AiSystemFactory())
    attacker, other = APIClient(REMOTE_ADDR="203.0.113.9"), APIClient(REMOTE_ADDR="198.51.100.7")
    start = timezone.now()

    with time_machine.travel(start, tick=False):
        for n in range(5):
            attacker.credentials(HTTP_AUTHORIZATION=f"Api-Key bad.{n}")
            assert attacker.get("/api/v1/decisions/1/").status_code == 401
        attacker.credentials(HTTP_AUTHORIZATION=f"Api-Key {good}")
        refused = attacker.get("/api/v1/decisions/1/")
        other.credentials(HTTP_AUTHORIZATION=f"Api-Key {good}")
        unaffected = other.get("/api/v1/decisions/1/")
    with time_machine.travel(start + timedelta(minutes=16), tick=False):
        later = attacker.get("/api/v1/decisions/1/")

    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert "Too many failed" in refused.json()["detail"]
    assert unaffected.status_code == 404  # authenticated: that decision does not exist
    assert later.status_code == 404


@pytest.mark.django_db
def test_an_address_sending_bad_tokens_is_throttled(settings, alice):
    settings.API_AUTH_FAILURES_PER_ADDRESS = 5
    token = issue_user_token(user=alice, actor=alice).key
    client = APIClient(REMOTE_ADDR="203.0.113.9")
    for n in range(5):
        client.credentials(HTTP_AUTHORIZATION=f"Token bad{n}")
        assert client.get("/api/v1/queues/").status_code == 401

    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    assert client.get("/api/v1/queues/").status_code == 429


@pytest.mark.django_db
def test_the_moment_kept_at_each_failure_is_what_the_windows_failures_say(settings):
    """Whether an address may try is one read of a moment worked out at each failure:
    the same moment the window's counted failures give, at the failure and after it."""
    from workflows import sign_in_throttle

    settings.API_AUTH_FAILURES_PER_ADDRESS = 4
    limit, address = sign_in_throttle.api_per_address(), "203.0.113.9"
    start = timezone.now().replace(second=30, microsecond=0)
    # Failures spread over the window and beyond it: blocked, let in, blocked again.
    for minutes in (0, 0, 3, 7, 9, 15, 16, 16.5, 25, 40, 40, 40, 41):
        failed_at = start + timedelta(minutes=minutes)
        sign_in_throttle.record_failure(limit, address, now=failed_at)
        for later in (0, 0.5, 1, 4, 8, 15, 16):
            asked_at = failed_at + timedelta(minutes=later)
            assert (sign_in_throttle.blocked_until(limit, address, now=asked_at)
                    == sign_in_throttle.until_by_buckets(limit, address, now=asked_at)), (
                minutes, later)
    assert sign_in_throttle.blocked_until(limit, address, now=failed_at) is not None

    sign_in_throttle.forget(limit, address, now=failed_at)

    assert sign_in_throttle.blocked_until(limit, address, now=failed_at) is None
