"""What every traffic app of tests/e2e/ (the ``_*_traffic.py`` scripts, run as programs) does last."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import otel_ml


def finish() -> None:
    """Flush, wait for one more metrics export (the counters of the last batch's records), flush again and
    print ``sent``: what the tests wait for."""
    otel_ml.flush()
    time.sleep(1.5)
    otel_ml.flush()
    print("sent", flush=True)


def arguments(rows: int) -> argparse.ArgumentParser:
    """The options every traffic app takes: where to send (``--endpoint``), the reference directory, whether
    to write the references instead of sending traffic, how many rows; an app adds its own."""
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint")
    p.add_argument("--references", required=True, type=Path)
    p.add_argument("--write-references", action="store_true")
    p.add_argument("--rows", type=int, default=rows)
    return p
