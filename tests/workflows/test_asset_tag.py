"""``{% asset %}`` answers what ``{% static %}`` does, found once per process."""

import json
import re
from pathlib import Path

import pytest
from django.template import Context, Template, TemplateSyntaxError
from django.test import override_settings

BASE = Path(__file__).resolve().parents[2] / "templates" / "base.html"
PATHS = sorted(set(re.findall(r"\{% asset '([^']+)' %\}", BASE.read_text())))
MANIFEST_STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
}


def rendered(source: str) -> str:
    return Template("{% load static casework %}" + source).render(Context())


def both(path: str) -> tuple[str, str]:
    return rendered(f'{{% asset "{path}" %}}'), rendered(f'{{% static "{path}" %}}')


def test_every_page_links_its_static_files_with_asset():
    assert "{% static" not in BASE.read_text()
    assert len(PATHS) >= 6


@pytest.mark.parametrize("path", PATHS)
def test_asset_is_the_static_tag(path):
    asset, static = both(path)
    assert asset == static


def test_asset_follows_the_storage_and_its_manifest(tmp_path):
    hashed = {path: re.sub(r"(\.[a-z]+)$", r".0123abcd\1", path) for path in PATHS}
    (tmp_path / "staticfiles.json").write_text(
        json.dumps({"paths": hashed, "version": "1.1", "hash": "0123abcd"}))
    before = both(PATHS[0])

    with override_settings(STATIC_ROOT=tmp_path, STORAGES=MANIFEST_STORAGES):
        for path in PATHS:
            asset, static = both(path)
            assert asset == static
            assert asset.endswith(hashed[path])  # the manifest's name, not the cached one
        with override_settings(DEBUG=True):  # the storage answers unhashed names then
            assert both(PATHS[0])[0] == both(PATHS[0])[1] == before[0]
    with override_settings(STATIC_URL="https://cdn.example.com/s/"):
        asset, static = both("css/backstop.css")
        assert asset == static == "https://cdn.example.com/s/css/backstop.css"
    assert both(PATHS[0]) == before


def test_asset_escapes_as_the_static_tag_does():
    asset, static = both("it's.css")  # a quote the URL keeps, which HTML must escape
    assert asset == static
    assert asset.endswith("it&#x27;s.css")


@pytest.mark.parametrize("source", ["{% asset css/backstop.css %}", "{% asset 'a' 'b' %}"])
def test_asset_takes_one_quoted_path(source):
    with pytest.raises(TemplateSyntaxError):
        rendered(source)
