"""A request id on every answer and every log line the request causes.

``RequestIdMiddleware`` takes the caller's ``X-Request-ID`` (a load balancer or an
upstream service may have set it, so one id follows a request across systems) or makes
one, answers it in ``X-Request-ID`` and holds it for the request's duration;
``RequestIdFilter`` puts it on every log record as ``request_id`` ("-" outside a
request: Celery tasks, start-up), so a 500's traceback, the warnings before it and the
client's report can be matched. A caller's id is taken only if it is short and plain
(letters, digits and ``-_.:``), so it cannot forge log lines or fill them.
"""

import logging
import re
import uuid
from contextvars import ContextVar

from django.core.signals import request_finished
from django.dispatch import receiver

HEADER = "X-Request-ID"
NO_REQUEST = "-"
_ACCEPTED = re.compile(r"[A-Za-z0-9._:-]{1,128}")

_current: ContextVar[str] = ContextVar("request_id", default=NO_REQUEST)


def current() -> str:
    """The id of the request being handled, or "-" outside one."""
    return _current.get()


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.headers.get(HEADER, "")
        request_id = given if _ACCEPTED.fullmatch(given) else uuid.uuid4().hex
        request.request_id = request_id
        # Held until the request has finished (below), not only while the middleware
        # runs: Django logs a 4xx or 5xx answer after the middleware has returned it.
        _current.set(request_id)
        response = self.get_response(request)
        response[HEADER] = request_id
        return response


@receiver(request_finished, dispatch_uid="workflows.request_ids.forget")
def _forget(**kwargs) -> None:
    _current.set(NO_REQUEST)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to each record a handler emits; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current()
        return True


class TextFormatter(logging.Formatter):
    """The plain-text log line (LOG_FORMAT=text): the message, led by its request's id
    inside a request; outside one (commands, Celery, start-up) the message alone."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", NO_REQUEST)
        return line if request_id == NO_REQUEST else f"[request {request_id}] {line}"
