"""Guardrails: bounded autonomy that holds itself back.

At intake (``hold_back``, one call per batch, after the policy and stage routed it):

- the kill switch sends every decision of a use case to review, from the next request on;
- daily caps on the count and the value (a declared numeric input field) of decisions
  passed automatically: past either, decisions go to review until the day (UTC) ends;
- a model version the use case has not seen starts on probation: its first
  ``probation_decisions`` go to review, whatever the rules say;
- QA sampling by stratum (confidence band or a declared field) instead of the stage's
  flat rate.

Intake stays cheap: the settings come with the use case intake keeps per process (dropped
on every write), and a use case with none of these on costs no query. Caps cost two
statements per request or batch (read and lock today's tally, add to it) and probation
one (add to the versions' counts, reading them back), whatever the batch's size.

Periodically (``check_all``, a beat task): a QA error rate over its bound, or an open
drift alert, demotes the use case one stage (``stages.demote``: exactly once).
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from exceptions_app.models import DailyQuality, DriftAlert, DriftLevel, Route, Stage, UseCase
from exceptions_app.routing import CaseSpec, RoutingResult, in_qa_sample
from exceptions_app.services import stages
from exceptions_app.services.quality import Proportion
from exceptions_app.stage_models import AutoPassTally, Guardrails, ModelVersionRecord
from exceptions_app.verbs import StageVerb
from workflows import db
from workflows.process_cache import ProcessCache
from workflows.services import audit

# Gates and guardrails an owner sets (``update_guardrails``); the kill switch has its own
# service, and ``stage_since`` is the stages' clock.
SETTINGS = ("evidence_days", "min_reviewed", "min_agreement", "min_sla_compliance",
            "min_qa_reviewed", "min_qa_accuracy_low", "max_exception_rate", "daily_auto_cap",
            "daily_value_cap", "value_field", "qa_error_bound", "qa_error_min_sample",
            "probation_decisions", "qa_strata")


def may_configure(*, user, use_case: UseCase) -> bool:
    """Who sets gates and guardrails and throws the kill switch: the Accountable for stage
    changes and managers."""
    return stages.may_lower(user=user, use_case=use_case)


def _require(user, use_case: UseCase, what: str) -> None:
    if not may_configure(user=user, use_case=use_case):
        raise PermissionDenied(f"Only the Accountable for stage changes of {use_case.name} "
                               f"or a manager may {what}.")


def _known_versions(use_case: UseCase) -> None:
    """Probation starts now: the model versions already seen are not new (a handful of
    rows: one per version the use case ever had)."""
    for version in (DailyQuality.objects.filter(use_case=use_case).order_by("model_version")
                    .values_list("model_version", flat=True).distinct()):
        ModelVersionRecord.objects.update_or_create(
            use_case=use_case, model_version=version, defaults={"probation": False})


@transaction.atomic
def update_guardrails(*, use_case: UseCase, actor, now: datetime | None = None,
                      **changes) -> Guardrails:
    """Change gates and guardrails, validated here (rates are fractions, the value field
    is a declared number, QA strata well formed); one ``guardrail.changed`` event with the
    fields that differ, before and after."""
    _require(actor, use_case, "change its gates and guardrails")
    guardrails, _ = Guardrails.objects.get_or_create(use_case=use_case)
    was_on_probation = guardrails.probation_decisions > 0
    guardrails = audit.edit_settings(guardrails, changes=changes, fields=SETTINGS, actor=actor,
                                     verb=StageVerb.GUARDRAILS_CHANGED,
                                     object_type="use_case", now=now)
    if guardrails.probation_decisions and not was_on_probation:
        _known_versions(use_case)
    return guardrails


@transaction.atomic
def set_kill_switch(*, use_case: UseCase, on: bool, actor, reason: str = "",
                    now: datetime | None = None) -> Guardrails:
    """Turn the kill switch on (every decision to review, from the next request on, in
    every process) or off. On needs a reason. Audited; a switch already in that position
    changes and records nothing."""
    _require(actor, use_case, "throw its kill switch")
    now = now or timezone.now()
    if on and not reason.strip():
        raise ValidationError({"reason": ["Say why everything goes to review: the "
                                          "reviewers and the audit trail see it."]})
    guardrails, _ = Guardrails.objects.get_or_create(use_case=use_case)
    guardrails = Guardrails.objects.select_for_update().get(pk=guardrails.pk)
    if guardrails.kill_switch == on:
        return guardrails
    guardrails.kill_switch = on
    guardrails.kill_switch_reason = reason.strip() if on else ""
    guardrails.kill_switch_at = now if on else None
    guardrails.save()  # through the ORM: every process drops its cached settings
    audit.record(actor=actor, verb=StageVerb.KILL_SWITCH_ON if on else StageVerb.KILL_SWITCH_OFF,
                 object_type="use_case", object_id=use_case.pk, now=now,
                 data={"slug": use_case.slug, "reason": reason.strip(),
                       "before": {"kill_switch": not on}, "after": {"kill_switch": on}})
    return guardrails


# --- At intake --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Routed:
    """A decision of a batch as the policy and stage routed it."""

    use_case: UseCase
    item: dict
    routing: RoutingResult
    priority: int  # of a case a guardrail opens: the policy's default


_settings = ProcessCache("guardrails")
_settings.watch(Guardrails)


def _settings_of(use_cases: Sequence[UseCase]) -> dict[int, Guardrails | None]:
    """Each use case's settings: from the use case where it came with them (intake's
    catalogue reads them with the use case, and drops it when they change), else from
    this process's cache, else one query."""
    found = {}
    for use_case in use_cases:
        if UseCase.guardrails.is_cached(use_case):
            found[use_case.pk] = UseCase.guardrails.related.get_cached_value(use_case)
    use_case_ids = {use_case.pk for use_case in use_cases} - found.keys()
    found.update({key: value for (_, key), value
                  in _settings.lookup(("guardrails", pk) for pk in use_case_ids).items()})
    if missing := use_case_ids - found.keys():
        loaded = {row.use_case_id: row
                  for row in Guardrails.objects.filter(use_case_id__in=missing)}
        for pk in missing:
            found[pk] = loaded.get(pk)
            _settings.store(("guardrails", pk), found[pk])
    return found


