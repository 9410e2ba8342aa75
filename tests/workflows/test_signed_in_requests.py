"""What every signed-in request relies on, now that it is cheap: sessions read from a
shared cache still end for everyone at sign-out, survive the cache losing them, and a
person or a token is checked afresh on every request (docs/PERFORMANCE.md, issue 15)."""

import pytest
from django.conf import settings as django_settings
from django.contrib.sessions.backends.cached_db import KEY_PREFIX
from django.core.cache import cache, caches
from django.test import Client
from rest_framework.test import APIClient

from tests.factories import QueueFactory, UserFactory, make_case
from tests.test_settings import django
from workflows.actors import SYSTEM
from workflows.services.tokens import issue_user_token

needs_redis = pytest.mark.skipif(not django_settings.REDIS_URL,
                                 reason="needs Redis (set REDIS_URL)")


def test_sessions_are_read_from_the_cache_only_when_every_worker_shares_it():
    engine = "from django.conf import settings; print(settings.SESSION_ENGINE)"

    alone = django(engine, BACKSTOP_DEMO="1", REDIS_URL="")
    shared = django(engine, BACKSTOP_DEMO="1", REDIS_URL="redis://127.0.0.1:6379/3")

    # The demo's cache lives in each process: a sign-out would not reach the others.
    assert alone.stdout.strip() == "django.contrib.sessions.backends.db", alone.stderr
    assert shared.stdout.strip() == "django.contrib.sessions.backends.cached_db", shared.stderr


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


@needs_redis
@pytest.mark.django_db
def test_signing_out_ends_the_session_for_every_worker():
    ann = UserFactory(username="ann")
    browser = signed_in_browser(ann)
    tab = same_session(browser)
    session_key = browser.cookies[django_settings.SESSION_COOKIE_NAME].value
    # Another worker has a connection of its own to the cache: it sees the same session.
    other_worker = caches.create_connection("default")
    assert other_worker.get(KEY_PREFIX + session_key) is not None
    assert tab.get("/consults/").status_code == 200

    assert browser.post("/accounts/logout/").status_code == 302

    assert other_worker.get(KEY_PREFIX + session_key) is None
    refused = tab.get("/consults/")
    assert refused.status_code == 302 and refused["Location"].startswith("/accounts/login/")


@needs_redis
@pytest.mark.django_db
def test_a_session_the_cache_lost_is_read_from_the_database():
    ann = UserFactory(username="ann")
    browser = signed_in_browser(ann)
    cache.delete(KEY_PREFIX + browser.cookies[django_settings.SESSION_COOKIE_NAME].value)

    page = browser.get("/consults/")

    assert page.status_code == 200
    assert page.context["user"] == ann


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
def test_while_redis_cannot_be_reached_a_signed_in_page_answers_503_to_retry(settings):
    browser = Client(raise_request_exception=False)  # as a server answers: no re-raising
    browser.cookies = signed_in_browser(UserFactory(username="ann")).cookies
    settings.CACHES = {"default": {"BACKEND": "workflows.cache.ClientKeepingRedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0"}}  # nothing there

    page = browser.get("/consults/")

    assert page.status_code == 503
    assert page["Retry-After"] == str(settings.RETRY_AFTER_SECONDS)
    assert b"Redis" in page.content


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
