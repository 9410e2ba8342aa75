import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import ProtectedError
from django.template.loader import render_to_string
from django.urls import reverse
from rest_framework.test import APIClient

from tests.factories import UserFactory, client_for
from tests.workflows.chain import make_chain
from workflows.models import (
    Activity,
    AuditEvent,
    Process,
    RaciAssignment,
    RaciRole,
    activity_values,
)
from workflows.services import raci

REVIEW, R, A = Activity.REVIEW, RaciRole.RESPONSIBLE, RaciRole.ACCOUNTABLE


@pytest.fixture
def process(queue, member):
    process = Process.objects.create(slug="invoices", name="Invoices")
    queue.process = process
    queue.save(update_fields=["process"])
    return process


# -- the service ---------------------------------------------------------------------------

@pytest.mark.django_db
def test_holders_are_named_people_and_group_members_once_and_active_only(process, manager):
    ann, bob, gone = (UserFactory(username=n) for n in ("ann", "bob", "gone"))
    gone.is_active = False
    gone.save()
    team = Group.objects.create(name="team")
    for person in (bob, gone, ann):
        person.groups.add(team)

    raci.set_assignments(process=process, activity=REVIEW, role=R, users=[ann],
                         groups=[team], actor=manager)

    assert [p.username for p in raci.holders(process=process, activity=REVIEW, role=R)] == [
        "ann", "bob"]
    assert raci.holders(process=process, activity=REVIEW, role=A) == []
    assert raci.holders(process=None, activity=REVIEW, role=R) == []


@pytest.mark.django_db
def test_setting_a_cell_replaces_it_and_audits_before_and_after(process, manager):
    ann, bob = UserFactory(username="ann"), UserFactory(username="bob")
    raci.set_assignments(process=process, activity=REVIEW, role=R, users=[ann], actor=manager)

    raci.set_assignments(process=process, activity=REVIEW, role=R, users=[bob, bob],
                         actor=manager)
    raci.set_assignments(process=process, activity=REVIEW, role=R, users=[bob],
                         actor=manager)  # no change: no event

    assert list(RaciAssignment.objects.values_list("user__username", flat=True)) == ["bob"]
    events = AuditEvent.objects.filter(verb="raci.changed").order_by("id")
    assert events.count() == 2
    last = events.last()
    assert last.actor == manager and last.object_id == str(process.pk)
    assert (last.data["before"], last.data["after"]) == (
        {"users": ["ann"], "groups": []}, {"users": ["bob"], "groups": []})


@pytest.mark.django_db
def test_only_managers_change_the_matrix_and_only_known_cells(process, member, manager):
    with pytest.raises(PermissionDenied):
        raci.set_assignments(process=process, activity=REVIEW, role=R, users=[member],
                             actor=member)
    with pytest.raises(ValidationError) as refused:
        raci.set_assignments(process=process, activity="lunch", role="X", actor=manager)
    assert set(refused.value.message_dict) == {"activity", "role"}
    assert not RaciAssignment.objects.exists()
    assert not AuditEvent.objects.filter(verb="raci.changed").exists()


@pytest.mark.django_db
def test_the_matrix_lists_every_cell_by_name(queue, member):
    chain = make_chain(queue)
    chain.owner.first_name, chain.owner.last_name = "Olga", "Owner"
    chain.owner.save()

    grid = raci.matrix(process=chain.process)

    assert list(grid) == activity_values()
    assert all(list(roles) == ["R", "A", "C", "I"] for roles in grid.values())
    assert grid["review"]["R"] == ["member"]
    assert grid["escalation"]["A"] == ["Olga Owner"]
    assert grid["escalation"]["I"] == ["finance (group)", "watcher"]
    assert grid["incident"]["A"] == []


# -- the API -------------------------------------------------------------------------------

@pytest.mark.django_db
def test_the_matrix_is_read_by_those_who_work_the_process(process, member, manager, outsider):
    raci.set_assignments(process=process, activity=REVIEW, role=R, users=[member],
                         actor=manager)
    url = "/api/v1/processes/invoices/raci/"

    for reader in (manager, member):
        response = client_for(reader).get(url)
        assert response.status_code == 200
        assert response.json()["cells"]["review"]["R"] == {"users": ["member"], "groups": []}
    assert client_for(outsider).get(url).status_code == 404
    assert APIClient().get(url).status_code in (401, 403)


