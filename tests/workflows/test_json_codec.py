"""JSON through orjson gives the standard library's bytes: the canonical text the audit
rows' hashes cover (rows hashed before orjson still verify), and the API's answers."""

import io
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework import parsers, renderers
from rest_framework.exceptions import ParseError

from workflows import json_codec
from workflows.api.codec import JSONParser, JSONRenderer
from workflows.models import AuditEvent
from workflows.services import audit


def old_canonical(value) -> str:
    """The canonical text as audit rows were hashed before orjson."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)


AWKWARD = [
    {"text": "Müller & Söhne", "emoji": "😀", "line": "a\u2028b", "del": "\x7f",
     "control": "\x01\x1f\n\t\"\\/", "cjk": "請求書"},
    {"floats": [0.1, 1e-7, 1e-5, 0.0001, 2.5e-10, 1e16, 1.5e300, -0.0, 123456789012345.6,
                5e-324, 1.7976931348623157e308, 10.00001, 0.30000000000000004]},
    {"ints": [0, -1, 2**53 + 1, 2**63 - 1, 2**64, -(2**63) - 1, 10**30]},
    {"nested": {"z": [{"b": 1, "a": [1.0, {"é": None}]}], "a": {"y": True, "x": False}}},
    {"looks like numbers": "0.00001 1e-7 12345678901234567890", "k": "1e-5"},
    {"lone": "\ud800", "pair joined": "\ud83d\ude00"},
    {"when": datetime(2026, 12, 4, 7, 30, 12, 345678, tzinfo=UTC), "amount": Decimal("12.30"),
     "id": uuid.UUID("12345678-1234-5678-1234-567812345678")},
    [],
    "",
]

# What audit data PostgreSQL's jsonb gives back as it was given (it writes 1e16 and
# 1.8e308 as integers and -0.0 as 0.0, which no hash of any writer survives).
STORABLE = [
    AWKWARD[0],
    {"floats": [0.1, 1e-7, 1e-5, 0.0001, 2.5e-10, 123456789012345.6, 5e-324, 10.00001,
                0.30000000000000004, 1.0]},
    AWKWARD[2], AWKWARD[3], AWKWARD[4],
]

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)


@pytest.mark.parametrize("value", AWKWARD)
def test_the_canonical_text_is_the_standard_librarys(value):
    assert audit._canonical(value) == old_canonical(value)


@given(JSON_VALUES)
@settings(max_examples=400, deadline=None)
def test_any_json_value_is_written_as_the_standard_library_writes_it(value):
    for sort_keys in (True, False):
        for ensure_ascii in (True, False):
            expected = json.dumps(value, sort_keys=sort_keys, ensure_ascii=ensure_ascii,
                                  separators=(",", ":")).encode()
            assert json_codec.dumps(value, sort_keys=sort_keys,
                                    ensure_ascii=ensure_ascii) == expected


@given(JSON_VALUES)
@settings(max_examples=400, deadline=None)
def test_any_json_text_is_read_as_the_standard_library_reads_it(value):
    body = json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    assert json_codec.loads(body, fallback=json.loads) == json.loads(body)


def test_what_orjson_reads_otherwise_is_read_by_the_fallback():
    for body in (b"123456789012345678901234567890", b"[NaN]", b'"\\ud800"', b"1e400"):
        assert repr(json_codec.loads(body, fallback=json.loads)) == repr(json.loads(body))


@pytest.mark.django_db
def test_rows_hashed_before_orjson_still_verify(monkeypatch):
    """Events written by the old canonical text (non-ASCII, awkward floats, large
    integers, nested objects), then sealed and verified by the new."""
    data = STORABLE
    with monkeypatch.context() as old_code:
        old_code.setattr(audit, "_canonical", old_canonical)
        AuditEvent.objects.bulk_create([
            audit.build(verb="case.opened", object_type="case", object_id=f"old-{n}",
                        actor_label="ai:before-orjson", data=item)
            for n, item in enumerate(data)])
        copied = [audit.row(verb="case.opened", object_type="case", object_id=f"copy-{n}",
                            actor_label="ai:before-orjson", now=datetime.now(UTC),
                            data=item) for n, item in enumerate(data)]
    # As COPY writes them: the data column takes the JSON text.
    AuditEvent.objects.bulk_create([
        AuditEvent(**{**dict(zip(audit.ROW_COLUMNS, values, strict=True)),
                      "data": json.loads(values[7])})
        for values in copied])
    new_rows = [audit.row(verb="case.opened", object_type="case", object_id=f"copy-{n}",
                          actor_label="ai:before-orjson", now=values[0], data=item)
                for n, (item, values) in enumerate(zip(data, copied, strict=True))]

    assert [values[7:9] for values in new_rows] == [values[7:9] for values in copied]
    assert audit.seal() == 2 * len(data)
    report = audit.verify()
    assert report.ok, report.problems


@pytest.mark.parametrize("data", [
    *AWKWARD[:5], {"results": [{"status": 201, "decision": {"confidence": 0.00012}}]},
    None, {"when": datetime(2026, 12, 4, 7, 30, 12, 345678, tzinfo=UTC),
                               "amount": Decimal("12.30")}])
def test_the_api_writes_drfs_bytes(data):
    assert JSONRenderer().render(data) == renderers.JSONRenderer().render(data)
    assert (JSONRenderer().render(data, "application/json; indent=4")
            == renderers.JSONRenderer().render(data, "application/json; indent=4"))


@pytest.mark.parametrize("body", [
    b'{"a": [1, 2.5, "\\u00e9", "\xc3\xa9"], "b": {"c": null}}',
    b"123456789012345678901234567890", b"[0.1, 1e-7]", b"", b"{", b"[NaN]", b'"\\ud800"',
    b"\xef\xbb\xbf{}"])
def test_the_api_reads_what_drf_reads(body):
    def parsed(parser):
        try:
            return repr(parser.parse(io.BytesIO(body), "application/json", {}))
        except ParseError as exc:
            return str(exc.detail)
    assert parsed(JSONParser()) == parsed(parsers.JSONParser())
