"""Settings for bench/intake.py only: the product's, plus a bare DRF baseline endpoint.

Never used by the product: its URL lives in ``bench/baseline_urls.py``, and its
table is created (and dropped) by the bench in its own database.
"""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.baseline_urls"
