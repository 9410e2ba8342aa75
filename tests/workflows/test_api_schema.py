"""The OpenAPI schema names every answer a client can get: the refusals every operation
shares (``workflows.api.schema``), each with its JSON body, and null where a field can be
null. A client generated from it meets no status code and no value it was not told of."""

import pytest
from drf_spectacular.generators import SchemaGenerator

METHODS = ("get", "put", "post", "patch", "delete")


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(public=True)


def documented(schema, method, path) -> set[str]:
    return set(schema["paths"][path][method]["responses"])


@pytest.mark.parametrize(("method", "path", "refusals"), [
    ("get", "/api/v1/queues/", {"401", "429"}),
    ("get", "/api/v1/cases/{id}/", {"401", "404", "429"}),
    # A list with filters and a cursor: a refused filter, a cursor that is not ours.
    ("get", "/api/v1/cases/", {"400", "401", "404", "429"}),
    # A change: signed in by session without the CSRF token, a body it cannot read.
    ("post", "/api/v1/cases/{id}/resolve/",
     {"400", "401", "403", "404", "409", "413", "415", "429"}),
    ("put", "/api/v1/me/availability/", {"400", "401", "403", "413", "415", "429"}),
])
def test_each_operation_documents_the_refusals_it_can_answer(schema, method, path, refusals):
    answers = documented(schema, method, path)

    assert refusals <= answers, f"{method.upper()} {path} omits {sorted(refusals - answers)}"


def test_only_operations_with_a_body_document_its_refusals(schema):
    assert not {"413", "415"} & documented(schema, "get", "/api/v1/cases/{id}/")
    assert "404" not in documented(schema, "get", "/api/v1/queues/")


def test_every_refusal_says_what_happened_in_json(schema):
    for path, operations in schema["paths"].items():
        for method in set(METHODS) & operations.keys():
            for status, response in operations[method]["responses"].items():
                if status.startswith("4"):
                    assert "application/json" in response.get("content", {}), (
                        f"{method.upper()} {path}: {status} has no JSON body")


@pytest.mark.parametrize(("component", "field"), [
    ("Case", "assignee"), ("CaseDetail", "first_reviewer"), ("CaseDetail", "resolution"),
    ("Resolution", "approved_by"),
])
def test_fields_that_can_be_null_say_so(schema, component, field):
    assert schema["components"]["schemas"][component]["properties"][field]["nullable"] is True
