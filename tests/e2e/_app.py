"""What every traffic app of tests/e2e/ (the ``_*_traffic.py`` scripts, run as programs) does last."""

from __future__ import annotations

import time

import otel_ml


def finish() -> None:
    """Flush, wait for one more metrics export (the counters of the last batch's records), flush again and
    print ``sent``: what the tests wait for."""
    otel_ml.flush()
    time.sleep(1.5)
    otel_ml.flush()
    print("sent", flush=True)
