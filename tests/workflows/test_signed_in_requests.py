"""What every signed-in request relies on, now that it is cheap: a session read with its
person in one statement still ends for everyone at sign-out, and a person or a token is
checked afresh on every request (docs/PERFORMANCE.md, issue 15)."""

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import SESSION_KEY
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from tests.factories import QueueFactory, UserFactory, make_case
from workflows.actors import SYSTEM
from workflows.models import Session
from workflows.services.tokens import issue_user_token
from workflows.sessions import SessionStore, person_read_with_session

needs_redis = pytest.mark.skipif(not django_settings.REDIS_URL,
                                 reason="needs Redis (set REDIS_URL)")


def signed_in_browser(person) -> Client:
    browser = Client()
    signed_in = browser.post("/accounts/login/", {"username": person.username,
                                                  "password": "correct-horse-battery"})
    assert signed_in.status_code == 302
    return browser


def same_session(browser: Client) -> Client:
    """Another tab of the same browser, whose requests another worker may serve."""
    tab = Client()
    tab.cookies = browser.cookies
    return tab


@pytest.mark.django_db(transaction=True)
def test_signing_out_ends_the_session_for_every_worker():
    ann = UserFactory(username="ann")
    browser = signed_in_browser(ann)
    tab = same_session(browser)
    session_key = browser.cookies[django_settings.SESSION_COOKIE_NAME].value
    assert tab.get("/consults/").status_code == 200

    assert browser.post("/accounts/logout/").status_code == 302

    # Another worker has a connection of its own to the database: the session is gone.
    other_worker = connection.copy()
    try:
        with other_worker.cursor() as cursor:
            cursor.execute(f"SELECT 1 FROM {Session._meta.db_table} WHERE session_key = %s",
                           [session_key])
            assert cursor.fetchone() is None
    finally:
        other_worker.close()
    refused = tab.get("/consults/")
    assert refused.status_code == 302 and refused["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_a_session_says_whose_it_is_and_is_read_with_them_in_one_statement(
        django_assert_num_queries):
    ann = UserFactory(username="ann")
    browser = signed_in_browser(ann)
    session = Session.objects.get(
        session_key=browser.cookies[django_settings.SESSION_COOKIE_NAME].value)
    assert session.user_id == ann.pk

    with django_assert_num_queries(1):
        assert browser.get("/api/v1/me/preferences/").status_code == 200


@pytest.mark.django_db
def test_a_person_read_with_one_session_is_not_taken_for_another():
    ann, ben = UserFactory(username="ann"), UserFactory(username="ben")
    anns = SessionStore()
    anns[SESSION_KEY] = str(ann.pk)
    anns.create()

    SessionStore(anns.session_key).load()

    assert person_read_with_session(ben.pk) is None
    assert person_read_with_session(ann.pk) is None  # taken once, by the first asking


@pytest.mark.django_db
def test_a_person_deactivated_or_given_a_new_password_is_signed_out_at_their_next_request():
    ann, ben = UserFactory(username="ann"), UserFactory(username="ben")
    anns_browser, bens_browser = signed_in_browser(ann), signed_in_browser(ben)
    assert anns_browser.get("/consults/").status_code == 200

    ann.is_active = False
    ann.save()
    ben.set_password("another-horse-battery")
    ben.save()

    for browser in (anns_browser, bens_browser):
        refused = browser.get("/consults/")
        assert refused.status_code == 302 and refused["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_a_token_is_refused_once_rotated_or_its_person_deactivated():
    ann, ben = UserFactory(username="ann"), UserFactory(username="ben")
    program, other = APIClient(), APIClient()
    old_key = issue_user_token(user=ann, actor=SYSTEM).key
    program.credentials(HTTP_AUTHORIZATION=f"Token {old_key}")
    other.credentials(HTTP_AUTHORIZATION="Token " + issue_user_token(user=ben,
                                                                     actor=SYSTEM).key)
    answer = program.get("/api/v1/me/preferences/")
    assert answer.status_code == 200 and answer.json() == {"open_next_after_resolving": True}

    new_key = issue_user_token(user=ann, actor=SYSTEM, rotate=True).key
    ben.is_active = False
    ben.save()

    assert program.get("/api/v1/me/preferences/").json() == {"detail": "Invalid token."}
    assert other.get("/api/v1/me/preferences/").json() == {
        "detail": "User inactive or deleted."}
    program.credentials(HTTP_AUTHORIZATION=f"Token {new_key}")
    assert program.get("/api/v1/me/preferences/").status_code == 200


@needs_redis
@pytest.mark.django_db
def test_while_redis_cannot_be_reached_a_call_that_needs_it_answers_503_to_retry(settings):
    program = APIClient(raise_request_exception=False)  # as a server answers: no re-raising
    program.credentials(HTTP_AUTHORIZATION="Token " + issue_user_token(
        user=UserFactory(username="ann"), actor=SYSTEM).key)
    settings.CACHES = {"default": {"BACKEND": "workflows.cache.ClientKeepingRedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0"}}  # nothing there

    answer = program.get("/api/v1/me/preferences/")  # the sign-in limits are in Redis

    assert answer.status_code == 503
    assert answer["Retry-After"] == str(settings.RETRY_AFTER_SECONDS)
    assert "Redis" in answer.json()["detail"]


@pytest.mark.django_db
def test_a_permission_given_or_taken_through_a_group_counts_from_the_next_request():
    from django.contrib.auth.models import Group, Permission

    ann = UserFactory(username="ann")
    browser, program = signed_in_browser(ann), APIClient()
    program.credentials(HTTP_AUTHORIZATION="Token " + issue_user_token(user=ann,
                                                                       actor=SYSTEM).key)
    elsewhere = make_case(QueueFactory())  # a queue Ann does not work: a manager's to see
    managers = Group.objects.create(name="managers")
    managers.permissions.add(Permission.objects.get(codename="manage_cases"))
    assert browser.get("/dashboard/").status_code == 403
    assert program.get(f"/api/v1/cases/{elsewhere.pk}/").status_code == 404

    ann.groups.add(managers)

    assert browser.get("/dashboard/").status_code == 200
    assert program.get(f"/api/v1/cases/{elsewhere.pk}/").status_code == 200

    ann.groups.remove(managers)

    assert browser.get("/dashboard/").status_code == 403
    assert program.get(f"/api/v1/cases/{elsewhere.pk}/").status_code == 404


@pytest.mark.django_db
def test_expired_sessions_are_cleared_and_live_ones_kept():
    from datetime import timedelta

    from django.utils import timezone

    from workflows.tasks import clear_expired_sessions

    ann = UserFactory(username="ann")
    live = signed_in_browser(ann).cookies[django_settings.SESSION_COOKIE_NAME].value
    Session.objects.create(session_key="e" * 32, session_data="x", user=ann,
                           expire_date=timezone.now() - timedelta(minutes=1))

    clear_expired_sessions()

    assert list(Session.objects.values_list("session_key", flat=True)) == [live]
