"""Estimated performance without labels: expected accuracy, F1 and ROC AUC of a binary classifier from
the *binned* probabilities of its positive class, through the reference's calibration.

Confidence-based estimation: if the model's probabilities, mapped through the holdout's reliability
curve (:attr:`otel_ml.reference.ReferencePerformance.calibration`), are calibrated on the window too,
a row with calibrated probability ``c`` is positive with probability ``c``, so its expected accuracy is
``max(c, 1 - c)`` and the expected confusion counts follow. It works on the histogram the library
already emits for the ``proba:<positive class>`` output (the reference's bucket bounds), so it needs
neither ids nor labels, for every model.

**Valid when** the model's calibration holds on the window: covariate shift only (``P(y | x)`` unchanged).
Under concept drift (``P(y | x)`` changes) the probabilities do not move and neither does the estimate:
only realized performance on labels sees it (``benchmarks/estimated_performance.py``, docs/statistics.md).

Calibration: the curve through each reliability bin's (mean predicted, observed) point, linear between
them and extended along its end segments.

Binning: each bucket ``(lower, upper]`` (the outer ones clipped to ``[0, 1]``) is read as
:data:`SUBBINS` equal sub-bins with the rows spread evenly (the histogram says no more).

Intervals (95 %) cover the window's sampling variability *and* the binning error, not the holdout's
own finite-sample error in the calibration curve:

* accuracy: the sum of per-row Bernoulli outcomes is Poisson-binomial (variance ``sum c(1-c)``), and
  the binning range takes, bucket by bucket, the lowest and highest ``max(c, 1-c)`` anywhere inside it
  (a bound: it holds whatever the rows' spread inside the bucket);
* F1, macro over the two classes as the realized ``f1`` (decision threshold :data:`THRESHOLD`): delta
  method on each class's ``2 TP / (predicted + actual)``, and the
  binning range from reading every row at its sub-bin's lower or upper end (a heuristic, not a bound:
  it assumes the even spread, which decides how a bucket that straddles the threshold is split);
* ROC AUC: Hanley & McNeil's variance on the expected positives and negatives, and the binning range
  of the pairs that share a bucket (either order possible: the bound from 0 to 1 for each such pair).

Multiclass: not estimated. The library emits one histogram per class column, not of the top-class
probability, and a one-vs-rest histogram loses which class won the row. Regression: not estimated (the
reference holds no model of the holdout's residuals; an estimate would be a guess).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .performance import Estimate, Z

FloatArray = npt.NDArray[np.float64]

#: The decision threshold of the positive class (the argmax of two probabilities).
THRESHOLD = 0.5
#: Equal sub-bins each bucket is read as.
SUBBINS = 8
#: The metrics :func:`estimate_binary` returns (values of ``ml.performance.metric``).
ESTIMATED_METRICS = ("accuracy", "f1", "roc_auc")


def calibration_map(calibration: Sequence[Any] | None) -> tuple[FloatArray, FloatArray]:
    """``(x, y)`` knots of the calibration curve: each reliability bin's mean predicted probability and
    observed frequency (bins with rows and finite values, by ``x``); empty (the identity) when none.
    Accepts :class:`~otel_ml.reference.CalibrationBin` objects or mappings with those fields."""
    pts = []
    for b in calibration or ():
        row = b if isinstance(b, dict) else vars(b)
        x, y, n = float(row["mean_predicted"]), float(row["observed"]), row["count"]
        if n and math.isfinite(x) and math.isfinite(y):
            pts.append((x, y))
    pts.sort()
    pts = [q for i, q in enumerate(pts) if i == 0 or q[0] > pts[i - 1][0]]  # strictly increasing x
    return np.array([p[0] for p in pts], np.float64), np.array([p[1] for p in pts], np.float64)


def calibrate(p: npt.ArrayLike, knots: tuple[FloatArray, FloatArray]) -> FloatArray:
    """Map probabilities through the calibration curve: linear between knots and, beyond the end knots,
    along the end segments (a clamp would flatten the most confident rows, where most rows are); the
    identity without knots, a constant with one. Results are clipped to ``[0, 1]``."""
    arr = np.asarray(p, dtype=np.float64)
    x, y = knots
    if len(x) == 0:
        return np.clip(arr, 0.0, 1.0)
    out = np.interp(arr, x, y)
    if len(x) > 1:
        first = (y[1] - y[0]) / (x[1] - x[0])
        last = (y[-1] - y[-2]) / (x[-1] - x[-2])
        out = np.where(arr < x[0], y[0] + first * (arr - x[0]), out)
        out = np.where(arr > x[-1], y[-1] + last * (arr - x[-1]), out)
    return np.clip(out, 0.0, 1.0)


def _subbins(edges: FloatArray, counts: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Sub-bin lower ends, upper ends, mids and row counts, ``[buckets, SUBBINS]``."""
    lo = np.clip(np.concatenate([[0.0], edges]), 0.0, 1.0)
    hi = np.clip(np.concatenate([edges, [1.0]]), 0.0, 1.0)
    hi = np.maximum(hi, lo)
    frac = np.arange(SUBBINS + 1, dtype=np.float64) / SUBBINS
    grid = lo[:, None] + (hi - lo)[:, None] * frac[None, :]
    sub_lo, sub_hi = grid[:, :-1], grid[:, 1:]
    n = np.repeat(counts[:, None] / SUBBINS, SUBBINS, axis=1)
    return sub_lo, sub_hi, (sub_lo + sub_hi) / 2, n


