"""What a caller sees when the server fails: JSON under /api/, a plain page elsewhere,
and 503 with Retry-After while the database or Redis (the cache behind throttling and
sign-in limits, and the broker) cannot be reached, so clients retry later instead of
treating the request as refused. The same split for the refusals Django itself answers
before any API view runs: a path no endpoint matches (404) and a request it cannot read
(400), so that an API client always gets the JSON the schema documents."""

import logging
import sys

import redis
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template import loader
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
        # The template is rendered without a request: error pages must not need the database.
        body = loader.render_to_string("_error_page.html", {"title": title, "message": message})
        response = HttpResponse(body, status=status)
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
    return HttpResponse(loader.render_to_string("404.html"), status=404)


def permission_denied(request, exception):
    """``handler403``: a page refused to this person, with the refusal's words if any."""
    message = exception.args[0] if exception is not None and exception.args else ""
    return HttpResponse(loader.render_to_string("403.html", {"exception": message}),
                        status=403)


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
