"""Loaded by pytest before Django is set up (``-p tests.demo_environment`` in pyproject):
the suite runs on the demo's public keys and plain HTTP, as ``make demo`` does."""

import os

os.environ.setdefault("BACKSTOP_DEMO", "1")
