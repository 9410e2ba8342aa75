"""Sessions in the database, each read with its person in one statement.

Django's ``cached_db`` sessions read a signed-in request's session from Redis, then the
authentication backend read its person from PostgreSQL: two round trips before any view
ran, each a wait and a wake-up (together over half of a 403's CPU). Here a session's row
also says whose it is (``Session.user``, written whenever the session is saved), and one
statement (``db.session_with_person``) reads the session and, when someone is signed in
on it, that person and their permissions' names. Django's authentication then asks the
backend for the person by the id in the session; the backend
(``ModelBackendOneQuery.get_user``) takes the person read with this request's session
instead of reading them again. The rest is Django's own (the session's hash checked
against the password, an inactive person refused), on a row read afresh at this request:
a deactivation, a new password or a changed group counts from the next request, as
before. The database is shared by every worker: a sign-out deletes the row for all.
"""

from contextvars import ContextVar

from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.core.exceptions import ValidationError
from django.core.signals import request_finished
from django.dispatch import receiver
from django.utils import timezone

from workflows import db

# (person, their permissions' names) read with the session this request loaded; taken
# once, and forgotten when the request ends.
_read_with_session: ContextVar[tuple | None] = ContextVar("read_with_session", default=None)


def person_read_with_session(user_id) -> tuple | None:
    """``(person, names)`` read with this request's session if the person's id is
    ``user_id``; else None (read them afresh). Taken once."""
    read = _read_with_session.get()
    _read_with_session.set(None)
    return read if read is not None and read[0].pk == user_id else None


@receiver(request_finished, dispatch_uid="workflows.sessions.forget")
def _forget(**kwargs) -> None:
    _read_with_session.set(None)


class SessionStore(DatabaseSessionStore):
    @classmethod
    def get_model_class(cls):
        from workflows.models import Session

        return Session

    def _get_session_from_db(self):
        found = db.session_with_person(self.session_key, now=timezone.now())
        _read_with_session.set(found[1:] if found is not None and found[1] is not None
                               else None)
        if found is None:
            self._session_key = None  # as Django's: a new key when this one is saved
            return None
        return found[0]

    def create_model_instance(self, data):
        session = super().create_model_instance(data)
        session.user_id = _person_id(data.get(SESSION_KEY))
        return session


def _person_id(value):
    """The id the session holds as Django writes it (a string), or None."""
    if value is None:
        return None
    try:
        return get_user_model()._meta.pk.to_python(value)
    except ValidationError:
        return None
