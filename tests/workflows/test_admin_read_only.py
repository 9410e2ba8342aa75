"""Rows only services write are read-only in the admin: a superuser's POST to add,
change or delete them is refused and changes nothing (I7)."""

import pytest
from django.urls import reverse

from tests.factories import CaseFactory, UserFactory
from workflows.actors import SYSTEM
from workflows.models import AuditEvent, Case
from workflows.services import audit
from workflows.verbs import AuditVerb


@pytest.fixture
def admin_client(client, db):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["case", "resolution", "auditevent", "auditcheckpoint",
                                  "outboxmessage", "notification", "reviewerstatus"])
def test_service_written_rows_cannot_be_added_in_the_admin(admin_client, name):
    response = admin_client.post(reverse(f"admin:workflows_{name}_add"), {})

    assert response.status_code == 403


@pytest.mark.django_db
def test_a_case_cannot_be_changed_or_deleted_in_the_admin(admin_client):
    case = CaseFactory(title="before")

    changed = admin_client.post(reverse("admin:workflows_case_change", args=[case.pk]),
                                {"title": "after"})
    deleted = admin_client.post(reverse("admin:workflows_case_delete", args=[case.pk]),
                                {"post": "yes"})

    assert changed.status_code == 403 and deleted.status_code == 403
    assert Case.objects.get(pk=case.pk).title == "before"


@pytest.mark.django_db
def test_an_audit_event_cannot_be_changed_or_deleted_in_the_admin(admin_client):
    event = audit.record(actor=SYSTEM, verb=AuditVerb.CASE_OPENED, object_type="case", object_id=1)

    changed = admin_client.post(reverse("admin:workflows_auditevent_change", args=[event.pk]),
                                {"verb": "forged"})
    deleted = admin_client.post(reverse("admin:workflows_auditevent_delete", args=[event.pk]),
                                {"post": "yes"})

    assert changed.status_code == 403 and deleted.status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).verb == AuditVerb.CASE_OPENED
