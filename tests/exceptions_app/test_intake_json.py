"""Intake's JSON through orjson: the body hash (I1) of a decision is the one stored
before, and the intake parser reads what it read before."""

import hashlib
import io
import json

import pytest
from rest_framework.exceptions import ParseError
from rest_framework.utils import json as drf_json

from exceptions_app.api.serializers import IntakeJSONParser
from exceptions_app.services.intake import DECISION_FIELDS, _canonical_numbers, body_hash
from tests.workflows.test_json_codec import AWKWARD


def old_body_hash(data: dict) -> str:
    """The body hash as intake wrote it before orjson."""
    canonical = {field: _canonical_numbers(data.get(field)) for field in DECISION_FIELDS}
    canonical["explanation"] = canonical["explanation"] or ""
    canonical["meta"] = canonical["meta"] or {}
    return hashlib.sha256(
        json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@pytest.mark.parametrize("value", [value for value in AWKWARD[:6] if isinstance(value, dict)])
def test_the_body_hash_is_the_one_stored_before_orjson(value):
    body = {"use_case": "invoice-approval", "external_id": "é-1", "model_version": "v1",
            "confidence": 0.1, "input": value, "output": {"amount": 1e-7, "n": 4100.0},
            "explanation": "Müller", "meta": {"pages": 2.0}}

    assert body_hash(body) == old_body_hash(body)


def old_intake_parse(body: bytes):
    """The intake parser before orjson: DRF's reading (lone surrogates included), a
    hostile depth a ParseError."""
    try:
        return drf_json.loads(body.decode())
    except RecursionError:
        raise ParseError("JSON parse error - the body is nested too deeply.") from None
    except ValueError as exc:
        raise ParseError(f"JSON parse error - {exc}") from None


@pytest.mark.parametrize("body", [
    b'{"input": {"vendor": "M\\u00fcller", "amount": 1e-7}}', b"[NaN]", b'"\\ud800"',
    b"123456789012345678901234567890", b"", b"{", b"[" * 100_000 + b"]" * 100_000])
def test_the_intake_parser_reads_what_it_read_before(body):
    def parsed(parse):
        try:
            return repr(parse(body))
        except ParseError as exc:
            return str(exc.detail)

    assert parsed(lambda body: IntakeJSONParser().parse(
        io.BytesIO(body), "application/json", {})) == parsed(old_intake_parse)
