"""Every answer carries django-csp's Content-Security-Policy headers, built once per
process (``workflows.middleware.ContentSecurityPolicyMiddleware``): the same headers as
django-csp's own middleware sets, whatever the view, the settings or the path."""

import pytest
from csp.constants import NONCE, SELF
from csp.decorators import csp_exempt, csp_replace, csp_update
from csp.middleware import CSPMiddleware
from django.http import HttpResponse, HttpResponseNotFound
from django.test import RequestFactory

from workflows.middleware import ContentSecurityPolicyMiddleware


def page(request):
    return HttpResponse("<p>A page</p>")


def page_using_a_nonce(request):
    return HttpResponse(f"<script nonce='{request.csp_nonce}'></script>")


def page_with_its_own_header(request):
    response = HttpResponse("<p>A document</p>")
    response["Content-Security-Policy"] = "default-src 'none'"
    return response


VIEWS = {
    "a page": page,
    "a nonce": page_using_a_nonce,
    "its own header": page_with_its_own_header,
    "exempt": csp_exempt()(page),
    "exempt from the report only": csp_exempt(REPORT_ONLY=True)(page),
    "updated": csp_update({"style-src": ["'unsafe-inline'"]})(page),
    "replaced in the report only": csp_replace({"img-src": ["*"]}, REPORT_ONLY=True)(page),
    "not found": lambda request: HttpResponseNotFound("<p>Not found</p>"),
}
POLICIES = {
    "the product's": {},
    "with a report-only policy and excluded paths": {
        "CONTENT_SECURITY_POLICY": {"EXCLUDE_URL_PREFIXES": ["/api/v1/docs/"],
                                    "DIRECTIVES": {"default-src": [SELF],
                                                   "script-src": [SELF, NONCE]}},
        "CONTENT_SECURITY_POLICY_REPORT_ONLY": {"DIRECTIVES": {"default-src": [SELF],
                                                               "report-uri": "/csp/"}}},
    "in debug": {"DEBUG": True},
}


def headers(middleware, view, path):
    request = RequestFactory().get(path)
    response = middleware(view)(request)
    nonce = getattr(request, "_csp_nonce", None)
    return {name: value.replace(nonce, "NONCE") if nonce else value
            for name, value in response.headers.items() if "Security" in name}


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("path", ["/cases/1/", "/api/v1/docs/"])
def test_the_headers_are_django_csps_own(policy, view, path, settings):
    for name, value in POLICIES[policy].items():
        setattr(settings, name, value)

    built_once = headers(ContentSecurityPolicyMiddleware, VIEWS[view], path)

    assert built_once == headers(CSPMiddleware, VIEWS[view], path)
    assert headers(ContentSecurityPolicyMiddleware, VIEWS[view], path) == built_once
