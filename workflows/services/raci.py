"""The RACI matrix of a process: who is Responsible, Accountable, Consulted, Informed.

One cell is (activity, role); it holds users and groups. The matrix drives the rest of
the engine: the Responsible for ``review`` get new cases (``assignment.push_assign``),
the chain escalates to the Accountable, asks the Consulted and tells the Informed
(``escalation.escalate``).

Editing a cell replaces it whole and writes one audit event with the cell before and
after (I7). Managers (``workflows.manage_cases``) edit; everybody who may see a use
case may read its matrix.
"""

from collections.abc import Iterable, Mapping
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from workflows import actors, selectors
from workflows.models import Activity, Process, RaciAssignment, RaciRole, activity_values
from workflows.services import audit
from workflows.verbs import AuditVerb

ROLES = [RaciRole.RESPONSIBLE, RaciRole.ACCOUNTABLE, RaciRole.CONSULTED, RaciRole.INFORMED]


def may_edit(user) -> bool:
    """Who may change a RACI matrix: managers."""
    return selectors.is_manager(user)


def holders(*, process: Process | None, activity: str, role: str) -> list:
    """The active people holding ``role`` for ``activity``: named, or through a group.

    Deduplicated, ordered by username; one query. No process, nobody.
    """
    if process is None:
        return []
    cell = RaciAssignment.objects.filter(process=process, activity=activity, role=role)
    User = get_user_model()
    return list(User.objects.filter(is_active=True).filter(
        Q(pk__in=cell.filter(user__isnull=False).values("user_id"))
        | Q(pk__in=User.groups.through.objects
            .filter(group_id__in=cell.filter(group__isnull=False).values("group_id"))
            .values("user_id")))
        .order_by(User.USERNAME_FIELD))


def holders_of(*, process: Process | None, role: str,
               activities: Iterable[str] = (Activity.ESCALATION, Activity.REVIEW)) -> list:
    """The holders of ``role`` for the first of ``activities`` whose cell names anyone.

    Escalation asks the ``escalation`` row first and falls back to ``review``: a
    matrix that names its owners only once still escalates to them.
    """
    for activity in activities:
        people = holders(process=process, activity=activity, role=role)
        if people:
            return people
    return []


def accountable(*, process: Process | None, activity: str = Activity.REVIEW) -> list:
    """The Accountable ("A") for ``activity``: its row of the matrix, else ``review``'s
    (the business owner). The one answer to "who is accountable"; nothing else keeps one."""
    activities = (activity,) if activity == Activity.REVIEW else (activity, Activity.REVIEW)
    return holders_of(process=process, role=RaciRole.ACCOUNTABLE, activities=activities)


def accountable_by_process(*, process_ids: Iterable[int]) -> dict[int, list]:
    """The business owners (``review``'s Accountable) of many processes: ``{process_id:
    [people]}``, by username; three queries whatever their number (for list pages)."""
    process_ids = [pk for pk in process_ids if pk is not None]
    if not process_ids:
        return {}
    cells = list(RaciAssignment.objects.filter(process__in=process_ids,
                                               activity=Activity.REVIEW,
                                               role=RaciRole.ACCOUNTABLE)
                 .values_list("process_id", "user_id", "group_id"))
    User = get_user_model()
    group_ids = {group_id for _, _, group_id in cells if group_id is not None}
    members: dict[int, set[int]] = {}
    if group_ids:
        for group_id, user_id in (User.groups.through.objects.filter(group_id__in=group_ids)
                                  .values_list("group_id", "user_id")):
            members.setdefault(group_id, set()).add(user_id)
    wanted: dict[int, set[int]] = {}
    for process_id, user_id, group_id in cells:
        ids = wanted.setdefault(process_id, set())
        if user_id is not None:
            ids.add(user_id)
        else:
            ids.update(members.get(group_id, ()))
    everyone = set().union(*wanted.values()) if wanted else set()
    people = (list(User.objects.filter(is_active=True, pk__in=everyone)
                   .order_by(User.USERNAME_FIELD)) if everyone else [])
    return {process_id: [person for person in people if person.pk in ids]
            for process_id, ids in wanted.items()}


