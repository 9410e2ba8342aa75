"""The evidence an auditor asks for, for a period: every decision received (with the
policy version it was judged against and the use case's stage then) and every audit
event that occurred (case transitions, approvals, sign-offs, RACI and configuration
changes), as CSV or JSON Lines, streamed in constant memory.

One file, one row per record, decisions first then events, each part in time order.
Both are read in keyset chunks over an index in that order: decisions per use case by
``(use_case, received_at, id)`` (``decision_use_case_idx``), events by
``(occurred_at, id)`` (``audit_occurred_idx``), so a download of any size holds one
chunk and no query scans history outside the period. Exporting is a privileged action:
refused without ``workflows.export_evidence`` (auditors, managers' role) and audited
``evidence.exported`` before the first byte.
"""

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q

from exceptions_app.audit_filters import use_case_events
from exceptions_app.models import Decision, UseCase
from exceptions_app.verbs import DomainVerb
from workflows import audit_log, verbs
from workflows.actors import is_system
from workflows.models import AuditEvent, exports_evidence
from workflows.services import audit

CHUNK = 2000
FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
# The columns of both formats, in order, with what each holds.
COLUMNS = {
    "record": "decision or event",
    "id": "the decision's or the audit event's id",
    "at": "when the decision arrived, or the event occurred",
    "category": "decision, transition, approval, sign-off, raci, configuration or other",
    "use_case": "the use case's slug (decisions)",
    "actor": "who acted: a username, ai:<system> or system (events)",
    "verb": "the audit event's verb (events)",
    "wording": "what the event means, in words (events)",
    "object_type": "what the event is about (events)",
    "object_id": "its id (events)",
    "case": "the case's id, if any",
    "policy_version": "the policy version number the decision was judged against",
    "stage": "the use case's stage when the decision arrived",
    "route": "auto, review or reject (decisions)",
    "model_version": "the model version the AI system declared (decisions)",
    "external_id": "the AI system's id of the decision (decisions)",
    "data": "the event's recorded details, before/after for changes (JSON)",
    "row_hash": "the event's hash, which the chain vouches for (events)",
    "seq": "the event's place in the hash chain; empty while not yet sealed",
}
# What kind of evidence an event is, by its verb (the first match wins).
_CATEGORIES = (
    (("case.approved", "case.submitted_for_approval", "case.sent_back", "policy.approved"),
     "approval"),
    (("stage.", "use_case.stage"), "sign-off"),
    (("case.",), "transition"),
    (("raci.",), "raci"),
    (("decision.",), "decision"),
    (("policy.", "use_case.", "ai_system.", "api_key.", "queue.", "process.", "sla_policy.",
      "calendar.", "escalation_chain.", "user_token.", "role."), "configuration"),
)


def category(verb: str) -> str:
    for prefixes, name in _CATEGORIES:
        if verb.startswith(prefixes):
            return name
    return "other"


@dataclass(frozen=True)
class Period:
    since: datetime
    until: datetime  # excluded
    use_case: UseCase | None = None

    def as_data(self) -> dict:
        return {"since": self.since.isoformat(), "until": self.until.isoformat(),
                **({"use_case": self.use_case.slug} if self.use_case else {})}


def parse_period(params: Mapping[str, str]) -> Period:
    """The period a page's, the API's or the command's arguments ask for; both ends are
    needed (an export of all history is a deliberate period). ``ValidationError`` names
    each field."""
    errors: dict[str, list[str]] = {}
    since = audit_log.parse_instant(params.get("since", "").strip(), name="since", errors=errors)
    until = audit_log.parse_instant(params.get("until", "").strip(), name="until", errors=errors,
                               end=True)
    for name, value in (("since", since), ("until", until)):
        if value is None and name not in errors:
            errors[name] = [f"Give the period's {'first' if name == 'since' else 'last'} day."]
    if since and until and until <= since:
        errors["until"] = ["The period ends before it starts."]
    use_case = None
    slug = params.get("use_case", "").strip()
    if slug:
        use_case = UseCase.objects.filter(slug=slug).first()
        if use_case is None:
            errors["use_case"] = [f"No use case is called {slug!r}."]
    if errors:
        raise ValidationError(errors)
    return Period(since=since, until=until, use_case=use_case)


def _after(field: str, last: tuple | None) -> Q:
    """Past the keyset position ``last`` = (value of ``field``, id)."""
    if last is None:
        return Q()
    return Q(**{f"{field}__gt": last[0]}) | Q(**{field: last[0], "id__gt": last[1]})


