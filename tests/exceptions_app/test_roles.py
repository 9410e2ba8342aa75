"""Roles as groups with written permissions, and the auditor: reads everything, changes
nothing."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from exceptions_app.roles import ROLES, setup_roles
from tests.exceptions_app.factories import UseCaseFactory, make_decision_case
from tests.factories import UserFactory
from workflows.actors import SYSTEM
from workflows.models import AuditEvent, is_auditor, is_manager, reads_audit_trail
from workflows.services import tokens


def holding(role: str, **kwargs):
    user = UserFactory(**kwargs)
    user.groups.add(Group.objects.get(name=role))
    return type(user).objects.get(pk=user.pk)  # permissions are cached per instance


@pytest.mark.django_db
def test_each_role_is_a_group_holding_its_written_permissions_and_a_second_run_changes_nothing():
    setup_roles(actor=SYSTEM)
    events = AuditEvent.objects.filter(verb="role.permissions_set").count()

    setup_roles(actor=SYSTEM)

    assert AuditEvent.objects.filter(verb="role.permissions_set").count() == events == len(ROLES)
    assert is_manager(holding("managers")) and not is_auditor(holding("managers"))
    assert is_auditor(holding("auditors")) and not is_manager(holding("auditors"))
    assert reads_audit_trail(holding("owners")) and not reads_audit_trail(holding("reviewers"))
    admin = holding("admins")
    assert is_manager(admin) and not is_auditor(admin)  # an admin is never read-only


@pytest.mark.django_db
def test_a_permission_taken_from_a_role_by_hand_is_put_back_and_recorded():
    groups = setup_roles(actor=SYSTEM)
    groups["auditors"].permissions.clear()

    setup_roles(actor=SYSTEM)

    assert is_auditor(holding("auditors"))
    restored = AuditEvent.objects.filter(verb="role.permissions_set").latest("id")
    assert restored.data["role"] == "auditors"
    assert restored.data["before"] == {"permissions": []}
    assert "workflows.read_everything" in restored.data["after"]["permissions"]


@pytest.fixture
def auditor():
    setup_roles(actor=SYSTEM)
    return holding("auditors", username="alex")


@pytest.mark.django_db
def test_an_auditor_reads_every_case_without_working_any_queue(auditor):
    decision = make_decision_case(UseCaseFactory())
    client = Client()
    client.force_login(auditor)

    assert client.get(reverse("case", args=[decision.case_id])).status_code == 200
    assert client.get(reverse("use-case", args=[decision.use_case.slug])).status_code == 200
    api = APIClient()
    api.force_authenticate(auditor)
    assert api.get(reverse("case-detail", args=[decision.case_id])).status_code == 200


@pytest.mark.django_db
def test_an_auditor_is_refused_every_change_with_a_session_and_with_a_token(auditor):
    decision = make_decision_case(UseCaseFactory())
    session = Client()
    session.force_login(auditor)
    token = APIClient()
    key = tokens.issue_user_token(user=auditor, actor=SYSTEM).key
    token.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    case = decision.case_id

    for client in (session, token):
        assert client.post(f"/api/v1/cases/{case}/claim/").status_code == 403
        comment = client.post(f"/api/v1/cases/{case}/comments/", {"body": "looks fine"},
                              content_type="application/json")
        assert comment.status_code == 403
        assert "changes nothing" in comment.content.decode()
    assert session.post(f"/cases/{case}/claim/").status_code == 403
    assert session.post(f"/cases/{case}/comments/", {"comment-body": "fine"}).status_code == 403
    assert not AuditEvent.objects.filter(actor=auditor).exclude(
        verb__startswith="user_token.").exists()
    # Signing out is no change to the business.
    assert session.post(reverse("logout")).status_code == 302
