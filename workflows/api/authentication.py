"""People's API tokens, with password guessing slowed: an address that sent too many bad
tokens or keys within the window (``workflows.sign_in_throttle``) gets 429 instead of
another 401 until the window has passed, even with a good one."""

from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from workflows import db, sign_in_throttle
from workflows.middleware import AUDITOR_REFUSED, auditor_may_send
from workflows.models import is_auditor
from workflows.permissions_backend import keep_permissions


def refuse_while_guessing(request) -> None:
    """Raise 429 (with Retry-After) if the caller's address has failed too often."""
    until = sign_in_throttle.blocked_until(sign_in_throttle.api_per_address(),
                                           sign_in_throttle.client_address(request))
    if until is not None:
        wait = sign_in_throttle.seconds_until(until)
        raise exceptions.Throttled(wait=wait, detail=(
            f"Too many failed authentications from this address: try again in {wait} s "
            f"with a valid key or token."))


def count_failure(request) -> None:
    sign_in_throttle.record_failure(sign_in_throttle.api_per_address(),
                                    sign_in_throttle.client_address(request))


class ThrottledTokenAuthentication(TokenAuthentication):
    def authenticate(self, request):
        if not self.sends_credentials(request):
            return None
        refuse_while_guessing(request)
        try:
            authenticated = super().authenticate(request)
        except exceptions.AuthenticationFailed:
            count_failure(request)
            raise
        # An auditor changes nothing, with a token as with a session (the middleware).
        if (authenticated and not auditor_may_send(request._request)
                and is_auditor(authenticated[0])):
            raise exceptions.PermissionDenied(AUDITOR_REFUSED)
        return authenticated

    def authenticate_credentials(self, key):
        # DRF's own checks, on one plain statement (``db.person_by_token``) that reads the
        # person's permissions too: building and compiling the ORM's queries cost more
        # than running them, and nearly every call asks for a permission (I8's scope).
        found = db.person_by_token(key)
        if found is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        user, token, permissions = found
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        keep_permissions(user, permissions)
        return user, token

    def sends_credentials(self, request) -> bool:
        auth = request.META.get("HTTP_AUTHORIZATION", "").split()
        return bool(auth) and auth[0].lower() == self.keyword.lower()
