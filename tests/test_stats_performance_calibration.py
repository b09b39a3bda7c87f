"""A fast version of benchmarks/performance_calibration.py: the verdict catches a concept drift that
takes accuracy from 0.90 to 0.85 in windows of 2,000 joined outcomes, and stays quiet without change and
on a 0.5-point drop at 100,000 outcomes (seeded; bounds looser than the benchmark's 90 % / 5 %)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "performance_calibration.py"


@pytest.fixture(scope="module")
def calibration():
    spec = importlib.util.spec_from_file_location("performance_calibration", _PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["performance_calibration"] = module
    spec.loader.exec_module(module)
    return module


def test_the_generator_makes_the_accuracies_it_claims(calibration) -> None:
    rng = np.random.default_rng(1)
    for share, expected in ((0.0, 0.90), (1 / 16, 0.85), (1 / 160, 0.895)):
        _, y, p = calibration.draw(400_000, share, rng)
        assert np.mean((p > 0.5) == y) == pytest.approx(expected, abs=0.002)


def test_detects_a_090_to_085_drop_in_windows_of_2000(calibration) -> None:
    s = calibration.Scenario("drift", 2_000, 1 / 16, "alarm")
    cell = calibration.run_cell(s, 40, np.random.default_rng(11))
    assert cell.rate >= 0.85, cell


@pytest.mark.parametrize("window", [2_000, 20_000])
def test_does_not_alarm_without_change(calibration, window: int) -> None:
    cell = calibration.run_cell(calibration.Scenario("none", window, 0.0, "quiet"), 40, np.random.default_rng(12))
    assert cell.rate <= 0.10, cell


def test_a_half_point_drop_at_100000_outcomes_does_not_alarm(calibration) -> None:
    cell = calibration.run_cell(calibration.Scenario("small", 100_000, 1 / 160, "quiet"), 6, np.random.default_rng(13))
    assert cell.alarms == 0, cell


def test_regression_detects_mae_up_20_percent_and_not_5_percent_at_100000(calibration) -> None:
    rng = np.random.default_rng(14)
    up20 = calibration.run_cell(calibration.Scenario("up20", 2_000, 0.25, "alarm", "regression"), 30, rng)
    same = calibration.run_cell(calibration.Scenario("same", 2_000, 0.0, "quiet", "regression"), 30, rng)
    up5 = calibration.run_cell(calibration.Scenario("up5", 100_000, 0.0625, "quiet", "regression"), 4, rng)
    assert up20.rate >= 0.85 and same.rate <= 0.10 and up5.alarms == 0, (up20, same, up5)
