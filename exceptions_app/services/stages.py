"""Stages earned from evidence: what a use case has shown, the gates of its next stage,
and the three ways its stage moves.

- ``advance_stage``: one step up, only when the gates of the next stage are met by the
  current model version's evidence, signed off by the Accountable for ``stage_change``;
  the evidence and the gates are stored in the audit event (``stage.advanced``).
- ``lower_stage``: one step down by hand, always allowed with a reason.
- ``demote``: one step down by a guardrail (``services/guardrails.py``), exactly once per
  trigger, however many checks see it at once.

Evidence is read from the quality rollups (``DailyQuality``: agreement, QA accuracy,
exception rate, volume) and from the cases (SLA compliance), over the gates' window.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from exceptions_app.activities import DomainActivity
from exceptions_app.models import DailyQuality, Decision, Route, Stage, UseCase
from exceptions_app.services.quality import Proportion
from exceptions_app.stage_models import (
    Guardrails,
    StageChange,
    StageMove,
    stage_above,
    stage_below,
)
from exceptions_app.verbs import StageVerb
from workflows import actors
from workflows import selectors as engine_selectors
from workflows.models import Activity, RaciRole
from workflows.services import audit, outbox, raci
from workflows.services.errors import Conflict


class StageRefused(Conflict):
    """A move up the gates or the state do not allow (HTTP 409): ``problems`` say why."""

    def __init__(self, problems: list[str], *, evidence: dict | None = None):
        super().__init__(" ".join(problems))
        self.problems = problems
        self.evidence = evidence


def guardrails_of(use_case: UseCase) -> Guardrails:
    """The use case's gates and guardrails, or the defaults (unsaved) when none are set."""
    return (Guardrails.objects.filter(use_case=use_case).first()
            or Guardrails.defaults_for(use_case))


# --- Evidence ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionEvidence:
    """What one model version showed over the window."""

    model_version: str
    decisions: int
    agreement: Proportion  # reviewed decisions the reviewer accepted as the AI proposed
    qa_accuracy: Proportion  # QA-sampled auto-passed decisions the reviewer accepted
    exceptions: Proportion  # decisions sent to review, of all
    sla: Proportion  # cases (reviews and QA samples) resolved within their due time

    def as_dict(self) -> dict:
        return {"model_version": self.model_version, "decisions": self.decisions,
                "agreement": self.agreement.as_dict(),
                "qa_accuracy": self.qa_accuracy.as_dict(),
                "exception_rate": self.exceptions.as_dict(),
                "sla_compliance": self.sla.as_dict()}


@dataclass(frozen=True)
class Gate:
    key: str
    label: str
    requirement: str
    actual: str
    met: bool

    def as_dict(self) -> dict:
        return {"gate": self.key, "label": self.label, "requirement": self.requirement,
                "actual": self.actual, "met": self.met}

    @property
    def problem(self) -> str:
        return f"{self.label}: needs {self.requirement}, has {self.actual}."


@dataclass(frozen=True)
class StageEvidence:
    use_case: UseCase
    stage: str
    next_stage: str | None
    since: date
    until: date
    current_version: str | None  # the model version of the latest decision
    versions: list[VersionEvidence]
    gates: list[Gate]
    guardrails: Guardrails

    @property
    def current(self) -> VersionEvidence | None:
        return next((v for v in self.versions if v.model_version == self.current_version),
                    None)

    @property
    def gates_met(self) -> bool:
        return self.next_stage is not None and all(gate.met for gate in self.gates)

    def as_dict(self) -> dict:
        return {"use_case": self.use_case.slug, "stage": self.stage,
                "next_stage": self.next_stage, "since": self.since.isoformat(),
                "until": self.until.isoformat(), "current_model_version": self.current_version,
                "versions": [v.as_dict() for v in self.versions],
                "gates": [gate.as_dict() for gate in self.gates],
                "gates_met": self.gates_met,
                "kill_switch": self.guardrails.kill_switch}


def _percent(value: float | None) -> str:
    return "no data" if value is None else f"{value:.1%}"


