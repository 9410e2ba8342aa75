"""Every answer carries an X-Request-ID, and every log line of its request the same id
(workflows/request_ids.py), in the JSON logs and the plain-text ones."""

import io
import json
import logging
import re

import pytest
from django.test import Client

from config.json_logs import JsonFormatter
from workflows.request_ids import TextFormatter

MISSING = "/api/v1/no-such-thing/"  # Django logs "Not Found: <path>" for it


@pytest.fixture
def console():
    """The configured console handler (settings.LOGGING), writing into a buffer."""
    [handler] = [handler for handler in logging.getLogger().handlers
                 if handler.name == "console"]
    buffer = io.StringIO()
    stream, formatter = handler.setStream(buffer), handler.formatter
    yield handler, buffer
    handler.setStream(stream)
    handler.setFormatter(formatter)


def test_the_callers_request_id_is_answered_and_on_the_json_log_line(console):
    handler, buffer = console
    handler.setFormatter(JsonFormatter())

    response = Client().get(MISSING, HTTP_X_REQUEST_ID="lb-7f3a.42")

    assert response.status_code == 404
    assert response["X-Request-ID"] == "lb-7f3a.42"
    [line] = [json.loads(line) for line in buffer.getvalue().splitlines()
              if MISSING in line]
    assert line["message"] == f"Not Found: {MISSING}"
    assert line["request_id"] == "lb-7f3a.42"


def test_without_one_each_request_gets_its_own_id(console):
    handler, buffer = console
    handler.setFormatter(JsonFormatter())

    first, second = Client().get(MISSING), Client().get(MISSING)

    ids = [first["X-Request-ID"], second["X-Request-ID"]]
    assert all(re.fullmatch(r"[0-9a-f]{32}", request_id) for request_id in ids)
    assert ids[0] != ids[1]
    logged = [json.loads(line)["request_id"] for line in buffer.getvalue().splitlines()]
    assert logged == ids


@pytest.mark.parametrize("forged", ["abc\nERROR forged line", "x" * 129, "<script>"])
def test_a_request_id_that_could_forge_or_flood_log_lines_is_replaced(forged):
    response = Client().get(MISSING, HTTP_X_REQUEST_ID=forged)

    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


def test_plain_text_lines_lead_with_the_request_id_and_others_stay_as_they_were(console):
    handler, buffer = console
    handler.setFormatter(TextFormatter())

    Client().get(MISSING, HTTP_X_REQUEST_ID="req-1")
    logging.getLogger("backstop.test").warning("outside any request")

    assert buffer.getvalue().splitlines() == [f"[request req-1] Not Found: {MISSING}",
                                              "outside any request"]
