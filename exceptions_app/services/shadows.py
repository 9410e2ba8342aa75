"""Shadow runs: a proposed policy version routes, beside the active one, every decision
received during a period, and what it would have done is recorded.

Intake is left alone: a beat job (``tasks.advance_shadows``, every minute) routes the
decisions received since its last pass with both versions, as a backtest does
(``backtests.judge_decisions``), and records one ``ShadowOutcome`` a decision. The
comparison is read from those rows, joined to the labels people have given since, so it
grows more telling while the cases are resolved.
"""

from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from exceptions_app.models import (
    Decision,
    PolicyStatus,
    PolicyVersion,
    Route,
    Shadow,
    ShadowOutcome,
    ShadowStatus,
)
from exceptions_app.services import backtests
from exceptions_app.services.quality import Proportion
from exceptions_app.verbs import DomainVerb
from workflows import actors
from workflows.models import Verdict
from workflows.services import audit
from workflows.services.errors import Conflict

MAX_DAYS = 90
# A pass reads only decisions received at least this long ago. Decisions are taken in id
# order, and an id is given before its transaction commits: waiting longer than any intake
# transaction lasts means none with a smaller id can still appear behind the cursor.
SETTLE = timedelta(minutes=1)
# Decisions one pass routes at most, so that a pass stays short whatever the backlog.
PASS_SIZE = 20_000


@transaction.atomic
def start_shadow(*, policy: PolicyVersion, actor, days: int,
                 now: datetime | None = None) -> Shadow:
    """Run a proposed version in shadow for ``days`` from now; audited."""
    actors.require(actor)
    use_case = policy.use_case
    if not backtests.may_backtest(user=actor, use_case=use_case):
        raise PermissionDenied("Only managers and the people Responsible or Accountable for "
                               f"{use_case}'s policy changes can shadow its policies.")
    if policy.status != PolicyStatus.PROPOSED:
        raise ValidationError({"version": f"Only a proposed version runs in shadow; version "
                                          f"{policy.number} is "
                                          f"{policy.get_status_display().lower()}."})
    if not 1 <= days <= MAX_DAYS:
        raise ValidationError({"days": f"A shadow runs from 1 to {MAX_DAYS} days."})
    baseline = PolicyVersion.objects.filter(use_case=use_case,
                                            status=PolicyStatus.ACTIVE).first()
    if baseline is None:
        raise ValidationError({"version": f"{use_case} has no active policy to run beside."})
    now = now or timezone.now()
    # Decisions already received are a backtest's; the shadow starts with the next one.
    cursor = Decision.objects.order_by("-id").values_list("id", flat=True).first() or 0
    try:
        with transaction.atomic():
            shadow = Shadow.objects.create(use_case=use_case, policy=policy, baseline=baseline,
                                           started_by=actor, started_at=now,
                                           ends_at=now + timedelta(days=days), cursor=cursor)
    except IntegrityError:
        raise ValidationError({"version": f"Version {policy.number} already runs in shadow."}
                              ) from None
    audit.record(actor=actor, verb=DomainVerb.POLICY_SHADOW_STARTED, object_type="policy",
                 object_id=policy.pk, now=now,
                 data={"shadow": shadow.pk, "version": policy.number,
                       "baseline": baseline.number, "ends_at": shadow.ends_at.isoformat()})
    return shadow


@transaction.atomic
def stop_shadow(*, shadow: Shadow, actor, now: datetime | None = None) -> Shadow:
    actors.require(actor)
    if not backtests.may_backtest(user=actor, use_case=shadow.use_case):
        raise PermissionDenied("Only managers and the people Responsible or Accountable for "
                               "its policy changes can stop a shadow.")
    shadow = Shadow.objects.select_for_update().get(pk=shadow.pk)
    if shadow.status != ShadowStatus.RUNNING:
        raise ShadowConflict(f"This shadow is {shadow.get_status_display().lower()} already.")
    now = now or timezone.now()
    shadow.status, shadow.stopped_at = ShadowStatus.STOPPED, now
    shadow.save(update_fields=["status", "stopped_at"])
    audit.record(actor=actor, verb=DomainVerb.POLICY_SHADOW_STOPPED, object_type="policy",
                 object_id=shadow.policy_id, now=now,
                 data={"shadow": shadow.pk, "judged": shadow.judged})
    return shadow


class ShadowConflict(Conflict):
    """The shadow is not running (answers 409)."""


