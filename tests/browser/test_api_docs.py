"""The interactive API documentation renders under the Content-Security-Policy."""

import pytest

pytestmark = pytest.mark.browser


def test_swagger_ui_lists_the_intake_endpoint(page, live_server, bench, sign_in):
    sign_in(page, bench.manager)

    page.goto(f"{live_server.url}/api/v1/docs/")

    page.get_by_text("/api/v1/decisions/", exact=True).first.wait_for()


def test_redoc_lists_the_intake_endpoint_and_fetches_nothing_from_outside(
        page, live_server, bench, sign_in, csp_violations):
    sign_in(page, bench.manager)

    page.goto(f"{live_server.url}/api/v1/redoc/")

    page.get_by_text("/api/v1/decisions/").first.wait_for()
    # ReDoc asks for web fonts and a logo from the internet; the policy refuses both.
    outside = [v for v in csp_violations if "https://fonts.googleapis.com" in v
               or "https://cdn.redoc.ly" in v]
    assert outside
    for violation in outside:
        csp_violations.remove(violation)


def test_pages_answer_with_a_content_security_policy(client):
    response = client.get("/accounts/login/")

    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
