"""The engine's tests: they run with and without the domain installed
(``engine_settings.py``), so nothing here or in them imports ``exceptions_app``."""

from tests.workflows.people_support import (  # noqa: F401 (fixtures)
    manager,
    member,
    outsider,
    queue,
    second_member,
)
from tests.workflows.webhook_support import nudges, receiver  # noqa: F401 (fixtures)