def advance(shadow_id: int, *, now: datetime | None = None) -> Shadow:
    """Route the decisions received since the last pass (at most ``PASS_SIZE``); once
    the period is over and all of its decisions are routed, the shadow is finished.

    One pass at a time per shadow (its row is locked): safe to run twice or in two
    workers at once, and a decision is recorded once (a unique outcome per decision)."""
    now = now or timezone.now()
    with transaction.atomic():
        shadow = (Shadow.objects.select_for_update(skip_locked=True)
                  .select_related("use_case", "policy", "baseline")
                  .filter(pk=shadow_id, status=ShadowStatus.RUNNING).first())
        if shadow is None:
            return Shadow.objects.get(pk=shadow_id)
        decisions = (Decision.objects.filter(
            use_case_id=shadow.use_case_id, id__gt=shadow.cursor,
            received_at__lt=min(shadow.ends_at, now - SETTLE)).order_by("id")[:PASS_SIZE])
        outcomes = [
            ShadowOutcome(shadow=shadow, decision_id=judged.decision_id,
                          baseline_route=judged.baseline, route=judged.candidate,
                          rule=judged.rule or "")
            for judged in backtests.judge_decisions(
                decisions, baseline=shadow.baseline, candidate=shadow.policy,
                use_case=shadow.use_case)]
        ShadowOutcome.objects.bulk_create(outcomes, batch_size=2_000, ignore_conflicts=True)
        if outcomes:
            shadow.cursor = outcomes[-1].decision_id
            shadow.judged += len(outcomes)
        if now - SETTLE >= shadow.ends_at and len(outcomes) < PASS_SIZE:
            shadow.status = ShadowStatus.FINISHED
        shadow.save(update_fields=["cursor", "judged", "status"])
    return shadow


def advance_all(*, now: datetime | None = None) -> int:
    """One pass of every running shadow; how many shadows there were."""
    running = list(Shadow.objects.filter(status=ShadowStatus.RUNNING)
                   .values_list("pk", flat=True))
    for shadow_id in running:
        advance(shadow_id, now=now)
    return len(running)


def comparison(shadow: Shadow) -> dict:
    """What the shadowed version did beside the active one: the result of a backtest, in
    the same shape, counted from the recorded outcomes and today's labels."""
    outcomes = ShadowOutcome.objects.filter(shadow=shadow)
    verdict = F("decision__labelled_example__verdict")
    labelled = Q(decision__labelled_example__isnull=False)
    accepted = Q(decision__labelled_example__verdict=Verdict.ACCEPTED)
    pairs = list(outcomes.values("baseline_route", "route").order_by()
                 .annotate(count=Count("pk"), labelled=Count("pk", filter=labelled),
                           accepted=Count("pk", filter=accepted)))
    total = sum(pair["count"] for pair in pairs)
    changes = sorted((pair for pair in pairs if pair["baseline_route"] != pair["route"]),
                     key=lambda pair: (-pair["count"], pair["baseline_route"], pair["route"]))

    def examples(rows) -> list[dict]:  # the newest first, as a backtest reads them
        return [{"decision": row["decision_id"], "case": row["decision__case_id"],
                 "external_id": row["decision__external_id"], "rule": row["rule"] or None,
                 "verdict": row["verdict"]}
                for row in rows.annotate(verdict=verdict).values(
                    "decision_id", "decision__case_id", "decision__external_id", "rule",
                    "verdict").order_by("-decision_id")[:backtests.EXAMPLES_PER_CHANGE]]

    corrected = (outcomes.filter(labelled, route=Route.AUTO)
                 .exclude(baseline_route=Route.AUTO).exclude(accepted))

    def auto_errors(route_field: str) -> dict:
        passed = outcomes.filter(labelled, **{route_field: Route.AUTO})
        return Proportion(passed.exclude(accepted).count(), passed.count()).as_dict()

    return {
        "decisions": total,
        "unchanged": total - sum(pair["count"] for pair in changes),
        "routes": {
            version: {route: sum(pair["count"] for pair in pairs if pair[field] == route)
                      for route in Route.values}
            for version, field in (("baseline", "baseline_route"), ("candidate", "route"))},
        "changes": [
            {"from": pair["baseline_route"], "to": pair["route"], "count": pair["count"],
             "labelled": pair["labelled"], "accepted": pair["accepted"],
             "examples": examples(outcomes.filter(baseline_route=pair["baseline_route"],
                                                  route=pair["route"]))}
            for pair in changes],
        "corrected_but_auto_passed": {"count": corrected.count(),
                                      "examples": examples(corrected)},
        "auto_errors": {"baseline": auto_errors("baseline_route"),
                        "candidate": auto_errors("route")},
    }


def recent_shadows(*, use_case, limit: int = 20) -> list[Shadow]:
    return list(Shadow.objects.filter(use_case=use_case)
                .select_related("policy", "baseline", "started_by")[:limit])
