"""At delivery the callback's name is resolved once, every address checked, and the
connection goes to the checked address: a name that resolves to this machine by then
(DNS rebinding) is refused, logged as such, and nothing is sent."""

import socket

import pytest

from tests.workflows.test_outbox import webhook
from tests.workflows.webhook_support import Receiver
from workflows import hooks
from workflows.models import DeliveryAttempt, OutboxStatus
from workflows.services import outbox

REAL_GETADDRINFO = socket.getaddrinfo


@pytest.fixture
def rebinding_dns(monkeypatch):
    """``hooks.rebind.test`` resolves to 127.0.0.1; each lookup of it is counted."""
    lookups = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host == "hooks.rebind.test":
            lookups.append(host)
            host = "127.0.0.1"
        return REAL_GETADDRINFO(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lookups


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


@pytest.fixture
def signed(monkeypatch):
    def provider(*, message):
        return "whsec_" + "A" * 32

    hooks.register_webhook_secret_provider(provider)
    monkeypatch.setattr(outbox, "_nudge", lambda message_ids, webhooks=False: None)
    yield
    hooks._webhook_secret_providers.remove(provider)


@pytest.mark.django_db
@pytest.mark.usefixtures("signed")
def test_a_name_resolving_to_this_machine_at_delivery_is_refused_and_nothing_is_sent(
        receiver, rebinding_dns, settings, caplog):
    settings.ALLOW_HTTP_CALLBACKS = True
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    port = receiver.server.server_port
    message = webhook(f"http://hooks.rebind.test:{port}/hooks/backstop")

    assert outbox.deliver(message_id=message.pk) is False

    assert receiver.requests == []
    [attempt] = DeliveryAttempt.objects.filter(message=message)
    assert not attempt.succeeded and attempt.status_code is None
    assert ("Refused, nothing sent: hooks.rebind.test resolves to 127.0.0.1, "
            "a loopback address") in attempt.error
    assert "resolves to 127.0.0.1" in caplog.text
    message.refresh_from_db()
    assert message.status == OutboxStatus.PENDING  # retried later: DNS may be fixed


@pytest.mark.django_db
@pytest.mark.usefixtures("signed")
def test_plain_http_is_refused_at_delivery_without_the_development_setting(receiver,
                                                                           settings):
    settings.ALLOW_HTTP_CALLBACKS = False
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    message = webhook(receiver.url)

    assert outbox.deliver(message_id=message.pk) is False

    assert receiver.requests == []
    assert "must use https" in DeliveryAttempt.objects.get(message=message).error


@pytest.mark.django_db
@pytest.mark.usefixtures("signed")
def test_the_connection_goes_to_the_address_checked_keeping_the_name(receiver,
                                                                     rebinding_dns, settings):
    # Allowed here only so that the local receiver can answer: one lookup, whose
    # answer is connected to, and the receiver still sees the URL's name.
    settings.ALLOW_HTTP_CALLBACKS = True
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    port = receiver.server.server_port
    message = webhook(f"http://hooks.rebind.test:{port}/hooks/backstop")

    assert outbox.deliver(message_id=message.pk) is True

    assert rebinding_dns == ["hooks.rebind.test"]
    [request] = receiver.requests
    assert request["headers"]["host"] == f"hooks.rebind.test:{port}"
