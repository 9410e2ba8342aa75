"""Drift: do a use case's recent decisions still look like those of a reference window?

For the confidence and each input feature the use case declares (the top-level
properties of its input schema that are numbers, text or one of a list), the
population stability index of the most recent ``RECENT_DECISIONS`` decisions against the
reference window the owner set (``set_reference``):

    PSI = sum over bins of (recent share - reference share) x ln(recent / reference)

Numeric features are binned between the reference's deciles (plus a bin for a missing
value); categorical ones by the reference's common categories, the rest "other".
Under 0.1 the population is stable, from 0.1 it has moved (warn), from 0.25 it has
changed (alert): the usual reading, and the defaults of each use case's thresholds.

``check_drift`` (run by a Celery beat task, safe to run twice or at once) records the
figures, opens an alert when a feature crosses a threshold, raises it from warning to
alert, clears it when the feature falls back under the warning, and tells the use case's
Accountable and Informed for ``incident`` when an alert opens or rises.
"""

import bisect
import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from exceptions_app.models import Decision, DriftAlert, DriftLevel, DriftReference, UseCase
from exceptions_app.verbs import DomainVerb
from workflows import actors, hooks
from workflows import selectors as engine_selectors
from workflows.models import Activity, RaciRole
from workflows.services import audit, outbox, raci

# A reference needs enough decisions for its deciles and shares to mean something; a
# recent window needs enough for its PSI's sampling noise (about bins / n) to stay far
# under the warning threshold: 10 bins over 300 decisions add about 0.03.
MIN_REFERENCE_DECISIONS = 500
MIN_RECENT_DECISIONS = 300
# The recent window: large enough that noise stays small (about 0.01), small enough
# that a shift fills most of it within a few hundred decisions.
RECENT_DECISIONS = 1000
# The reference's most recent decisions in its window are enough for its bins.
MAX_REFERENCE_DECISIONS = 20_000
NUMERIC_BINS = 10
# A category is kept apart when it has at least this share of the reference; at most
# this many are kept, the rest pooled as "other".
MIN_CATEGORY_SHARE = 0.01
MAX_CATEGORIES = 20
OTHER = "other"
# An empty bin on one side would make the PSI infinite: shares are floored here.
SHARE_FLOOR = 1e-4


def declared_features(use_case: UseCase) -> dict[str, str]:
    """``{feature: "numeric" | "categorical"}``: the confidence, then the input schema's
    top-level numbers, texts, booleans and enumerations."""
    features = {"confidence": "numeric"}
    properties = (use_case.input_schema or {}).get("properties") or {}
    for name, schema in properties.items():
        kind = schema.get("type") if isinstance(schema, dict) else None
        if kind in ("number", "integer"):
            features[f"input.{name}"] = "numeric"
        elif kind in ("string", "boolean") or (isinstance(schema, dict) and "enum" in schema):
            features[f"input.{name}"] = "categorical"
    return features


def _value(feature: str, confidence: float, payload) -> object:
    if feature == "confidence":
        return confidence
    return payload.get(feature.removeprefix("input.")) if isinstance(payload, dict) else None


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _numeric_bin(edges: list[float], value) -> int:
    number = _number(value)
    return len(edges) + 1 if number is None else bisect.bisect_right(edges, number)


def _label(value) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "missing"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _category(categories: list[str], value) -> str:
    label = _label(value)
    return label if label in categories else OTHER


def _shares(counts: list[int]) -> list[float]:
    total = sum(counts)
    return [count / total for count in counts] if total else [0.0] * len(counts)


