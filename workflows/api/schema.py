"""The OpenAPI schema's shared refusals, documented once for every operation.

Each view documents what is its own (a 409 with the case's state, a 403 only managers
get); the answers every operation may give for the same reasons — no or a bad credential,
too many failed ones, a missing object, a body that cannot be read — are added here, with
the body they carry, so that a client generated from the schema knows every status code
it can meet (``tests/integration/test_api_fuzz.py`` checks each answer against it).
"""

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import SAFE_METHODS, AllowAny, IsAuthenticated

from workflows.api.serializers import ProblemSerializer

FIELD_ERRORS = ResolvedComponent(
    name="FieldErrors", type=ResolvedComponent.SCHEMA, object="FieldErrors",
    schema={"type": "object", "additionalProperties": {},
            "description": "What was refused: each field's messages under its name "
                           "(``non_field_errors`` for the whole), or ``detail`` when the "
                           "body could not be read at all."})

UNAUTHENTICATED = "No credential, or one that is unknown, revoked or expired."
FORBIDDEN = ("The credential is good but may not do this (another role's endpoint, or a "
             "session without its CSRF token).")
NOT_FOUND = "No such object, or not one this credential may see (or a cursor that is not ours)."
INVALID = "The request's parameters or body were refused: nothing changed."
TOO_LARGE = "The body is larger than the server accepts: nothing was read."
UNSUPPORTED_MEDIA_TYPE = "The body is in a content type this operation does not read."
THROTTLED = ("Too many requests, or too many failed credentials from this address: try "
             "again after the Retry-After header's seconds.")


class AutoSchema(SpectacularAutoSchema):
    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        responses = operation["responses"]
        for status, description in self._shared_refusals(operation):
            responses.setdefault(str(status), {"description": description})
        # A view's own refusals keep their words and gain the body every refusal has.
        for status, response in responses.items():
            if status.startswith("4") and "content" not in response:
                response["content"] = {"application/json": {"schema": self._refusal_body(status)}}
        return operation

    def _refusal_body(self, status: str) -> dict:
        if status == "400":
            self.registry.register_on_missing(FIELD_ERRORS)
            return FIELD_ERRORS.ref
        return self.resolve_serializer(ProblemSerializer, "response").ref

    def _shared_refusals(self, operation):
        parameters = operation.get("parameters", [])
        reads_body = "requestBody" in operation
        if "security" in operation:
            yield 401, UNAUTHENTICATED
            if self._may_forbid():
                yield 403, FORBIDDEN
            yield 429, THROTTLED
        paginated = any(p["in"] == "query" and p["name"] == "cursor" for p in parameters)
        if "{" in self.path or paginated:
            yield 404, NOT_FOUND
        if reads_body or any(p["in"] == "query" for p in parameters):
            yield 400, INVALID
        if reads_body:
            yield 413, TOO_LARGE
            yield 415, UNSUPPORTED_MEDIA_TYPE

    def _may_forbid(self) -> bool:
        """403 is possible when a permission asks more than being signed in, or when a
        session may sign the request in (a change without its CSRF token)."""
        if self.method not in SAFE_METHODS and any(
                isinstance(authenticator, SessionAuthentication)
                for authenticator in self.view.get_authenticators()):
            return True
        # A tuple: DRF permission classes overload | to combine permissions.
        return any(not isinstance(permission, (IsAuthenticated, AllowAny))
                   for permission in self.view.get_permissions())
