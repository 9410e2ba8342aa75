"""SLA through the API (``workflows/api/sla.py`` and the cases' priority action): policies
read by whoever works the queue and written by managers, re-application to open cases,
calendar closures, and a case's priority. The clock is frozen with ``time-machine``."""

from datetime import timedelta

import pytest
import time_machine
from django.urls import include, path
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from tests.factories import client_for, make_case
from tests.workflows.sla_support import berlin, office_calendar, open_case, publish, utc
from workflows.models import AuditEvent, CalendarClosure, Case, CaseState, SlaPolicy
from workflows.services import claiming

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
T = utc(2026, 3, 2, 10, 0)  # a Monday


@pytest.fixture(autouse=True)
def no_nudges(settings):
    settings.SLA_NUDGES_ENABLED = False


@pytest.fixture
def frozen():
    with time_machine.travel(T, tick=False) as traveller:
        yield traveller


def policies_url(queue) -> str:
    return f"/api/v1/queues/{queue.slug}/sla-policies/"


def events(verb: str):
    return AuditEvent.objects.filter(verb=verb)


EIGHT_HOURS = [{"min_priority": 0, "response_target": "PT1H", "resolution_target": "PT8H"}]


# -- reading policies -----------------------------------------------------------------------

@pytest.mark.django_db
def test_a_member_reads_the_queues_policy_versions_newest_first(queue, member):
    calendar = office_calendar()
    publish(queue, now=T)
    publish(queue, calendar=calendar, response=30 * MINUTE, resolution=4 * HOUR,
            more=[(80, 15 * MINUTE, 2 * HOUR)], fraction=0.5, now=T)

    response = client_for(member).get(policies_url(queue))

    assert response.status_code == 200
    newest, oldest = response.json()
    assert (newest["version"], newest["is_current"]) == (2, True)
    assert (oldest["version"], oldest["is_current"]) == (1, False)
    assert newest["calendar"] == {"id": calendar.pk, "name": "Berlin office",
                                  "time_zone": "Europe/Berlin"}
    assert oldest["calendar"] is None
    assert newest["warning_fraction"] == 0.5
    assert newest["targets"] == [
        {"min_priority": 0, "response_target": "P0DT00H30M00S",
         "resolution_target": "P0DT04H00M00S"},
        {"min_priority": 80, "response_target": "P0DT00H15M00S",
         "resolution_target": "P0DT02H00M00S"}]
    one = client_for(member).get(f"{policies_url(queue)}1/")
    assert one.status_code == 200 and one.json()["version"] == 1
    assert client_for(member).get(f"{policies_url(queue)}3/").status_code == 404


@pytest.mark.django_db
def test_policies_of_a_queue_you_do_not_work_are_not_found(queue, member, outsider, manager):
    publish(queue, now=T)

    assert client_for(outsider).get(policies_url(queue)).status_code == 404
    assert client_for(outsider).get(f"{policies_url(queue)}1/").status_code == 404
    assert client_for(manager).get(policies_url(queue)).status_code == 200
    assert APIClient().get(policies_url(queue)).status_code == 401


@pytest.mark.django_db
def test_policies_and_calendars_read_in_a_fixed_number_of_queries(
        queue, member, django_assert_max_num_queries):
    for n in range(6):
        publish(queue, calendar=office_calendar(f"Office {n}", closures=[
            (berlin(2026, 3, 6, 9), berlin(2026, 3, 6, 17))]), more=[(80, HOUR, 2 * HOUR)],
            now=T)

    with django_assert_max_num_queries(5):  # the permissions, queue, rows, their children
        assert len(client_for(member).get(policies_url(queue)).json()) == 6
    with django_assert_max_num_queries(5):  # the permissions, queue, rows, their children
        assert len(client_for(member).get("/api/v1/calendars/").json()) == 6


# -- publishing -----------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_manager_publishes_a_version_that_new_cases_start_under(queue, manager, frozen):
    publish(queue, resolution=8 * HOUR, now=T)
    before = open_case(queue, now=T)
    calendar = office_calendar()

    response = client_for(manager).post(policies_url(queue), {
        "targets": [{"min_priority": 0, "response_target": "PT1H", "resolution_target": "PT4H"}],
        "calendar": calendar.pk, "warning_fraction": 0.5}, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["version"], body["is_current"], body["created_by"]) == (2, True, "manager")
    assert body["calendar"]["name"] == "Berlin office"
    published = events("sla_policy.published").get(data__version=2)
    assert published.actor == manager and published.data["previous_version"] == 1
    after = open_case(queue, now=T)  # Monday 11:00 in Berlin: 4 business hours to 15:00
    assert after.sla_policy.version == 2
    assert after.due_at == berlin(2026, 3, 2, 15, 0)
    unchanged = Case.objects.get(pk=before.pk)
    assert (unchanged.sla_policy.version, unchanged.due_at) == (1, T + 8 * HOUR)