def _version_evidence(*, use_case: UseCase, since: date, until: date) -> list[VersionEvidence]:
    """One query: the rollups of the window per model version and route (a few rows a
    day, however many decisions)."""
    rows = (DailyQuality.objects.filter(use_case=use_case, day__gte=since, day__lte=until)
            .values("model_version", "route").order_by()
            .annotate(decisions=Sum("decisions"), resolved=Sum("resolved"),
                      in_time=Sum("resolved_in_time"), overridden=Sum("overridden"),
                      qa_reviewed=Sum("qa_reviewed"), qa_agreed=Sum("qa_agreed")))
    totals: dict[str, dict] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        figures = totals[row["model_version"]]
        for name in ("decisions", "resolved", "in_time", "qa_reviewed", "qa_agreed"):
            figures[name] += row[name]
        if row["route"] == Route.REVIEW:
            figures["review"] += row["decisions"]
            figures["review_resolved"] += row["resolved"]
            figures["agreed"] += row["resolved"] - row["overridden"]
    return [VersionEvidence(
        model_version=version, decisions=figures["decisions"],
        agreement=Proportion(figures["agreed"], figures["review_resolved"]),
        qa_accuracy=Proportion(figures["qa_agreed"], figures["qa_reviewed"]),
        exceptions=Proportion(figures["review"], figures["decisions"]),
        sla=Proportion(figures["in_time"], figures["resolved"]))
        for version, figures in sorted(totals.items())]


def gates_for(*, next_stage: str | None, evidence: VersionEvidence | None,
              guardrails: Guardrails) -> list[Gate]:
    """The gates of ``next_stage`` against the current model version's evidence.

    Up to assist and automate: enough reviewed decisions, agreement with the reviewers,
    SLA compliance (and, if set, an exception rate at most its bound). Up to optimize:
    enough QA samples of auto-passed decisions, and the lower end of their accuracy's 95%
    interval above the bound (automate is where QA samples come from), SLA compliance.
    """
    if next_stage is None:
        return []
    empty = Proportion(0, 0)
    agreement = evidence.agreement if evidence else empty
    qa = evidence.qa_accuracy if evidence else empty
    sla = evidence.sla if evidence else empty
    exceptions = evidence.exceptions if evidence else empty
    gates = []
    if next_stage in (Stage.ASSIST, Stage.AUTOMATE):
        gates.append(Gate("reviewed", "Reviewed decisions",
                          f"at least {guardrails.min_reviewed}", f"{agreement.total}",
                          agreement.total >= guardrails.min_reviewed))
        gates.append(Gate("agreement", "Agreement with reviewers",
                          f"at least {guardrails.min_agreement:.0%}", _percent(agreement.rate),
                          agreement.rate is not None
                          and agreement.rate >= guardrails.min_agreement))
        if guardrails.max_exception_rate is not None:
            gates.append(Gate("exception_rate", "Exception rate",
                              f"at most {guardrails.max_exception_rate:.0%}",
                              _percent(exceptions.rate),
                              exceptions.rate is not None
                              and exceptions.rate <= guardrails.max_exception_rate))
    else:
        low = qa.interval[0] if qa.total else None
        gates.append(Gate("qa_reviewed", "QA samples reviewed",
                          f"at least {guardrails.min_qa_reviewed}", f"{qa.total}",
                          qa.total >= guardrails.min_qa_reviewed))
        gates.append(Gate("qa_accuracy", "QA accuracy (95% interval's lower end)",
                          f"at least {guardrails.min_qa_accuracy_low:.0%}", _percent(low),
                          low is not None and low >= guardrails.min_qa_accuracy_low))
    gates.append(Gate("sla", "SLA compliance", f"at least {guardrails.min_sla_compliance:.0%}",
                      _percent(sla.rate),
                      sla.rate is not None and sla.rate >= guardrails.min_sla_compliance))
    return gates