def _acts_at_intake(guardrails: Guardrails | None) -> bool:
    return guardrails is not None and bool(
        guardrails.kill_switch or guardrails.daily_auto_cap is not None
        or guardrails.daily_value_cap is not None or guardrails.probation_decisions
        or guardrails.qa_strata)


def _to_review(entry: Routed, text: str) -> RoutingResult:
    reason = {"rule": None, "action": "review", "text": text}
    routing = entry.routing
    if routing.route == Route.REVIEW and not routing.qa_sampled:
        return replace(routing, reasons=[reason, *routing.reasons])
    return RoutingResult(route=Route.REVIEW, reasons=[reason, *routing.reasons],
                         case=CaseSpec(entry.use_case.review_queue_id, entry.priority, False))


def stratum_rate(strata: dict, *, confidence: float, payload) -> float:
    """The QA rate of a decision's stratum (``stage_models.validate_qa_strata``)."""
    if strata["by"] == "confidence":
        for band in strata["bands"]:
            if band.get("below") is None or confidence < band["below"]:
                return band["rate"]
        return 0.0  # unreachable after validation: the last band is open-ended
    value = payload.get(strata["by"].removeprefix("input.")) if isinstance(payload, dict) \
        else None
    return strata["rates"].get(str(value), strata.get("other", 0.0)) \
        if value is not None else strata.get("other", 0.0)


def _value_of(item: dict, field: str) -> float | None:
    value = item["input"].get(field) if isinstance(item.get("input"), dict) else None
    return None if isinstance(value, bool) or not isinstance(value, int | float) else value