def _accuracy(n: FloatArray, c_mid: FloatArray, c_grid: FloatArray, total: float) -> Estimate:
    a = np.maximum(c_mid, 1 - c_mid)
    value = float((n * a).sum() / total)
    se = math.sqrt(float((n * a * (1 - a)).sum())) / total
    # Lowest and highest max(c, 1-c) anywhere in each bucket (0.5 when c crosses 0.5 there).
    a_grid = np.maximum(c_grid, 1 - c_grid)
    crosses = (c_grid.min(axis=1) <= 0.5) & (c_grid.max(axis=1) >= 0.5)
    rows = n.sum(axis=1)
    low = float((rows * np.where(crosses, 0.5, a_grid.min(axis=1))).sum() / total)
    high = float((rows * a_grid.max(axis=1)).sum() / total)
    return Estimate(value, max(0.0, min(low, value) - Z * se), min(1.0, max(high, value) + Z * se), int(total))


def _f1_at(n: FloatArray, p: FloatArray, c: FloatArray) -> tuple[float, float]:
    """Macro F1 over the two classes (as the realized ``f1``) and its delta-method standard error, rows
    at probability ``p`` predicted positive above :data:`THRESHOLD`; NaN when a class is never expected."""
    parts = []
    for pred, hit in ((p > THRESHOLD, c), (p <= THRESHOLD, 1 - c)):
        tp = float((n * hit * pred).sum())
        d = float((n * pred).sum() + (n * hit).sum())  # predicted + actual rows of the class
        if d <= 0:
            return math.nan, math.nan
        parts.append((2 * tp / d, d, tp, pred))
    f1 = (parts[0][0] + parts[1][0]) / 2
    # d F1_k / d (one row's outcome being positive): +-(2 pred / d - 2 tp / d^2), minus for the negative class.
    g = sum(sign * (2 * pred / d - 2 * tp / d**2) for sign, (_, d, tp, pred) in zip((1, -1), parts)) / 2
    return f1, math.sqrt(float((n * c * (1 - c) * g * g).sum()))


def _roc_auc(n: FloatArray, c: FloatArray, total: float) -> Estimate:
    pos_b, neg_b = n * c, n * (1 - c)
    pos, neg = pos_b.ravel(), neg_b.ravel()
    n1, n0 = float(pos.sum()), float(neg.sum())
    if n1 <= 0 or n0 <= 0:
        return Estimate(math.nan, math.nan, math.nan, int(total))
    below = np.cumsum(neg) - neg  # sub-bins are in score order
    auc = float((pos * (below + 0.5 * neg)).sum() / (n1 * n0))
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n1 - 1) * (q1 - auc * auc) + (n0 - 1) * (q2 - auc * auc)) / (n1 * n0)
    se = math.sqrt(max(var, 0.0))
    # Pairs in one bucket may be ordered either way: the pairs across buckets alone fix the rest.
    p_bucket, n_bucket = pos_b.sum(axis=1), neg_b.sum(axis=1)
    across = float((p_bucket * (np.cumsum(n_bucket) - n_bucket)).sum() / (n1 * n0))
    within = float((p_bucket * n_bucket).sum() / (n1 * n0))
    low, high = min(across, auc), max(across + within, auc)
    return Estimate(auc, max(0.0, low - Z * se), min(1.0, high + Z * se), int(total))


def estimate_binary(
    edges: npt.ArrayLike, counts: npt.ArrayLike, calibration: Sequence[Any] | None = None
) -> dict[str, Estimate]:
    """Expected ``accuracy``, ``f1`` (macro over the two classes) and ``roc_auc`` of a window, with 95 %
    intervals (module docstring), from the histogram of the positive class's probability.

    ``edges`` are the histogram's explicit bounds (the reference's, ascending), ``counts`` its
    ``len(edges) + 1`` bucket counts; ``calibration`` the reference's reliability bins (None or empty:
    the probabilities are taken as calibrated). Each estimate's ``n`` is the window's rows; with no
    rows every value is NaN. Raises ValueError for mismatched or invalid inputs.
    """
    e = np.asarray(edges, dtype=np.float64).reshape(-1)
    k = np.asarray(counts, dtype=np.float64).reshape(-1)
    if k.shape[0] != e.shape[0] + 1:
        raise ValueError(f"counts must have len(edges) + 1 = {e.shape[0] + 1} entries, got {k.shape[0]}")
    if not (np.isfinite(e).all() and np.isfinite(k).all()) or (k < 0).any() or (np.diff(e) <= 0).any():
        raise ValueError("edges must be finite and strictly increasing, counts finite and >= 0")
    total = float(k.sum())
    if total <= 0:
        return {m: Estimate(math.nan, math.nan, math.nan, 0) for m in ESTIMATED_METRICS}
    knots = calibration_map(calibration)
    p_lo, p_hi, p_mid, n = _subbins(e, k)
    c_lo, c_hi, c_mid = calibrate(p_lo, knots), calibrate(p_hi, knots), calibrate(p_mid, knots)
    c_grid = np.concatenate([c_lo, c_hi[:, -1:]], axis=1)
    out = {"accuracy": _accuracy(n, c_mid, c_grid, total)}
    f1, se = _f1_at(n, p_mid, c_mid)
    ends = [v for v in (_f1_at(n, p_lo, c_lo)[0], _f1_at(n, p_hi, c_hi)[0], f1) if math.isfinite(v)]
    if math.isfinite(f1):
        low, high = min(ends), max(ends)
        out["f1"] = Estimate(f1, max(0.0, low - Z * se), min(1.0, high + Z * se), int(total))
    else:
        out["f1"] = Estimate(math.nan, math.nan, math.nan, int(total))
    out["roc_auc"] = _roc_auc(n, c_mid, total)
    return out
