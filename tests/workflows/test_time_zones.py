"""Times in the person's zone: the one they chose on their profile, else their browser's
(the ``backstop_tz`` cookie ``static/js/time-zone.js`` sets), else the office calendar's;
every time on a page names its zone. The API stays in UTC."""

from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from tests.factories import client_for, make_case
from tests.workflows.sla_support import office_calendar
from workflows import time_zones
from workflows.models import AuditEvent
from workflows.services import claiming, people

pytestmark = pytest.mark.django_db

CLAIMED_AT = datetime(2026, 1, 5, 8, 30, tzinfo=UTC)


@pytest.fixture
def claimed(queue, member):
    case = make_case(queue)
    claiming.claim(case_id=case.pk, user=member, now=CLAIMED_AT)
    return case


def case_page(client, case) -> str:
    response = client.get(reverse("case", args=[case.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_case_page_shows_times_in_the_zone_the_person_chose(client, claimed, member):
    people.set_time_zone(user=member, time_zone="America/New_York", actor=member)
    client.force_login(member)
    client.cookies[time_zones.COOKIE] = "Asia/Tokyo"  # a choice beats the browser's

    assert "Jan 5, 03:30 EST" in case_page(client, claimed)


def test_without_a_choice_the_browsers_zone_counts(client, claimed, member):
    client.force_login(member)
    client.cookies[time_zones.COOKIE] = "Asia/Tokyo"

    assert "Jan 5, 17:30 JST" in case_page(client, claimed)


def test_without_either_the_office_calendars_zone_at_sign_in_counts_else_utc(
        client, claimed, member):
    client.force_login(member)
    client.cookies[time_zones.COOKIE] = "Mars/Olympus_Mons"  # not a zone: ignored
    assert "Jan 5, 08:30 UTC" in case_page(client, claimed)

    office_calendar()
    client.force_login(member)

    assert "Jan 5, 09:30 CET" in case_page(client, claimed)


def test_the_api_keeps_utc_whatever_the_persons_zone(claimed, member):
    people.set_time_zone(user=member, time_zone="America/New_York", actor=member)

    body = client_for(member).get(f"/api/v1/cases/{claimed.pk}/").json()

    assert body["first_claimed_at"] == "2026-01-05T08:30:00Z"


def test_choosing_a_zone_is_audited_once_and_automatic_clears_it(member):
    people.set_time_zone(user=member, time_zone="Europe/Berlin", actor=member)
    people.set_time_zone(user=member, time_zone="Europe/Berlin", actor=member)
    people.set_time_zone(user=member, time_zone="", actor=member)

    member.refresh_from_db()
    assert member.time_zone == ""
    changes = [event.data for event in
               AuditEvent.objects.filter(verb="user.time_zone_changed").order_by("pk")]
    assert [(c["before"], c["after"]) for c in changes] == [
        ("", "Europe/Berlin"), ("Europe/Berlin", "")]


def test_an_unknown_zone_is_refused_naming_the_field(member):
    with pytest.raises(ValidationError) as refused:
        people.set_time_zone(user=member, time_zone="Berlin", actor=member)

    assert "is not a time zone we know" in refused.value.message_dict["time_zone"][0]
    member.refresh_from_db()
    assert member.time_zone == ""


def test_the_profile_page_chooses_a_zone_and_says_where_it_comes_from(client, member):
    client.force_login(member)
    client.cookies[time_zones.COOKIE] = "Asia/Tokyo"

    shown = client.get(reverse("profile")).content.decode()
    assert "Times are shown in <strong>Asia/Tokyo</strong> (your browser&#x27;s zone)" in shown
    saved = client.post(reverse("profile"), {"time_zone": "Europe/Lisbon"}, follow=True)

    assert saved.redirect_chain == [(reverse("profile"), 302)]
    assert "Saved: times are shown in Europe/Lisbon now." in saved.content.decode()
    assert "(you chose it)" in saved.content.decode()
    refused = client.post(reverse("profile"), {"time_zone": "Europe/Atlantis"})
    assert refused.status_code == 400
    assert b"Select a valid choice" in refused.content


def test_the_profile_is_linked_from_the_top_bar_and_needs_signing_in(client, member):
    assert client.get(reverse("profile")).status_code == 302
    client.force_login(member)

    assert f'href="{reverse("profile")}"'.encode() in client.get(reverse("home")).content
