"""What a caller sees when the server fails: JSON under /api/, a plain page elsewhere,
and 503 with Retry-After while the database or Redis (the cache behind throttling and
sign-in limits, and the broker) cannot be reached, so clients retry later instead of
treating the request as refused. The same split for the refusals Django itself answers
before any API view runs: a path no endpoint matches (404) and a request it cannot read
(400), so that an API client always gets the JSON the schema documents."""

import functools
import logging
import sys

import redis
from django.conf import settings
from django.core.signals import setting_changed
from django.db import InterfaceError, OperationalError
from django.dispatch import receiver
from django.http import HttpResponse, JsonResponse
from django.template import loader
from django.utils.html import conditional_escape
from django.views import defaults

DATABASE_UNAVAILABLE = (
    "Service unavailable",
    "The database cannot be reached right now. Nothing was changed; try again in a few "
    "seconds.")
NO_SUCH_ENDPOINT = ("Not found: no API endpoint answers this path. Ids in paths are whole "
                    "numbers; the API documentation at /api/v1/docs/ lists every path.")
UNREADABLE_REQUEST = ("Bad request: the server could not read this request (its headers, "
                      "query or body). Nothing was changed.")
REDIS_UNAVAILABLE = (
    "Service unavailable",
    "A service Backstop depends on (Redis) cannot be reached right now. Try again in a few "
    "seconds.")
# Refused or timed-out connections: redis-py raises these (not the built-in
# ConnectionError) from Django's Redis cache, whatever the command.
REDIS_FAILURES = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
SERVER_ERROR = (
    "Something went wrong",
    "The server failed to answer this request and logged the error. Try again; if it "
    "keeps failing, tell your operator the time it happened.")


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def server_error(request):
    """``handler500``: Django calls it inside the failed request's ``except`` block."""
    failure = sys.exc_info()[1]
    if isinstance(failure, OperationalError | InterfaceError):
        status, (title, message) = 503, DATABASE_UNAVAILABLE
    elif isinstance(failure, REDIS_FAILURES):
        status, (title, message) = 503, REDIS_UNAVAILABLE
    else:
        status, (title, message) = 500, SERVER_ERROR
    if _is_api(request):
        response = JsonResponse({"detail": message}, status=status)
    else:
        # Rendered without a request: error pages must not need the database.
        response = HttpResponse(page("_error_page.html", title=title, message=message),
                                status=status)
    if status == 503:
        response["Retry-After"] = str(settings.RETRY_AFTER_SECONDS)
    return response


def not_found(request, exception):
    """``handler404``: a path no URL pattern matches, or an ``Http404`` outside DRF.

    The page is rendered without the request, like every error page: no menu, so no
    query for it (a 404 is as cheap as the lookup that found nothing).
    """
    if _is_api(request):
        return JsonResponse({"detail": NO_SUCH_ENDPOINT}, status=404)
    return HttpResponse(page("404.html"), status=404)


def permission_denied(request, exception):
    """``handler403``: a page refused to this person, with the refusal's words if any."""
    message = exception.args[0] if exception is not None and exception.args else ""
    return HttpResponse(refusal_page(message), status=403)


# An error page is the same for everyone (rendered without the request: no person, no
# menu), so each is rendered once per process and answered as it is; a refusal's words
# go into its page's frame, escaped as the template escapes them. Rendering it anew cost
# a 403 or a 404 a tenth of its CPU. Dropped when a setting changes (tests change the
# templates' or static files' settings).
_REFUSAL = "REFUSALWORDS7d1f0c"  # where the words go: plain, so escaping leaves it as is


@functools.cache
def page(template: str, **context: str) -> str:
    """``template`` rendered with ``context`` (constant texts) and no request."""
    return loader.render_to_string(template, context)


def refusal_page(message) -> str:
    """``403.html`` with ``message`` (the refusal's words; none: the page's own)."""
    if not message:
        return page("403.html")
    return str(conditional_escape(message)).join(_refusal_frame())


@functools.cache
def _refusal_frame() -> tuple[str, ...]:
    return tuple(page("403.html", exception=_REFUSAL).split(_REFUSAL))


@receiver(setting_changed, dispatch_uid="workflows.errors.forget_pages")
def _forget_pages(**kwargs) -> None:
    page.cache_clear()
    _refusal_frame.cache_clear()


class RefusalWithoutTraceback(logging.Filter):
    """A refusal (403) is an answer, not a failure: logged as one line, without the
    traceback Django attaches (formatting it cost more than answering)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) == 403:
            record.exc_info = None
            record.exc_text = None
        return True


def bad_request(request, exception):
    """``handler400``: a request Django refused as unreadable or suspicious."""
    if _is_api(request):
        return JsonResponse({"detail": UNREADABLE_REQUEST}, status=400)
    return defaults.bad_request(request, exception)