def all_holders(*, process: Process) -> dict[tuple[str, str], list]:
    """Every cell's active holders, as ``holders`` answers them: ``{(activity, role):
    [people]}``, empty cells left out. Three queries, whatever the matrix: for a batch
    of escalations that asks the same process many times."""
    cells = list(RaciAssignment.objects.filter(process=process)
                 .values_list("activity", "role", "user_id", "group_id"))
    User = get_user_model()
    group_ids = {group_id for _, _, _, group_id in cells if group_id is not None}
    members: dict[int, set[int]] = {}
    if group_ids:
        for group_id, user_id in (User.groups.through.objects.filter(group_id__in=group_ids)
                                  .values_list("group_id", "user_id")):
            members.setdefault(group_id, set()).add(user_id)
    wanted: dict[tuple[str, str], set[int]] = {}
    for activity, role, user_id, group_id in cells:
        ids = wanted.setdefault((activity, role), set())
        if user_id is not None:
            ids.add(user_id)
        else:
            ids.update(members.get(group_id, ()))
    everyone = set().union(*wanted.values()) if wanted else set()
    people = (list(User.objects.filter(is_active=True, pk__in=everyone)
                   .order_by(User.USERNAME_FIELD)) if everyone else [])
    answer = {cell: [person for person in people if person.pk in ids]
              for cell, ids in wanted.items()}
    return {cell: found for cell, found in answer.items() if found}


def _cell_labels(rows: Iterable[RaciAssignment]) -> dict:
    users = sorted(row.user.get_username() for row in rows if row.user_id)
    groups = sorted(row.group.name for row in rows if row.group_id)
    return {"users": users, "groups": groups}


def cells(*, process: Process) -> dict:
    """Every cell as usernames and group names: ``{activity: {role: {"users": [...],
    "groups": [...]}}}``, every activity and role present. One query."""
    rows = (RaciAssignment.objects.filter(process=process)
            .select_related("user", "group"))
    grouped: dict[tuple[str, str], list[RaciAssignment]] = {}
    for row in rows:
        grouped.setdefault((row.activity, row.role), []).append(row)
    return {activity: {role: _cell_labels(grouped.get((activity, role), []))
                       for role in RaciRole.values}
            for activity in activity_values()}


def _label(row: RaciAssignment) -> str:
    if row.user_id:
        return row.user.display_name
    return f"{row.group.name} (group)"


def matrix(*, process: Process) -> dict:
    """``{activity: {role: [labels]}}`` for the page: people by name, groups marked.

    Every activity and role is present (an empty cell is an empty list), in the order
    of ``activity_choices`` and R, A, C, I. One query.
    """
    rows = (RaciAssignment.objects.filter(process=process)
            .select_related("user", "group"))
    grouped: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        grouped.setdefault((row.activity, row.role), []).append(_label(row))
    return {activity: {role: sorted(grouped.get((activity, role), []), key=str.casefold)
                       for role in RaciRole.values}
            for activity in activity_values()}


def set_assignments(*, process: Process, activity: str, role: str, users: Iterable = (),
                    groups: Iterable = (), actor, now: datetime | None = None) -> None:
    """Replace one cell with exactly ``users`` and ``groups``; audited with before/after.

    ``actor`` must be a manager (``PermissionDenied`` otherwise) or ``SYSTEM`` (seeding,
    migrations of data), audited as such; ``None`` is refused (``TypeError``). A cell
    set to what it already holds writes nothing.
    """
    now = now or timezone.now()
    actors.require(actor)
    if not actors.is_system(actor) and not may_edit(actor):
        raise PermissionDenied("Only managers may change who owns a process's decisions.")
    errors = {}
    if activity not in activity_values():
        errors["activity"] = [f"'{activity}' is not an activity; choose one of "
                              f"{', '.join(activity_values())}."]
    if role not in RaciRole.values:
        errors["role"] = [f"'{role}' is not a RACI role; choose one of R, A, C or I."]
    users, groups = _unique(users), _unique(groups)
    inactive = [user.get_username() for user in users if not user.is_active]
    if inactive:
        errors["users"] = [f"{', '.join(inactive)} cannot hold a role: the account is "
                           "deactivated."]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        # Edits of one process's matrix take turns, so before/after are exact.
        Process.objects.select_for_update().filter(pk=process.pk).first()
        cell = RaciAssignment.objects.filter(process=process, activity=activity, role=role)
        before = _cell_labels(cell.select_related("user", "group"))
        after = {"users": sorted(user.get_username() for user in users),
                 "groups": sorted(group.name for group in groups)}
        if before == after:
            return
        cell.delete()
        RaciAssignment.objects.bulk_create(
            [RaciAssignment(process=process, activity=activity, role=role, user=user)
             for user in users]
            + [RaciAssignment(process=process, activity=activity, role=role, group=group)
               for group in groups])
        # ``bulk_create`` sends no signal: the chains' cache is told here. (Imported
        # here: escalation reads the matrix through this module.)
        from workflows.services import escalation
        escalation.forget_chains()
        audit.record(actor=actor, verb=AuditVerb.RACI_CHANGED, object_type="process",
                     object_id=process.pk, now=now,
                     data={"process": process.slug, "activity": activity, "role": role,
                           "before": before, "after": after})


