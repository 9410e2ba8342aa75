"""A manager sends a message that failed for good again, from the delivery log page or
the API: a fresh run of attempts that really reaches the receiver; audited."""

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tests.workflows.webhook_support import SECRET
from workflows import hooks
from workflows.models import AuditEvent, Channel, OutboxMessage, OutboxStatus
from workflows.services import outbox


@pytest.fixture(autouse=True)
def receiver_signed_and_reachable(settings):
    settings.ALLOW_HTTP_CALLBACKS = True
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True

    def provider(*, message):
        return SECRET
    hooks.register_webhook_secret_provider(provider)
    yield
    hooks._webhook_secret_providers.remove(provider)


@pytest.fixture
def failed(receiver, nudges):
    """A webhook that failed every attempt (the receiver was down) and is marked failed."""
    message = outbox.enqueue(channel=Channel.WEBHOOK, recipient=receiver.url, dedup_key="hook-1",
                             payload={"type": "decision.resolved", "data": {"id": 4}})
    OutboxMessage.objects.filter(pk=message.pk).update(
        status=OutboxStatus.FAILED, attempts=8, last_error="HTTP 503")
    return message


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.django_db
def test_a_manager_sends_a_failed_message_again_and_it_arrives(failed, manager, receiver):
    response = api(manager).post(f"/api/v1/outbox/{failed.pk}/redeliver/")

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["attempts"]) == ("pending", 0)
    assert outbox.relay_due(now=timezone.now()) == 1
    failed.refresh_from_db()
    assert (failed.status, failed.attempts) == (OutboxStatus.DELIVERED, 1)
    [request] = receiver.requests
    assert request["verified"] and request["headers"]["webhook-id"] == str(failed.pk)
    event = AuditEvent.objects.get(verb="outbox.redelivered")
    assert (event.actor_label, event.object_id, event.data["dedup_key"]) == (
        manager.username, str(failed.pk), "hook-1")


@pytest.mark.django_db
def test_only_a_failed_message_can_be_sent_again(receiver, manager, nudges):
    pending = outbox.enqueue(channel=Channel.WEBHOOK, recipient=receiver.url, dedup_key="hook-2",
                             payload={"type": "x"})

    response = api(manager).post(f"/api/v1/outbox/{pending.pk}/redeliver/")

    assert response.status_code == 409
    assert "Only a failed message can be sent again; this one is pending" in (
        response.json()["detail"])
    assert not AuditEvent.objects.filter(verb="outbox.redelivered").exists()


@pytest.mark.django_db
def test_reviewers_cannot_send_messages_again(failed, member):
    assert api(member).post(f"/api/v1/outbox/{failed.pk}/redeliver/").status_code == 403
    failed.refresh_from_db()
    assert failed.status == OutboxStatus.FAILED


@pytest.mark.django_db
def test_the_delivery_log_offers_send_again_on_failed_messages_only(
        failed, receiver, manager, client):
    outbox.enqueue(channel=Channel.WEBHOOK, recipient=receiver.url, dedup_key="hook-3",
                   payload={"type": "x"})
    client.force_login(manager)

    page = client.get("/outbox/").content.decode()
    sent = client.post(f"/outbox/{failed.pk}/redeliver/", {"next": "/outbox/?status=failed"})
    again = client.post(f"/outbox/{failed.pk}/redeliver/", follow=True)

    assert page.count("Send again") == 1
    assert (sent.status_code, sent["Location"]) == (302, "/outbox/?status=failed")
    failed.refresh_from_db()
    assert failed.status == OutboxStatus.PENDING
    assert "Only a failed message can be sent again" in again.content.decode()
