"""One place that turns domain refusals into HTTP answers."""

from django.core.exceptions import RequestDataTooBig
from django_fsm import ConcurrentTransition, TransitionNotAllowed
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from workflows.services.errors import CaseConflict


def exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):
        return Response({"detail": "The request body is too large."},
                        status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, TransitionNotAllowed | ConcurrentTransition | CaseConflict):
        body = {"detail": str(exc) or "This change is not allowed in the case's current state."}
        case = getattr(exc, "case", None) or getattr(exc, "object", None)
        if case is not None:
            case.refresh_from_db(fields=["state", "version"])
            body.update(state=case.state, version=case.version)
        return Response(body, status=status.HTTP_409_CONFLICT)
    return drf_exception_handler(exc, context)
