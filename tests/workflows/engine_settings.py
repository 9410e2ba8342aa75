"""The engine alone: the project's settings without the domain (``exceptions_app``).

``pytest tests/workflows --ds=tests.workflows.engine_settings`` (bin/test runs it) proves
that ``workflows`` stands on its own at every layer: models, migrations, services,
pages, templates and API, with nothing registered in ``workflows.hooks``.
"""

from config.settings import *  # noqa: F403
from config.settings import INSTALLED_APPS

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "exceptions_app"]
ROOT_URLCONF = "tests.workflows.engine_urls"
