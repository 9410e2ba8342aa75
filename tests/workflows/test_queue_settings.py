"""A manager creates and changes a queue on a page, through the audited services; a
reviewer is refused."""

import pytest
from django.urls import reverse

from tests.factories import QueueFactory, UserFactory, make_manager
from workflows.models import AuditEvent, Queue


@pytest.fixture
def browser(client, db):
    client.force_login(make_manager(username="mia"))
    return client


def settings_form(**values):
    data = {"name": "Claims review", "slug": "claims-review", "description": "",
            "process": "", "lease": "00:30:00", "response_target": "02:00:00",
            "resolution_target": "1 00:00:00", "assignment_mode": "pull",
            "max_open_per_reviewer": "10"}
    data.update(values)
    return data


def test_a_manager_creates_a_queue_and_it_is_audited(browser):
    response = browser.post(reverse("queue-create"), settings_form())

    assert response.status_code == 302
    assert response["Location"] == reverse("queue-members", args=["claims-review"])
    queue = Queue.objects.get(slug="claims-review")
    assert (queue.lease_seconds, queue.resolution_target.days) == (1800, 1)
    assert list(AuditEvent.objects.values_list("verb", flat=True)) == ["queue.created"]


def test_a_taken_slug_is_refused_beside_its_field(browser):
    QueueFactory(slug="claims-review")

    response = browser.post(reverse("queue-create"), settings_form())

    assert response.status_code == 400
    assert "slug" in response.context["form"].errors
    assert not AuditEvent.objects.exists()


def test_changing_a_queue_records_only_what_changed(browser):
    queue = QueueFactory(slug="claims-review", name="Claims review")

    response = browser.post(reverse("queue-settings", args=[queue.slug]),
                            settings_form(blind="on", response_target="01:00:00",
                                          resolution_target="08:00:00"))

    assert response.status_code == 302
    event = AuditEvent.objects.get()
    assert (event.verb, event.data["after"]) == ("queue.changed", {"blind": True})


@pytest.mark.parametrize("name", ["queue-create"])
def test_a_reviewer_is_refused(client, db, name):
    client.force_login(UserFactory(username="rita"))

    assert client.get(reverse(name)).status_code == 403
    assert client.post(reverse(name), settings_form()).status_code == 403
    assert not Queue.objects.exists()