def hold_back(*, batch: Sequence[Routed], now: datetime) -> list[RoutingResult]:
    """The routes of a batch after the guardrails, in order (intake calls this once per
    batch, inside the transaction that stores the decisions, so the counters it adds to
    commit or roll back with them)."""
    settings = _settings_of([entry.use_case for entry in batch])
    if not any(_acts_at_intake(guardrails) for guardrails in settings.values()):
        return [entry.routing for entry in batch]
    routes = [entry.routing for entry in batch]
    on_probation = _probation(batch, settings)
    tallies = _locked_tallies(batch, settings, now=now)
    added: dict[int, list] = defaultdict(lambda: [0, 0.0])
    for n, entry in enumerate(batch):
        guardrails = settings[entry.use_case.pk]
        if guardrails is None or entry.use_case.stage == Stage.AUDIT:
            continue
        if guardrails.kill_switch:
            routes[n] = _to_review(entry, f"Kill switch on: every decision is reviewed "
                                          f"({guardrails.kill_switch_reason})")
            continue
        if routes[n].route != Route.AUTO:
            continue
        if n in on_probation:
            routes[n] = _to_review(entry, on_probation[n])
            continue
        if tallies is not None and entry.use_case.pk in tallies:
            held = _over_cap(entry, guardrails, tallies[entry.use_case.pk],
                             added[entry.use_case.pk])
            if held:
                routes[n] = _to_review(entry, held)
                continue
        if guardrails.qa_strata and entry.use_case.qa_queue_id \
                and entry.use_case.stage in (Stage.AUTOMATE, Stage.OPTIMIZE):
            rate = stratum_rate(guardrails.qa_strata, confidence=entry.item["confidence"],
                                payload=entry.item.get("input"))
            sampled = in_qa_sample(use_case_slug=entry.use_case.slug,
                                   external_id=entry.item["external_id"], rate=rate)
            routes[n] = replace(routes[n], qa_sampled=sampled, case=CaseSpec(
                entry.use_case.qa_queue_id, 10, False) if sampled else None)
    if tallies is not None:
        _add_to_tallies(added, now=now)
    return routes


def _probation(batch: Sequence[Routed], settings) -> dict[int, str]:
    """Positions of the batch whose model version is still on probation, with the words
    why. One statement counts the batch's decisions per version and answers the counts
    after it; its rows stay locked until commit, so concurrent batches of one version
    count in turn and probation covers exactly the first decisions."""
    counted: dict[tuple, int] = defaultdict(int)
    for entry in batch:
        if (settings[entry.use_case.pk] or Guardrails()).probation_decisions:
            counted[(entry.use_case.pk, entry.item["model_version"])] += 1
    if not counted:
        return {}
    after = {(pk, version): (decisions, probation) for pk, version, decisions, probation
             in db.add_to_counters(
                 ModelVersionRecord, key=("use_case_id", "model_version"),
                 counters=("decisions",), returning=("use_case_id", "model_version",
                                                     "decisions", "probation"),
                 rows=[(pk, version, count) for (pk, version), count
                       in sorted(counted.items())])}
    place = {key: after[key][0] - count for key, count in counted.items()}
    held = {}
    for n, entry in enumerate(batch):
        key = (entry.use_case.pk, entry.item["model_version"])
        if key not in counted or not after[key][1]:  # known before probation began
            continue
        limit = settings[entry.use_case.pk].probation_decisions
        if place[key] < limit:
            held[n] = (f"Model version {key[1]} is on probation: its first {limit} "
                       f"decisions are reviewed (this is number {place[key] + 1})")
        place[key] += 1
    return held


def _today(now: datetime):
    return now.astimezone(UTC).date()


def _locked_tallies(batch: Sequence[Routed], settings, *, now: datetime) -> dict | None:
    """Today's ``[passed, value]`` of each capped use case of the batch, read in one
    statement that adds zero: it creates the day's row if need be and locks it until
    commit, so concurrent batches of a capped use case take turns and a cap is never
    overshot."""
    capped = sorted({entry.use_case.pk for entry in batch
                     if (guardrails := settings[entry.use_case.pk]) is not None
                     and not guardrails.kill_switch
                     and (guardrails.daily_auto_cap is not None
                          or guardrails.daily_value_cap is not None)})
    if not capped:
        return None
    day = connection.ops.adapt_datefield_value(_today(now))
    return {pk: [passed, value] for pk, passed, value in db.add_to_counters(
        AutoPassTally, key=("use_case_id", "day"), counters=("passed", "value"),
        returning=("use_case_id", "passed", "value"), rows=[(pk, day, 0, 0.0) for pk in capped])}


