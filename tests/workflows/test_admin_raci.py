"""The RACI matrix in the admin: managers edit it on the process page, through the
audited service (I7): every cell that changes writes one ``raci.changed`` event."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from tests.factories import UserFactory, make_manager
from workflows.models import Activity, AuditEvent, Process, RaciAssignment, RaciRole

REVIEW, ESCALATION = Activity.REVIEW, Activity.ESCALATION
R, A = RaciRole.RESPONSIBLE, RaciRole.ACCOUNTABLE


def staff(user, *codenames):
    user.is_staff = True
    user.save()
    user.user_permissions.add(*Permission.objects.filter(
        content_type__app_label="workflows", codename__in=codenames))
    return user


@pytest.fixture
def process(db):
    return Process.objects.create(slug="invoices", name="Invoices")


@pytest.fixture
def manager(db):
    return staff(make_manager(username="boss"), "view_process", "change_process",
                 "delete_process")


@pytest.fixture
def ann(db):
    return UserFactory(username="ann")


@pytest.fixture
def bob(db):
    return UserFactory(username="bob")


def change_url(process):
    return reverse("admin:workflows_process_change", args=[process.pk])


def form_data(process, rows, *, delete=()):
    """The process page as posted: ``rows`` are the matrix entries, existing ones
    (``RaciAssignment``) first, then new ones as ``(activity, role, user, group)``."""
    existing = [row for row in rows if isinstance(row, RaciAssignment)]
    data = {"name": process.name, "slug": process.slug,
            "raci-TOTAL_FORMS": len(rows), "raci-INITIAL_FORMS": len(existing),
            "raci-MIN_NUM_FORMS": 0, "raci-MAX_NUM_FORMS": 1000,
            "escalation_levels-TOTAL_FORMS": 0, "escalation_levels-INITIAL_FORMS": 0,
            "escalation_levels-MIN_NUM_FORMS": 0, "escalation_levels-MAX_NUM_FORMS": 1000}
    for index, row in enumerate(rows):
        if isinstance(row, RaciAssignment):
            data[f"raci-{index}-id"] = row.pk
            row = (row.activity, row.role, row.user, row.group)
        activity, role, user, group = row
        data.update({f"raci-{index}-process": process.pk, f"raci-{index}-activity": activity,
                     f"raci-{index}-role": role,
                     f"raci-{index}-user": user.pk if user else "",
                     f"raci-{index}-group": group.pk if group else ""})
        if index in delete:
            data[f"raci-{index}-DELETE"] = "on"
    return data


def cell(process, activity, role):
    rows = RaciAssignment.objects.filter(process=process, activity=activity, role=role)
    return sorted(str(row.user or row.group) for row in rows)


def raci_events():
    return list(AuditEvent.objects.filter(verb="raci.changed").order_by("id"))


@pytest.mark.django_db
def test_a_manager_adds_an_entry_and_it_is_audited_once(client, process, manager, ann):
    client.force_login(manager)

    response = client.post(change_url(process), form_data(process, [(REVIEW, R, ann, None)]))

    assert response.status_code == 302, response.context and response.context["errors"]
    assert cell(process, REVIEW, R) == ["ann"]
    [event] = raci_events()
    assert event.actor == manager
    assert event.data == {"process": "invoices", "activity": "review", "role": "R",
                          "before": {"users": [], "groups": []},
                          "after": {"users": ["ann"], "groups": []}}


@pytest.mark.django_db
def test_a_manager_changes_an_entry_and_it_is_audited_once(client, process, manager, ann,
                                                           bob):
    finance = Group.objects.create(name="finance")
    kept = RaciAssignment.objects.create(process=process, activity=REVIEW, role=R,
                                         group=finance)
    entry = RaciAssignment.objects.create(process=process, activity=REVIEW, role=R, user=ann)
    client.force_login(manager)
    data = form_data(process, [kept, entry])
    data["raci-1-user"] = bob.pk

    response = client.post(change_url(process), data)

    assert response.status_code == 302
    assert cell(process, REVIEW, R) == ["bob", "finance"]
    [event] = raci_events()
    assert (event.data["before"], event.data["after"]) == (
        {"users": ["ann"], "groups": ["finance"]}, {"users": ["bob"], "groups": ["finance"]})


@pytest.mark.django_db
def test_a_manager_deletes_an_entry_and_it_is_audited_once(client, process, manager, ann,
                                                           bob):
    entry = RaciAssignment.objects.create(process=process, activity=ESCALATION, role=A,
                                          user=ann)
    other = RaciAssignment.objects.create(process=process, activity=REVIEW, role=R, user=bob)
    client.force_login(manager)

    response = client.post(change_url(process), form_data(process, [entry, other],
                                                          delete=[0]))

    assert response.status_code == 302
    assert cell(process, ESCALATION, A) == [] and cell(process, REVIEW, R) == ["bob"]
    [event] = raci_events()
    assert (event.data["activity"], event.data["role"], event.data["after"]) == (
        "escalation", "A", {"users": [], "groups": []})


@pytest.mark.django_db
def test_moving_an_entry_to_another_cell_audits_both_cells(client, process, manager, ann):
    entry = RaciAssignment.objects.create(process=process, activity=REVIEW, role=R, user=ann)
    client.force_login(manager)
    data = form_data(process, [entry])
    data["raci-0-role"] = A

    client.post(change_url(process), data)

    assert cell(process, REVIEW, R) == [] and cell(process, REVIEW, A) == ["ann"]
    assert [(e.data["role"], e.data["after"]["users"]) for e in raci_events()] == [
        ("A", ["ann"]), ("R", [])]


@pytest.mark.django_db
def test_saving_the_page_unchanged_writes_no_event(client, process, manager, ann):
    entry = RaciAssignment.objects.create(process=process, activity=REVIEW, role=R, user=ann)
    client.force_login(manager)

    response = client.post(change_url(process), form_data(process, [entry]))

    assert response.status_code == 302
    assert raci_events() == []


@pytest.mark.django_db
def test_a_deactivated_account_is_refused_at_its_row(client, process, manager, ann):
    ann.is_active = False
    ann.save()
    client.force_login(manager)

    response = client.post(change_url(process), form_data(process, [(REVIEW, R, ann, None)]))

    assert response.status_code == 200
    assert "ann cannot hold a role: the account is deactivated" in response.content.decode()
    assert not RaciAssignment.objects.exists() and raci_events() == []


@pytest.mark.django_db
def test_a_deactivated_holder_of_a_cell_being_edited_must_go_first(client, process, manager,
                                                                   ann, bob):
    entry = RaciAssignment.objects.create(process=process, activity=REVIEW, role=R, user=ann)
    ann.is_active = False
    ann.save()
    client.force_login(manager)
    rows = [entry, (REVIEW, R, bob, None)]

    refused = client.post(change_url(process), form_data(process, rows))
    removed = client.post(change_url(process), form_data(process, rows, delete=[0]))

    assert "ann cannot hold a role" in refused.content.decode()
    assert removed.status_code == 302 and cell(process, REVIEW, R) == ["bob"]
    [event] = raci_events()
    assert event.data["after"] == {"users": ["bob"], "groups": []}


@pytest.mark.django_db
def test_an_entry_names_a_user_or_a_group_not_both(client, process, manager, ann):
    finance = Group.objects.create(name="finance")
    client.force_login(manager)

    response = client.post(change_url(process),
                           form_data(process, [(REVIEW, R, ann, finance)]))

    assert response.status_code == 200
    assert not RaciAssignment.objects.exists() and raci_events() == []


@pytest.mark.django_db
def test_staff_who_are_not_managers_see_the_matrix_but_cannot_change_it(client, process,
                                                                         ann, bob):
    entry = RaciAssignment.objects.create(process=process, activity=REVIEW, role=R, user=ann)
    clerk = staff(UserFactory(username="clerk"), "view_process", "change_process",
                  "view_raciassignment", "change_raciassignment", "add_raciassignment",
                  "delete_raciassignment")
    client.force_login(clerk)
    assert b"ann" in client.get(change_url(process)).content

    data = form_data(process, [entry, (REVIEW, A, bob, None)], delete=[0])
    client.post(change_url(process), data)

    assert cell(process, REVIEW, R) == ["ann"] and cell(process, REVIEW, A) == []
    assert raci_events() == []


@pytest.mark.django_db
def test_deleting_a_process_empties_its_matrix_through_the_service(client, process,
                                                                   manager, ann, bob):
    RaciAssignment.objects.create(process=process, activity=REVIEW, role=R, user=ann)
    RaciAssignment.objects.create(process=process, activity=REVIEW, role=R, user=bob)
    RaciAssignment.objects.create(process=process, activity=ESCALATION, role=A, user=ann)
    client.force_login(manager)

    response = client.post(reverse("admin:workflows_process_delete", args=[process.pk]),
                           {"post": "yes"})

    assert response.status_code == 302
    assert not Process.objects.exists() and not RaciAssignment.objects.exists()
    assert sorted((e.data["activity"], e.data["role"], e.data["before"]["users"])
                  for e in raci_events()) == [("escalation", "A", ["ann"]),
                                              ("review", "R", ["ann", "bob"])]


@pytest.mark.django_db
def test_only_managers_may_delete_a_process(client, process):
    clerk = staff(UserFactory(username="clerk"), "view_process", "delete_process")
    client.force_login(clerk)

    response = client.post(reverse("admin:workflows_process_delete", args=[process.pk]),
                           {"post": "yes"})

    assert response.status_code == 403
    assert Process.objects.exists()
