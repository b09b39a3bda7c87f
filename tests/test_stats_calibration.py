"""A fast version of benchmarks/drift_calibration.py: a regression in the verdict fails CI.

Few windows, a seeded generator and tolerant bounds (the benchmark itself checks the 5% / 95%
targets with many more windows). Each cell must stay well inside its target: no drift and the
0.05-SD shift raise an alarm in at most 12% of windows, the changes that matter are caught in at
least 85% of windows, at 1,000, 10,000 and 100,000 rows.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "drift_calibration.py"


@pytest.fixture(scope="module")
def calibration():
    spec = importlib.util.spec_from_file_location("drift_calibration", _PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["drift_calibration"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cells(calibration):
    return calibration.run(windows={1_000: 120, 10_000: 40, 100_000: 40}, seed=12345, references=2, raw_max_size=0)


def test_every_target_cell_is_within_tolerance(calibration, cells) -> None:
    bad = []
    for c in cells:
        ok = c.rate <= 0.12 if c.scenario.target in ("null", "small") else c.rate >= 0.85
        if not ok:
            bad.append(f"{c.scenario.label} n={c.size}: {100 * c.rate:.1f}%")
    assert not bad, "\n" + calibration.format_table(cells) + "\n" + "\n".join(bad)


def test_the_scenarios_cover_the_issue(calibration, cells) -> None:
    names = {c.scenario.name for c in cells}
    assert {"no drift", "shift 0.25 SD", "variance x1.5", "variance x0.5", "share +20%", "new category 5%",
            "missing 1%->5%", "shift 0.05 SD"} <= names
    assert {c.size for c in cells} == {1_000, 10_000, 100_000}
