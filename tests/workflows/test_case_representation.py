"""The case API renders cases by hand (``CaseSerializer.to_representation``) instead of
running DRF's field per value: the same JSON as DRF's own rendering, in every state and
time zone, or the fast path is wrong."""

import pytest
from django.test import RequestFactory
from django.utils import timezone
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.test import APIClient

from tests.factories import case_in_state, make_manager
from workflows.api.serializers import CaseDetailSerializer, CaseSerializer
from workflows.models import Case, CaseState, ConsultRequest

STATES = [CaseState.OPEN, CaseState.ASSIGNED, CaseState.WAITING, CaseState.ESCALATED,
          CaseState.PENDING_APPROVAL, CaseState.RESOLVED, CaseState.CANCELLED]


def drf_rendering(serializer, case) -> dict:
    """What DRF's ``ModelSerializer`` renders from the declared fields: the reference."""
    return serializers.ModelSerializer.to_representation(serializer, case)


def as_seen_by(user):
    request = RequestFactory().get("/api/v1/cases/")
    request.user = user
    return {"request": Request(request)}


@pytest.mark.django_db
@pytest.mark.parametrize("zone", ["UTC", "Pacific/Chatham"])
@pytest.mark.parametrize("state", STATES)
def test_a_case_reads_the_same_as_drf_renders_it(state, zone, queue, member):
    made = case_in_state(state, queue=queue, assignee=member)
    if state == CaseState.ASSIGNED:  # a question asked outside escalation (no level)
        ConsultRequest.objects.create(case=made, consultee=make_manager(), required=True,
                                      question="Is this vendor known?",
                                      created_at=timezone.now())
    case = Case.objects.select_related("queue", "assignee", "first_reviewer").get(pk=made.pk)
    context = as_seen_by(member)

    with timezone.override(zone):
        row, detail = CaseSerializer(case), CaseDetailSerializer(case, context=context)
        assert row.data == drf_rendering(CaseSerializer(case), case)
        assert detail.data == drf_rendering(CaseDetailSerializer(case, context=context), case)
    assert list(detail.data) == CaseDetailSerializer.Meta.fields  # in the schema's order


@pytest.mark.django_db
@pytest.mark.parametrize("filtered", [False, True])  # a plain statement / the filter set
@pytest.mark.parametrize("zone", ["UTC", "Pacific/Chatham"])
def test_the_case_list_reads_its_rows_as_the_serializer_renders_cases(zone, filtered, queue,
                                                                      member):
    made = [case_in_state(state, queue=queue, assignee=member) for state in STATES]
    client = APIClient()
    client.force_authenticate(member)

    with timezone.override(zone):
        listed = client.get("/api/v1/cases/",
                            {"page_size": 3, **({"queue": queue.slug} if filtered else {})})
        rows = listed.json()["results"]
        rows += client.get(listed.json()["next"]).json()["results"]
        rows += client.get(client.get(listed.json()["next"]).json()["next"]).json()["results"]
        cases = Case.objects.select_related("queue", "assignee").order_by("-id")
        assert rows == [drf_rendering(CaseSerializer(case), case) for case in cases]
    assert len(rows) == len(made) and {row["assignee"] for row in rows} == {
        None, member.username}


@pytest.mark.django_db
@pytest.mark.parametrize("filtered", [False, True])
def test_the_case_lists_previous_link_reads_the_page_before_again(filtered, queue, member):
    for state in STATES:
        case_in_state(state, queue=queue, assignee=member)
    client = APIClient()
    client.force_authenticate(member)

    first = client.get("/api/v1/cases/",
                       {"page_size": 3, **({"queue": queue.slug} if filtered else {})}).json()
    second = client.get(first["next"]).json()
    back = client.get(second["previous"]).json()

    assert first["previous"] is None and second["previous"] is not None
    assert back["results"] == first["results"]
    assert [row["id"] for row in first["results"] + second["results"]] == sorted(
        Case.objects.values_list("pk", flat=True), reverse=True)[:6]