def decision_records(period: Period, *, chunk: int = CHUNK) -> Iterator[dict]:
    use_cases = ([period.use_case] if period.use_case
                 else list(UseCase.objects.order_by("slug")))
    for use_case in use_cases:
        last = None
        while True:
            rows = list(Decision.objects
                        .filter(_after("received_at", last), use_case=use_case,
                                received_at__gte=period.since, received_at__lt=period.until)
                        .order_by("received_at", "id")
                        .values_list("id", "received_at", "case_id", "policy_version__number",
                                     "stage", "route", "model_version", "external_id",
                                     "ai_system__slug")[:chunk])
            for (pk, received_at, case_id, policy_number, stage, route, model_version,
                 external_id, ai_system) in rows:
                yield {"record": "decision", "id": pk, "at": received_at,
                       "category": "decision", "use_case": use_case.slug,
                       "actor": f"ai:{ai_system}", "case": case_id,
                       "policy_version": policy_number, "stage": stage, "route": route,
                       "model_version": model_version, "external_id": external_id}
            if len(rows) < chunk:
                break
            last = (rows[-1][1], rows[-1][0])


def event_records(period: Period, *, chunk: int = CHUNK) -> Iterator[dict]:
    scope = use_case_events(value=period.use_case.slug) if period.use_case else Q()
    last = None
    while True:
        rows = list(AuditEvent.objects
                    .filter(scope, _after("occurred_at", last),
                            occurred_at__gte=period.since, occurred_at__lt=period.until)
                    .order_by("occurred_at", "id")
                    .values_list("id", "occurred_at", "actor_label", "verb", "object_type",
                                 "object_id", "case_id", "data", "row_hash", "seal__seq")
                    [:chunk])
        for (pk, occurred_at, actor, verb, object_type, object_id, case_id, data, row_hash,
             seq) in rows:
            yield {"record": "event", "id": pk, "at": occurred_at, "category": category(verb),
                   "actor": actor, "verb": verb, "wording": verbs.wording(verb),
                   "object_type": object_type, "object_id": object_id, "case": case_id,
                   "data": data, "row_hash": row_hash, "seq": seq}
        if len(rows) < chunk:
            return
        last = (rows[-1][1], rows[-1][0])


def records(period: Period, *, chunk: int = CHUNK) -> Iterator[dict]:
    yield from decision_records(period, chunk=chunk)
    yield from event_records(period, chunk=chunk)


def count(period: Period) -> int:
    """How many records the export holds (the command's progress bar)."""
    decisions = Decision.objects.filter(received_at__gte=period.since,
                                        received_at__lt=period.until)
    if period.use_case:
        decisions = decisions.filter(use_case=period.use_case)
    scope = use_case_events(value=period.use_case.slug) if period.use_case else Q()
    return decisions.count() + AuditEvent.objects.filter(
        scope, occurred_at__gte=period.since, occurred_at__lt=period.until).count()


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def as_csv(rows: Iterator[dict], *, chunk: int = CHUNK) -> Iterator[bytes]:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for number, row in enumerate(rows, start=1):
        writer.writerow([_text(row.get(name)) for name in COLUMNS])
        if number % chunk == 0:
            yield out.getvalue().encode()
            out.seek(0)
            out.truncate()
    yield out.getvalue().encode()


def as_jsonl(rows: Iterator[dict], *, chunk: int = CHUNK) -> Iterator[bytes]:
    lines: list[str] = []
    for row in rows:
        lines.append(json.dumps({name: (row[name].isoformat() if isinstance(row.get(name),
                                                                         datetime)
                                        else row.get(name)) for name in COLUMNS},
                                ensure_ascii=False, separators=(",", ":")))
        if len(lines) == chunk:
            yield ("\n".join(lines) + "\n").encode()
            lines.clear()
    if lines:
        yield ("\n".join(lines) + "\n").encode()


WRITERS = {"csv": as_csv, "jsonl": as_jsonl}


def file_pieces(period: Period, file_format: str) -> Iterator[bytes]:
    return WRITERS[file_format](records(period))


def export(*, period: Period, file_format: str, actor) -> Iterator[bytes]:
    """The export's bytes, a piece at a time; refused without the permission
    (``PermissionDenied``), audited ``evidence.exported`` before the first byte."""
    if not (is_system(actor) or exports_evidence(actor)):
        raise PermissionDenied("Exporting audit evidence is for auditors (permission "
                               "workflows.export_evidence).")
    if file_format not in WRITERS:
        raise ValidationError({"format": [f"Choose one of {', '.join(WRITERS)}."]})
    record_export(actor=actor, period=period, how=file_format)
    return file_pieces(period, file_format)


def record_export(*, actor, period: Period, how: str) -> None:
    audit.record(actor=actor, verb=DomainVerb.EVIDENCE_EXPORTED, object_type="evidence",
                 object_id="export", data={**period.as_data(), "format": how})
