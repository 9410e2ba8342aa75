"""Browser tests: Playwright drives Debian's chromium against Django's live server.

Skipped, not failed, where /usr/bin/chromium is absent (``apt-get install -y chromium``;
``playwright install`` cannot download browsers here).
"""

import os

import pytest

from tests.browser.workbench import CHROMIUM, PASSWORD, WIDE, build_workbench

# Playwright's sync API runs an event loop in this thread; the live server's database
# work from the test thread is still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(config, items):
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(reason=f"needs {CHROMIUM} (apt-get install -y chromium)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args():
    return {
        "executable_path": str(CHROMIUM),
        "args": ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": WIDE, "locale": "en-GB",
            "timezone_id": "UTC"}


@pytest.fixture
def bench(transactional_db):
    return build_workbench()


@pytest.fixture
def sign_in(live_server):
    """Sign a person in through the login page, as they would."""

    def sign_in(page, user):
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("Username").fill(user.get_username())
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live_server.url}/")
        return page

    return sign_in


class PolicyViolations(list):
    """The Content-Security-Policy refusals a page reported on its console."""

    def watch(self, page) -> None:
        page.on("console", lambda message: self.append(f"{page.url}: {message.text}")
                if "Content Security Policy" in message.text else None)


@pytest.fixture
def csp_violations():
    return PolicyViolations()


@pytest.fixture
def new_page(browser, live_server, csp_violations):
    """A second person's browser: its own context, so its own session cookie (and, if
    given, its own time zone)."""
    contexts = []

    def new_page(viewport=WIDE, timezone_id="UTC"):
        context = browser.new_context(viewport=viewport, locale="en-GB",
                                      timezone_id=timezone_id)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        csp_violations.watch(page)
        return page

    yield new_page
    for context in contexts:
        context.close()


@pytest.fixture(autouse=True)
def _short_timeouts_and_no_blocked_content(request, csp_violations):
    """Every page a browser test opens keeps to its Content-Security-Policy: a script,
    style or image the policy blocked fails the test."""
    if "page" in request.fixturenames:
        page = request.getfixturevalue("page")
        page.set_default_timeout(10_000)
        csp_violations.watch(page)
    yield
    assert not csp_violations, "\n".join(csp_violations)
