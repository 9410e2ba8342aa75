"""Checks of the whole audit chain as jobs: asked for by a person (page or API), done by
a Celery worker with its progress written as it goes, the result kept.

``audit.verify`` reads every event: at a million of them that takes minutes, longer than
a request may, so the API and the audit log's page start a check and show it, instead of
running it. ``manage.py verify_audit_chain`` still runs one in the foreground.
"""

from datetime import datetime

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from workflows import actors
from workflows.models import (
    AuditEvent,
    AuditSeal,
    AuditVerification,
    VerificationStatus,
    reads_audit_trail,
)
from workflows.services import audit, background_jobs
from workflows.verbs import AuditVerb


def may_verify(user) -> bool:
    """Whoever reads the audit trail: managers, auditors, and operators (staff)."""
    return reads_audit_trail(user) or bool(user and user.is_staff)


@transaction.atomic
def request_verification(*, actor, expected_head: tuple[int, str] | None = None,
                         accept_backfilled: bool = False,
                         now: datetime | None = None) -> AuditVerification:
    """Queue a check of the whole chain; audited ``audit.verification_requested``."""
    actors.require(actor)
    if not may_verify(actor):
        raise PermissionDenied("Only managers, auditors and operators can check the audit "
                               "trail.")
    now = now or timezone.now()
    seq, chain = expected_head or (None, "")
    verification = AuditVerification.objects.create(
        expected_head_seq=seq, expected_head_hash=chain, accept_backfilled=accept_backfilled,
        requested_by=actor, requested_at=now)
    audit.record(actor=actor, verb=AuditVerb.AUDIT_VERIFICATION_REQUESTED,
                 object_type="audit_verification", object_id=verification.pk, now=now,
                 data={"expected_head": f"{seq}:{chain}" if seq is not None else None,
                       "accept_backfilled": accept_backfilled})
    transaction.on_commit(lambda: _enqueue(verification.pk))
    return verification


def _enqueue(verification_id: int) -> None:
    from workflows.tasks import run_audit_verification

    background_jobs.hand_over(run_audit_verification, verification_id,
                              what="audit verification")


def enqueue_waiting(*, now: datetime | None = None) -> int:
    """Hand over again the checks queued over a minute ago, and those a lost worker left
    running."""
    waiting = background_jobs.waiting(
        AuditVerification.objects, queued=VerificationStatus.QUEUED,
        running=VerificationStatus.RUNNING, now=now or timezone.now())
    for verification_id in waiting:
        _enqueue(verification_id)
    return len(waiting)


def run(verification_id: int) -> AuditVerification:
    """Do a queued check. Idempotent: a finished one, or one another worker is running
    (its heartbeat is recent), is left as it is; one whose worker was lost starts again.
    The result is audited ``audit.verified`` (by the system, naming who asked)."""
    with transaction.atomic():
        verification = AuditVerification.objects.select_for_update().get(pk=verification_id)
        now = timezone.now()
        if background_jobs.is_taken(verification, running=VerificationStatus.RUNNING, now=now):
            return verification
        verification.status = VerificationStatus.RUNNING
        verification.started_at = verification.heartbeat_at = now
        verification.checked = 0
        # The sealed events are numbered 1..newest seq; the unsealed few are counted.
        verification.total = ((AuditSeal.objects.aggregate(seq=Max("seq"))["seq"] or 0)
                              + AuditEvent.objects.filter(seal__isnull=True).count())
        verification.save(update_fields=["status", "started_at", "heartbeat_at", "checked",
                                         "total"])
    try:
        report = audit.verify(expected_head=verification.expected_head,
                              accept_backfilled=verification.accept_backfilled,
                              progress=lambda checked: _progress(verification, checked))
    except Exception as exc:
        AuditVerification.objects.filter(pk=verification.pk).update(
            status=VerificationStatus.ERROR, error=str(exc)[:2000], finished_at=timezone.now())
        raise
    verification.report = report_as_dict(report)
    verification.status = VerificationStatus.PASSED if report.ok else VerificationStatus.FAILED
    verification.checked = report.sealed + report.unsealed
    verification.finished_at = timezone.now()
    with transaction.atomic():
        verification.save(update_fields=["report", "status", "checked", "finished_at"])
        audit.record(actor=actors.SYSTEM, verb=AuditVerb.AUDIT_VERIFIED,
                     object_type="audit_verification", object_id=verification.pk,
                     data={"requested_by": verification.requested_by_id, "ok": report.ok,
                           "problem_count": report.problem_count, "sealed": report.sealed,
                           "unsealed": report.unsealed,
                           "head": verification.report["head"]})
    return verification


def _progress(verification: AuditVerification, checked: int) -> None:
    AuditVerification.objects.filter(pk=verification.pk).update(
        checked=checked, heartbeat_at=timezone.now())


def report_as_dict(report: audit.VerificationReport) -> dict:
    """What the API answers and the page shows of a finished check."""
    head = {"seq": report.head[0], "chain_hash": report.head[1]} if report.head else None
    broken = report.first_broken_link
    return {"ok": report.ok, "sealed": report.sealed, "unsealed": report.unsealed,
            "backfilled": report.backfilled, "head": head,
            "problem_count": report.problem_count, "problems": report.problems,
            "first_broken_link": broken.__dict__ if broken else None}


def recent(*, limit: int = 20) -> list[AuditVerification]:
    return list(AuditVerification.objects.select_related("requested_by")[:limit])
