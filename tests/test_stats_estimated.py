"""otel_ml.stats.estimated: the binned estimate against a direct per-row computation, the calibration
map, interval coverage on simulated labels, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from otel_ml import build_reference
from otel_ml.stats import classification_metrics, estimate_binary, reliability
from otel_ml.stats.estimated import calibrate, calibration_map


def _scores(n: int, rng: np.random.Generator, slope: float = 2.5) -> np.ndarray:
    return 1 / (1 + np.exp(-slope * rng.standard_normal(n)))


def _histogram(p: np.ndarray, edges: np.ndarray) -> np.ndarray:
    # OTel explicit bounds: bucket i holds (edges[i-1], edges[i]].
    return np.bincount(np.searchsorted(edges, p, side="left"), minlength=len(edges) + 1).astype(np.float64)


def _per_row(c: np.ndarray) -> dict[str, float]:
    """Expected accuracy, F1 and AUC computed row by row from calibrated probabilities (the oracle)."""
    acc = float(np.maximum(c, 1 - c).mean())
    pred = c > 0.5
    f1_pos = 2 * c[pred].sum() / (pred.sum() + c.sum())
    f1_neg = 2 * (1 - c[~pred]).sum() / ((~pred).sum() + (1 - c).sum())
    f1 = float(f1_pos + f1_neg) / 2
    order = np.argsort(c)
    pos, neg = c[order], 1 - c[order]
    auc = float((pos * (np.cumsum(neg) - neg + 0.5 * neg)).sum() / (pos.sum() * neg.sum()))
    return {"accuracy": acc, "f1": f1, "roc_auc": auc}


EDGES = np.linspace(0.05, 0.95, 19)


def test_binned_estimate_matches_the_per_row_expectation_within_the_binning_error() -> None:
    p = _scores(50_000, np.random.default_rng(1))
    est = estimate_binary(EDGES, _histogram(p, EDGES))
    oracle = _per_row(p)
    for m, tol in (("accuracy", 0.003), ("f1", 0.005), ("roc_auc", 0.005)):
        e = est[m]
        assert abs(e.value - oracle[m]) < tol, (m, e.value, oracle[m])
        assert e.lower <= oracle[m] <= e.upper, (m, e, oracle[m])
        assert e.n == 50_000


def test_coarse_bins_widen_the_interval_to_cover_the_binning_error() -> None:
    p = _scores(200_000, np.random.default_rng(2))
    coarse = np.array([0.3, 0.6])
    est = estimate_binary(coarse, _histogram(p, coarse))
    oracle = _per_row(p)
    fine = estimate_binary(EDGES, _histogram(p, EDGES))
    for m in ("accuracy", "roc_auc"):
        assert est[m].lower <= oracle[m] <= est[m].upper, m
        assert est[m].upper - est[m].lower > 2 * (fine[m].upper - fine[m].lower), m


def test_the_calibration_curve_corrects_an_overconfident_model() -> None:
    rng = np.random.default_rng(3)
    true_p = _scores(40_000, rng, slope=1.5)
    y = rng.random(true_p.size) < true_p
    shown = 1 / (1 + np.exp(-3 * np.log(true_p / (1 - true_p))))  # overconfident scores
    cal = reliability(y[:20_000], shown[:20_000])
    window_p, window_y = shown[20_000:], y[20_000:]
    realized = float(((window_p > 0.5) == window_y).mean())
    naive = estimate_binary(EDGES, _histogram(window_p, EDGES))["accuracy"]
    fixed = estimate_binary(EDGES, _histogram(window_p, EDGES), cal)["accuracy"]
    assert naive.value - realized > 0.05  # taken at face value, overconfidence overstates accuracy
    assert fixed.lower <= realized <= fixed.upper
    assert abs(fixed.value - realized) < 0.015


def test_interval_covers_realized_metrics_on_simulated_windows() -> None:
    rng = np.random.default_rng(4)
    hits = {"accuracy": 0, "f1": 0, "roc_auc": 0}
    windows = 200
    for _ in range(windows):
        p = _scores(2_000, rng)
        y = rng.random(p.size) < p
        est = estimate_binary(EDGES, _histogram(p, EDGES))
        real = classification_metrics(y.astype(int).astype(str), None, p, ["0", "1"])
        for m in hits:
            hits[m] += est[m].lower <= real[m].value <= est[m].upper
    for m, h in hits.items():
        assert 0.9 <= h / windows <= 1.0, (m, h)
    # not vacuous: the interval is narrow
    assert est["accuracy"].upper - est["accuracy"].lower < 0.1


def test_calibration_map_from_a_reference_with_labels() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3_000, 2))
    p1 = _scores(3_000, rng)
    y = np.where(rng.random(3_000) < p1, "yes", "no")
    ref = build_reference(x, model="m", version="1", predictions=np.column_stack([1 - p1, p1]),
                          class_names=["no", "yes"], labels=y)
    assert ref.performance is not None
    knots = calibration_map(ref.performance.calibration)
    assert len(knots[0]) >= 5 and (np.diff(knots[0]) > 0).all()
    assert np.allclose(calibrate([0.0, 1.0], (np.zeros(0), np.zeros(0))), [0.0, 1.0])
    est = estimate_binary(EDGES, _histogram(p1, EDGES), ref.performance.calibration)
    realized = ref.performance.metrics["accuracy"]
    assert abs(est["accuracy"].value - realized.value) < 0.03


def test_empty_window_and_bad_input() -> None:
    est = estimate_binary(EDGES, np.zeros(len(EDGES) + 1))
    assert all(math.isnan(e.value) and e.n == 0 for e in est.values())
    with pytest.raises(ValueError, match="len\\(edges\\) \\+ 1"):
        estimate_binary(EDGES, np.ones(3))
    with pytest.raises(ValueError, match="increasing"):
        estimate_binary([0.5, 0.2], np.ones(3))
    with pytest.raises(ValueError, match=">= 0"):
        estimate_binary([0.5], [-1.0, 3.0])
    # one class only expected: AUC undefined, accuracy still defined
    one = estimate_binary([0.01], [0.0, 10.0])
    assert math.isfinite(one["accuracy"].value)