def _distribution(kind: str, values: list) -> dict:
    if kind == "numeric":
        numbers = sorted(n for n in map(_number, values) if n is not None)
        edges = sorted({numbers[len(numbers) * k // NUMERIC_BINS]
                        for k in range(1, NUMERIC_BINS)}) if numbers else []
        counts = [0] * (len(edges) + 2)  # the bins between the edges, then "missing"
        for value in values:
            counts[_numeric_bin(edges, value)] += 1
        return {"kind": kind, "edges": edges, "shares": _shares(counts)}
    labels = Counter(map(_label, values))
    categories = [label for label, count in labels.most_common(MAX_CATEGORIES)
                  if count >= MIN_CATEGORY_SHARE * len(values) and label != OTHER]
    counts = Counter(_category(categories, value) for value in values)
    return {"kind": kind, "categories": categories,
            "shares": _shares([counts[label] for label in [*categories, OTHER]])}


def _recent_shares(reference: dict, values: list) -> list[float]:
    if reference["kind"] == "numeric":
        counts = [0] * len(reference["shares"])
        for value in values:
            counts[_numeric_bin(reference["edges"], value)] += 1
        return _shares(counts)
    categories = reference["categories"]
    counts = Counter(_category(categories, value) for value in values)
    return _shares([counts[label] for label in [*categories, OTHER]])


def psi(reference: list[float], recent: list[float]) -> float:
    total = 0.0
    for expected, actual in zip(reference, recent, strict=True):
        expected, actual = max(expected, SHARE_FLOOR), max(actual, SHARE_FLOOR)
        total += (actual - expected) * math.log(actual / expected)
    return total


# --- The reference --------------------------------------------------------------------------


def may_set_reference(*, user, use_case: UseCase) -> bool:
    """The use case's owner (the Accountable for review) and managers."""
    return engine_selectors.is_manager(user) or any(
        person.pk == user.pk for person in raci.accountable(process=use_case.process))


@transaction.atomic
def set_reference(*, use_case: UseCase, since: datetime, until: datetime, actor,
                  warn_threshold: float | None = None, alert_threshold: float | None = None,
                  now: datetime | None = None) -> DriftReference:
    """Take the decisions received from ``since`` to ``until`` as what "no drift" looks
    like (its most recent ``MAX_REFERENCE_DECISIONS``); audited ``drift.reference_set``.
    Open alerts are cleared: they were measured against the old reference.

    A window with fewer than ``MIN_REFERENCE_DECISIONS`` is refused on ``since``, saying
    how many it holds, rather than giving a PSI that would mean nothing.
    """
    now = now or timezone.now()
    if not may_set_reference(user=actor, use_case=use_case):
        raise PermissionDenied("Only the use case's owner or a manager sets its drift "
                               "reference.")
    if until <= since:
        raise ValidationError({"until": ["The reference window must end after it starts."]})
    rows = list(Decision.objects.filter(use_case=use_case, received_at__gte=since,
                                        received_at__lt=until)
                .order_by("-received_at").values_list("confidence", "input")
                [:MAX_REFERENCE_DECISIONS])
    if len(rows) < MIN_REFERENCE_DECISIONS:
        raise ValidationError({"since": [
            f"The window from {since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} holds "
            f"{len(rows)} decisions; a drift reference needs at least "
            f"{MIN_REFERENCE_DECISIONS}. Choose a longer window."]})
    distributions = {
        feature: _distribution(kind, [_value(feature, confidence, payload)
                                      for confidence, payload in rows])
        for feature, kind in declared_features(use_case).items()}
    reference, _ = DriftReference.objects.select_for_update().get_or_create(
        use_case=use_case, defaults={
            "since": since, "until": until, "decisions": len(rows),
            "distributions": distributions, "set_by": actor, "set_at": now})
    reference.since, reference.until, reference.decisions = since, until, len(rows)
    reference.distributions, reference.set_by, reference.set_at = distributions, actor, now
    if warn_threshold is not None:
        reference.warn_threshold = warn_threshold
    if alert_threshold is not None:
        reference.alert_threshold = alert_threshold
    if not 0 < reference.warn_threshold < reference.alert_threshold:
        raise ValidationError({"alert_threshold": [
            "The alert threshold must be above the warning threshold, and both above 0."]})
    reference.checked_at, reference.checked_decisions, reference.last_psi = None, 0, {}
    reference.save()
    DriftAlert.objects.filter(use_case=use_case, cleared_at__isnull=True).update(cleared_at=now)
    audit.record(actor=actor, verb=DomainVerb.DRIFT_REFERENCE_SET, object_type="use_case",
                 object_id=use_case.pk, now=now,
                 data={"since": since.isoformat(), "until": until.isoformat(),
                       "decisions": len(rows), "features": sorted(distributions),
                       "warn_threshold": reference.warn_threshold,
                       "alert_threshold": reference.alert_threshold})
    return reference


# --- The check ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftCheck:
    """What a check found: ``status`` is ``checked``, ``no-reference`` or
    ``too-few-recent`` (then ``message`` says so and nothing was computed)."""

    status: str
    message: str = ""
    recent_decisions: int = 0
    psi: dict[str, float] | None = None
    levels: dict[str, str | None] | None = None


def level_of(value: float, reference: DriftReference) -> str | None:
    if value >= reference.alert_threshold:
        return DriftLevel.ALERT
    if value >= reference.warn_threshold:
        return DriftLevel.WARN
    return None


@transaction.atomic
def check_drift(*, use_case: UseCase, now: datetime | None = None) -> DriftCheck:
    """Compare the recent decisions with the reference; open, raise or clear alerts.

    The reference row is locked for the check, so two checks of one use case run one
    after the other; the second finds the alerts the first opened (and the unique open
    alert per feature backs this). A notice's dedup key names the alert and its level:
    a re-run never tells anyone twice.
    """
    now = now or timezone.now()
    reference = (DriftReference.objects.select_for_update()
                 .filter(use_case=use_case).first())
    if reference is None:
        return DriftCheck("no-reference", "No drift reference yet: the use case's owner "
                                          "sets one on its monitoring page.")
    rows = list(Decision.objects.filter(use_case=use_case).order_by("-received_at")
                .values_list("confidence", "input")[:RECENT_DECISIONS])
    if len(rows) < MIN_RECENT_DECISIONS:
        return DriftCheck("too-few-recent", (
            f"Only {len(rows)} decisions so far; drift is measured over the last "
            f"{RECENT_DECISIONS} once there are at least {MIN_RECENT_DECISIONS}."),
            recent_decisions=len(rows))
    figures = {
        feature: psi(distribution["shares"], _recent_shares(
            distribution, [_value(feature, confidence, payload) for confidence, payload in rows]))
        for feature, distribution in reference.distributions.items()}
    reference.checked_at, reference.checked_decisions = now, len(rows)
    reference.last_psi = figures
    reference.save(update_fields=["checked_at", "checked_decisions", "last_psi"])

    open_alerts = {alert.feature: alert for alert in
                   DriftAlert.objects.filter(use_case=use_case, cleared_at__isnull=True)}
    levels = {feature: level_of(value, reference) for feature, value in figures.items()}
    for feature, level in levels.items():
        alert = open_alerts.get(feature)
        if level is None:
            if alert is not None:
                alert.cleared_at = now
                alert.save(update_fields=["cleared_at"])
        elif alert is None:
            _raise(DriftAlert.objects.create(use_case=use_case, feature=feature, level=level,
                                             psi=figures[feature], raised_at=now),
                   reference=reference, now=now)
        elif level == DriftLevel.ALERT and alert.level == DriftLevel.WARN:
            alert.level, alert.psi = level, figures[feature]
            alert.save(update_fields=["level", "psi"])
            _raise(alert, reference=reference, now=now)
    return DriftCheck("checked", recent_decisions=len(rows), psi=figures, levels=levels)


def _raise(alert: DriftAlert, *, reference: DriftReference, now: datetime) -> None:
    use_case = alert.use_case
    threshold = (reference.alert_threshold if alert.level == DriftLevel.ALERT
                 else reference.warn_threshold)
    audit.record(verb=DomainVerb.DRIFT_RAISED, object_type="use_case", object_id=use_case.pk,
                 actor=actors.SYSTEM, now=now,
                 data={"feature": alert.feature, "level": alert.level, "psi": alert.psi,
                       "threshold": threshold, "alert": alert.pk})
    people = {person.pk: person for role in (RaciRole.ACCOUNTABLE, RaciRole.INFORMED)
              for person in raci.holders_of(process=use_case.process, role=role,
                                            activities=(Activity.INCIDENT, Activity.REVIEW))}
    outbox.notify_users(
        users=people.values(), now=now, dedup_prefix=f"drift:{alert.pk}:{alert.level}",
        text=(f"Drift {alert.get_level_display().lower()} on {use_case.name}: "
              f"{alert.feature} has a PSI of {alert.psi:.2f} against the reference "
              f"(threshold {threshold:g}) over the last {reference.checked_decisions} "
              f"decisions.\nSee the use case's monitoring page."))


def check_all(*, now: datetime | None = None) -> dict[str, DriftCheck]:
    """Check every use case that has a reference (the beat task)."""
    return {use_case.slug: check_drift(use_case=use_case, now=now)
            for use_case in UseCase.objects.filter(drift_reference__isnull=False)}



# --- What the monitoring page and the API show ----------------------------------------------


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    psi: float
    level: str | None


@dataclass(frozen=True)
class DriftSummary:
    reference: DriftReference | None
    features: list[FeatureDrift]
    open_alerts: list[DriftAlert]
    message: str  # why there are no figures, when there are none


def open_alerts_of(use_case: UseCase) -> list[DriftAlert]:
    return list(DriftAlert.objects.filter(use_case=use_case, cleared_at__isnull=True)
                .order_by("feature"))


def drift_summary(use_case: UseCase) -> DriftSummary:
    """The last check's figures and the open alerts: two queries, no decisions read."""
    reference = (DriftReference.objects.select_related("set_by")
                 .filter(use_case=use_case).first())
    alerts = open_alerts_of(use_case)
    if reference is None:
        return DriftSummary(None, [], alerts, "No drift reference yet: the use case's owner "
                                              "sets one below.")
    features = [FeatureDrift(feature, value, level_of(value, reference))
                for feature, value in sorted(reference.last_psi.items())]
    message = "" if features else "Not checked since the reference was set."
    return DriftSummary(reference, features, alerts, message)


def summary_as_dict(summary: DriftSummary) -> dict:
    reference = summary.reference
    return {
        "reference": None if reference is None else {
            "since": reference.since, "until": reference.until,
            "decisions": reference.decisions, "set_at": reference.set_at,
            "set_by": reference.set_by.get_username(),
            "warn_threshold": reference.warn_threshold,
            "alert_threshold": reference.alert_threshold,
            "checked_at": reference.checked_at,
            "checked_decisions": reference.checked_decisions},
        "features": [{"feature": f.feature, "psi": f.psi, "level": f.level}
                     for f in summary.features],
        "open_alerts": [{"feature": a.feature, "level": a.level, "psi": a.psi,
                         "raised_at": a.raised_at} for a in summary.open_alerts],
        "message": summary.message,
    }

def dashboard_alerts() -> list[hooks.Alert]:
    """The open drift alerts as the managers' dashboard lists them (an alert source):
    one query over the open alerts, a handful of rows."""
    return [hooks.Alert(
        process_id=alert.use_case.process_id, level=alert.level,
        title=f"Drift on {alert.use_case.name}: {alert.feature}",
        detail=f"PSI {alert.psi:.2f} against the reference",
        url=reverse("use-case-monitoring", args=[alert.use_case.slug]) + "#h-drift",
        raised_at=alert.raised_at)
        for alert in DriftAlert.objects.filter(cleared_at__isnull=True)
        .select_related("use_case").order_by("raised_at", "pk")]


# --- /metrics -------------------------------------------------------------------------------


def psi_by_feature() -> list[tuple[tuple[str, str], float]]:
    """The last check's PSI of each use case's features: ``backstop_drift_psi``."""
    return [((slug, feature), value)
            for slug, figures in DriftReference.objects.order_by("use_case__slug")
            .values_list("use_case__slug", "last_psi")
            for feature, value in sorted(figures.items())]


def open_alerts() -> list[tuple[tuple[str, str], float]]:
    """Open drift alerts per use case and level: ``backstop_drift_alerts_open``."""
    counts = Counter(DriftAlert.objects.filter(cleared_at__isnull=True)
                     .values_list("use_case__slug", "level"))
    return [(key, count) for key, count in sorted(counts.items())]
