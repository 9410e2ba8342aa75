"""Flow: after resolving, the next waiting case opens (a person's preference, on by
default, set on the home page or through the API); ``n`` takes the next case from a
case page."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from tests.factories import client_for, make_case
from workflows.models import AuditEvent, Case, CaseState

pytestmark = pytest.mark.django_db


def resolve_on_the_page(client, case):
    return client.post(reverse("case-resolve", args=[case.pk]), {
        "resolve-version": case.version, "resolve-verdict": "accepted",
        "resolve-reason_code": "", "resolve-notes": ""})


@pytest.fixture
def held(queue, member):
    return make_case(queue, state=CaseState.ASSIGNED, assignee=member, title="Invoice 1")


def test_resolving_opens_the_most_urgent_waiting_case_claimed_for_me(
        client, queue, member, held):
    make_case(queue, priority=10, title="Routine")
    urgent = make_case(queue, priority=90, title="Urgent")
    client.force_login(member)

    response = resolve_on_the_page(client, held)

    assert response.status_code == 302
    assert response["Location"] == reverse("case", args=[urgent.pk])
    urgent.refresh_from_db()
    assert (urgent.state, urgent.assignee) == (CaseState.ASSIGNED, member)
    page = client.get(response["Location"]).content.decode()
    assert "Invoice 1 resolved." in page and "Here is your next case: Urgent." in page


def test_with_nothing_waiting_resolving_goes_home_and_says_so(client, member, held):
    client.force_login(member)

    response = resolve_on_the_page(client, held)

    assert response["Location"] == reverse("home")
    assert "Nothing else is waiting for you right now." in client.get(
        reverse("home")).content.decode()


def test_with_the_preference_off_resolving_goes_home_and_claims_nothing(
        client, queue, member, held):
    waiting = make_case(queue)
    client.force_login(member)
    saved = client.post(reverse("preferences"), {})  # the checkbox left unticked
    assert saved.status_code == 302

    response = resolve_on_the_page(client, held)

    assert response["Location"] == reverse("home")
    assert Case.objects.get(pk=waiting.pk).state == CaseState.OPEN
    event = AuditEvent.objects.get(verb="user.preferences_changed")
    assert (event.actor, event.data["after"]) == (member, {"open_next_after_resolving": False})


def test_the_home_page_shows_the_preference_ticked_by_default(client, member):
    client.force_login(member)

    page = client.get(reverse("home")).content.decode()

    [checkbox] = re.findall(r'<input type="checkbox" name="open_next_after_resolving"[^>]*>',
                            page)
    assert "checked" in checkbox


def test_the_api_reads_and_sets_the_preference(member):
    api = client_for(member)

    assert api.get("/api/v1/me/preferences/").json() == {"open_next_after_resolving": True}
    changed = api.put("/api/v1/me/preferences/", {"open_next_after_resolving": False},
                      format="json")
    assert changed.json() == {"open_next_after_resolving": False}
    assert not get_user_model().objects.get(pk=member.pk).open_next_after_resolving
    refused = api.put("/api/v1/me/preferences/", {}, format="json")
    assert refused.status_code == 400 and "open_next_after_resolving" in refused.json()


def test_n_takes_the_next_case_from_a_case_page(client, member, held):
    client.force_login(member)

    page = client.get(reverse("case", args=[held.pk])).content.decode()

    assert 'data-shortcut="n" aria-keyshortcuts="n">Next case</button>' in page
