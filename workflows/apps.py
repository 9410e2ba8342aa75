from django.apps import AppConfig
from django.core.management.base import CommandError
from django.db.models.signals import pre_migrate

# Apps whose migrations were squashed to one initial (2026-12, with the custom user model).
SQUASHED_APPS = ("workflows", "exceptions_app")


def refuse_database_from_before_the_squash(sender, *, using, **kwargs):
    """A database migrated before the squash records migrations that no longer exist and
    lacks the user table; migrate would call it up to date. Say so instead."""
    from django.db import connections
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(connections[using], ignore_no_migrations=True)
    gone = sorted(f"{app}.{name}" for app, name in loader.applied_migrations
                  if app in SQUASHED_APPS and (app, name) not in loader.disk_migrations)
    if gone:
        raise CommandError(
            f"This database was made by an older Backstop (it records {', '.join(gone)}, "
            "which no longer exist) and cannot be upgraded. Start a new one: for the demo, "
            "stop it, delete var/ (or the folder BACKSTOP_VAR_DIR names) and run make demo.")


class WorkflowsConfig(AppConfig):
    name = "workflows"
    verbose_name = "Workflows"

    def ready(self):
        pre_migrate.connect(refuse_database_from_before_the_squash, sender=self,
                            dispatch_uid="workflows.refuse_database_from_before_the_squash")
