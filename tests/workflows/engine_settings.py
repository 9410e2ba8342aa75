"""The engine alone: the project's settings without the domain (``exceptions_app``).

``pytest tests/workflows --ds=tests.workflows.engine_settings`` (bin/test runs it) proves
that ``workflows`` stands on its own at every layer: models, migrations, services,
pages, templates and API, with nothing registered in ``workflows.hooks``.
"""

from config.settings import *  # noqa: F403
from config.settings import CELERY_BEAT_SCHEDULE, INSTALLED_APPS, SPECTACULAR_SETTINGS

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "exceptions_app"]
# The domain's periodic jobs (drift checks) go with it.
CELERY_BEAT_SCHEDULE = {name: entry for name, entry in CELERY_BEAT_SCHEDULE.items()
                        if not entry["task"].startswith("exceptions_app.")}
ROOT_URLCONF = "tests.workflows.engine_urls"
# The API schema names the domain's choice sets; without the domain there are none.
SPECTACULAR_SETTINGS = {**SPECTACULAR_SETTINGS, "ENUM_NAME_OVERRIDES": {
    name: path for name, path in SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"].items()
    if not path.startswith("exceptions_app.")}}
