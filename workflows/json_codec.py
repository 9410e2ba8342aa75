"""JSON text at orjson's speed, byte for byte as the standard library writes and reads it.

The audit chain's row hashes and intake's body hashes (I1) cover JSON text as
``json.dumps(value, sort_keys=True, separators=(",", ":"))`` wrote it when the rows
were stored, and API answers are the bytes DRF's JSONRenderer wrote; both must stay as
they were. orjson writes the same text but for what is put right here after it:

- floats below 1e-4 or with a negative exponent: orjson writes ``0.00001`` and ``1e-7``,
  Python's ``repr`` ``1e-05`` and ``1e-07`` (every other float is written alike);
- characters beyond ASCII and DEL, which ``ensure_ascii`` escapes as ``\\uXXXX``;
- what orjson does not write at all (integers beyond 64 bits, a lone surrogate, keys
  that are not text): the standard library writes those.

Reading, orjson would take an integer beyond 64 bits as a float, and refuses what
Python's parser takes (``NaN``, lone surrogates, ``1e400``): such bodies are read by the
standard library, as before. ``tests/workflows/test_json_codec.py`` compares both.
"""

import json
import re

import orjson

_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS

# A string (skipped) or a float orjson writes unlike repr: 0.0000..., or 1e-7.
_FLOAT = re.compile(
    rb'"(?:[^"\\]|\\.)*"|(?<![\w.])(-?(?:0\.0000\d*|\d+(?:\.\d+)?e-\d+))')
_NOT_PRINTABLE_ASCII = re.compile("[^\x00-\x7e]")
# Long digit runs: an integer orjson may read as a float (or text that only looks so).
_LONG_NUMBER = re.compile(rb"\d{19}")


def dumps(value, *, sort_keys: bool = False, ensure_ascii: bool = True,
          encoder: type[json.JSONEncoder] = json.JSONEncoder) -> bytes:
    """``json.dumps(value, sort_keys=..., ensure_ascii=..., separators=(",", ":"),
    cls=encoder).encode()``, the same bytes; ``encoder``'s ``default`` writes what JSON
    has no type for (datetimes included)."""
    try:
        text = orjson.dumps(value, default=encoder().default,
                            option=_OPTIONS | (orjson.OPT_SORT_KEYS if sort_keys else 0))
    except orjson.JSONEncodeError:
        return json.dumps(value, sort_keys=sort_keys, ensure_ascii=ensure_ascii,
                          separators=(",", ":"), cls=encoder).encode()
    if _may_have_such_float(text):
        text = _FLOAT.sub(_as_repr, text)
    if ensure_ascii and (not text.isascii() or b"\x7f" in text):
        text = _NOT_PRINTABLE_ASCII.sub(_escaped, text.decode()).encode()
    return text


def _may_have_such_float(text: bytes) -> bool:
    """Whether ``text`` holds ``0.0000`` or a digit before ``e-`` (what ``_FLOAT`` may
    rewrite): by ``bytes.find``, several times faster than a regex searching for
    either."""
    if b"0.0000" in text:
        return True
    at = text.find(b"e-", 1)
    while at != -1:
        if 48 <= text[at - 1] <= 57:  # a digit
            return True
        at = text.find(b"e-", at + 2)
    return False


def canonical(value, *, encoder: type[json.JSONEncoder] = json.JSONEncoder) -> str:
    """The canonical text the hashes cover: sorted keys, no blanks, ASCII."""
    return dumps(value, sort_keys=True, encoder=encoder).decode()


def loads(body: bytes, *, fallback):
    """The value of a UTF-8 JSON body, read by orjson; ``fallback(body)`` (the standard
    library's reading, with its errors) for what orjson would read otherwise or not at
    all."""
    if not _LONG_NUMBER.search(body):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # the standard library decides, and words the error
    return fallback(body)


def _as_repr(match: re.Match) -> bytes:
    number = match.group(1)
    return match.group(0) if number is None else repr(float(number)).encode()


def _escaped(match: re.Match) -> str:
    code = ord(match.group(0))
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # beyond the BMP: a UTF-16 surrogate pair, as json does
    return f"\\u{0xD800 | (code >> 10):04x}\\u{0xDC00 | (code & 0x3FF):04x}"