def stage_evidence(*, use_case: UseCase, now: datetime | None = None) -> StageEvidence:
    """The evidence of each model version over the gates' window, and the gates of the
    next stage checked against the current version (that of the latest decision)."""
    now = now or timezone.now()
    guardrails = guardrails_of(use_case)
    until = now.astimezone(UTC).date()
    since = until - timedelta(days=guardrails.evidence_days - 1)
    versions = _version_evidence(use_case=use_case, since=since, until=until)
    current = (Decision.objects.filter(use_case=use_case).order_by("-received_at")
               .values_list("model_version", flat=True).first())
    next_stage = stage_above(use_case.stage)
    evidence = StageEvidence(use_case=use_case, stage=use_case.stage, next_stage=next_stage,
                             since=since, until=until, current_version=current,
                             versions=versions, gates=[], guardrails=guardrails)
    gates = gates_for(next_stage=next_stage, evidence=evidence.current, guardrails=guardrails)
    return StageEvidence(**{**evidence.__dict__, "gates": gates})


# --- Who moves a stage ------------------------------------------------------------------------


def sign_off_holders(use_case: UseCase) -> list:
    """The Accountable for ``stage_change`` (else the business owner): who signs off."""
    return raci.accountable(process=use_case.process, activity=DomainActivity.STAGE_CHANGE)


def may_sign_off(*, user, use_case: UseCase) -> bool:
    return any(person.pk == user.pk for person in sign_off_holders(use_case))


def may_lower(*, user, use_case: UseCase) -> bool:
    return may_sign_off(user=user, use_case=use_case) or engine_selectors.is_manager(user)


# --- Moves ------------------------------------------------------------------------------------


def _move(*, use_case: UseCase, to_stage: str, now: datetime) -> UseCase:
    """Set the stage of the locked row through the ORM, so intake's cached copy of the use
    case is dropped at once (``process_cache``), and restart the stage's clock."""
    use_case.stage = to_stage
    use_case.save(update_fields=["stage"])
    guardrails, created = Guardrails.objects.get_or_create(
        use_case=use_case, defaults={"stage_since": now})
    if not created:
        guardrails.stage_since = now
        guardrails.save(update_fields=["stage_since"])
    return use_case


@transaction.atomic
def advance_stage(*, use_case: UseCase, actor, note: str = "",
                  now: datetime | None = None) -> StageChange:
    """Move the use case one stage up, signed off by ``actor``, the Accountable for
    ``stage_change``. Refused (``StageRefused``) at the top, while the kill switch is on,
    or while a gate of the next stage is not met, naming each; the evidence and gates
    are stored with the move and in its ``stage.advanced`` event."""
    now = now or timezone.now()
    if not may_sign_off(user=actor, use_case=use_case):
        names = ", ".join(p.get_username() for p in sign_off_holders(use_case))
        raise PermissionDenied(
            f"Only the Accountable for stage changes of {use_case.name} signs off a move "
            f"up ({names or 'its RACI matrix names nobody'}).")
    use_case = UseCase.objects.select_for_update().get(pk=use_case.pk)
    evidence = stage_evidence(use_case=use_case, now=now)
    if evidence.next_stage is None:
        raise StageRefused([f"{use_case.name} is at the top stage already."])
    if evidence.guardrails.kill_switch:
        raise StageRefused(["The kill switch is on: turn it off before moving up."])
    failing = [gate.problem for gate in evidence.gates if not gate.met]
    snapshot = evidence.as_dict()
    if failing:
        raise StageRefused(failing, evidence=snapshot)
    from_stage = use_case.stage
    _move(use_case=use_case, to_stage=evidence.next_stage, now=now)
    change = StageChange.objects.create(
        use_case=use_case, from_stage=from_stage, to_stage=evidence.next_stage,
        move=StageMove.ADVANCED, actor=actor, reason=note, evidence=snapshot, at=now)
    audit.record(actor=actor, verb=StageVerb.STAGE_ADVANCED, object_type="use_case",
                 object_id=use_case.pk, now=now,
                 data={"slug": use_case.slug, "before": {"stage": from_stage},
                       "after": {"stage": evidence.next_stage},
                       "signed_off_by": actor.get_username(), "note": note,
                       "evidence": snapshot, "stage_change": change.pk})
    return change