def edit_entries(*, process: Process, added: Iterable[tuple] = (),
                 changed: Mapping[int, tuple] | None = None, removed: Iterable[int] = (),
                 actor, now: datetime | None = None) -> None:
    """Edits of single entries (the admin's rows), applied cell by cell.

    An entry is ``(activity, role, user, group)`` with one of ``user`` or ``group``;
    ``changed`` and ``removed`` name existing entries by id (one already gone meanwhile
    is not taken out again). Every cell the edits touch is replaced once through
    ``set_assignments``, so each cell that ends up different writes one audit event with
    before and after.
    """
    now = now or timezone.now()
    actors.require(actor)
    if not actors.is_system(actor) and not may_edit(actor):
        raise PermissionDenied("Only managers may change who owns a process's decisions.")
    with transaction.atomic():
        Process.objects.select_for_update().filter(pk=process.pk).first()
        rows = {row.pk: row for row in RaciAssignment.objects.filter(process=process)
                .select_related("user", "group")}
        holders_by_cell: dict[tuple[str, str], list] = {}
        for row in rows.values():
            holders_by_cell.setdefault((row.activity, row.role), []).append(
                row.user or row.group)
        touched: set[tuple[str, str]] = set()

        def take_out(pk: int) -> None:
            row = rows.pop(pk, None)
            if row is not None:
                holders_by_cell[(row.activity, row.role)].remove(row.user or row.group)
                touched.add((row.activity, row.role))

        def put_in(entry: tuple) -> None:
            activity, role, user, group = entry
            if (user is None) == (group is None):
                raise ValidationError("A RACI entry names either a user or a group.")
            holders_by_cell.setdefault((activity, role), []).append(user or group)
            touched.add((activity, role))

        for pk in removed:
            take_out(pk)
        for pk, entry in (changed or {}).items():
            take_out(pk)
            put_in(entry)
        for entry in added:
            put_in(entry)
        for activity, role in sorted(touched):
            holders = holders_by_cell.get((activity, role), [])
            set_assignments(process=process, activity=activity, role=role, actor=actor,
                            users=[h for h in holders if not isinstance(h, Group)],
                            groups=[h for h in holders if isinstance(h, Group)], now=now)


def _unique(items: Iterable) -> list:
    seen, unique = set(), []
    for item in items:
        if item.pk not in seen:
            seen.add(item.pk)
            unique.append(item)
    return unique


def resolve_names(*, usernames: Iterable[str] = (), group_names: Iterable[str] = ()
                  ) -> tuple[list, list[Group]]:
    """Usernames and group names as the API and forms send them, or field errors."""
    User = get_user_model()
    usernames, group_names = list(dict.fromkeys(usernames)), list(dict.fromkeys(group_names))
    users = {user.get_username(): user for user in
             User.objects.filter(**{f"{User.USERNAME_FIELD}__in": usernames})}
    found_groups = {group.name: group for group in Group.objects.filter(name__in=group_names)}
    errors = {}
    missing_users = [name for name in usernames if name not in users]
    if missing_users:
        errors["users"] = [f"There is no user {', '.join(missing_users)}."]
    missing_groups = [name for name in group_names if name not in found_groups]
    if missing_groups:
        errors["groups"] = [f"There is no group {', '.join(missing_groups)}."]
    if errors:
        raise ValidationError(errors)
    return [users[name] for name in usernames], [found_groups[name] for name in group_names]