@pytest.mark.django_db
def test_only_managers_publish_a_policy(queue, member, outsider):
    assert client_for(member).post(policies_url(queue), {"targets": EIGHT_HOURS},
                                   format="json").status_code == 403
    assert client_for(outsider).post(policies_url(queue), {"targets": EIGHT_HOURS},
                                     format="json").status_code == 404
    assert not SlaPolicy.objects.exists()
    assert not events("sla_policy.published").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "field"), [
    ({}, "targets"),
    ({"targets": []}, "targets"),
    ({"targets": [{"min_priority": 50, "response_target": "PT1H",
                   "resolution_target": "PT8H"}]}, "targets"),
    ({"targets": [{"min_priority": 0, "response_target": "PT0S",
                   "resolution_target": "PT8H"}]}, "targets"),
    ({"targets": [{"min_priority": 0, "response_target": "an hour",
                   "resolution_target": "PT8H"}]}, "targets"),
    ({"targets": EIGHT_HOURS, "warning_fraction": 1.0}, "warning_fraction"),
    ({"targets": EIGHT_HOURS, "calendar": 999}, "calendar"),
])
def test_a_policy_that_cannot_work_is_refused_naming_the_field(queue, manager, body, field):
    response = client_for(manager).post(policies_url(queue), body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not SlaPolicy.objects.exists()


# -- re-applying ----------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_manager_reapplies_the_current_version_to_open_cases(queue, member, manager):
    publish(queue, response=HOUR, resolution=8 * HOUR, now=T)
    claimed = open_case(queue, now=T)
    claiming.claim(case_id=claimed.pk, user=member, now=T)
    waiting_in_queue = open_case(queue, now=T)
    closed = open_case(queue, now=T)
    Case.objects.filter(pk=closed.pk).update(state=CaseState.CANCELLED, closed_at=T)
    publish(queue, response=30 * MINUTE, resolution=4 * HOUR, now=T)

    with time_machine.travel(T + 2 * HOUR, tick=False):
        response = client_for(manager).post(f"{policies_url(queue)}reapply/", {"version": 2},
                                            format="json")

    assert response.status_code == 200
    assert response.json() == {"queue": "invoices", "version": 2, "recomputed": 2}
    claimed = Case.objects.get(pk=claimed.pk)
    assert (claimed.sla_policy.version, claimed.due_at) == (2, T + 4 * HOUR)  # 2 h used of 4
    assert Case.objects.get(pk=waiting_in_queue.pk).due_at == T + 4 * HOUR
    assert Case.objects.get(pk=closed.pk).due_at == T + 8 * HOUR
    assert set(events("case.sla_reapplied").values_list("case_id", flat=True)) == {
        claimed.pk, waiting_in_queue.pk}
    summary = events("sla_policy.reapplied").get()
    assert summary.actor == manager and summary.data["cases"] == 2


@pytest.mark.django_db
def test_reapplying_is_for_managers_and_for_the_version_they_saw(queue, member, outsider,
                                                                  manager, frozen):
    publish(queue, now=T)
    case = open_case(queue, now=T)
    publish(queue, resolution=4 * HOUR, now=T)
    url = f"{policies_url(queue)}reapply/"

    assert client_for(member).post(url).status_code == 403
    assert client_for(outsider).post(url).status_code == 404
    stale = client_for(manager).post(url, {"version": 1}, format="json")
    assert stale.status_code == 409
    assert "version 2, not 1" in stale.json()["detail"]
    assert client_for(manager).post(url, {"version": "two"}, format="json").json().keys() == {
        "version"}
    assert Case.objects.get(pk=case.pk).sla_policy.version == 1
    assert not events("case.sla_reapplied").exists()


@pytest.mark.django_db
def test_reapplying_without_a_policy_is_a_conflict(queue, manager):
    response = client_for(manager).post(f"{policies_url(queue)}reapply/")

    assert response.status_code == 409
    assert "publish one first" in response.json()["detail"]


# -- calendars and closures -----------------------------------------------------------------

@pytest.mark.django_db
def test_people_read_the_calendars_their_queues_use(queue, member, outsider, manager):
    ours = office_calendar("Berlin office",
                           closures=[(berlin(2026, 3, 6, 9), berlin(2026, 3, 6, 17))])
    other = office_calendar("Paris office", holidays="FR")
    publish(queue, calendar=ours, now=T)

    listed = client_for(member).get("/api/v1/calendars/")

    assert [c["name"] for c in listed.json()] == ["Berlin office"]
    detail = client_for(member).get(f"/api/v1/calendars/{ours.pk}/").json()
    assert detail["working_hours"]["0"] == [["09:00", "17:00"]]
    assert detail["holiday_country"] == "DE"
    assert detail["closures"][0]["reason"] == "Team offsite"
    assert client_for(member).get(f"/api/v1/calendars/{other.pk}/").status_code == 404
    assert client_for(outsider).get(f"/api/v1/calendars/{ours.pk}/").status_code == 404
    assert [c["name"] for c in client_for(manager).get("/api/v1/calendars/").json()] == [
        "Berlin office", "Paris office"]


@pytest.mark.django_db
def test_a_manager_closes_a_day_and_the_clocks_skip_it(queue, manager, frozen):
    calendar = office_calendar()
    publish(queue, calendar=calendar, resolution=8 * HOUR, now=T)
    url = f"/api/v1/calendars/{calendar.pk}/closures/"
    already_open = open_case(queue, now=T)  # due Tuesday 11:00

    response = client_for(manager).post(url, {
        "starts_at": "2026-03-03T00:00:00+01:00", "ends_at": "2026-03-04T00:00:00+01:00",
        "reason": "Strike"}, format="json")

    assert response.status_code == 201, response.json()
    closure = CalendarClosure.objects.get(pk=response.json()["id"])
    assert closure.reason == "Strike"
    added = events("calendar.closure_added").get()
    assert added.actor == manager and added.data["closure"] == closure.pk
    # Monday 11:00 + 8 business hours: 6 on Monday, Tuesday closed, 2 on Wednesday.
    assert open_case(queue, now=T).due_at == berlin(2026, 3, 4, 11, 0)
    # The case already open keeps its business time left: due Wednesday too.
    assert Case.objects.get(pk=already_open.pk).due_at == berlin(2026, 3, 4, 11, 0)

    removed = client_for(manager).delete(f"{url}{closure.pk}/")

    assert removed.status_code == 204
    assert not CalendarClosure.objects.exists()
    assert events("calendar.closure_removed").get().data["reason"] == "Strike"
    assert open_case(queue, now=T).due_at == berlin(2026, 3, 3, 11, 0)
    assert Case.objects.get(pk=already_open.pk).due_at == berlin(2026, 3, 3, 11, 0)
    assert client_for(manager).delete(f"{url}{closure.pk}/").status_code == 404
    assert events("calendar.closure_removed").count() == 1


@pytest.mark.django_db
def test_only_managers_change_closures_and_a_closure_ends_after_it_starts(queue, member,
                                                                         manager):
    calendar = office_calendar(closures=[(berlin(2026, 3, 6, 9), berlin(2026, 3, 6, 17))])
    publish(queue, calendar=calendar, now=T)
    url = f"/api/v1/calendars/{calendar.pk}/closures/"
    existing = calendar.closures.get()
    day = {"starts_at": "2026-03-10T09:00:00+01:00", "ends_at": "2026-03-10T17:00:00+01:00"}

    assert client_for(member).post(url, day, format="json").status_code == 403
    assert client_for(member).delete(f"{url}{existing.pk}/").status_code == 403
    backwards = client_for(manager).post(
        url, {"starts_at": day["ends_at"], "ends_at": day["starts_at"]}, format="json")
    assert backwards.status_code == 400 and "ends_at" in backwards.json()
    missing = client_for(manager).post(url, {"starts_at": day["starts_at"]}, format="json")
    assert missing.status_code == 400 and "ends_at" in missing.json()
    assert list(calendar.closures.all()) == [existing]
    assert not events("calendar.closure_added").exists()
    assert not events("calendar.closure_removed").exists()


# -- a case's priority ----------------------------------------------------------------------

def priority_url(case) -> str:
    return f"/api/v1/cases/{case.pk}/priority/"


@pytest.mark.django_db
def test_a_manager_raises_a_priority_and_the_due_time_follows(queue, member, manager):
    publish(queue, response=HOUR, resolution=8 * HOUR, more=[(80, 15 * MINUTE, 2 * HOUR)],
            now=T)
    case = open_case(queue, now=T)
    claiming.claim(case_id=case.pk, user=member, now=T + 10 * MINUTE)
    version = Case.objects.get(pk=case.pk).version

    with time_machine.travel(T + HOUR, tick=False):
        response = client_for(manager).post(priority_url(case),
                                            {"priority": 90, "version": version},
                                            format="json")

    assert response.status_code == 200
    body = response.json()
    assert (body["state"], body["priority"], body["version"]) == ("assigned", 90, version + 1)
    assert body["due_at"] == "2026-03-02T12:00:00Z"  # 1 h used of the new 2 h
    event = events("case.priority_changed").get()
    assert (event.case_id, event.actor) == (case.pk, manager)
    assert (event.data["priority_from"], event.data["priority_to"]) == (50, 90)


@pytest.mark.django_db
def test_a_priority_change_on_business_hours_keeps_the_business_time_used(queue, manager):
    publish(queue, calendar=office_calendar(), response=HOUR, resolution=8 * HOUR,
            more=[(80, 30 * MINUTE, 4 * HOUR)], now=T)
    case = open_case(queue, now=berlin(2026, 3, 2, 16, 0))  # 1 business hour on Monday

    with time_machine.travel(berlin(2026, 3, 3, 10, 0), tick=False):  # 2 h used by then
        response = client_for(manager).post(priority_url(case), {"priority": 80},
                                            format="json")

    assert response.status_code == 200
    case = Case.objects.get(pk=case.pk)
    assert case.due_at == berlin(2026, 3, 3, 12, 0)
    assert response.json()["due_at"] == "2026-03-03T11:00:00Z"


@pytest.mark.django_db
def test_only_a_manager_changes_a_priority(queue, member, outsider, frozen):
    publish(queue, now=T)
    case = open_case(queue, now=T)

    assert client_for(member).post(priority_url(case), {"priority": 90},
                                   format="json").status_code == 403
    assert client_for(outsider).post(priority_url(case), {"priority": 90},
                                     format="json").status_code == 404
    assert Case.objects.get(pk=case.pk).priority == 50
    assert not events("case.priority_changed").exists()


@pytest.mark.django_db
def test_a_priority_change_is_refused_when_stale_closed_or_malformed(queue, manager, frozen):
    publish(queue, now=T)
    case = open_case(queue, now=T)
    closed = make_case(queue, state=CaseState.CANCELLED)
    client = client_for(manager)

    stale = client.post(priority_url(case), {"priority": 90, "version": case.version + 1},
                        format="json")
    assert stale.status_code == 409
    assert (stale.json()["state"], stale.json()["version"]) == ("open", case.version)
    gone = client.post(priority_url(closed), {"priority": 90}, format="json")
    assert gone.status_code == 409 and gone.json()["state"] == "cancelled"
    for bad in ({}, {"priority": -1}, {"priority": 40000}, {"priority": "urgent"}):
        response = client.post(priority_url(case), bad, format="json")
        assert response.status_code == 400 and "priority" in response.json()
    assert Case.objects.get(pk=case.pk).priority == 50
    assert not events("case.priority_changed").exists()


# -- the OpenAPI schema ---------------------------------------------------------------------

def test_the_sla_queue_and_availability_endpoints_are_documented_without_warnings():
    GENERATOR_STATS.reset()
    patterns = [path("api/v1/", include("workflows.api.urls"))]

    schema = SchemaGenerator(patterns=patterns).get_schema(request=None, public=True)

    paths = schema["paths"]
    assert set(paths["/api/v1/queues/{slug}/sla-policies/"]) == {"get", "post"}
    assert "/api/v1/queues/{slug}/sla-policies/{version}/" in paths
    assert "409" in paths["/api/v1/queues/{slug}/sla-policies/reapply/"]["post"]["responses"]
    assert set(paths["/api/v1/queues/{slug}/assignment/"]) == {"get", "put"}
    assert "/api/v1/calendars/{id}/closures/{closure_id}/" in paths
    assert set(paths["/api/v1/me/availability/"]) == {"get", "put"}
    assert "/api/v1/reviewers/{username}/availability/" in paths
    priority = paths["/api/v1/cases/{id}/priority/"]["post"]
    assert {"200", "400", "403", "404", "409"} <= set(priority["responses"])
    assert not GENERATOR_STATS, (dict(GENERATOR_STATS._warn_cache),
                                 dict(GENERATOR_STATS._error_cache))


@pytest.mark.django_db
def test_the_served_schema_lists_the_new_endpoints(manager):
    response = client_for(manager).get("/api/v1/schema/", {"format": "json"})

    assert response.status_code == 200
    assert "/api/v1/queues/{slug}/sla-policies/reapply/" in response.json()["paths"]

