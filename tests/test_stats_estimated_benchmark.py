"""A fast version of benchmarks/estimated_performance.py: under covariate shift the estimated accuracy
tracks the realized one, and under concept drift it does not see the drop (seeded; bounds looser than
the benchmark's)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "estimated_performance.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("estimated_performance", _PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["estimated_performance"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def reference(bench):
    return bench.reference(np.random.default_rng(21), 10)


def test_the_generators_shift_lowers_accuracy_and_keeps_the_model_overconfident(bench) -> None:
    rng = np.random.default_rng(22)
    _, y0, p0 = bench.draw(100_000, rng)
    _, y2, p2 = bench.draw(100_000, rng, shift=2.0)
    acc0, acc2 = np.mean((p0 > 0.5) == y0), np.mean((p2 > 0.5) == y2)
    assert acc0 - acc2 > 0.1
    assert np.maximum(p0, 1 - p0).mean() - acc0 > 0.03  # overconfident: the calibration matters


@pytest.mark.parametrize("shift", [0.0, 1.0, 2.0])
def test_tracks_realized_accuracy_under_covariate_shift(bench, reference, shift: float) -> None:
    cell = bench.run_cell("cov", reference, 25, 2_000, np.random.default_rng(23), shift=shift)
    assert cell.mae < 0.02, cell
    assert cell.coverage["accuracy"] >= 0.9 and cell.coverage["roc_auc"] >= 0.8, cell


def test_does_not_see_concept_drift(bench, reference) -> None:
    rng = np.random.default_rng(24)
    base = bench.run_cell("none", reference, 25, 2_000, rng)
    drift = bench.run_cell("flip", reference, 25, 2_000, rng, flip_share=0.2)
    assert base.realized - drift.realized > 0.1  # the labels say accuracy fell ...
    assert abs(drift.estimated - base.estimated) < 0.01  # ... the estimate does not move
    assert drift.coverage["accuracy"] < 0.1
