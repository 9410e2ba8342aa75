import functools
import http
from io import BytesIO

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.handlers.wsgi import LimitedStream
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone

from workflows import errors, hooks, sign_in_throttle, time_zones
from workflows.models import is_auditor


class BodySizeLimitMiddleware:
    """Answer 413 for an oversize API body before the view parses it.

    A multipart body (a file upload) may be up to API_MAX_UPLOAD_BYTES, any other up to
    API_MAX_BODY_BYTES; the view that takes the file checks the file's own limit.

    A declared Content-Length over the limit is refused without reading a byte.
    A chunked body (no Content-Length) is read up to one byte past the limit:
    over it is a 413; within it, the body is handed on as if its length had been
    declared, since Django's WSGI request would otherwise read it as empty.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            limit = _limit(request)
            if _is_chunked(request):
                body = request.META["wsgi.input"].read(limit + 1)
                if len(body) > limit:
                    return _too_large(request, f"The body is over {limit} bytes")
                request.META["CONTENT_LENGTH"] = str(len(body))
                request._stream = LimitedStream(BytesIO(body), len(body))
            else:
                try:
                    length = int(request.META.get("CONTENT_LENGTH") or 0)
                except ValueError:
                    length = 0
                if length > limit:
                    return _too_large(request, f"The body is {length} bytes")
        return self.get_response(request)


def _limit(request) -> int:
    if request.META.get("CONTENT_TYPE", "").lower().startswith("multipart/form-data"):
        return settings.API_MAX_UPLOAD_BYTES
    return settings.API_MAX_BODY_BYTES


def _is_chunked(request) -> bool:
    # Only a server that marks the input as terminated (gunicorn does) lets us
    # read to its end safely; any other server gets the Content-Length rule alone.
    return (not request.META.get("CONTENT_LENGTH")
            and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
            and bool(request.META.get("wsgi.input_terminated")))


def _too_large(request, what: str) -> JsonResponse:
    limit = _limit(request)
    advice = hooks.payload_advice(path=request.path)  # the domain's, for its endpoints
    return JsonResponse(
        {"detail": f"{what}; the limit is {limit} bytes. Split it into smaller requests"
                   f"{f' ({advice})' if advice else ''}."},
        status=413)


class SignInThrottleMiddleware:
    """Refuse a sign-in (429) while its person or its address has failed too often.

    Checked before the form, so the right password is refused too until the window
    has passed: otherwise a guesser would learn which guess was right. The failures
    are counted by ``workflows.apps`` (Django's ``user_login_failed`` signal).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        match = request.resolver_match
        if (request.method != "POST" or match is None
                or match.view_name not in settings.SIGN_IN_THROTTLED_VIEWS):
            return None
        now = timezone.now()
        username = request.POST.get(get_user_model().USERNAME_FIELD, "")
        until = max(filter(None, (
            username and sign_in_throttle.blocked_until(
                sign_in_throttle.per_person(), sign_in_throttle.person_ident(username), now=now),
            sign_in_throttle.blocked_until(
                sign_in_throttle.per_address(), sign_in_throttle.client_address(request),
                now=now))), default=None)
        if until is None:
            return None
        wait = sign_in_throttle.seconds_until(until, now=now)
        response = render(request, "registration/sign_in_refused.html",
                          {"until": until, "minutes": max(1, round(wait / 60)),
                           "back": request.get_full_path()}, status=429)
        response["Retry-After"] = str(wait)
        return response


class PersonTimeZoneMiddleware:
    """Pages show times in the person's zone (``workflows.time_zones``): templates and
    ``timezone.localtime`` convert to it, and the formats name it. The API is left in
    UTC: its ISO 8601 times carry their offset, and clients expect them stable."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            return self.get_response(request)
        with timezone.override(time_zones.zone_for(request)):
            return self.get_response(request)


AUDITOR_REFUSED = ("An auditor reads everything and changes nothing: this request would "
                   "change something, so it was refused. Nothing was changed.")
# What an auditor may still send: signing in and out, and asking for a check of the audit
# trail (its own work), change nothing of the business.
AUDITOR_MAY_POST = frozenset({"login", "logout", "audit-verifications",
                              "audit-verification-list"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def auditor_may_send(request) -> bool:
    """Whether this request is one an auditor may make: a read, or one of AUDITOR_MAY_POST."""
    if request.method in SAFE_METHODS:
        return True
    match = request.resolver_match
    return match is not None and match.view_name in AUDITOR_MAY_POST


class AuditorChangesNothingMiddleware:
    """Refuse (403) every request of a signed-in auditor that could change something, on
    pages and on the API alike, before any view runs (``READ_EVERYTHING``). People who
    use an API token instead of a session are refused the same way by the token's
    authentication (``workflows.api.authentication``)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if auditor_may_send(request) or not is_auditor(request.user):
            return None
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": AUDITOR_REFUSED}, status=403)
        return HttpResponse(errors.refusal_page(AUDITOR_REFUSED), status=403)


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, with the policy's headers built once per process.

    django-csp builds its header from the settings anew for every response (a tenth of
    an error page's CPU), yet nearly every response gets the same one: unless a view
    asked for its own policy (``csp_update`` and the like) or a page used a nonce, the
    headers built once are set, under django-csp's own conditions (exempt responses,
    excluded paths, Django's debug pages); otherwise django-csp builds them as it does.
    """

    def process_response(self, request, response):
        if (getattr(request, "_csp_nonce", None) is not None
                or any(getattr(response, name, None) is not None for name in _A_VIEWS_OWN)):
            return super().process_response(request, response)
        if response.status_code in _DEBUG_PAGES and settings.DEBUG:
            return response
        for header, policy, exempt, excluded in _policies():
            if (policy and header not in response and getattr(response, exempt, False) is False
                    and not request.path_info.startswith(excluded)):
                response[header] = policy
        # As django-csp does: a nonce asked for after the header was written is an error.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response


_A_VIEWS_OWN = ("_csp_config", "_csp_update", "_csp_replace",
                "_csp_config_ro", "_csp_update_ro", "_csp_replace_ro")
_DEBUG_PAGES = (http.HTTPStatus.INTERNAL_SERVER_ERROR, http.HTTPStatus.NOT_FOUND)


@functools.cache
def _policies() -> tuple[tuple[str, str, str, tuple[str, ...]], ...]:
    """(header, policy, the attribute exempting a response, the paths excluded) of the
    policy and of the report-only one, from the settings."""
    def excluded(setting: str) -> tuple[str, ...]:
        return tuple((getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES")
                     or ())

    return ((HEADER, build_policy(), "_csp_exempt", excluded("CONTENT_SECURITY_POLICY")),
            (HEADER_REPORT_ONLY, build_policy(report_only=True), "_csp_exempt_ro",
             excluded("CONTENT_SECURITY_POLICY_REPORT_ONLY")))


@receiver(setting_changed, dispatch_uid="workflows.middleware.forget_policies")
def _forget_policies(**kwargs) -> None:
    _policies.cache_clear()
