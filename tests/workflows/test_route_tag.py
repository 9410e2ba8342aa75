"""``{% route %}`` links where ``{% url %}`` does, reversed once per process."""

import re
from pathlib import Path

import pytest
from django.template import Context, Template, TemplateSyntaxError
from django.urls import set_script_prefix

# The frame's links: base.html's, and the top bar's as its former template wrote them
# (``{% top_bar %}`` links them by the same cache, held equal in test_top_bar.py).
FRAMES = [Path(__file__).resolve().parents[2] / "templates" / "base.html",
          Path(__file__).parent / "top_bar" / "base.html"]
NAMES = sorted({name for frame in FRAMES
                for name in re.findall(r"\{% route '([a-z-]+)' %\}", frame.read_text())})


def rendered(source: str) -> str:
    return Template("{% load casework %}" + source).render(Context())


def test_the_top_bar_links_with_route():
    assert len(NAMES) >= 10


@pytest.mark.parametrize("name", NAMES)
def test_route_is_the_url_tag(name):
    assert rendered(f"{{% route '{name}' %}}") == rendered(f"{{% url '{name}' %}}")


def test_route_follows_the_script_prefix_the_site_is_mounted_at():
    try:
        set_script_prefix("/backstop/")
        mounted = rendered("{% route 'home' %}|{% route 'next-case' %}")
    finally:
        set_script_prefix("/")

    assert mounted == "/backstop/|/backstop/next/"
    assert rendered("{% route 'home' %}") == "/"


@pytest.mark.parametrize("source", ["{% route home %}", "{% route 'case' 1 %}"])
def test_route_takes_one_quoted_name(source):
    with pytest.raises(TemplateSyntaxError):
        rendered(source)
