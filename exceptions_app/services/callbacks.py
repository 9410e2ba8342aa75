"""Resolutions back to the AI system that asked: a place in its feed, and a signed webhook
through the outbox.

When a case is resolved (after four-eyes approval where needed), the engine's resolved
handler (``resolved.case_resolved``, inside the resolving transaction) gives the decision
the next place in its AI system's resolution feed (``taking_feed_place``), which the
system reads with ``GET /api/v1/resolutions/?cursor=...`` whether or not it takes
webhooks, and, when the system has a callback URL, writes one outbox webhook message to it
(``send_resolution``), so the webhook exists if and only if the resolution commits (I5),
and is relayed with retries.
A system that gets its callback URL later is sent every resolution it has not been sent
(``send_unsent_resolutions``).

The body follows the Standard Webhooks envelope (``type``, ``timestamp``, ``data``);
``webhook-id`` is the outbox message's id, the same on every retry, so the AI system
deduplicates by it. The signature uses the system's ``signing_secret``, looked up at
each attempt by ``webhook_secrets`` (a rotated secret applies to the next attempt, and
the previous one signs beside it until its overlap ends):
a ``whsec_<base64>`` secret as Standard Webhooks defines it (make one with
``workflows.services.outbox.generate_signing_secret``), any other as its UTF-8 bytes.
"""

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef
from django.utils import timezone

from exceptions_app.models import AiSystem, Decision
from exceptions_app.services import resolutions
from workflows import db
from workflows.models import Channel, OutboxMessage, Resolution
from workflows.services import outbox

RESOLVED_EVENT = "decision.resolved"
# pg_advisory_xact_lock keys of the feeds: "feed" in ASCII, then the AI system's id.
FEED_LOCK = int.from_bytes(b"feed", "big") << 32
# Unsent resolutions are written to the outbox this many at a time.
UNSENT_CHUNK = 500


def feed_lock(decision: Decision) -> int:
    """The key of the lock under which the decision's place in its system's feed is taken."""
    return FEED_LOCK | decision.ai_system_id


def resolution_dedup_key(case_id: int) -> str:
    return f"resolution:{case_id}:webhook"


def resolution_data(decision: Decision, resolution: Resolution) -> dict:
    """What the AI system is told of a resolution, in the webhook and by the API alike."""
    approver = resolution.approved_by
    return {
        "decision_id": decision.pk,
        "external_id": decision.external_id,
        "use_case": decision.use_case.slug,
        "verdict": resolution.verdict,
        "output": resolutions.final_output(resolution, decision),
        "reason_code": resolution.reason_code,
        "notes": resolution.notes,
        "resolved_at": resolved_at(resolution),
        "reviewer": resolution.resolved_by.get_username(),
        "approver": approver.get_username() if approver is not None else None,
        "position": decision.feed_position,
    }


def resolved_at(resolution: Resolution):
    return resolution.case.closed_at or resolution.approved_at or resolution.created_at


def resolution_feed(*, ai_system: AiSystem, after: int, size: int) -> list[dict]:
    """Up to ``size`` of the AI system's resolutions past feed position ``after``, in feed
    order, each as ``resolution_data`` says it: one query of plain values, no model
    instances (a page holds up to 500; six model instances a row cost most of its time)."""
    username = get_user_model().USERNAME_FIELD
    rows = (Decision.objects.filter(ai_system=ai_system, feed_position__gt=after)
            .order_by("feed_position")
            .values_list("pk", "external_id", "use_case__slug", "output", "feed_position",
                         "case__closed_at", "case__resolution__verdict",
                         "case__resolution__output", "case__resolution__reason_code",
                         "case__resolution__notes", "case__resolution__approved_at",
                         "case__resolution__created_at",
                         f"case__resolution__resolved_by__{username}",
                         f"case__resolution__approved_by__{username}")[:size])
    return [{
        "decision_id": pk, "external_id": external_id, "use_case": use_case,
        "verdict": verdict,
        "output": resolutions.final_output_of(verdict=verdict, corrected=corrected,
                                              ai_output=ai_output),
        "reason_code": reason_code, "notes": notes,
        "resolved_at": closed_at or approved_at or created_at,  # as ``resolved_at``
        "reviewer": reviewer, "approver": approver, "position": position,
    } for (pk, external_id, use_case, ai_output, position, closed_at, verdict, corrected,
           reason_code, notes, approved_at, created_at, reviewer, approver) in rows]


def taking_feed_place(decision: Decision) -> db.Write:
    """The update that gives the decision the next place in its AI system's feed (set on
    it once run), to run with the resolution's other writes. Inside the resolving
    transaction, whose caller holds the feed's lock (``feed_lock``, taken by
    ``resolved.case_resolved``): the next place is taken one transaction at a time."""
    return db.setting_next_position(decision, field="feed_position", among="ai_system")


def send_resolution(*, decision: Decision, resolution) -> OutboxMessage | None:
    """Write the resolution's webhook if the AI system has a callback URL; after its
    place in the feed is taken (``taking_feed_place``): the webhook carries it."""
    if not decision.ai_system.callback_url:
        return None
    [message] = outbox.write([_webhook(decision, resolution, now=resolved_at(resolution))])
    return message


def _webhook(decision: Decision, resolution: Resolution, *, now=None) -> OutboxMessage:
    data = resolution_data(decision, resolution)
    return outbox.message(
        channel=Channel.WEBHOOK, recipient=decision.ai_system.callback_url,
        dedup_key=resolution_dedup_key(decision.case_id),
        payload={"type": RESOLVED_EVENT, "timestamp": data["resolved_at"], "data": data},
        subject=f"{RESOLVED_EVENT} {decision.external_id}", case=resolution.case, now=now)


def send_unsent_resolutions(*, ai_system: AiSystem) -> int:
    """Write the webhook of every resolution in the system's feed that has none yet (it
    was resolved while the system had no callback URL); answers how many."""
    if not ai_system.callback_url:
        return 0
    sent = OutboxMessage.objects.filter(channel=Channel.WEBHOOK, case=OuterRef("case_id"))
    unsent = (Decision.objects.filter(ai_system=ai_system, feed_position__isnull=False)
              .exclude(Exists(sent)).select_related(
                  "ai_system", "use_case", "case__resolution__resolved_by",
                  "case__resolution__approved_by").order_by("feed_position"))
    written, after = 0, 0
    while chunk := list(unsent.filter(feed_position__gt=after)[:UNSENT_CHUNK]):
        outbox.write([_webhook(decision, decision.case.resolution) for decision in chunk])
        written, after = written + len(chunk), chunk[-1].feed_position
    return written

def webhook_secrets(*, message: OutboxMessage) -> list[str] | None:
    """The secrets that sign a webhook about one of the AI system's decisions: its
    current one and, during a rotation's overlap, the previous one too."""
    if message.channel != Channel.WEBHOOK or message.case_id is None:
        return None
    row = (Decision.objects.filter(case=message.case_id)
           .values_list("ai_system__signing_secret", "ai_system__previous_signing_secret",
                        "ai_system__previous_secret_expires_at").first())
    if row is None:
        return None
    current, previous, previous_until = row
    still_previous = previous and previous_until and previous_until > timezone.now()
    return [secret for secret in (current, previous if still_previous else "") if secret]
