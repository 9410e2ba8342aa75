"""The interactive API documentation renders under the Content-Security-Policy."""

import pytest

pytestmark = pytest.mark.browser


def test_swagger_ui_lists_the_intake_endpoint(page, live_server, bench, sign_in):
    sign_in(page, bench.manager)

    page.goto(f"{live_server.url}/api/v1/docs/")

    page.get_by_text("/api/v1/decisions/", exact=True).first.wait_for()


def test_the_old_redoc_address_shows_swagger_ui_and_fetches_nothing_from_outside(
        page, live_server, bench, sign_in):
    sign_in(page, bench.manager)
    outside = []
    page.on("request", lambda request: outside.append(request.url)
            if not request.url.startswith(live_server.url) else None)

    page.goto(f"{live_server.url}/api/v1/redoc/")

    page.wait_for_url(f"{live_server.url}/api/v1/docs/")
    page.get_by_text("/api/v1/decisions/", exact=True).first.wait_for()
    assert outside == []  # and the autouse check: no refusal by the policy either


def test_pages_answer_with_a_content_security_policy(client):
    response = client.get("/accounts/login/")

    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
