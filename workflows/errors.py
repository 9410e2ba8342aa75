"""What a caller sees when the server fails: JSON under /api/, a plain page elsewhere,
and 503 with Retry-After while the database or Redis (the cache behind throttling and
sign-in limits, and the broker) cannot be reached, so clients retry later instead of
treating the request as refused."""

import sys

import redis
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template import loader

DATABASE_UNAVAILABLE = (
    "Service unavailable",
    "The database cannot be reached right now. Nothing was changed; try again in a few "
    "seconds.")
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


def server_error(request):
    """``handler500``: Django calls it inside the failed request's ``except`` block."""
    failure = sys.exc_info()[1]
    if isinstance(failure, OperationalError | InterfaceError):
        status, (title, message) = 503, DATABASE_UNAVAILABLE
    elif isinstance(failure, REDIS_FAILURES):
        status, (title, message) = 503, REDIS_UNAVAILABLE
    else:
        status, (title, message) = 500, SERVER_ERROR
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": message}, status=status)
    else:
        # The template is rendered without a request: error pages must not need the database.
        body = loader.render_to_string("_error_page.html", {"title": title, "message": message})
        response = HttpResponse(body, status=status)
    if status == 503:
        response["Retry-After"] = str(settings.RETRY_AFTER_SECONDS)
    return response
