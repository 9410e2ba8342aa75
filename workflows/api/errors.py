"""One place that turns domain refusals into HTTP answers."""

from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig, ValidationError
from django_fsm import ConcurrentTransition, TransitionNotAllowed
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from workflows.services.errors import Conflict, ReviewerAway


def exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):
        return Response({"detail": "The request body is too large."},
                        status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, ReviewerAway):
        return Response({"detail": str(exc), "away_since": exc.away_since},
                        status=status.HTTP_409_CONFLICT)
    if isinstance(exc, TransitionNotAllowed | ConcurrentTransition | Conflict):
        body = {"detail": str(exc) or "This change is not allowed in the case's current state."}
        case = getattr(exc, "case", None) or getattr(exc, "object", None)
        if case is not None:
            # Read, not refresh_from_db: django-fsm's refresh toggles the field's
            # class-wide ``protected`` flag, which races between threads.
            model = type(case)
            names = [name for name in ("state", "version")
                     if any(f.name == name for f in model._meta.concrete_fields)]
            current = model._default_manager.filter(pk=case.pk).values(*names).first()
            if current is not None:
                body.update(current)
        return Response(body, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, ObjectDoesNotExist):
        # I8: what the caller may not see is simply not there.
        return Response({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, ValidationError):
        # A service refused its input: field errors, as DRF's own validation gives them.
        errors = (exc.message_dict if hasattr(exc, "error_dict")
                  else {"non_field_errors": exc.messages})
        return Response(errors, status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)
