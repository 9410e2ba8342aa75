"""Django's model backend, reading the signed-in person and their permissions in two
plain statements instead of three ORM queries.

Every signed-in request asks whether its person is a manager (``is_manager``: the
scope of every page and endpoint, I8); Django's ``ModelBackend`` answers the first such
question with two queries (the person's own permissions, then their groups'), the
largest fixed cost of a request after the session. Here they are one statement
(``workflows.db.permission_names``, plain SQL: the ORM's version cost more to build
and compile than to run), cached on the user object for the request as Django caches
them. The person is read the same way (``workflows.db.person``), afresh on every
request as Django does, so that a deactivation or a new password takes effect at once.
Superusers' permissions and everything else are Django's own.
"""

from django.contrib.auth.backends import ModelBackend

from workflows import db


class ModelBackendOneQuery(ModelBackend):
    def get_user(self, user_id):
        user = db.person(user_id)
        return user if user is not None and self.user_can_authenticate(user) else None

    def get_all_permissions(self, user_obj, obj=None):
        if (not user_obj.is_active or user_obj.is_anonymous or obj is not None
                or user_obj.is_superuser or hasattr(user_obj, "_perm_cache")):
            return super().get_all_permissions(user_obj, obj=obj)
        user_obj._perm_cache = db.permission_names(user_obj.pk)
        return user_obj._perm_cache
