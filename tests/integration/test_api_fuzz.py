"""The API fuzzed from its own OpenAPI schema (Schemathesis): every operation, called with
generated requests, valid and invalid, once with an AI system's API key and once with a
person's token. Each answer must be no server error, a status code the schema documents
for that operation, of the content type it documents, and shaped as its schema says.

The demo's data is seeded first, so that generated calls reach real objects: in the
generated examples, path parameters are about half of the time the id, slug or username
of an object that exists (a case in each state, its decision, a consult, a notification,
a webhook in the outbox).

``FUZZ_MAX_EXAMPLES`` sets the generated examples per operation and credential (default 10,
the size the test suite runs); ``bin/fuzz`` runs it at full size.
"""

import json
import os
import traceback
from collections import Counter
from dataclasses import dataclass, field

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core.signals import got_request_exception, request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from exceptions_app.demo import data as demo_data
from exceptions_app.demo import history
from exceptions_app.demo.setup import seed_demo
from exceptions_app.models import AiSystem, Decision
from tests.exceptions_app.factories import issue_key
from workflows.models import (
    Calendar,
    CalendarClosure,
    Case,
    ConsultRequest,
    Notification,
    OutboxMessage,
    Process,
    Queue,
    SlaPolicy,
)
from workflows.services.tokens import issue_user_token

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "10"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]

pytestmark = pytest.mark.fuzz

# The objects a path parameter names, by the path's first segment and the parameter.
REAL_VALUES = {
    ("calendars", "id"): lambda: Calendar.objects.values_list("pk", flat=True),
    ("calendars", "closure_id"): lambda: CalendarClosure.objects.values_list("pk", flat=True),
    ("cases", "id"): lambda: Case.objects.values_list("pk", flat=True),
    ("cases", "case_id"): lambda: ConsultRequest.objects.values_list("case_id", flat=True),
    ("cases", "consult_id"): lambda: ConsultRequest.objects.values_list("pk", flat=True),
    ("decisions", "id"): lambda: Decision.objects.values_list("pk", flat=True),
    ("notifications", "id"): lambda: Notification.objects.values_list("pk", flat=True),
    ("outbox", "id"): lambda: OutboxMessage.objects.values_list("pk", flat=True),
    ("processes", "slug"): lambda: Process.objects.values_list("slug", flat=True),
    ("queues", "slug"): lambda: Queue.objects.values_list("slug", flat=True),
    ("queues", "version"): lambda: SlaPolicy.objects.values_list("version", flat=True),
    ("reviewers", "username"): lambda: get_user_model().objects.values_list(
        "username", flat=True),
}


def real_path_parameters(context, path_parameters):
    """Half of the time, the generated path parameters with each one that names an object
    replaced by an existing object's: random ids alone would only ever meet 404s."""
    if not path_parameters:
        return st.just(path_parameters)
    resource = context.operation.path.strip("/").split("/")[0]
    real = {}
    for name in path_parameters:
        values = REAL_VALUES.get((resource, name))
        existing = sorted(set(values())) if values else []
        if existing:
            real[name] = st.sampled_from(existing)
    if not real:
        return st.just(path_parameters)
    return st.one_of(st.just(path_parameters),
                     st.fixed_dictionaries(real).map(lambda found: {**path_parameters,
                                                                    **found}))


@pytest.fixture
def demo(db, settings, monkeypatch):
    """The demo (its people, queues, calendars, use cases and their contracts, policies and
    RACI matrices), with a shorter history: every state a case can be in, escalations,
    consults and notifications, and webhooks waiting in the outbox (never sent: the test's
    transaction does not commit). Seeded once per credential: what the operations change
    piles up in it, as it would on a live server."""
    for name, count in (("HISTORY_PER_DAY", 3), ("RECENT_DECISIONS", 6),
                        ("INTERCOMPANY_DECISIONS", 4)):
        monkeypatch.setattr(history, name, count)
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    return seed_demo(callback_url="http://127.0.0.1:9/webhooks/backstop")


