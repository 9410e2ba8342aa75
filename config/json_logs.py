"""One JSON object per log line (LOG_FORMAT=json), with the standard library only.

A log collector reads each line on its own: a traceback stays inside its record's
``exception`` field instead of spreading over lines that look like records of their own.
"""

import json
import logging
from datetime import UTC, datetime

# What every LogRecord carries; anything else was passed in ``extra=`` and is kept.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and key not in entry:
                entry[key] = value
        # default=str: an extra that JSON cannot hold (a request, a datetime) is
        # written as its text rather than losing the whole line.
        return json.dumps(entry, default=str, ensure_ascii=False)
