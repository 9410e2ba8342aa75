"""Create the role groups (reviewers, managers, owners, auditors, admins) with their
written permissions (``exceptions_app.roles``); safe to run again."""

from django.core.management.base import BaseCommand

from exceptions_app.roles import ROLES, setup_roles
from workflows.actors import SystemActor


class Command(BaseCommand):
    help = "Create or correct the role groups and their permissions (idempotent)."

    def handle(self, *args, **options):
        groups = setup_roles(actor=SystemActor(label="cli:setup_roles"))
        for role in ROLES:
            self.stdout.write(f"  {role.group:<10} {groups[role.group].permissions.count():>3} "
                              f"permissions: {role.says}")