@pytest.fixture
def ai_system_key(demo):
    return f"Api-Key {issue_key(AiSystem.objects.get(slug=demo_data.AI_SYSTEM_SLUG))}"


@pytest.fixture
def person_token(demo):
    """The demo's manager: works every queue and may manage any case."""
    manager = get_user_model().objects.get(username="manager")
    return f"Token {issue_user_token(user=manager, actor=manager).key}"


@pytest.fixture
def application():
    """The WSGI application the web server runs. Its calls run in the test's transaction:
    Django must not close the connection around each (the test client does the same)."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield get_wsgi_application()
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def server_tracebacks():
    """The tracebacks of the exceptions the server failed on, to explain a 5xx in the
    report (the server's log is left out of it: the seed alone logs pages)."""
    tracebacks = []

    def record(sender, request, **kwargs):
        tracebacks.append(traceback.format_exc())

    got_request_exception.connect(record)
    yield tracebacks
    got_request_exception.disconnect(record)


def served_schema() -> dict:
    """The OpenAPI schema /api/v1/schema/ serves (the same generator, in-process)."""
    generator = SchemaGenerator()
    return json.loads(OpenApiJsonRenderer().render(generator.get_schema(public=True)))


@pytest.fixture
def api_schema(request, demo):
    # Schemathesis's lazy loader names each operation's subtest by rewriting the test's
    # ``_nodeid``, which pytest 9 no longer sets: give it one to rewrite.
    request.node._nodeid = request.node.nodeid
    loaded = schemathesis.openapi.from_dict(served_schema())
    loaded.hook("flatmap_path_parameters")(real_path_parameters)
    return loaded


schema = schemathesis.pytest.from_fixture("api_schema")

FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.filter_too_much])


@dataclass
class Tally:
    """What one run sent and got back, for the report and docs/RELIABILITY.md."""

    operations: set = field(default_factory=set)
    statuses: Counter = field(default_factory=Counter)

    def line(self, name: str) -> str:
        statuses = ", ".join(f"{status}: {count}" for status, count
                             in sorted(self.statuses.items()))
        return (f"{name}: {len(self.operations)} operations, {self.statuses.total()} requests "
                f"(FUZZ_MAX_EXAMPLES={MAX_EXAMPLES}, and Schemathesis's coverage cases); "
                f"answers {statuses}")


@pytest.fixture
def tally(request, capsys):
    """Counts each run's operations and answers, and prints them however pytest captures."""
    counted = Tally()
    yield counted
    with capsys.disabled():
        print(f"\n{counted.line(request.node.name)}")


def call_and_check(case, credential, application, tally, server_tracebacks):
    # A request that failed on the database must not leave the test's transaction aborted
    # for the calls after it: each call runs in a savepoint, undone when it failed.
    server_tracebacks.clear()
    savepoint = transaction.savepoint()
    response = case.call(headers={"Authorization": credential}, app=application)
    if response.status_code >= 500:
        transaction.savepoint_rollback(savepoint)
    else:
        transaction.savepoint_commit(savepoint)
    tally.operations.add(case.operation.label)
    tally.statuses[response.status_code] += 1
    if server_tracebacks:
        pytest.fail(f"{case.operation.label} answered {response.status_code}: a server error. "
                    f"Reproduce with:\n{case.as_curl_command()}\nThe server failed on:\n"
                    + "\n".join(server_tracebacks))
    case.validate_response(response, checks=CHECKS)


@schema.parametrize()
@FUZZ_SETTINGS
def test_every_operation_answers_an_ai_system_as_documented(case, ai_system_key, application,
                                                            tally, server_tracebacks):
    call_and_check(case, ai_system_key, application, tally, server_tracebacks)


@schema.parametrize()
@FUZZ_SETTINGS
def test_every_operation_answers_a_person_as_documented(case, person_token, application,
                                                        tally, server_tracebacks):
    call_and_check(case, person_token, application, tally, server_tracebacks)
