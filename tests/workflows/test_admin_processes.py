"""A process's name and escalation chain in the admin go through ``processes``: each
save writes exactly one audit event with before and after (I7)."""

import pytest
from django.urls import reverse

from tests.factories import UserFactory
from workflows.models import AuditEvent, EscalationLevel, Process


@pytest.fixture
def admin_client(client, db):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def process(db):
    return Process.objects.create(slug="invoices", name="Invoices")


def process_form(process, *, name=None, levels=()):
    """The process page as posted: no matrix rows; ``levels`` are existing
    ``EscalationLevel``s or new ones as dicts."""
    existing = [level for level in levels if isinstance(level, EscalationLevel)]
    data = {"name": name or process.name, "slug": process.slug,
            "raci-TOTAL_FORMS": 0, "raci-INITIAL_FORMS": 0, "raci-MIN_NUM_FORMS": 0,
            "raci-MAX_NUM_FORMS": 1000,
            "escalation_levels-TOTAL_FORMS": len(levels),
            "escalation_levels-INITIAL_FORMS": len(existing),
            "escalation_levels-MIN_NUM_FORMS": 0, "escalation_levels-MAX_NUM_FORMS": 1000}
    for index, level in enumerate(levels):
        prefix = f"escalation_levels-{index}-"
        if isinstance(level, EscalationLevel):
            data[prefix + "id"] = level.pk
            level = {"level": level.level, "target": level.target,
                     "time_limit": "02:00:00", "outcome": level.outcome}
        data.update({prefix + "process": process.pk, prefix + "notify_informed": "on",
                     **{prefix + name: value for name, value in level.items()}})
    return data


def process_events():
    return list(AuditEvent.objects.filter(object_type="process").order_by("id"))


@pytest.mark.django_db
def test_adding_an_escalation_level_in_the_admin_is_audited_once(admin_client, process):
    response = admin_client.post(
        reverse("admin:workflows_process_change", args=[process.pk]),
        process_form(process, levels=[{"level": 1, "target": "A", "time_limit": "02:00:00",
                                       "outcome": "none"}]))

    assert response.status_code == 302
    level, = EscalationLevel.objects.filter(process=process)
    event, = process_events()
    assert (event.verb, event.actor_label) == ("escalation_chain.changed", "root")
    assert event.data["before"] == []
    assert [entry["level"] for entry in event.data["after"]] == [level.level]


@pytest.mark.django_db
def test_changing_an_escalation_level_in_the_admin_is_audited_once(admin_client, process):
    level = EscalationLevel.objects.create(process=process, level=1, target="A",
                                           time_limit="01:00:00", outcome="none")

    response = admin_client.post(reverse("admin:workflows_process_change", args=[process.pk]),
                                 process_form(process, levels=[level]))

    assert response.status_code == 302
    event, = process_events()
    assert event.verb == "escalation_chain.changed"
    assert event.data["before"][0]["time_limit"] != event.data["after"][0]["time_limit"]


@pytest.mark.django_db
def test_renaming_a_process_in_the_admin_is_audited_once(admin_client, process):
    response = admin_client.post(reverse("admin:workflows_process_change", args=[process.pk]),
                                 process_form(process, name="Supplier invoices"))

    assert response.status_code == 302
    event, = process_events()
    assert event.verb == "process.changed"
    assert event.data["before"] == {"name": "Invoices"}
    assert event.data["after"] == {"name": "Supplier invoices"}


@pytest.mark.django_db
def test_adding_a_process_in_the_admin_is_audited_once(admin_client):
    data = process_form(Process(slug="claims", name="Claims"))

    response = admin_client.post(reverse("admin:workflows_process_add"), data)

    assert response.status_code == 302
    event, = process_events()
    assert (event.verb, event.data["after"]) == ("process.created",
                                                 {"slug": "claims", "name": "Claims"})


@pytest.mark.django_db
def test_deleting_a_process_in_the_admin_audits_its_chain(admin_client, process):
    EscalationLevel.objects.create(process=process, level=1, target="A",
                                   time_limit="01:00:00", outcome="none")

    response = admin_client.post(reverse("admin:workflows_process_delete", args=[process.pk]),
                                 {"post": "yes"})

    assert response.status_code == 302 and not Process.objects.exists()
    event, = process_events()
    assert event.verb == "process.deleted"
    assert [level["level"] for level in event.data["before"]["escalation_chain"]] == [1]
