"""Governance as code: a team's whole set-up in one readable YAML file.

``export_yaml`` writes what is configured; ``plan`` reads a file and says, object by
object and field by field, what applying it would create, change or leave alone;
``apply`` does it through the audited services (I7) and turns a policy that differs
into a new version *proposed* for the Accountable's approval, never approved or
activated here. Applying what ``export_yaml`` wrote changes nothing.

The file (docs/GOVERNANCE.md): ``calendars``, ``queues`` (members by username, groups
by name, the SLA policy), ``use_cases`` (contracts, reason codes, RACI matrix,
escalation chain, policy) and ``ai_systems``. Objects are named by slug (calendars by
name); one the file leaves out is left alone, and so is a queue's ``sla_policy`` or a
use case's ``raci``, ``escalation_chain`` or ``policy`` the file leaves out. Any other
field left out takes its default. Nothing is deleted. Every problem is reported at
once, each under its place in the file (``use_cases[0].reason_codes[2].label``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import yaml
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import IntegrityError, transaction
from django.utils import timezone

from exceptions_app.contracts import check_schema, json_value_problem
from exceptions_app.models import (
    AiSystem,
    PolicyStatus,
    PolicyVersion,
    RuleAction,
    UseCase,
    validate_document_hosts,
)
from exceptions_app.policy import check_rule
from exceptions_app.services import policies, use_cases
from workflows import actors
from workflows.models import (
    AssignmentMode,
    Calendar,
    EscalationLevel,
    EscalationOutcome,
    EscalationTarget,
    Process,
    Queue,
    RaciAssignment,
    RaciRole,
    SlaPolicy,
    activity_values,
)
from workflows.services import processes, queues, raci, sla
from workflows.services.sla import calendars
from workflows.services.sla.terms import business_calendar
from workflows.webhook_addresses import validate_callback_url

FORMAT_VERSION = 1
SECTIONS = ("calendars", "queues", "use_cases", "ai_systems")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ROLE_NAMES = {"responsible": RaciRole.RESPONSIBLE, "accountable": RaciRole.ACCOUNTABLE,
              "consulted": RaciRole.CONSULTED, "informed": RaciRole.INFORMED}
TARGET_NAMES = {"responsible": EscalationTarget.RESPONSIBLE,
                "accountable": EscalationTarget.ACCOUNTABLE, "people": EscalationTarget.USERS}
OUTCOME_NAMES = {"none": EscalationOutcome.NONE, "hold": EscalationOutcome.HOLD_FOR_OWNER,
                 "reject": EscalationOutcome.REJECT, "fallback": EscalationOutcome.FALLBACK}
GROUP_PREFIX = "group:"
DEFAULT_REASON = PolicyVersion._meta.get_field("default_reason").default
# Parts of a use case, a queue: left alone when the file leaves them out.
MANAGED_APART = {"use_case": ("raci", "escalation_chain", "policy"), "queue": ("sla_policy",)}


# --- Problems and plans -----------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self):
        return f"{self.path}: {self.message}" if self.path else self.message


class GovernanceError(Exception):
    """The file cannot be applied; ``problems`` names every reason, each at its path."""

    def __init__(self, problems: list[Problem]):
        super().__init__("\n".join(map(str, problems)))
        self.problems = problems


class Action:
    CREATE = "create"
    CHANGE = "change"
    UNCHANGED = "unchanged"
    PROPOSE = "propose"


@dataclass
class Change:
    """What applying the file does to one object: its fields before and after."""

    kind: str  # calendar, queue, use_case, ai_system, policy
    key: str
    action: str
    fields: dict[str, tuple] = field(default_factory=dict)  # name: (before, after)
    note: str = ""

    def as_json(self) -> dict:
        changed = ([] if self.action == Action.CREATE else
                   [{"path": where, "before": old, "after": new}
                    for name, (before, after) in self.fields.items()
                    for where, old, new in details(name, before, after)])
        return {"kind": self.kind, "key": self.key, "action": self.action,
                "fields": {name: {"before": before, "after": after}
                           for name, (before, after) in self.fields.items()},
                "changed": changed, "note": self.note}


KIND_WORDS = {"calendar": "calendar", "queue": "queue", "use_case": "use case",
              "ai_system": "AI system", "policy": "policy of use case"}
ACTION_MARKS = {Action.CREATE: "+", Action.CHANGE: "~", Action.UNCHANGED: "=",
                Action.PROPOSE: "+"}


@dataclass
class Plan:
    changes: list[Change]

    def count(self, action: str) -> int:
        return sum(1 for change in self.changes if change.action == action)

    @property
    def is_empty(self) -> bool:
        return all(change.action == Action.UNCHANGED for change in self.changes)

    def summary(self) -> str:
        return (f"{self.count(Action.CREATE)} to create, {self.count(Action.CHANGE)} to "
                f"change, {self.count(Action.PROPOSE)} policy version(s) to propose, "
                f"{self.count(Action.UNCHANGED)} unchanged.")

    def text(self) -> str:
        lines = []
        for change in self.changes:
            words = {Action.CREATE: "create", Action.CHANGE: "change",
                     Action.UNCHANGED: "unchanged", Action.PROPOSE: "propose"}[change.action]
            line = f"{ACTION_MARKS[change.action]} {words} {KIND_WORDS[change.kind]} {change.key}"
            lines.append(f"{line}: {change.note}" if change.note else line)
            for name, (before, after) in change.fields.items():
                if change.action == Action.CREATE:
                    lines.append(f"    {name}: {_short(after)}")
                    continue
                for where, old, new in details(name, before, after):
                    lines.append(f"    {where}: {_short(old)} -> {_short(new)}")
        lines.append(self.summary())
        return "\n".join(lines) + "\n"

    def as_json(self) -> dict:
        return {"changes": [change.as_json() for change in self.changes],
                "summary": {"create": self.count(Action.CREATE),
                            "change": self.count(Action.CHANGE),
                            "propose": self.count(Action.PROPOSE),
                            "unchanged": self.count(Action.UNCHANGED)},
                "text": self.text()}


def details(name: str, before, after) -> list[tuple[str, object, object]]:
    """Where two values differ, as deep as they keep the same shape: a changed rule's
    expression reads ``rules[0].expression``, not the whole list of rules."""
    if isinstance(before, dict) and isinstance(after, dict):
        return [found for key in dict.fromkeys([*before, *after])
                if before.get(key) != after.get(key)
                for found in details(f"{name}.{key}", before.get(key), after.get(key))]
    if (isinstance(before, list) and isinstance(after, list) and len(before) == len(after)
            and before != after):
        return [found for index, (old, new) in enumerate(zip(before, after, strict=True))
                if old != new for found in details(f"{name}[{index}]", old, new)]
    return [(name, before, after)]


def _short(value, limit: int = 70) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=False)
    return text if len(text) <= limit else text[:limit - 1] + "…"


# --- Durations and working hours, as people write them ----------------------------------

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts)


def parse_duration(text) -> timedelta:
    """``"2h"``, ``"30m"``, ``"1h30m"``, ``"1d"``, ``"90s"``; ValueError otherwise."""
    match = _DURATION.fullmatch(text) if isinstance(text, str) and text else None
    if match is None or not any(match.groups()):
        raise ValueError(f"{text!r} is not a duration: write it like \"2h\", \"30m\", "
                         f"\"1h30m\" or \"1d\".")
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def _hours_out(stored: dict) -> dict:
    return {WEEKDAYS[int(day)]: [f"{start}-{end}" for start, end in intervals]
            for day, intervals in sorted(stored.items(), key=lambda item: int(item[0]))
            if intervals}


def _hours_in(readable: dict) -> dict:
    return {str(WEEKDAYS.index(day)): [interval.split("-", 1) for interval in intervals]
            for day, intervals in readable.items()}


# --- Export: what is configured, in the file's own shape --------------------------------

def _usernames(users) -> list[str]:
    return sorted(user.get_username() for user in users)


def _calendar_out(calendar: Calendar) -> dict:
    return {"name": calendar.name, "time_zone": calendar.time_zone,
            "working_hours": _hours_out(calendar.working_hours or {}),
            "holiday_country": calendar.holiday_country,
            "holiday_subdivision": calendar.holiday_subdivision}


def _sla_out(policy: SlaPolicy | None) -> dict | None:
    if policy is None:
        return None
    return {"calendar": policy.calendar.name if policy.calendar_id else None,
            "warning_fraction": policy.warning_fraction,
            "restart_on_reassign": policy.restart_on_reassign,
            "targets": [{"min_priority": target.min_priority,
                         "response": format_duration(target.response_target),
                         "resolution": format_duration(target.resolution_target)}
                        for target in sorted(policy.targets.all(),
                                             key=lambda t: t.min_priority)]}


def _queue_out(queue: Queue) -> dict:
    current = next((p for p in queue.sla_policies.all() if p.is_current), None)
    return {"slug": queue.slug, "name": queue.name, "description": queue.description,
            "process": queue.process.slug if queue.process_id else None,
            "lease": format_duration(queue.lease_time), "blind": queue.blind,
            "response_target": format_duration(queue.response_target),
            "resolution_target": format_duration(queue.resolution_target),
            "assignment_mode": queue.assignment_mode,
            "max_open_per_reviewer": queue.max_open_per_reviewer,
            "members": _usernames(queue.members.all()),
            "member_groups": sorted(group.name for group in queue.member_groups.all()),
            "sla_policy": _sla_out(current)}


def _raci_out(process: Process) -> dict:
    cells: dict[str, dict[str, list[str]]] = {}
    role_names = {value: name for name, value in ROLE_NAMES.items()}
    rows = (RaciAssignment.objects.filter(process=process).select_related("user", "group"))
    for row in rows:
        holder = row.user.get_username() if row.user_id else GROUP_PREFIX + row.group.name
        cells.setdefault(row.activity, {}).setdefault(role_names[row.role], []).append(holder)
    order = activity_values()
    return {activity: {role: _holders_sorted(cells[activity][role])
                       for role in ROLE_NAMES if role in cells[activity]}
            for activity in sorted(cells, key=order.index)}


def _holders_sorted(holders: list[str]) -> list[str]:
    people = sorted(h for h in holders if not h.startswith(GROUP_PREFIX))
    return people + sorted(h for h in holders if h.startswith(GROUP_PREFIX))


def _chain_out(process: Process) -> list[dict]:
    target_names = {value: name for name, value in TARGET_NAMES.items()}
    outcome_names = {value: name for name, value in OUTCOME_NAMES.items()}
    return [{"level": level.level, "target": target_names[level.target],
             "people": _usernames(level.users.all()),
             "queue": level.queue.slug if level.queue_id else None,
             "time_limit": format_duration(level.time_limit),
             "notify_informed": level.notify_informed, "consult": level.consult,
             "consult_required": level.consult_required,
             "outcome": outcome_names[level.outcome]}
            for level in (EscalationLevel.objects.filter(process=process)
                          .select_related("queue").prefetch_related("users")
                          .order_by("level"))]


def policy_in_force(use_case: UseCase) -> PolicyVersion | None:
    """The version the file speaks of: the newest not retired (a draft or proposal on its
    way, else the approved or active one)."""
    return (use_case.policies.exclude(status=PolicyStatus.RETIRED)
            .select_related("use_case").order_by("-number").first())


def _policy_out(policy: PolicyVersion) -> dict:
    return {"text": policy.text, "default_action": policy.default_action,
            "default_reason": policy.default_reason,
            "default_priority": policy.default_priority,
            "rules": [{"name": rule.name, "description": rule.description,
                       "expression": rule.expression, "action": rule.action,
                       "queue": rule.queue.slug if rule.queue_id else None,
                       "priority": rule.priority, "four_eyes": rule.four_eyes}
                      for rule in policy.rules.select_related("queue").order_by("position")]}


def _use_case_out(use_case: UseCase) -> dict:
    out = {"slug": use_case.slug, "name": use_case.name, "description": use_case.description,
           "review_queue": use_case.review_queue.slug,
           "qa_queue": use_case.qa_queue.slug if use_case.qa_queue_id else None,
           "automate_qa_rate": use_case.automate_qa_rate,
           "optimize_qa_rate": use_case.optimize_qa_rate,
           "summary_fields": list(use_case.summary_fields or []),
           "reason_codes": [{"code": item["code"], "label": item.get("label", "")}
                            for item in use_case.reason_codes],
           "input_schema": use_case.input_schema, "output_schema": use_case.output_schema}
    if use_case.process_id:
        out["raci"] = _raci_out(use_case.process)
        out["escalation_chain"] = _chain_out(use_case.process)
    policy = policy_in_force(use_case)
    if policy is not None:
        out["policy"] = _policy_out(policy)
    return out


def _ai_system_out(ai_system: AiSystem) -> dict:
    return {"slug": ai_system.slug, "name": ai_system.name,
            "owner": ai_system.owner.get_username(),
            "use_cases": sorted(u.slug for u in ai_system.use_cases.all()),
            "callback_url": ai_system.callback_url,
            "document_hosts": list(ai_system.document_hosts or []),
            "is_active": ai_system.is_active}


def export_document() -> dict:
    """Everything the file format covers, as it is configured now."""
    return {
        "version": FORMAT_VERSION,
        "calendars": [_calendar_out(c) for c in Calendar.objects.order_by("name")],
        "queues": [_queue_out(q) for q in Queue.objects.select_related("process")
                   .prefetch_related("members", "member_groups", "sla_policies__targets",
                                     "sla_policies__calendar").order_by("slug")],
        "use_cases": [_use_case_out(u) for u in UseCase.objects.select_related(
            "process", "review_queue", "qa_queue").order_by("slug")],
        "ai_systems": [_ai_system_out(a) for a in AiSystem.objects.select_related("owner")
                       .prefetch_related("use_cases").order_by("slug")],
    }


class _Dumper(yaml.SafeDumper):
    pass


def _text(dumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def dump(document: dict) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     width=100, default_flow_style=False)


def export_yaml() -> str:
    return ("# Backstop governance file: apply with `manage.py governance apply FILE` "
            "(docs/GOVERNANCE.md)\n" + dump(export_document()))


# --- Reading a file: its shape, each problem at its path --------------------------------

def load(text: str) -> dict:
    try:
        document = yaml.safe_load(text)
    except RecursionError as exc:
        raise GovernanceError([Problem("", "The file nests too deeply to read.")]) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise GovernanceError([Problem("", f"Not readable as YAML{where}: "
                                           f"{getattr(exc, 'problem', exc)}.")]) from exc
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise GovernanceError([Problem("", "The file is a mapping with the sections "
                                           f"{', '.join(SECTIONS)}.")])
    return document


class _Reader:
    """Reads one mapping of the file into its canonical shape, noting problems."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems

    def problem(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def problems_at(self, path: str) -> bool:
        return any(p.path.startswith(path) for p in self.problems)

    def mapping(self, value, path: str, allowed: tuple[str, ...], what: str) -> dict | None:
        if not isinstance(value, dict):
            self.problem(path, f"a {what} is a mapping of {', '.join(allowed)}.")
            return None
        for key in value:
            if key not in allowed:
                self.problem(f"{path}.{key}", f"not a field of a {what}; the fields are "
                                              f"{', '.join(allowed)}.")
        return value

    def items(self, value, path: str, what: str) -> list:
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(path, f"a list of {what}.")
            return []
        return value

    def text(self, raw: dict, key: str, path: str, *, default=None, required=False,
             max_length: int | None = None, slug=False, blank=True):
        value = raw.get(key, default)
        where = f"{path}.{key}"
        if value is None and required:
            self.problem(where, "is required.")
            return None
        if value is None:
            return None
        if not isinstance(value, str):
            self.problem(where, f"must be text, not {_kind(value)}.")
            return None
        if not blank and not value.strip():
            self.problem(where, "cannot be empty.")
        if max_length and len(value) > max_length:
            self.problem(where, f"is {len(value)} characters long; at most {max_length}.")
        if slug:
            try:
                validate_slug(value)
            except ValidationError:
                self.problem(where, f"{value!r} is not a slug: letters, digits, hyphens "
                                    f"and underscores only, like \"invoice-review\".")
        return value

    def flag(self, raw: dict, key: str, path: str, default: bool) -> bool:
        value = raw.get(key, default)
        if not isinstance(value, bool):
            self.problem(f"{path}.{key}", f"must be true or false, not {value!r}.")
            return default
        return value

    def number(self, raw: dict, key: str, path: str, default, *, low=None, high=None,
               integer=False):
        value = raw.get(key, default)
        ok = isinstance(value, int) if integer else isinstance(value, int | float)
        if isinstance(value, bool) or not ok:
            self.problem(f"{path}.{key}", f"must be {'a whole number' if integer else 'a number'}"
                                          f", not {value!r}.")
            return default
        if (low is not None and value < low) or (high is not None and value > high):
            self.problem(f"{path}.{key}", f"must be between {low} and {high}, not {value}.")
        return value

    def choice(self, raw: dict, key: str, path: str, default: str, choices) -> str:
        value = raw.get(key, default)
        if value not in choices:
            self.problem(f"{path}.{key}", f"{value!r} is not one of {', '.join(choices)}.")
            return default
        return value

    def duration(self, raw: dict, key: str, path: str, default: str | None = None,
                 required=False) -> str | None:
        value = raw.get(key, default)
        if value is None:
            if required:
                self.problem(f"{path}.{key}", "is required (a duration like \"2h\").")
            return None
        try:
            parsed = parse_duration(value)
        except ValueError as exc:
            self.problem(f"{path}.{key}", str(exc))
            return None
        if parsed <= timedelta(0):
            self.problem(f"{path}.{key}", "must be longer than nothing.")
        return format_duration(parsed)

    def names(self, raw: dict, key: str, path: str) -> list[str]:
        value = raw.get(key, [])
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(f"{path}.{key}", "must be a list of names.")
            return []
        return value


def _kind(value) -> str:
    return {dict: "a mapping", list: "a list", bool: "true or false", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)


def _read_calendar(reader: _Reader, raw, path: str) -> dict | None:
    fields = ("name", "time_zone", "working_hours", "holiday_country", "holiday_subdivision")
    if reader.mapping(raw, path, fields, "calendar") is None:
        return None
    out = {"name": reader.text(raw, "name", path, required=True, max_length=200, blank=False),
           "time_zone": reader.text(raw, "time_zone", path, default="UTC", max_length=64),
           "working_hours": {},
           "holiday_country": reader.text(raw, "holiday_country", path, default="",
                                          max_length=10),
           "holiday_subdivision": reader.text(raw, "holiday_subdivision", path, default="",
                                              max_length=10)}
    hours = raw.get("working_hours", {})
    where = f"{path}.working_hours"
    if not isinstance(hours, dict):
        reader.problem(where, f"map weekdays ({', '.join(WEEKDAYS)}) to lists of hours "
                              f"like \"09:00-17:00\".")
        return out
    for day, intervals in hours.items():
        if day not in WEEKDAYS:
            reader.problem(f"{where}.{day}", f"not a weekday; use {', '.join(WEEKDAYS)}.")
            continue
        if not isinstance(intervals, list) or not all(
                isinstance(i, str) and re.fullmatch(r"\d\d:\d\d-\d\d:\d\d", i) for i in intervals):
            reader.problem(f"{where}.{day}", "a list of hours like \"09:00-17:00\".")
            continue
        if intervals:
            out["working_hours"][day] = intervals
    if out["name"] is not None and not reader.problems_at(where):
        try:
            business_calendar(Calendar(name=out["name"], time_zone=out["time_zone"] or "UTC",
                                       working_hours=_hours_in(out["working_hours"]),
                                       holiday_country=out["holiday_country"] or "",
                                       holiday_subdivision=out["holiday_subdivision"] or ""))
        except (ValueError, KeyError, TypeError) as exc:  # the calendar's own words
            reader.problem(path, f"not a usable calendar: {exc}")
    return out


def _read_sla(reader: _Reader, raw, path: str) -> dict | None:
    fields = ("calendar", "warning_fraction", "restart_on_reassign", "targets")
    if reader.mapping(raw, path, fields, "SLA policy") is None:
        return None
    out = {"calendar": reader.text(raw, "calendar", path),
           "warning_fraction": reader.number(raw, "warning_fraction", path, 0.75,
                                             low=0, high=1),
           "restart_on_reassign": reader.flag(raw, "restart_on_reassign", path, False),
           "targets": []}
    if not 0 < out["warning_fraction"] < 1:
        reader.problem(f"{path}.warning_fraction", "warn at a fraction of the target "
                                                   "between 0 and 1 (e.g. 0.75).")
    for index, target in enumerate(reader.items(raw.get("targets"), f"{path}.targets",
                                                "targets")):
        where = f"{path}.targets[{index}]"
        if reader.mapping(target, where, ("min_priority", "response", "resolution"),
                          "target") is None:
            continue
        out["targets"].append({
            "min_priority": reader.number(target, "min_priority", where, 0, low=0,
                                          high=32767, integer=True),
            "response": reader.duration(target, "response", where, required=True),
            "resolution": reader.duration(target, "resolution", where, required=True)})
    priorities = [t["min_priority"] for t in out["targets"]]
    if 0 not in priorities:
        reader.problem(f"{path}.targets", "add a target with min_priority 0, so that every "
                                          "case has one.")
    if len(set(priorities)) != len(priorities):
        reader.problem(f"{path}.targets", "each min_priority has one target.")
    out["targets"].sort(key=lambda t: t["min_priority"])
    return out


QUEUE_FIELDS = ("slug", "name", "description", "process", "lease", "blind",
                "response_target", "resolution_target", "assignment_mode",
                "max_open_per_reviewer", "members", "member_groups", "sla_policy")


def _read_queue(reader: _Reader, raw, path: str) -> dict | None:
    if reader.mapping(raw, path, QUEUE_FIELDS, "queue") is None:
        return None
    out = {"slug": reader.text(raw, "slug", path, required=True, max_length=50, slug=True),
           "name": reader.text(raw, "name", path, required=True, max_length=200, blank=False),
           "description": reader.text(raw, "description", path, default=""),
           "process": reader.text(raw, "process", path),
           "lease": reader.duration(raw, "lease", path, default="30m"),
           "blind": reader.flag(raw, "blind", path, False),
           "response_target": reader.duration(raw, "response_target", path, default="1h"),
           "resolution_target": reader.duration(raw, "resolution_target", path, default="8h"),
           "assignment_mode": reader.choice(raw, "assignment_mode", path, AssignmentMode.PULL,
                                            AssignmentMode.values),
           "max_open_per_reviewer": reader.number(raw, "max_open_per_reviewer", path, 10,
                                                  low=0, high=32767, integer=True),
           "members": sorted(reader.names(raw, "members", path)),
           "member_groups": sorted(reader.names(raw, "member_groups", path))}
    if "sla_policy" in raw and raw["sla_policy"] is not None:
        out["sla_policy"] = _read_sla(reader, raw["sla_policy"], f"{path}.sla_policy")
    return out


USE_CASE_FIELDS = ("slug", "name", "description", "review_queue", "qa_queue",
                   "automate_qa_rate", "optimize_qa_rate", "summary_fields", "reason_codes",
                   "input_schema", "output_schema", "raci", "escalation_chain", "policy")


def _read_reason_codes(reader: _Reader, raw, path: str) -> list[dict]:
    out, seen = [], set()
    for index, item in enumerate(reader.items(raw, path, "reason codes like "
                                                         "{code: po-mismatch, label: ...}")):
        where = f"{path}[{index}]"
        if not isinstance(item, dict):
            reader.problem(where, f"a reason code is a mapping like {{code: po-mismatch, "
                                  f"label: \"Amount does not match the PO\"}}, not {item!r}.")
            continue
        if reader.mapping(item, where, ("code", "label"), "reason code") is None:
            continue
        code = reader.text(item, "code", where, required=True, max_length=100, blank=False)
        label = reader.text(item, "label", where, required=True, max_length=300, blank=False)
        if code in seen:
            reader.problem(f"{where}.code", f"the code {code!r} is listed twice.")
        seen.add(code)
        out.append({"code": code, "label": label})
    return out


def _read_raci(reader: _Reader, raw, path: str) -> dict:
    if not isinstance(raw, dict):
        reader.problem(path, "map activities to roles, like review: {responsible: "
                             "[group:reviewers], accountable: [owner]}.")
        return {}
    out = {}
    activities = activity_values()
    for activity, roles in raw.items():
        where = f"{path}.{activity}"
        if activity not in activities:
            reader.problem(where, f"not an activity; the activities are "
                                  f"{', '.join(activities)}.")
            continue
        if reader.mapping(roles, where, tuple(ROLE_NAMES), "RACI row") is None:
            continue
        row = {}
        for role in ROLE_NAMES:
            if role in roles:
                holders = reader.names(roles, role, where)
                if holders:
                    row[role] = _holders_sorted(list(dict.fromkeys(holders)))
        if row:
            out[activity] = row
    return {activity: out[activity] for activity in activities if activity in out}


CHAIN_FIELDS = ("level", "target", "people", "queue", "time_limit", "notify_informed",
                "consult", "consult_required", "outcome")


def _read_chain(reader: _Reader, raw, path: str) -> list[dict]:
    out = []
    for index, level in enumerate(reader.items(raw, path, "escalation levels")):
        where = f"{path}[{index}]"
        if reader.mapping(level, where, CHAIN_FIELDS, "escalation level") is None:
            continue
        out.append({
            "level": reader.number(level, "level", where, index + 1, low=1, high=32767,
                                   integer=True),
            "target": reader.choice(level, "target", where, "accountable", tuple(TARGET_NAMES)),
            "people": sorted(reader.names(level, "people", where)),
            "queue": reader.text(level, "queue", where),
            "time_limit": reader.duration(level, "time_limit", where, required=True),
            "notify_informed": reader.flag(level, "notify_informed", where, True),
            "consult": reader.flag(level, "consult", where, False),
            "consult_required": reader.flag(level, "consult_required", where, False),
            "outcome": reader.choice(level, "outcome", where, "none", tuple(OUTCOME_NAMES))})
    levels = [level["level"] for level in out]
    if len(set(levels)) != len(levels):
        reader.problem(path, "each level number appears once.")
    return sorted(out, key=lambda level: level["level"])


RULE_FIELDS = ("name", "description", "expression", "action", "queue", "priority",
               "four_eyes")


def _read_policy(reader: _Reader, raw, path: str) -> dict | None:
    fields = ("text", "default_action", "default_reason", "default_priority", "rules")
    if reader.mapping(raw, path, fields, "policy") is None:
        return None
    out = {"text": reader.text(raw, "text", path, required=True, blank=False),
           "default_action": reader.choice(raw, "default_action", path, RuleAction.REVIEW,
                                           RuleAction.values),
           "default_reason": reader.text(raw, "default_reason", path, default=DEFAULT_REASON,
                                         max_length=300, blank=False),
           "default_priority": reader.number(raw, "default_priority", path, 50, low=0,
                                             high=32767, integer=True),
           "rules": []}
    names = set()
    for index, rule in enumerate(reader.items(raw.get("rules"), f"{path}.rules", "rules")):
        where = f"{path}.rules[{index}]"
        if reader.mapping(rule, where, RULE_FIELDS, "rule") is None:
            continue
        name = reader.text(rule, "name", where, required=True, max_length=100, slug=True)
        if name in names:
            reader.problem(f"{where}.name", f"another rule is named {name!r}; reasons name "
                                            f"rules, so each needs its own.")
        names.add(name)
        expression = reader.text(rule, "expression", where, required=True, blank=False)
        if expression:
            try:
                check_rule(expression)
            except ValueError as exc:
                reader.problem(f"{where}.expression", str(exc))
        out["rules"].append({
            "name": name,
            "description": reader.text(rule, "description", where, required=True,
                                       max_length=300, blank=False),
            "expression": expression,
            "action": reader.choice(rule, "action", where, RuleAction.REVIEW,
                                    RuleAction.values),
            "queue": reader.text(rule, "queue", where),
            "priority": reader.number(rule, "priority", where, 50, low=0, high=32767,
                                      integer=True),
            "four_eyes": reader.flag(rule, "four_eyes", where, False)})
    if not out["rules"] and out["default_action"] == RuleAction.AUTO:
        reader.problem(f"{path}.default_action",
                       "a policy without rules whose default passes everything would let "
                       "every decision through unseen; add rules or change the default.")
    return out


def _read_use_case(reader: _Reader, raw, path: str) -> dict | None:
    if reader.mapping(raw, path, USE_CASE_FIELDS, "use case") is None:
        return None
    out = {"slug": reader.text(raw, "slug", path, required=True, max_length=50, slug=True),
           "name": reader.text(raw, "name", path, required=True, max_length=200, blank=False),
           "description": reader.text(raw, "description", path, default=""),
           "review_queue": reader.text(raw, "review_queue", path, required=True),
           "qa_queue": reader.text(raw, "qa_queue", path),
           "automate_qa_rate": reader.number(raw, "automate_qa_rate", path, 0.10, low=0, high=1),
           "optimize_qa_rate": reader.number(raw, "optimize_qa_rate", path, 0.02, low=0, high=1),
           "summary_fields": reader.names(raw, "summary_fields", path),
           "reason_codes": _read_reason_codes(reader, raw.get("reason_codes"),
                                              f"{path}.reason_codes"),
           "input_schema": raw.get("input_schema"), "output_schema": raw.get("output_schema")}
    for key in ("input_schema", "output_schema"):
        schema = out[key]
        if schema is None:
            continue
        if not isinstance(schema, dict):
            reader.problem(f"{path}.{key}", "a JSON Schema, written as a mapping.")
            out[key] = None
            continue
        problem = json_value_problem(schema)
        if problem:
            reader.problem(f"{path}.{key}", problem)
            continue
        try:
            check_schema(schema)
        except ValidationError as exc:
            reader.problem(f"{path}.{key}", " ".join(exc.messages))
    if out["summary_fields"] and not reader.problems_at(f"{path}.summary_fields"):
        probe = UseCase(summary_fields=out["summary_fields"],
                        input_schema=out["input_schema"], output_schema=out["output_schema"])
        for message in probe.summary_field_problems():
            reader.problem(f"{path}.summary_fields", message)
    if raw.get("raci") is not None:
        out["raci"] = _read_raci(reader, raw["raci"], f"{path}.raci")
    if raw.get("escalation_chain") is not None:
        out["escalation_chain"] = _read_chain(reader, raw["escalation_chain"],
                                              f"{path}.escalation_chain")
    if raw.get("policy") is not None:
        out["policy"] = _read_policy(reader, raw["policy"], f"{path}.policy")
    return out


AI_SYSTEM_FIELDS = ("slug", "name", "owner", "use_cases", "callback_url", "document_hosts",
                    "is_active")


def _read_ai_system(reader: _Reader, raw, path: str) -> dict | None:
    if reader.mapping(raw, path, AI_SYSTEM_FIELDS, "AI system") is None:
        return None
    out = {"slug": reader.text(raw, "slug", path, required=True, max_length=50, slug=True),
           "name": reader.text(raw, "name", path, required=True, max_length=200, blank=False),
           "owner": reader.text(raw, "owner", path, required=True),
           "use_cases": sorted(reader.names(raw, "use_cases", path)),
           "callback_url": reader.text(raw, "callback_url", path, default="", max_length=200),
           "document_hosts": reader.names(raw, "document_hosts", path),
           "is_active": reader.flag(raw, "is_active", path, True)}
    if out["callback_url"]:
        try:
            validate_callback_url(out["callback_url"])
        except ValidationError as exc:
            reader.problem(f"{path}.callback_url", " ".join(exc.messages))
    try:
        validate_document_hosts(out["document_hosts"])
    except ValidationError as exc:
        reader.problem(f"{path}.document_hosts", " ".join(exc.messages))
    return out


READERS: dict[str, Callable] = {"calendars": _read_calendar, "queues": _read_queue,
                                "use_cases": _read_use_case, "ai_systems": _read_ai_system}
KEYS = {"calendars": "name", "queues": "slug", "use_cases": "slug", "ai_systems": "slug"}


@dataclass
class Desired:
    """The file, read: each section's objects in canonical shape, with their paths."""

    sections: dict[str, list[tuple[str, dict]]]

    def keys(self, section: str) -> set[str]:
        return {item[KEYS[section]] for _, item in self.sections[section]}


def read(text: str) -> Desired:
    """The file's objects, or ``GovernanceError`` with every problem at its path."""
    document = load(text)
    problems: list[Problem] = []
    reader = _Reader(problems)
    for key in document:
        if key not in (*SECTIONS, "version"):
            reader.problem(key, f"not a section; the sections are {', '.join(SECTIONS)}.")
    if document.get("version", FORMAT_VERSION) != FORMAT_VERSION:
        reader.problem("version", f"this Backstop reads version {FORMAT_VERSION} files.")
    sections: dict[str, list[tuple[str, dict]]] = {}
    for section in SECTIONS:
        found, seen = [], set()
        for index, raw in enumerate(reader.items(document.get(section), section, section)):
            path = f"{section}[{index}]"
            item = READERS[section](reader, raw, path)
            if item is None:
                continue
            key = item[KEYS[section]]
            if key in seen:
                reader.problem(f"{path}.{KEYS[section]}", f"{key!r} is in the file twice.")
            seen.add(key)
            found.append((path, item))
        sections[section] = found
    desired = Desired(sections)
    _check_references(desired, reader)
    if problems:
        raise GovernanceError(problems)
    return desired


def _check_references(desired: Desired, reader: _Reader) -> None:
    """Names of people, groups, queues, calendars and use cases, in the file or stored."""
    User = get_user_model()
    wanted_users, wanted_groups = set(), set()

    def people(names, path):
        for name in names:
            (wanted_groups if name.startswith(GROUP_PREFIX) else wanted_users).add(
                (name.removeprefix(GROUP_PREFIX), path))

    for path, queue in desired.sections["queues"]:
        people(queue["members"], f"{path}.members")
        wanted_groups.update((name, f"{path}.member_groups") for name in queue["member_groups"])
    for path, use_case in desired.sections["use_cases"]:
        for activity, row in use_case.get("raci", {}).items():
            for role, holders in row.items():
                people(holders, f"{path}.raci.{activity}.{role}")
        for index, level in enumerate(use_case.get("escalation_chain", [])):
            people(level["people"], f"{path}.escalation_chain[{index}].people")
    for path, ai_system in desired.sections["ai_systems"]:
        if ai_system["owner"]:
            wanted_users.add((ai_system["owner"], f"{path}.owner"))
    active = set(User.objects.filter(
        is_active=True, **{f"{User.USERNAME_FIELD}__in": {n for n, _ in wanted_users}})
        .values_list(User.USERNAME_FIELD, flat=True))
    for name, path in sorted(wanted_users):
        if name not in active:
            reader.problem(path, f"there is no active user {name!r}.")
    groups = set(Group.objects.filter(name__in={n for n, _ in wanted_groups})
                 .values_list("name", flat=True))
    for name, path in sorted(wanted_groups):
        if name not in groups:
            reader.problem(path, f"there is no group {name!r}.")

    queue_slugs = desired.keys("queues") | set(Queue.objects.values_list("slug", flat=True))
    calendar_names = desired.keys("calendars") | set(Calendar.objects.values_list("name",
                                                                                  flat=True))
    use_case_slugs = desired.keys("use_cases") | set(UseCase.objects.values_list("slug",
                                                                                 flat=True))
    process_slugs = desired.keys("use_cases") | set(Process.objects.values_list("slug",
                                                                                flat=True))

    def known(value, names, path, what):
        if value is not None and value not in names:
            reader.problem(path, f"there is no {what} {value!r} in the file or in Backstop.")

    for path, queue in desired.sections["queues"]:
        known(queue["process"], process_slugs, f"{path}.process", "use case (process)")
        if queue.get("sla_policy"):
            known(queue["sla_policy"]["calendar"], calendar_names,
                  f"{path}.sla_policy.calendar", "calendar")
    for path, use_case in desired.sections["use_cases"]:
        known(use_case["review_queue"], queue_slugs, f"{path}.review_queue", "queue")
        known(use_case["qa_queue"], queue_slugs, f"{path}.qa_queue", "queue")
        for index, level in enumerate(use_case.get("escalation_chain", [])):
            known(level["queue"], queue_slugs, f"{path}.escalation_chain[{index}].queue",
                  "queue")
        for index, rule in enumerate((use_case.get("policy") or {}).get("rules", [])):
            known(rule["queue"], queue_slugs, f"{path}.policy.rules[{index}].queue", "queue")
    for path, ai_system in desired.sections["ai_systems"]:
        for slug in ai_system["use_cases"]:
            known(slug, use_case_slugs, f"{path}.use_cases", "use case")


# --- Plan: the file against what is stored ----------------------------------------------

def _diff(before: dict | None, after: dict, *, apart: tuple[str, ...] = ()) -> dict:
    if before is None:
        return {name: (None, value) for name, value in after.items() if name not in apart}
    return {name: (before.get(name), value) for name, value in after.items()
            if name not in apart and before.get(name) != value}


def _policy_key(policy: dict) -> str:
    return json.dumps(policy, sort_keys=True)


def plan(text: str) -> Plan:
    """What applying ``text`` would do; ``GovernanceError`` if it cannot be applied."""
    return _plan(read(text))


def _plan(desired: Desired) -> Plan:
    changes: list[Change] = []
    stored = {
        "calendars": {c.name: _calendar_out(c) for c in Calendar.objects.all()},
        "queues": {q.slug: _queue_out(q) for q in Queue.objects.select_related("process")
                   .prefetch_related("members", "member_groups", "sla_policies__targets",
                                     "sla_policies__calendar")
                   .filter(slug__in=desired.keys("queues"))},
        "use_cases": {u.slug: _use_case_out(u) for u in UseCase.objects.select_related(
            "process", "review_queue", "qa_queue").filter(slug__in=desired.keys("use_cases"))},
        "ai_systems": {a.slug: _ai_system_out(a) for a in AiSystem.objects.select_related(
            "owner").prefetch_related("use_cases").filter(slug__in=desired.keys("ai_systems"))},
    }
    kinds = {"calendars": "calendar", "queues": "queue", "use_cases": "use_case",
             "ai_systems": "ai_system"}
    for section in SECTIONS:
        kind = kinds[section]
        for _, item in desired.sections[section]:
            key = item[KEYS[section]]
            before = stored[section].get(key)
            # Parts the file leaves out are left alone: compared only when given.
            apart = tuple(name for name in MANAGED_APART.get(kind, ()) if name not in item)
            apart += ("policy",) if kind == "use_case" else ()
            fields = _diff(before, item, apart=apart)
            action = (Action.CREATE if before is None
                      else Action.CHANGE if fields else Action.UNCHANGED)
            changes.append(Change(kind=kind, key=key, action=action, fields=fields))
            if kind == "use_case" and item.get("policy") is not None:
                changes.append(_policy_change(key, item["policy"], before))
    return Plan(changes)


def _policy_change(slug: str, wanted: dict, stored_use_case: dict | None) -> Change:
    current = (stored_use_case or {}).get("policy")
    if current is not None and _policy_key(current) == _policy_key(wanted):
        version = policy_in_force(UseCase.objects.get(slug=slug))
        if version.status == PolicyStatus.DRAFT:
            return Change(kind="policy", key=slug, action=Action.PROPOSE,
                          note=f"version {version.number}, a draft with this content, is "
                               f"proposed for the Accountable's approval")
        return Change(kind="policy", key=slug, action=Action.UNCHANGED,
                      note=f"version {version.number} ({version.get_status_display().lower()})")
    fields = _diff(current, wanted)
    return Change(kind="policy", key=slug, action=Action.PROPOSE, fields=fields,
                  note="a new version is drafted and proposed; the Accountable for "
                       "policy_change approves and activates it on the use case's page")


# --- Apply: through the services, audited -----------------------------------------------

def apply(text: str, *, actor, now: datetime | None = None) -> Plan:
    """Apply the file; answers the plan it carried out.

    The configuration is written in one transaction; then each policy that differs is
    drafted and proposed in its own (the policy services own theirs), authored by
    ``actor``, which must then be a person: a policy needs an author who is not its
    approver.
    """
    desired = read(text)
    result = _plan(desired)
    proposals = [change for change in result.changes if change.kind == "policy"
                 and change.action == Action.PROPOSE]
    by_key = {section: {item[KEYS[section]]: (path, item) for path, item in items}
              for section, items in desired.sections.items()}
    actors.require(actor)
    if proposals and actors.is_system(actor):
        raise GovernanceError([Problem(f"{by_key['use_cases'][change.key][0]}.policy",
                                       "a policy version needs a person as its author: "
                                       "apply the file as a person (--as USERNAME).")
                               for change in proposals])
    try:
        with transaction.atomic():
            _apply_configuration(result, by_key, actor=actor, now=now)
    except IntegrityError as exc:
        # Another change won a race between this plan and its writes: nothing of it stays.
        raise GovernanceError([Problem("", "The set-up changed while this file was applied; "
                                           "nothing was written. Plan it again and apply.")]
                              ) from exc
    for change in proposals:
        path, item = by_key["use_cases"][change.key]
        _propose(UseCase.objects.get(slug=change.key), item["policy"], actor=actor, now=now,
                 path=f"{path}.policy")
    return result


def _users(names) -> list:
    User = get_user_model()
    found = {u.get_username(): u for u in User.objects.filter(
        **{f"{User.USERNAME_FIELD}__in": list(names)})}
    return [found[name] for name in names]


def _split_holders(holders: list[str]) -> tuple[list, list]:
    users = _users([h for h in holders if not h.startswith(GROUP_PREFIX)])
    group_names = [h.removeprefix(GROUP_PREFIX) for h in holders if h.startswith(GROUP_PREFIX)]
    groups = list(Group.objects.filter(name__in=group_names))
    return users, groups


@contextmanager
def _at(path: str):
    """Service refusals, re-raised at the object's place in the file."""
    try:
        yield
    except ValidationError as exc:
        problems = ([Problem(f"{path}.{name}", message)
                     for name, messages in exc.message_dict.items() for message in messages]
                    if hasattr(exc, "error_dict")
                    else [Problem(path, message) for message in exc.messages])
        raise GovernanceError(problems) from exc


def _apply_configuration(result: Plan, by_key: dict, *, actor, now) -> None:
    todo = {(c.kind, c.key): c for c in result.changes if c.action != Action.UNCHANGED}

    for key, (path, item) in by_key["calendars"].items():
        change = todo.get(("calendar", key))
        if change is None:
            continue
        values = {**item, "working_hours": _hours_in(item["working_hours"])}
        with _at(path):
            if change.action == Action.CREATE:
                calendars.calendar_create(actor=actor, now=now, **values)
            else:
                calendars.calendar_update(calendar=Calendar.objects.get(name=key), actor=actor,
                                          now=now, **{name: values[name]
                                                      for name in change.fields})
    # Each use case has a process (its RACI matrix and chain), named by its slug.
    for key, (path, item) in by_key["use_cases"].items():
        if not Process.objects.filter(slug=key).exists() and not UseCase.objects.filter(
                slug=key, process__isnull=False).exists():
            with _at(path):
                processes.process_create(actor=actor, slug=key, name=item["name"], now=now)

    for key, (path, item) in by_key["queues"].items():
        change = todo.get(("queue", key))
        if change is None:
            continue
        values = _queue_values(item)
        names = [name for name in change.fields if name != "sla_policy"]
        with _at(path):
            if change.action == Action.CREATE:
                queue = queues.queue_create(actor=actor, now=now, **values)
            else:
                queue = Queue.objects.get(slug=key)
                wanted = {_QUEUE_FIELD_NAMES.get(name, name) for name in names}
                if wanted:
                    queues.queue_update(queue=queue, actor=actor, now=now,
                                        **{name: values[name] for name in wanted})
        if "sla_policy" in change.fields and item.get("sla_policy"):
            _publish_sla(queue, item["sla_policy"], actor=actor, now=now,
                         path=f"{path}.sla_policy")

    for key, (path, item) in by_key["use_cases"].items():
        change = todo.get(("use_case", key))
        if change is None:
            continue
        values = _use_case_values(item)
        with _at(path):
            if change.action == Action.CREATE:
                use_case = use_cases.use_case_create(
                    actor=actor, now=now, process=_process_of(key), **values)
            else:
                use_case = UseCase.objects.get(slug=key)
                changed = {name: values[name] for name in change.fields if name in values}
                if use_case.process_id is None:
                    changed["process"] = _process_of(key)
                if changed:
                    use_cases.use_case_update(use_case=use_case, actor=actor, now=now,
                                              **changed)
                use_case.refresh_from_db()
        if "raci" in change.fields:
            _set_raci(use_case.process, item["raci"], actor=actor, now=now)
        if "escalation_chain" in change.fields:
            with _at(f"{path}.escalation_chain"):
                _set_chain(use_case.process, item["escalation_chain"], actor=actor, now=now)

    for key, (path, item) in by_key["ai_systems"].items():
        change = todo.get(("ai_system", key))
        if change is None:
            continue
        values = {**item, "owner": _users([item["owner"]])[0],
                  "use_cases": list(UseCase.objects.filter(slug__in=item["use_cases"]))}
        with _at(path):
            if change.action == Action.CREATE:
                use_cases.ai_system_create(actor=actor, now=now, **values)
            else:
                use_cases.ai_system_update(ai_system=AiSystem.objects.get(slug=key),
                                           actor=actor, now=now,
                                           **{name: values[name] for name in change.fields})


_QUEUE_FIELD_NAMES = {"lease": "lease_seconds"}


def _queue_values(item: dict) -> dict:
    users, _ = _split_holders(item["members"])
    return {"slug": item["slug"], "name": item["name"], "description": item["description"],
            "process": Process.objects.filter(slug=item["process"]).first()
            if item["process"] else None,
            "lease_seconds": int(parse_duration(item["lease"]).total_seconds()),
            "blind": item["blind"],
            "response_target": parse_duration(item["response_target"]),
            "resolution_target": parse_duration(item["resolution_target"]),
            "assignment_mode": item["assignment_mode"],
            "max_open_per_reviewer": item["max_open_per_reviewer"],
            "members": users,
            "member_groups": list(Group.objects.filter(name__in=item["member_groups"]))}


def _publish_sla(queue: Queue, wanted: dict, *, actor, now, path: str) -> None:
    calendar = Calendar.objects.get(name=wanted["calendar"]) if wanted["calendar"] else None
    with _at(path):
        sla.publish_sla_policy(
            queue=queue, calendar=calendar, warning_fraction=wanted["warning_fraction"],
            restart_on_reassign=wanted["restart_on_reassign"], actor=actor,
            now=now or timezone.now(),
            targets=[{"min_priority": t["min_priority"],
                      "response_target": parse_duration(t["response"]),
                      "resolution_target": parse_duration(t["resolution"])}
                     for t in wanted["targets"]])


def _process_of(slug: str) -> Process:
    use_case = UseCase.objects.filter(slug=slug, process__isnull=False).first()
    return use_case.process if use_case else Process.objects.get(slug=slug)


def _use_case_values(item: dict) -> dict:
    queue_by_slug = {q.slug: q for q in Queue.objects.filter(
        slug__in=[s for s in (item["review_queue"], item["qa_queue"]) if s])}
    return {"slug": item["slug"], "name": item["name"], "description": item["description"],
            "review_queue": queue_by_slug[item["review_queue"]],
            "qa_queue": queue_by_slug.get(item["qa_queue"]) if item["qa_queue"] else None,
            "automate_qa_rate": item["automate_qa_rate"],
            "optimize_qa_rate": item["optimize_qa_rate"],
            "summary_fields": item["summary_fields"], "reason_codes": item["reason_codes"],
            "input_schema": item["input_schema"], "output_schema": item["output_schema"]}


def _set_raci(process: Process, wanted: dict, *, actor, now) -> None:
    # Every cell is set: one the file leaves out is emptied (set_assignments writes only
    # the cells that change).
    for activity in activity_values():
        for role, value in ROLE_NAMES.items():
            users, groups = _split_holders(wanted.get(activity, {}).get(role, []))
            raci.set_assignments(process=process, activity=activity, role=value, users=users,
                                 groups=groups, actor=actor, now=now)


def _set_chain(process: Process, wanted: list[dict], *, actor, now) -> None:
    existing = {level.level: level.pk for level in EscalationLevel.objects.filter(process=process)}
    queue_by_slug = {q.slug: q for q in Queue.objects.filter(
        slug__in=[level["queue"] for level in wanted if level["queue"]])}

    def values(level: dict) -> dict:
        return {"level": level["level"], "target": TARGET_NAMES[level["target"]],
                "users": _users(level["people"]),
                "queue": queue_by_slug.get(level["queue"]) if level["queue"] else None,
                "time_limit": parse_duration(level["time_limit"]),
                "notify_informed": level["notify_informed"], "consult": level["consult"],
                "consult_required": level["consult_required"],
                "outcome": OUTCOME_NAMES[level["outcome"]]}

    numbers = {level["level"] for level in wanted}
    processes.escalation_chain_edit(
        process=process, actor=actor, now=now,
        added=[values(level) for level in wanted if level["level"] not in existing],
        changed={existing[level["level"]]: values(level) for level in wanted
                 if level["level"] in existing},
        removed=[pk for number, pk in existing.items() if number not in numbers])


def _propose(use_case: UseCase, wanted: dict, *, actor, now, path: str) -> PolicyVersion:
    version = policy_in_force(use_case)
    if version is None or _policy_key(_policy_out(version)) != _policy_key(wanted):
        queue_by_slug = {q.slug: q for q in Queue.objects.filter(
            slug__in=[rule["queue"] for rule in wanted["rules"] if rule["queue"]])}
        rules = [policies.RuleSpec(
            name=rule["name"], description=rule["description"],
            expression=rule["expression"], action=rule["action"],
            queue=queue_by_slug.get(rule["queue"]) if rule["queue"] else None,
            priority=rule["priority"], four_eyes=rule["four_eyes"]) for rule in wanted["rules"]]
        with _at(path):
            version = policies.policy_create_draft(
                use_case=use_case, text=wanted["text"], rules=rules, author=actor,
                default_action=wanted["default_action"],
                default_reason=wanted["default_reason"],
                default_priority=wanted["default_priority"], now=now)
    with _at(path):
        return policies.policy_propose(policy=version, actor=actor, now=now)
