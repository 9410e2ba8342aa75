"""Rotating an AI system's signing secret with an overlap: both secrets verify the
webhooks sent during it, only the new one after; audited, without either secret."""

from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from exceptions_app.models import AiSystem
from exceptions_app.services import use_cases
from tests.exceptions_app.factories import AiSystemFactory, make_decision_case
from workflows import hooks
from workflows.actors import SYSTEM
from workflows.models import AuditEvent, OutboxMessage, Verdict
from workflows.services import claiming, outbox, transitions

OLD = outbox.generate_signing_secret()


@pytest.fixture
def sent_webhook(invoice_use_case, member, nudges):
    """A resolution webhook of a system that signs with OLD; sign(message) signs it as
    the relay would at that moment."""
    system = AiSystemFactory(slug="invoice-bot", use_cases=[invoice_use_case],
                             callback_url="https://ai.example.com/hooks", signing_secret=OLD)
    decision = make_decision_case(invoice_use_case, ai_system=system)
    claiming.claim(case_id=decision.case_id, user=member)
    transitions.resolve(case_id=decision.case_id, user=member, verdict=Verdict.ACCEPTED,
                        output=None, reason_code="")
    return system, OutboxMessage.objects.get()


def verifies(secret: str, message: OutboxMessage) -> bool:
    body = outbox.webhook_body(message.payload)
    headers = outbox.webhook_headers(message_id=str(message.pk), body=body,
                                     signing_secrets=hooks.webhook_secrets(message=message))
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True


@pytest.mark.django_db
def test_old_and_new_secrets_both_verify_during_the_overlap_and_only_the_new_after(
        sent_webhook):
    system, message = sent_webhook

    new = use_cases.ai_system_rotate_secret(ai_system=system, actor=SYSTEM,
                                            overlap=timedelta(hours=2))

    assert (verifies(OLD, message), verifies(new, message)) == (True, True)
    with time_machine.travel(timezone.now() + timedelta(hours=2, minutes=1), tick=False):
        assert (verifies(OLD, message), verifies(new, message)) == (False, True)


@pytest.mark.django_db
def test_a_rotation_without_overlap_stops_the_old_secret_at_once(sent_webhook):
    system, message = sent_webhook

    new = use_cases.ai_system_rotate_secret(ai_system=system, actor=SYSTEM,
                                            overlap=timedelta(0))

    assert (verifies(OLD, message), verifies(new, message)) == (False, True)


@pytest.mark.django_db
def test_the_command_prints_the_new_secret_once_and_the_rotation_is_audited(sent_webhook):
    system, message = sent_webhook
    out = StringIO()

    call_command("rotate_signing_secret", "invoice-bot", "--overlap-hours", "1", stdout=out)

    new = AiSystem.objects.get(pk=system.pk).signing_secret
    assert new in out.getvalue() and new != OLD
    assert "signs beside it for 1 hours" in out.getvalue()
    event = AuditEvent.objects.get(verb="ai_system.secret_rotated")
    assert event.actor_label == "cli:rotate_signing_secret"
    assert new not in str(event.data) and OLD not in str(event.data)
    assert verifies(OLD, message) and verifies(new, message)


@pytest.mark.django_db
def test_the_command_names_the_systems_it_knows_when_given_another(sent_webhook):
    with pytest.raises(CommandError, match=r"There is no AI system 'nope' \(known: invoice-bot\)"):
        call_command("rotate_signing_secret", "nope")