@transaction.atomic
def lower_stage(*, use_case: UseCase, actor, reason: str,
                now: datetime | None = None) -> StageChange:
    """Move the use case one stage down: always allowed to its Accountable for stage
    changes and to managers, with a reason; audited ``stage.lowered``."""
    now = now or timezone.now()
    if not may_lower(user=actor, use_case=use_case):
        raise PermissionDenied("Only the Accountable for stage changes or a manager lowers "
                               "a use case's stage.")
    if not reason.strip():
        raise ValidationError({"reason": ["Say why the stage goes down: it is kept in the "
                                          "audit trail."]})
    use_case = UseCase.objects.select_for_update().get(pk=use_case.pk)
    to_stage = stage_below(use_case.stage)
    if to_stage is None:
        raise StageRefused([f"{use_case.name} is at the audit stage already: every "
                            f"decision is reviewed."])
    return _record_down(use_case=use_case, to_stage=to_stage, move=StageMove.LOWERED,
                        actor=actor, reason=reason.strip(), now=now)


def _record_down(*, use_case: UseCase, to_stage: str, move: str, actor, reason: str,
                 now: datetime, trigger: str = "", evidence: dict | None = None) -> StageChange:
    from_stage = use_case.stage
    _move(use_case=use_case, to_stage=to_stage, now=now)
    change = StageChange.objects.create(
        use_case=use_case, from_stage=from_stage, to_stage=to_stage, move=move,
        trigger=trigger, actor=None if actors.is_system(actor) else actor, reason=reason,
        evidence=evidence or {}, at=now)
    verb = StageVerb.STAGE_DEMOTED if move == StageMove.DEMOTED else StageVerb.STAGE_LOWERED
    audit.record(actor=actor, verb=verb, object_type="use_case", object_id=use_case.pk,
                 now=now, data={"slug": use_case.slug, "before": {"stage": from_stage},
                                "after": {"stage": to_stage}, "reason": reason,
                                "trigger": trigger, "evidence": evidence or {},
                                "stage_change": change.pk})
    return change


@transaction.atomic
def demote(*, use_case: UseCase, from_stage: str, trigger: str, reason: str,
           evidence: dict | None = None, now: datetime | None = None) -> StageChange | None:
    """A guardrail's demotion: one stage down from ``from_stage``, by the system, once.

    The use case's row is locked, then the move happens only if the stage is still
    ``from_stage`` and ``trigger`` has not demoted it before: of checks racing on one use
    case (QA errors and a drift alert at once, or two workers), exactly one demotes; the
    others find the stage moved and answer None. ``one_demotion_per_trigger`` backs it.
    Audited ``stage.demoted``; the Accountable and Informed for ``incident`` are told.
    """
    now = now or timezone.now()
    use_case = UseCase.objects.select_for_update().get(pk=use_case.pk)
    to_stage = stage_below(use_case.stage)
    if (use_case.stage != from_stage or to_stage is None
            or StageChange.objects.filter(use_case=use_case, trigger=trigger).exists()):
        return None
    change = _record_down(use_case=use_case, to_stage=to_stage, move=StageMove.DEMOTED,
                          actor=actors.SYSTEM, reason=reason, now=now, trigger=trigger,
                          evidence=evidence)
    people = {person.pk: person for role in (RaciRole.ACCOUNTABLE, RaciRole.INFORMED)
              for person in raci.holders_of(process=use_case.process, role=role,
                                            activities=(Activity.INCIDENT, Activity.REVIEW))}
    outbox.notify_users(
        users=people.values(), now=now, dedup_prefix=f"stage-demoted:{change.pk}",
        text=(f"{use_case.name} was moved down from {Stage(from_stage).label.split(':')[0]} "
              f"to {Stage(to_stage).label.split(':')[0]} automatically: {reason}\n"
              f"Its stage page shows the evidence; moving up again needs the gates and "
              f"sign-off."))
    return change
