"""The engine stands alone in its templates too: they load only template libraries of the
engine (or Django's), reverse only the engine's URL names and include only the engine's
templates. The domain's parts reach its pages through ``workflows.hooks``.

Read from the template source, so it holds under either settings module.
"""

import re
from pathlib import Path

import pytest
from django.template.backends.django import get_installed_libraries
from django.urls import get_resolver

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
# The engine's templates: its folder, and the site-wide ones every page extends or shows.
ENGINE_TEMPLATES = sorted(
    [*TEMPLATES.glob("workflows/**/*.html"), TEMPLATES / "base.html", TEMPLATES / "403.html",
     TEMPLATES / "404.html", TEMPLATES / "_error_page.html",
     *TEMPLATES.glob("forms/*.html"), *TEMPLATES.glob("registration/*.html")])
ENGINE_URLS = "tests.workflows.engine_urls"

LOAD = re.compile(r"{%\s*load\s+([^%]+?)\s*%}")
URL = re.compile(r"""{%\s*url\s+(["'])([^"']+)\1""")
INCLUDED = re.compile(r"""{%\s*(?:include|extends)\s+(["'])([^"']+)\1""")


def _names(source: str, pattern: re.Pattern, group: int) -> set[str]:
    return {match.group(group) for match in pattern.finditer(source)}


def _source(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _engine_url_names() -> set[str]:
    return {name for name in get_resolver(ENGINE_URLS).reverse_dict if isinstance(name, str)}


@pytest.fixture(params=ENGINE_TEMPLATES, ids=lambda path: str(path.relative_to(TEMPLATES)))
def template(request) -> Path:
    return request.param


def test_an_engine_template_loads_only_the_engines_or_djangos_tag_libraries(template):
    libraries = get_installed_libraries()
    loaded = {name for names in _names(_source(template), LOAD, 1) for name in names.split()
              if name != "from"}

    for name in loaded:
        module = libraries.get(name, "")
        assert module.startswith(("workflows.", "django.")), (
            f"{template.name} loads {name!r} ({module or 'not an installed library'})")


def test_an_engine_template_reverses_only_the_engines_url_names(template):
    known = _engine_url_names()

    unknown = _names(_source(template), URL, 2) - known

    assert not unknown, f"{template.name} reverses URL names the engine lacks: {unknown}"


def test_an_engine_template_includes_only_engine_templates(template):
    for name in _names(_source(template), INCLUDED, 2):
        assert (TEMPLATES / name) in ENGINE_TEMPLATES, f"{template.name} includes {name}"


def test_the_scan_sees_the_case_page_and_the_top_bar():
    # A renamed folder must not leave the tests above checking nothing.
    names = {str(path.relative_to(TEMPLATES)) for path in ENGINE_TEMPLATES}
    assert {"base.html", "workflows/case.html", "workflows/_sla.html"} <= names
    assert {"home", "case", "case-resolve", "approvals", "login"} <= _engine_url_names()
