"""Settings for bench/intake.py only: the product's, plus bare DRF baseline endpoints.

Never used by the product: the baseline URLs live in ``bench/baseline_urls.py``, its
model in ``bench/models.py``, and its table is created by the bench in its own database.
"""

from config.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "bench"]  # noqa: F405
ROOT_URLCONF = "bench.baseline_urls"
