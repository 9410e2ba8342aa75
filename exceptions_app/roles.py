"""Roles as groups with written permissions: who may do what, said once.

Each role is a Django group holding exactly the permissions written here;
``setup_roles`` (``manage.py setup_roles``, and ``seed_demo``) creates the groups and
sets their permissions, and running it again changes nothing (or puts back what was
changed by hand, audited). What a person may do on a case also depends on the queues
they work (I8): a role says what kind of person they are, membership says where.
"""

from dataclasses import dataclass

from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import Q

from exceptions_app.verbs import DomainVerb
from workflows.services import audit


@dataclass(frozen=True)
class Role:
    group: str
    says: str
    permissions: tuple[str, ...]  # "app_label.codename"


_READ_CONFIGURATION = ("workflows.view_queue", "workflows.view_process",
                       "workflows.view_raciassignment", "workflows.view_slapolicy",
                       "workflows.view_calendar", "exceptions_app.view_usecase",
                       "exceptions_app.view_aisystem", "exceptions_app.view_policyversion")

ROLES = (
    Role("reviewers", "works the cases of the queues they are a member of: claims, resolves, "
                      "approves another's answer, comments",
         ("workflows.view_case", "workflows.view_queue")),
    Role("managers", "sees and manages every case (reassign, cancel, priority), edits queues, "
                     "SLA policies and RACI, reads the audit log and exports its evidence",
         ("workflows.manage_cases", "workflows.view_audit_trail", "workflows.export_evidence",
          "workflows.view_case", *_READ_CONFIGURATION)),
    Role("owners", "owns use cases: onboards AI systems and use cases, drafts and proposes "
                   "policies (approving needs the Accountable, never the author), reads the "
                   "audit log",
         ("workflows.view_audit_trail", "exceptions_app.add_usecase",
          "exceptions_app.change_usecase", "exceptions_app.add_aisystem",
          "exceptions_app.change_aisystem", "exceptions_app.add_policyversion",
          "exceptions_app.change_policyversion", *_READ_CONFIGURATION)),
    Role("auditors", "reads everything (every case, configuration and the audit trail), "
                     "verifies the chain and exports evidence, and changes nothing",
         ("workflows.read_everything", "workflows.view_audit_trail",
          "workflows.export_evidence", "workflows.view_case", *_READ_CONFIGURATION)),
    # Every permission but the auditor's: holding that one would make an admin read-only.
    Role("admins", "administers Backstop: every permission of the other roles and the "
                   "Django admin's (give such people is_staff to reach /admin/)", ("*",)),
)
EXCLUDED_FROM_ADMINS = ("workflows.read_everything",)


def _permissions(names: tuple[str, ...]):
    if names == ("*",):
        excluded = Q()
        for name in EXCLUDED_FROM_ADMINS:
            app_label, codename = name.split(".")
            excluded |= Q(content_type__app_label=app_label, codename=codename)
        return list(Permission.objects.exclude(excluded))
    wanted = Q(pk__in=[])
    for name in names:
        app_label, codename = name.split(".")
        wanted |= Q(content_type__app_label=app_label, codename=codename)
    found = list(Permission.objects.filter(wanted))
    missing = set(names) - {f"{p.content_type.app_label}.{p.codename}" for p in found}
    if missing:  # a typo here, or migrations not run
        raise LookupError(f"Unknown permissions: {', '.join(sorted(missing))}.")
    return found


def _names(permissions) -> list[str]:
    return sorted(f"{p.content_type.app_label}.{p.codename}" for p in permissions)


@transaction.atomic
def setup_roles(*, actor) -> dict[str, Group]:
    """Create each role's group and give it exactly its permissions; a group whose
    permissions change is one ``role.permissions_set`` event with before and after."""
    groups = {}
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role.group)
        wanted = _permissions(role.permissions)
        before = _names(group.permissions.select_related("content_type"))
        after = _names(wanted)
        if before != after:
            group.permissions.set(wanted)
            audit.record_changes(before={"permissions": before},
                                 after={"permissions": after}, actor=actor,
                                 verb=DomainVerb.ROLE_PERMISSIONS_SET, object_type="group",
                                 object_id=group.pk, role=role.group)
        groups[role.group] = group
    return groups
