"""The people who work cases: the user model and who is away."""


from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import models


class Session(AbstractBaseSession):
    """A browser's session, as Django keeps it, with whose it is beside the data: a
    request reads its session and its person in one statement (``workflows.sessions``)."""

    # No constraint in the database: a session saved by a request that began before its
    # person was deleted names someone gone, and is read as signed out (no person joins).
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE,
                             related_name="+", db_constraint=False)

    @classmethod
    def get_session_store_class(cls):
        from workflows.sessions import SessionStore

        return SessionStore


class User(AbstractUser):
    """A person who works, owns or audits cases. Django's user, with one home for how a
    person is named on pages, in e-mails and in audit wording."""

    # An IANA name (Europe/Berlin), chosen on the profile page; "" is automatic: the
    # browser's zone, else the office calendar's (workflows/time_zones.py).
    time_zone = models.CharField(max_length=64, blank=True, default="")
    # Flow: after resolving a case, claim and open the next one (the person's choice).
    open_next_after_resolving = models.BooleanField(
        default=True, help_text="After resolving a case, open the next waiting one.")

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.get_username()

    @property
    def picker_label(self) -> str:
        """Name and username, for choosing among people who may share a name."""
        full = self.get_full_name()
        return f"{full} ({self.get_username()})" if full else self.get_username()


class ReviewerStatus(models.Model):
    """Availability for push assignment; away reviewers hand their work to a delegate."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="reviewer_status")
    available = models.BooleanField(default=True)
    away_since = models.DateTimeField(null=True, blank=True)
    delegate = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                 on_delete=models.SET_NULL, related_name="+")
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name_plural = "reviewer statuses"

    def __str__(self):
        return f"{self.user}: {'available' if self.available else 'away'}"


# --- SLA: calendars and versioned policies ------------------------------------------
