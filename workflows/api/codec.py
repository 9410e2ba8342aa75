"""JSON in and out of the API through orjson (``workflows.json_codec``): the bytes DRF's
own parser and renderer would give, at a fraction of their cost."""

import codecs
import io

from rest_framework import parsers, renderers

from workflows import json_codec


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, reading UTF-8 bodies by orjson; DRF's own reads the rest (and
    words every error, as before)."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = parsers.get_encoding(parser_context or {})
        if codecs.lookup(encoding).name != "utf-8":
            return self.parse_slowly(stream, media_type, parser_context)
        return json_codec.loads(stream.read(), fallback=lambda body: self.parse_slowly(
            io.BytesIO(body), media_type, parser_context))

    def parse_slowly(self, stream, media_type=None, parser_context=None):
        """What DRF's parser answers for what orjson does not read alike."""
        return super().parse(stream, media_type, parser_context)


class JSONRenderer(renderers.JSONRenderer):
    """DRF's JSON renderer, writing compact answers by orjson, the same bytes; an
    indented answer (``Accept: application/json; indent=4``) as DRF writes it."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if (data is None or not self.compact
                or self.get_indent(accepted_media_type, renderer_context or {}) is not None):
            return super().render(data, accepted_media_type, renderer_context)
        text = json_codec.dumps(data, ensure_ascii=self.ensure_ascii,
                                encoder=self.encoder_class)
        if not text.isascii():  # as DRF does: JSON that is also JavaScript
            text = text.replace("\u2028".encode(), b"\\u2028").replace(
                "\u2029".encode(), b"\\u2029")
        return text
