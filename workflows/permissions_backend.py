"""Django's model backend, reading the signed-in person and their permissions in one
plain statement instead of three ORM queries.

Every signed-in request asks whether its person is a manager (``is_manager``: the
scope of every page and endpoint, I8); Django's ``ModelBackend`` answers the first such
question with two queries (the person's own permissions, then their groups'), after the
query for the person, the largest fixed cost of a request after the session. Here the
person and their permissions' names are one statement (``workflows.db.person``, plain
SQL: the ORM's version cost more to build and compile than to run), read afresh on
every request as Django reads the person, so that a deactivation, a new password or a
changed group or permission takes effect at the next request; the names are kept on the
user object for the request as Django keeps them. The token's authentication
(``workflows.api.authentication``) reads them with the token the same way.
Superusers' permissions and everything else are Django's own.
"""

from django.contrib.auth.backends import ModelBackend

from workflows import db
from workflows.sessions import person_read_with_session


def keep_permissions(user, names: set[str]) -> None:
    """Hold ``names`` (read with the person) as the request's answer to
    ``get_all_permissions``; a superuser's are Django's (every permission)."""
    if not user.is_superuser:
        user._perm_cache = names


class ModelBackendOneQuery(ModelBackend):
    def get_user(self, user_id):
        # A signed-in page's person was read with its session (workflows/sessions.py).
        found = person_read_with_session(user_id) or db.person(user_id)
        if found is None:
            return None
        user, names = found
        if not self.user_can_authenticate(user):
            return None
        keep_permissions(user, names)
        return user

    def get_all_permissions(self, user_obj, obj=None):
        if (not user_obj.is_active or user_obj.is_anonymous or obj is not None
                or user_obj.is_superuser or hasattr(user_obj, "_perm_cache")):
            return super().get_all_permissions(user_obj, obj=obj)
        user_obj._perm_cache = db.permission_names(user_obj.pk)
        return user_obj._perm_cache
