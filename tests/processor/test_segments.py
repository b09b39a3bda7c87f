"""Segmented realized performance: slices from packed segments, per-slice metrics, verdicts, ranking, and a
fast seeded version of benchmarks/segment_calibration.py (bounds looser than the benchmark's 90 % / 5 %)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from otel_ml.stats import NO_VERDICT, PerformancePolicy
from otel_ml.stats.performance import wilson
from otel_ml_processor._segments import pack, segment_verdicts, slices, unpack

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "segment_calibration.py"


@pytest.fixture(scope="module")
def calibration():
    spec = importlib.util.spec_from_file_location("segment_calibration", _PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["segment_calibration"] = module
    spec.loader.exec_module(module)
    return module


def test_pack_round_trips_and_sorts_names() -> None:
    seg = {"country": "FR", "channel": "web=1;x"}
    assert unpack(pack(seg)) == seg
    assert pack(seg) == pack(dict(reversed(seg.items())))
    assert unpack("") == {} and unpack(None) == {}


def test_slices_select_rows_and_count_overflow() -> None:
    packed = np.array([pack({"a": "x", "b": "1"}), pack({"a": "y"}), pack({"a": "x", "b": "2"}), ""], dtype=object)
    masks, overflow = slices(packed, 10)
    assert overflow == 0
    assert masks[("a", "x")].tolist() == [True, False, True, False]
    assert masks[("b", "2")].tolist() == [False, False, True, False]
    masks, overflow = slices(packed, 2)
    assert overflow == 2 and set(masks) == {("a", "x"), ("a", "y")}  # most populated first, then by key


def test_accuracy_per_slice_matches_direct_computation_and_ranks_worst_first() -> None:
    rng = np.random.default_rng(3)
    n = 6_000
    seg = rng.choice(["a", "b", "c"], n, p=[0.2, 0.3, 0.5])
    acc = np.select([seg == "a", seg == "b"], [0.6, 0.85], 0.9)
    correct = (rng.random(n) < acc).astype(float)
    masks = {("s", v): seg == v for v in ("a", "b", "c")}
    res = {v.value: v for v in segment_verdicts(correct, masks, "accuracy", PerformancePolicy(min_samples=100))}
    for v in ("a", "b", "c"):
        m = seg == v
        p, lo, hi = wilson(correct[m].sum(), m.sum())
        assert res[v].n == m.sum()
        assert res[v].estimate == pytest.approx(float(p)) and res[v].lower == pytest.approx(float(lo))
        assert res[v].upper == pytest.approx(float(hi))
        assert res[v].gap == pytest.approx(correct[m].mean() - correct[~m].mean())
        assert res[v].gap_lower < res[v].gap < res[v].gap_upper
    assert res["a"].degraded == 1.0 and res["a"].rank == 1
    assert res["c"].degraded == 0.0 and res["c"].rank == 3
    assert res["a"].p_value < 0.01


def test_below_min_samples_there_is_no_verdict_and_no_rank() -> None:
    correct = np.r_[np.zeros(50), np.ones(950)]
    masks = {("s", "tiny"): np.r_[np.ones(50, bool), np.zeros(950, bool)],
             ("s", "big"): np.r_[np.zeros(50, bool), np.ones(950, bool)]}
    res = {v.value: v for v in segment_verdicts(correct, masks, "accuracy", PerformancePolicy(min_samples=500))}
    assert res["tiny"].degraded == NO_VERDICT and res["tiny"].rank == 0 and math.isnan(res["tiny"].p_value)
    assert res["tiny"].estimate == 0.0  # the value is still reported
    assert res["big"].degraded == 0.0 and res["big"].rank == 1


def test_mae_slices_use_welch_and_the_relative_tolerance() -> None:
    rng = np.random.default_rng(5)
    n = 4_000
    seg = rng.random(n) < 0.25
    err = np.abs(rng.normal(0, 1.0, n)) * np.where(seg, 1.5, 1.0)
    masks = {("s", "hot"): seg, ("s", "cold"): ~seg}
    res = {v.value: v for v in segment_verdicts(err, masks, "mae", PerformancePolicy(min_samples=200))}
    assert res["hot"].estimate == pytest.approx(err[seg].mean())
    assert res["hot"].gap == pytest.approx(err[seg].mean() - err[~seg].mean())
    assert res["hot"].degraded == 1.0 and res["hot"].rank == 1 and res["cold"].degraded == 0.0
    # 3 % worse: significant at this size but within the 10 % relative tolerance.
    err2 = np.abs(rng.normal(0, 1.0, 400_000)) * np.where(np.arange(400_000) % 4 == 0, 1.03, 1.0)
    m = np.arange(400_000) % 4 == 0
    (small,) = segment_verdicts(err2, {("s", "x"): m}, "mae", PerformancePolicy(min_samples=200))
    assert small.p_value < 0.01 and small.degraded == 0.0


def test_unknown_metric_is_refused() -> None:
    with pytest.raises(ValueError, match="accuracy"):
        segment_verdicts([1.0], {}, "roc_auc")


def test_segment_drop_is_found_and_ranked_first_and_quiet_without_effect(calibration) -> None:
    r = calibration.rates(30, 20_000, 20261201)
    assert r["found_and_first"] >= 0.85, r
    assert r["null_alarm"] <= 0.10, r
    assert r["overall_beyond_tolerance"] <= 0.25, r  # the whole-window figure hides it
