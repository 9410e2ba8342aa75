"""LOG_FORMAT=json: each record is one JSON object on one line (config/json_logs.py)."""

import json
import logging
import sys

from config.json_logs import JsonFormatter


def _record(*, exc_info=None, extra=None) -> logging.LogRecord:
    return logging.getLogger("backstop.sweeps").makeRecord(
        "backstop.sweeps", logging.ERROR, __file__, 1, "case %s failed", (12,), exc_info,
        extra=extra)


def test_a_record_with_an_exception_is_one_json_line_with_its_traceback():
    try:
        raise RuntimeError("the relay lost its connection")
    except RuntimeError:
        record = _record(exc_info=sys.exc_info())

    line = JsonFormatter().format(record)

    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "backstop.sweeps"
    assert entry["message"] == "case 12 failed"
    assert entry["time"].endswith("+00:00")
    assert "RuntimeError: the relay lost its connection" in entry["exception"]
    assert "Traceback" in entry["exception"]


def test_extra_fields_are_kept_and_what_json_cannot_hold_is_written_as_text():
    record = _record(extra={"case_id": 12, "request": object()})

    entry = json.loads(JsonFormatter().format(record))

    assert entry["case_id"] == 12
    assert entry["request"].startswith("<object object")
    assert "exception" not in entry
