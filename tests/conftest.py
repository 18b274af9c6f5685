"""Settings for the whole suite, applied before any project module is imported."""

from __future__ import annotations

import os

# Retries keep their count and shape, without real-world waits.
os.environ.setdefault("MESHWRIGHT_RETRY_BACKOFF", "0.05")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
