"""AI systems authenticate with ``Authorization: Api-Key <key>``; people use session or token."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from exceptions_app.models import AiSystem, AiSystemAPIKey
from workflows.api.authentication import count_failure, refuse_while_guessing


class AiSystemPrincipal:
    """``request.user`` for a call made by an AI system."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False
    pk = None

    def __init__(self, ai_system: AiSystem):
        self.ai_system = ai_system

    def __str__(self):
        return self.ai_system.actor_label

    def has_perm(self, perm, obj=None) -> bool:
        return False


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Api-Key"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode(errors="replace")
        scheme, _, key = header.partition(" ")
        if scheme != self.keyword:
            return None
        # An address guessing keys gets 429 until its window has passed, good key or not.
        refuse_while_guessing(request)
        key = key.strip()
        prefix, _, _ = key.partition(".")
        # Not cached: a revoked key is refused from the next request on. No ORDER BY:
        # the prefix is unique, and compiling an ordering costs more than the lookup.
        api_key = next(iter(AiSystemAPIKey.objects.select_related("ai_system")
                            .filter(prefix=prefix, revoked=False).order_by()[:1]), None)
        if api_key is None or api_key.has_expired or not api_key.is_valid(key):
            count_failure(request)
            raise exceptions.AuthenticationFailed("The API key is unknown, revoked or expired.")
        if not api_key.ai_system.is_active:
            raise exceptions.AuthenticationFailed("This AI system is deactivated.")
        return AiSystemPrincipal(api_key.ai_system), api_key

    def authenticate_header(self, request):
        return self.keyword


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Api-Key <key>`, as printed by `manage.py issue_api_key`."}


class IsAiSystem(permissions.BasePermission):
    message = "This endpoint is for AI systems: authenticate with an Api-Key."

    def has_permission(self, request, view):
        return isinstance(request.user, AiSystemPrincipal)


class AiSystemRateThrottle(SimpleRateThrottle):
    """Each AI system has its own budget; one noisy system cannot starve another.

    A batch counts as one request. The budget is per cache: shared across
    processes with Redis, per process with the embedded default.
    """

    scope = "ai_system"

    def get_rate(self):
        # Read at request time (DRF binds THROTTLE_RATES at import), so a changed
        # REST_FRAMEWORK setting takes effect without a restart.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view):
        if isinstance(request.user, AiSystemPrincipal):
            return self.cache_format % {"scope": self.scope,
                                        "ident": request.user.ai_system.pk}
        return None