@pytest.mark.django_db
def test_managers_put_cells_and_each_change_is_audited(process, member, manager, outsider):
    Group.objects.create(name="finance")
    UserFactory(username="owner")
    url = "/api/v1/processes/invoices/raci/"
    body = {"cells": {"review": {"R": {"users": ["member"]},
                                 "A": {"users": ["owner"], "groups": ["finance"]}}}}

    assert client_for(outsider).put(url, body, format="json").status_code == 404
    assert client_for(member).put(url, body, format="json").status_code == 403
    response = client_for(manager).put(url, body, format="json")

    assert response.status_code == 200, response.content
    cells = response.json()["cells"]["review"]
    assert cells["A"] == {"users": ["owner"], "groups": ["finance"]}
    assert cells["C"] == {"users": [], "groups": []}
    assert AuditEvent.objects.filter(verb="raci.changed").count() == 2


@pytest.mark.django_db
def test_an_unknown_name_changes_nothing(process, manager):
    url = "/api/v1/processes/invoices/raci/"
    body = {"cells": {"review": {"R": {"users": ["manager"]}, "A": {"users": ["nobody"]}}}}

    response = client_for(manager).put(url, body, format="json")

    assert response.status_code == 400 and "nobody" in str(response.json())
    assert not RaciAssignment.objects.exists()
    bad = client_for(manager).put(url, {"cells": {"lunch": {}}}, format="json")
    assert bad.status_code == 400


# -- the pages -----------------------------------------------------------------------------

@pytest.mark.django_db
def test_the_matrix_page_is_for_managers(client, process, member, manager, outsider):
    url = reverse("raci-matrix", args=["invoices"])
    for person in (member, outsider):
        client.force_login(person)
        assert client.get(url).status_code == 403
        assert client.get(reverse("raci-index")).status_code == 403
    client.force_login(manager)

    page = client.get(url)

    assert page.status_code == 200
    assert b"Responsible" in page.content and b"Incident" in page.content
    assert client.get(reverse("raci-index")).status_code == 200


@pytest.mark.django_db
def test_a_manager_edits_a_cell_in_place(client, process, member, manager):
    client.force_login(manager)
    url = reverse("raci-cell", args=["invoices", "review", "R"])

    form = client.get(url, headers={"HX-Request": "true"})
    saved = client.post(url, {"users": [member.pk]}, headers={"HX-Request": "true"})

    assert form.status_code == 200 and b"<form" in form.content
    assert saved.status_code == 200 and b"member" in saved.content
    assert b"<html" not in saved.content  # the cell only, swapped in place
    assert [p.username for p in raci.holders(process=process, activity=REVIEW, role=R)] == [
        "member"]
    assert AuditEvent.objects.get(verb="raci.changed").actor == manager
    # Without htmx: back to the matrix.
    plain = client.post(url, {"users": []})
    assert plain.status_code == 302 and raci.holders(process=process, activity=REVIEW,
                                                     role=R) == []


@pytest.mark.django_db
def test_a_non_manager_cannot_post_a_cell(client, process, member):
    client.force_login(member)
    response = client.post(reverse("raci-cell", args=["invoices", "review", "R"]),
                           {"users": [member.pk]})

    assert response.status_code == 403 and not RaciAssignment.objects.exists()


@pytest.mark.django_db
def test_who_owns_this_decision_reads_the_matrix(queue, member):
    chain = make_chain(queue)

    html = render_to_string("workflows/raci/_matrix.html", {"process": chain.process})
    empty = render_to_string("workflows/raci/_matrix.html", {"process": None})

    assert "Who owns this decision?" in html and "owner" in html and "finance (group)" in html
    assert "No process is set" in empty


@pytest.mark.django_db
def test_the_admin_shows_the_process_with_its_matrix(client, queue, member):
    chain = make_chain(queue)
    admin = UserFactory(username="admin", is_staff=True, is_superuser=True)
    client.force_login(admin)

    page = client.get(reverse("admin:workflows_process_change", args=[chain.process.pk]))

    assert page.status_code == 200
    assert b"every change is audited" in page.content and b"Escalation levels" in page.content
    assert client.get(reverse("admin:workflows_process_changelist")).status_code == 200


def test_a_person_or_group_holding_a_role_cannot_be_deleted_behind_the_audit(process, manager):
    holder, team = UserFactory(), Group.objects.create(name="ap-team")
    raci.set_assignments(process=process, activity=Activity.INCIDENT, role=RaciRole.INFORMED,
                         users=[holder], groups=[team], actor=manager)

    with pytest.raises(ProtectedError):
        holder.delete()
    with pytest.raises(ProtectedError):
        team.delete()

    raci.set_assignments(process=process, activity=Activity.INCIDENT, role=RaciRole.INFORMED,
                         actor=manager)  # handed over, audited: now they may go
    holder.delete()
    team.delete()
