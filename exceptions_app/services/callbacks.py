"""Resolutions back to the AI system that asked: a signed webhook through the outbox.

When a case is resolved (after four-eyes approval where needed), the engine calls
``send_resolution`` through ``workflows.hooks`` inside the resolving transaction. It
writes one outbox webhook message to the AI system's ``callback_url``, so the webhook
exists if and only if the resolution commits (I5), and is relayed with retries.

The body follows the Standard Webhooks envelope (``type``, ``timestamp``, ``data``);
``webhook-id`` is the outbox message's id, the same on every retry, so the AI system
deduplicates by it. The signature uses the system's ``signing_secret``, looked up at
each attempt by ``webhook_secret`` (a rotated secret applies to the next attempt):
a ``whsec_<base64>`` secret as Standard Webhooks defines it (make one with
``workflows.services.outbox.generate_signing_secret``), any other as its UTF-8 bytes.
"""

from exceptions_app.models import Decision
from exceptions_app.services import resolutions
from workflows.models import Channel, OutboxMessage
from workflows.services import outbox

RESOLVED_EVENT = "decision.resolved"


def resolution_dedup_key(case_id: int) -> str:
    return f"resolution:{case_id}:webhook"


def send_resolution(*, case, resolution) -> OutboxMessage | None:
    """Write the resolution webhook for the case's AI system, if it has a callback URL."""
    decision = (Decision.objects.select_related("ai_system", "use_case")
                .filter(case=case.pk).first())
    if decision is None or not decision.ai_system.callback_url:
        return None
    final_output = resolutions.final_output(resolution, decision)
    resolved_at = case.closed_at or resolution.approved_at or resolution.created_at
    approver = resolution.approved_by
    payload = {
        "type": RESOLVED_EVENT,
        "timestamp": resolved_at,
        "data": {
            "decision_id": decision.pk,
            "external_id": decision.external_id,
            "use_case": decision.use_case.slug,
            "verdict": resolution.verdict,
            "output": final_output,
            "reason_code": resolution.reason_code,
            "notes": resolution.notes,
            "resolved_at": resolved_at,
            "reviewer": resolution.resolved_by.get_username(),
            "approver": approver.get_username() if approver is not None else None,
        },
    }
    return outbox.enqueue(channel=Channel.WEBHOOK, recipient=decision.ai_system.callback_url,
                          dedup_key=resolution_dedup_key(case.pk), payload=payload,
                          subject=f"{RESOLVED_EVENT} {decision.external_id}", case=case,
                          now=resolved_at)


def webhook_secret(*, message: OutboxMessage) -> str | None:
    """The signing secret of the AI system whose decision the message is about."""
    if message.channel != Channel.WEBHOOK or message.case_id is None:
        return None
    return (Decision.objects.filter(case=message.case_id)
            .values_list("ai_system__signing_secret", flat=True).first()) or None
