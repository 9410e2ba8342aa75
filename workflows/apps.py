import logging

from django.apps import AppConfig
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_login_failed
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


def count_failed_sign_in(sender, *, credentials, request=None, **kwargs):
    """A failed sign-in through a web form counts against its person and its address
    (``workflows.sign_in_throttle``); one without a request (a command) does not."""
    from workflows import sign_in_throttle

    if request is None:
        return
    username = credentials.get(get_user_model().USERNAME_FIELD) or ""
    if username:
        sign_in_throttle.record_failure(sign_in_throttle.per_person(),
                                        sign_in_throttle.person_ident(username))
    sign_in_throttle.record_failure(sign_in_throttle.per_address(),
                                    sign_in_throttle.client_address(request))


def forget_failed_sign_ins(sender, *, request, user, **kwargs):
    """The person got in: their earlier failures were theirs, not a guesser's."""
    from workflows import sign_in_throttle

    sign_in_throttle.forget(sign_in_throttle.per_person(),
                            sign_in_throttle.person_ident(user.get_username()))


def warn_when_no_mail_server_is_configured() -> None:
    """Outside the demo, e-mail without EMAIL_URL or EMAIL_HOST goes to standard output
    (config/settings.py): say so as each process starts, where an operator looks."""
    if not getattr(settings, "DEMO", True) and not getattr(settings, "EMAIL_CONFIGURED", True):
        logging.getLogger("backstop.mail").warning(
            "No mail server is configured: notices' e-mails are printed on standard "
            "output, not sent. Set EMAIL_URL (e.g. smtp+tls://user:password@host:587) "
            "and DEFAULT_FROM_EMAIL; see docs/DEPLOY.md.")


def warn_when_links_have_no_site_address() -> None:
    """Outside the demo, e-mails' links need SITE_BASE_URL (config/settings.py): say so
    as each process starts, rather than mail links to localhost unnoticed."""
    if not getattr(settings, "DEMO", True) and not getattr(
            settings, "SITE_BASE_URL_CONFIGURED", True):
        logging.getLogger("backstop.mail").warning(
            "SITE_BASE_URL is not set: the links in notices' e-mails point at %s. Set it "
            "to the address people open Backstop at (e.g. https://backstop.example.com); "
            "see docs/DEPLOY.md.", settings.SITE_BASE_URL)


class WorkflowsConfig(AppConfig):
    name = "workflows"
    verbose_name = "Workflows"

    def ready(self):
        pre_migrate.connect(refuse_database_from_before_the_squash, sender=self,
                            dispatch_uid="workflows.refuse_database_from_before_the_squash")
        user_login_failed.connect(count_failed_sign_in,
                                  dispatch_uid="workflows.count_failed_sign_in")
        user_logged_in.connect(forget_failed_sign_ins,
                               dispatch_uid="workflows.forget_failed_sign_ins")
        from workflows import time_zones  # models are ready now

        user_logged_in.connect(time_zones.remember_office_time_zone,
                               dispatch_uid="workflows.remember_office_time_zone")
        warn_when_no_mail_server_is_configured()
        warn_when_links_have_no_site_address()