def _over_cap(entry: Routed, guardrails: Guardrails, tally: list, added: list) -> str | None:
    """Why the cap holds this auto-passed decision back, or None (then it is counted)."""
    cap = guardrails.daily_auto_cap
    passed, value_passed = tally
    if cap is not None and passed + added[0] + 1 > cap:
        return (f"Daily cap reached: {cap} decisions passed automatically today; the "
                f"rest of the day's go to review")
    value = 0.0
    if guardrails.daily_value_cap is not None:
        value = _value_of(entry.item, guardrails.value_field)
        if value is None:
            return (f"The daily value cap reads input.{guardrails.value_field}, which this "
                    f"decision lacks: a person checks it")
        if value_passed + added[1] + value > guardrails.daily_value_cap:
            return (f"Daily value cap reached: passing this would take today's "
                    f"automatically passed {guardrails.value_field} over "
                    f"{guardrails.daily_value_cap:g}")
    added[0] += 1
    added[1] += value
    return None


def _add_to_tallies(added: dict[int, list], *, now: datetime) -> None:
    day = connection.ops.adapt_datefield_value(_today(now))
    db.add_to_counters(AutoPassTally, key=("use_case_id", "day"), counters=("passed", "value"),
                       rows=[(pk, day, passed, value)
                             for pk, (passed, value) in sorted(added.items()) if passed])


# --- Demotions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class GuardrailCheck:
    use_case: str
    stage: str
    demoted_to: str | None = None
    trigger: str = ""


def qa_errors_in_stage(*, use_case: UseCase, guardrails: Guardrails) -> Proportion:
    """QA samples the reviewers did not accept, of those of decisions received since the
    use case entered its stage (by day): what the stage itself produced."""
    rows = DailyQuality.objects.filter(use_case=use_case)
    if guardrails.stage_since is not None:
        rows = rows.filter(day__gte=_today(guardrails.stage_since))
    totals = rows.aggregate(reviewed=Sum("qa_reviewed"), agreed=Sum("qa_agreed"))
    reviewed = totals["reviewed"] or 0
    return Proportion(reviewed - (totals["agreed"] or 0), reviewed)


def check_use_case(*, use_case: UseCase, now: datetime | None = None) -> GuardrailCheck:
    """Demote the use case one stage if a drift alert is open (level alert) or its QA
    error rate in this stage is over the bound (with at least ``qa_error_min_sample``
    QA samples). Safe to run twice or at once: ``stages.demote`` moves once per trigger."""
    now = now or timezone.now()
    stage = use_case.stage
    if stage == Stage.AUDIT:
        return GuardrailCheck(use_case.slug, stage)
    guardrails = stages.guardrails_of(use_case)
    change = None
    alert = (DriftAlert.objects.filter(use_case=use_case, cleared_at__isnull=True,
                                       level=DriftLevel.ALERT).order_by("raised_at").first())
    if alert is not None:
        trigger = f"drift:{alert.pk}"
        change = stages.demote(
            use_case=use_case, from_stage=stage, trigger=trigger, now=now,
            reason=f"drift alert on {alert.feature} (PSI {alert.psi:.2f})",
            evidence={"drift_alert": alert.pk, "feature": alert.feature, "psi": alert.psi})
    if change is None and stage in (Stage.AUTOMATE, Stage.OPTIMIZE):
        errors = qa_errors_in_stage(use_case=use_case, guardrails=guardrails)
        if errors.total >= guardrails.qa_error_min_sample \
                and errors.rate > guardrails.qa_error_bound:
            since = guardrails.stage_since.isoformat() if guardrails.stage_since else "start"
            trigger = f"qa-error:{stage}:{since}"
            change = stages.demote(
                use_case=use_case, from_stage=stage, trigger=trigger, now=now,
                reason=(f"QA error rate {errors.rate:.1%} over {errors.total} samples is "
                        f"over its bound of {guardrails.qa_error_bound:.1%}"),
                evidence={"qa_errors": errors.as_dict(),
                          "bound": guardrails.qa_error_bound})
    if change is None:
        return GuardrailCheck(use_case.slug, stage)
    return GuardrailCheck(use_case.slug, stage, demoted_to=change.to_stage,
                          trigger=change.trigger)


def check_all(*, now: datetime | None = None) -> list[GuardrailCheck]:
    """Check every use case above the audit stage (the beat task)."""
    return [check_use_case(use_case=use_case, now=now)
            for use_case in UseCase.objects.exclude(stage=Stage.AUDIT).order_by("pk")]
