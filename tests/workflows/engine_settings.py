"""The engine alone: the project's settings without the domain (``exceptions_app``).

``pytest tests/workflows --ds=tests.workflows.engine_settings`` (bin/test runs it) proves
that ``workflows`` stands on its own at every layer: models, migrations, services,
pages, templates and API, with nothing registered in ``workflows.hooks``.
"""

from config.settings import *  # noqa: F403
from config.settings import CELERY_BEAT_SCHEDULE, INSTALLED_APPS

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "exceptions_app"]
# The domain's periodic jobs (drift checks) go with it.
CELERY_BEAT_SCHEDULE = {name: entry for name, entry in CELERY_BEAT_SCHEDULE.items()
                        if not entry["task"].startswith("exceptions_app.")}
ROOT_URLCONF = "tests.workflows.engine_urls"
