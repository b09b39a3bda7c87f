"""Realized model performance on joined (prediction, outcome) pairs, with 95 % intervals, and its verdict.

Shared by ``build_reference(labels=...)`` (the holdout's performance), the processor (each window of
joined outcomes) and ``otel-ml performance`` (the offline release gate). Everything is vectorised numpy
and needs nothing else (a core install builds references with labels).

Intervals (95 %, :data:`Z`):

* proportions (accuracy, per-class precision and recall): Wilson score interval;
* F1 per class and the macro averages of precision, recall and F1: delta method on the multinomial
  confusion matrix;
* ROC AUC: DeLong's variance (binary; macro one-vs-rest for multiclass through the per-sample
  placement values, which carry the covariance between the classes' AUCs);
* means of per-row terms (log loss, Brier, MAE, MAPE, mean error): normal (central limit); RMSE from
  the MSE's interval; R² by the delta method on the ratio of the two mean squares;
* expected calibration error: nothing analytic is standard, so a seeded bootstrap, resampled bin by bin
  (multinomial bin counts, binomial outcomes, the bin's predicted-probability sum from its mean and
  variance), which costs O(resamples x bins) instead of O(resamples x rows).

:func:`degradation_verdicts` judges a window against the reference (see :class:`PerformancePolicy`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from .._errors import ConfigurationError
from ._verdict import NO_VERDICT, adjust_p_values

FloatArray = npt.NDArray[np.float64]

#: Two-sided 95 % standard-normal quantile.
Z = 1.959963984540054
#: Probabilities are clipped to ``[LOG_LOSS_EPS, 1 - LOG_LOSS_EPS]`` before the logarithm of the log loss.
LOG_LOSS_EPS = 1e-15
#: Rows with ``|y_true| < MAPE_EPS`` take no part in the MAPE (its ``n`` says how many did).
MAPE_EPS = 1e-9
#: Equal-width probability bins of the reliability curve and of the expected calibration error.
CALIBRATION_BINS = 10
#: Resamples of the ECE bootstrap, and its seed (the interval is reproducible).
BOOTSTRAP_RESAMPLES = 400
BOOTSTRAP_SEED = 20261201

#: Metrics where larger is better; the others (losses and errors) are better smaller.
HIGHER_IS_BETTER = frozenset({"accuracy", "precision", "recall", "f1", "roc_auc", "r2"})
#: Error metrics whose tolerance is relative to the reference value (0.10: a 10 % rise).
RELATIVE_TOLERANCE = frozenset({"mae", "rmse", "mape"})
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "brier", "ece")
REGRESSION_METRICS = ("mae", "rmse", "mape", "r2", "mean_error")


@dataclass(frozen=True)
class Estimate:
    """One metric on one sample: its value, 95 % interval and the rows it rests on (NaN where undefined)."""

    value: float
    lower: float
    upper: float
    n: int

    @property
    def standard_error(self) -> float:
        """The interval's half-width in standard errors (NaN when the interval is undefined)."""
        return (self.upper - self.lower) / (2 * Z)


_UNDEFINED = Estimate(math.nan, math.nan, math.nan, 0)


def _normal(value: float, se: float, n: int, low: float = -math.inf, high: float = math.inf) -> Estimate:
    if not math.isfinite(value):
        return Estimate(math.nan, math.nan, math.nan, n)
    if not math.isfinite(se):
        return Estimate(float(value), math.nan, math.nan, n)
    return Estimate(float(value), float(max(low, value - Z * se)), float(min(high, value + Z * se)), n)


def _mean(terms: FloatArray, low: float = -math.inf, high: float = math.inf) -> Estimate:
    """Mean of i.i.d. per-row terms with its central-limit interval."""
    n = int(terms.shape[0])
    if n == 0:
        return _UNDEFINED
    se = float(terms.std(ddof=1)) / math.sqrt(n) if n > 1 else math.nan
    return _normal(float(terms.mean()), se, n, low, high)


def wilson(successes: npt.ArrayLike, trials: npt.ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(proportion, lower, upper)`` with the Wilson score interval, element-wise; NaN where ``trials`` is 0."""
    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        z2n = Z * Z / n
        centre = (p + z2n / 2) / (1 + z2n)
        half = Z / (1 + z2n) * np.sqrt(p * (1 - p) / n + z2n / (4 * n))
        # At p = 0 or 1 a bound equals p only up to rounding: keep p inside its interval.
        return p, np.clip(np.minimum(centre - half, p), 0.0, 1.0), np.clip(np.maximum(centre + half, p), 0.0, 1.0)


def _proportion(k: float, n: float) -> Estimate:
    p, lo, hi = wilson(k, n)
    return Estimate(float(p), float(lo), float(hi), int(n)) if n > 0 else _UNDEFINED


# --- Classification ------------------------------------------------------------------------------


def _class_index(values: Any, classes: Sequence[str], what: str) -> npt.NDArray[np.int64]:
    arr = np.asarray(values)
    if arr.dtype.kind != "U":
        arr = arr.astype(str)
    arr = arr.reshape(-1)
    order = np.argsort(np.asarray(classes))
    ranked = np.asarray(classes)[order]
    pos = np.minimum(np.searchsorted(ranked, arr), len(classes) - 1)
    bad = ranked[pos] != arr
    if bad.any():
        unknown = np.unique(arr[bad]).tolist()
        shown = ", ".join(map(repr, unknown[:5])) + (" ..." if len(unknown) > 5 else "")
        raise ValueError(f"{what} holds {len(unknown)} value(s) outside the classes {list(classes)}: {shown}")
    return order[pos].astype(np.int64)


def _as_proba(proba: Any, n: int, k: int) -> FloatArray:
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim == 1 and k == 2:
        p = np.column_stack([1.0 - p, p])
    if p.shape != (n, k):
        raise ValueError(f"proba must have shape ({n}, {k}) (one column per class, in class order), got {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError("proba holds values that are not finite numbers")
    return p


def _multinomial_se(gradient: FloatArray, cells: FloatArray, n: int) -> float:
    """Delta-method standard error of a smooth function of the confusion matrix's cell proportions."""
    p = cells / n
    first = float((gradient * p).sum())
    return math.sqrt(max(float((gradient * gradient * p).sum()) - first * first, 0.0) / n)


def _macro(conf: FloatArray, n: int) -> dict[str, Estimate]:
    """Macro precision, recall and F1 over the classes present (in truth or prediction), as scikit-learn
    averages them with ``zero_division=0``; delta-method intervals on the multinomial confusion matrix."""
    tp = np.diag(conf)
    true_n = conf.sum(axis=1)
    pred_n = conf.sum(axis=0)
    present = (true_n + pred_n) > 0
    m = int(present.sum())
    eye = np.eye(conf.shape[0])
    out: dict[str, Estimate] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(pred_n > 0, tp / pred_n, 0.0)
        recall = np.where(true_n > 0, tp / true_n, 0.0)
        denom = true_n + pred_n
        f1 = np.where(present, 2 * tp / denom, 0.0)
        # d metric_k / d cell(i, j): precision depends on column k, recall on row k, F1 on both.
        g_prec = np.where(pred_n > 0, (eye - precision[None, :]) / pred_n[None, :], 0.0) * present[None, :]
        g_rec = np.where(true_n[:, None] > 0, (eye - recall[:, None]) / true_n[:, None], 0.0) * present[:, None]
        share = np.where(present, 2 * tp / denom**2, 0.0)
        g_f1 = 2 * eye * np.where(present, 1 / denom, 0.0)[:, None] - share[:, None] - share[None, :]
    for name, per_class, grad in (("precision", precision, g_prec), ("recall", recall, g_rec), ("f1", f1, g_f1)):
        value = float(per_class[present].sum() / m)
        out[name] = _normal(value, _multinomial_se(grad * n / m, conf, n), n, 0.0, 1.0)
    return out


def _auc_influence(score: FloatArray, positive: npt.NDArray[np.bool_]) -> tuple[float, FloatArray]:
    """AUC of ``score`` for ``positive`` and each row's DeLong influence (sum of squares = DeLong variance).

    One sort: rows with equal scores form a group; a positive's placement value is the share of negatives
    below it plus half of those tied with it, a negative's the share of positives above plus half the tied.
    """
    n = positive.shape[0]
    n1 = int(positive.sum())
    n0 = n - n1
    if n1 < 2 or n0 < 2:
        return math.nan, np.zeros(n)
    order = np.argsort(score)
    ranked = score[order]
    group = np.concatenate([[0], np.cumsum(ranked[1:] != ranked[:-1])])
    pos_sorted = positive[order]
    pos_in = np.bincount(group, pos_sorted)
    neg_in = np.bincount(group) - pos_in
    neg_below = np.cumsum(neg_in) - neg_in
    pos_above = n1 - np.cumsum(pos_in)
    placement = np.where(pos_sorted, (neg_below[group] + 0.5 * neg_in[group]) / n0,
                         (pos_above[group] + 0.5 * pos_in[group]) / n1)
    auc = float(placement[pos_sorted].mean())
    psi_sorted = np.where(pos_sorted, (placement - auc) / math.sqrt(n1 * (n1 - 1)),
                          (placement - auc) / math.sqrt(n0 * (n0 - 1)))
    psi = np.empty(n)
    psi[order] = psi_sorted
    return auc, psi


def _roc_auc(y: npt.NDArray[np.int64], proba: FloatArray) -> Estimate:
    k = proba.shape[1]
    targets = [1] if k == 2 else range(k)
    aucs, influence = [], np.zeros(y.shape[0])
    for c in targets:
        auc, psi = _auc_influence(proba[:, c], y == c)
        if math.isfinite(auc):
            aucs.append(auc)
            influence += psi
    if not aucs:
        return Estimate(math.nan, math.nan, math.nan, int(y.shape[0]))
    influence /= len(aucs)
    return _normal(float(np.mean(aucs)), math.sqrt(float(np.square(influence).sum())), int(y.shape[0]), 0.0, 1.0)


def _bin_of(p: FloatArray, bins: int) -> npt.NDArray[np.int64]:
    """Bin ``i`` holds ``(i/bins, (i+1)/bins]``; bin 0 also holds 0 (its upper bound is a ``le`` bucket)."""
    return np.clip(np.ceil(p * bins).astype(np.int64) - 1, 0, bins - 1)


def _bin_sums(outcome: FloatArray, p: FloatArray, bins: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    b = _bin_of(p, bins)
    count = np.bincount(b, minlength=bins).astype(np.float64)
    p_sum = np.bincount(b, p, minlength=bins).astype(np.float64)
    return count, p_sum, np.bincount(b, outcome, minlength=bins).astype(np.float64)


def reliability(y_true_is_positive: npt.ArrayLike, proba: npt.ArrayLike, bins: int = CALIBRATION_BINS) -> list[dict]:
    """The reliability curve: for each of ``bins`` equal-width probability bins, ``{"upper", "count",
    "mean_predicted", "observed"}`` (mean predicted probability and observed frequency of the rows whose
    probability falls in ``(upper - 1/bins, upper]``; NaN for an empty bin). Every bin is listed."""
    y = np.asarray(y_true_is_positive, dtype=np.float64)
    p = np.asarray(proba, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(f"y_true_is_positive and proba must be 1-D of equal length, got {y.shape} and {p.shape}")
    if not isinstance(bins, int) or isinstance(bins, bool) or not 1 <= bins <= 1000:
        raise ValueError(f"bins must be an integer between 1 and 1000, got {bins!r}")
    count, sum_p, sum_y = _bin_sums(y, p, bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p, observed = sum_p / count, sum_y / count
    return [{"upper": (i + 1) / bins, "count": int(count[i]), "mean_predicted": float(mean_p[i]),
             "observed": float(observed[i])} for i in range(bins)]


def _ece(outcome: FloatArray, p: FloatArray, bins: int = CALIBRATION_BINS) -> Estimate:
    """Expected calibration error with a seeded bootstrap interval, resampled per bin (module docstring)."""
    n = int(outcome.shape[0])
    if n == 0:
        return _UNDEFINED
    b = _bin_of(p, bins)
    count, sum_p, sum_y = _bin_sums(outcome, p, bins)
    value = float(np.abs(sum_p - sum_y).sum() / n)
    # Per bin and outcome (1, 0): rows, mean and variance of their predicted probabilities.
    stats = []
    for o in (1.0, 0.0):
        sel = outcome == o
        rows = np.bincount(b[sel], minlength=bins).astype(np.float64)
        s1 = np.bincount(b[sel], p[sel], minlength=bins)
        s2 = np.bincount(b[sel], p[sel] ** 2, minlength=bins)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(rows > 0, s1 / rows, 0.0)
            var = np.where(rows > 0, np.maximum(s2 / rows - mean**2, 0.0), 0.0)
        stats.append((mean, np.sqrt(var)))
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    with np.errstate(invalid="ignore", divide="ignore"):
        share_pos = np.where(count > 0, sum_y / count, 0.0)
    rows_b = rng.multinomial(n, count / n, size=BOOTSTRAP_RESAMPLES).astype(np.float64)
    pos_b = rng.binomial(rows_b.astype(np.int64), share_pos).astype(np.float64)
    neg_b = rows_b - pos_b
    (m1, s1), (m0, s0) = stats
    noise = rng.standard_normal((2, *rows_b.shape))
    sum_p_b = pos_b * m1 + np.sqrt(pos_b) * s1 * noise[0] + neg_b * m0 + np.sqrt(neg_b) * s0 * noise[1]
    ece_b = np.abs(sum_p_b - pos_b).sum(axis=1) / n
    lo, hi = np.quantile(ece_b, [0.025, 0.975])
    return Estimate(value, float(min(lo, value)), float(max(hi, value)), n)


def classification_metrics(
    y_true: Sequence[str] | npt.ArrayLike,
    y_pred: Sequence[str] | npt.ArrayLike | None,
    proba: npt.ArrayLike | None,
    classes: Sequence[str],
) -> dict[str, Estimate]:
    """Accuracy, precision, recall, F1 (macro and per class), and with ``proba`` ROC AUC, log loss, Brier
    score and expected calibration error of a binary or multiclass classifier, each with its 95 % interval.

    ``y_true`` and ``y_pred`` hold class names (compared as strings) out of ``classes``; ``proba`` holds
    one column per class in ``classes`` order (for two classes a 1-D array of ``classes[1]``'s
    probability will do). ``y_pred`` None: the argmax of ``proba``.

    Keys: ``accuracy``, ``precision``, ``recall``, ``f1`` (macro over the classes present in truth or
    prediction), ``precision:<class>``, ``recall:<class>``, ``f1:<class>``; with ``proba`` also
    ``roc_auc`` (binary: of ``classes[1]``; multiclass: macro one-vs-rest over the classes with at least
    two rows in and out), ``log_loss`` (clipped at :data:`LOG_LOSS_EPS`), ``brier`` (binary: mean
    squared error of ``classes[1]``'s probability; multiclass: mean over rows of the squared distance
    to the one-hot truth) and ``ece`` (binary: of ``classes[1]``'s probability; multiclass: of the top
    class's probability against being right, :data:`CALIBRATION_BINS` bins). Undefined values are NaN.
    Raises ValueError for labels outside ``classes`` or mismatched shapes.
    """
    classes = [str(c) for c in classes]
    k = len(classes)
    if k < 2 or len(set(classes)) != k:
        raise ValueError(f"classes must name at least two distinct classes, got {classes}")
    y = _class_index(y_true, classes, "y_true")
    n = int(y.shape[0])
    p = None if proba is None else _as_proba(proba, n, k)
    if y_pred is not None:
        pred = _class_index(y_pred, classes, "y_pred")
        if pred.shape != y.shape:
            raise ValueError(f"y_true and y_pred differ in length ({n} and {pred.shape[0]})")
    elif p is not None:
        pred = p.argmax(axis=1)
    else:
        raise ValueError("classification metrics need y_pred or proba")
    out: dict[str, Estimate] = {}
    if n == 0:
        names = [*CLASSIFICATION_METRICS[:4], *(f"{m}:{c}" for m in ("precision", "recall", "f1") for c in classes)]
        names += list(CLASSIFICATION_METRICS[4:]) if p is not None else []
        return {name: _UNDEFINED for name in names}
    conf = np.bincount(y * k + pred, minlength=k * k).reshape(k, k).astype(np.float64)
    tp = np.diag(conf)
    true_n, pred_n = conf.sum(axis=1), conf.sum(axis=0)
    out["accuracy"] = _proportion(float(tp.sum()), n)
    out.update(_macro(conf, n))
    prec, prec_lo, prec_hi = wilson(tp, pred_n)
    rec, rec_lo, rec_hi = wilson(tp, true_n)
    fp, fn = pred_n - tp, true_n - tp
    s = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = 2 * tp / s
        f1_se = np.sqrt(4 * tp * (fp + fn) * (tp + fp + fn)) / s**2
    for i, c in enumerate(classes):
        out[f"precision:{c}"] = Estimate(float(prec[i]), float(prec_lo[i]), float(prec_hi[i]), int(pred_n[i]))
        out[f"recall:{c}"] = Estimate(float(rec[i]), float(rec_lo[i]), float(rec_hi[i]), int(true_n[i]))
        out[f"f1:{c}"] = _normal(float(f1[i]), float(f1_se[i]), int(s[i] - tp[i]), 0.0, 1.0)
    if p is None:
        return out
    rows = np.arange(n)
    out["roc_auc"] = _roc_auc(y, p)
    out["log_loss"] = _mean(-np.log(np.clip(p[rows, y], LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)), 0.0)
    if k == 2:
        positive = (y == 1).astype(np.float64)
        out["brier"] = _mean((p[:, 1] - positive) ** 2, 0.0, 1.0)
        out["ece"] = _ece(positive, p[:, 1])
    else:
        sq = (p * p).sum(axis=1) - 2 * p[rows, y] + 1.0
        out["brier"] = _mean(sq, 0.0, 2.0)
        out["ece"] = _ece((pred == y).astype(np.float64), p[rows, pred])
    return out


# --- Regression ----------------------------------------------------------------------------------


def regression_metrics(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> dict[str, Estimate]:
    """MAE, RMSE, MAPE, R² and mean error (bias, ``y_pred - y_true``: positive = over-prediction) with 95 %
    intervals. MAPE is a fraction (0.1 = 10 %) over the rows with ``|y_true| >= MAPE_EPS`` (its ``n``
    says how many). Raises ValueError for mismatched lengths or values that are not finite numbers."""
    y = np.asarray(y_true, dtype=np.float64).reshape(-1)
    f = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if y.shape != f.shape:
        raise ValueError(f"y_true and y_pred differ in length ({y.shape[0]} and {f.shape[0]})")
    if not (np.isfinite(y).all() and np.isfinite(f).all()):
        raise ValueError("y_true and y_pred must hold finite numbers only")
    n = int(y.shape[0])
    if n == 0:
        return {name: _UNDEFINED for name in REGRESSION_METRICS}
    e = f - y
    sq = e * e
    mse = _mean(sq, 0.0)
    safe = np.abs(y) >= MAPE_EPS
    out = {
        "mae": _mean(np.abs(e), 0.0),
        "rmse": Estimate(math.sqrt(mse.value), math.sqrt(mse.lower), math.sqrt(mse.upper), n),
        "mape": _mean(np.abs(e[safe]) / np.abs(y[safe]), 0.0),
    }
    dev = (y - y.mean()) ** 2
    ss_tot = float(dev.mean())
    if ss_tot > 0 and n > 1:
        ratio = mse.value / ss_tot
        influence = ((sq - mse.value) - ratio * (dev - ss_tot)) / ss_tot
        out["r2"] = _normal(1.0 - ratio, math.sqrt(float(np.square(influence).sum())) / n, n, high=1.0)
    else:
        out["r2"] = Estimate(math.nan, math.nan, math.nan, n)
    out["mean_error"] = _mean(e)
    return out


# --- The degradation verdict ---------------------------------------------------------------------

#: Default tolerances: how much worse than the reference a metric must get before an alarm may fire.
#: Absolute drops for scores, absolute rises for losses, relative rises (0.10 = 10 %) for errors.
DEFAULT_TOLERANCES: Mapping[str, float] = MappingProxyType({
    "accuracy": 0.02, "precision": 0.02, "recall": 0.02, "f1": 0.02, "roc_auc": 0.02,
    "log_loss": 0.05, "brier": 0.02, "ece": 0.02,
    "mae": 0.10, "rmse": 0.10, "mape": 0.10, "r2": 0.05,
})


def _base(metric: str) -> str:
    return metric.split(":", 1)[0]


@dataclass(frozen=True)
class PerformancePolicy:
    """When a window's performance counts as degraded against the reference; defaults here only.

    A primary metric (``primary``, those present in both the window and the reference) is judged
    when the window rests on at least ``min_samples`` joined outcomes (else: ``NO_VERDICT``, never 0).
    It is *degraded* when both

    * the one-sided test of "no worse than the reference" is rejected at family-wise level ``alpha``:
      ``z = worsening / sqrt(se_window² + se_reference²)`` (both are samples; each standard error is
      read from its 95 % interval), Holm's step-down correction across the judged primary metrics
      (as drift corrects across features), and
    * the worsening exceeds the metric's tolerance (``tolerances``; a per-class metric such as
      ``f1:fraud`` uses ``f1``'s): absolute for scores and losses, relative to the reference for
      ``mae``, ``rmse`` and ``mape``.

    ``benchmarks/performance_calibration.py`` measures the defaults (docs/statistics.md).
    """

    min_samples: int = 500
    alpha: float = 0.01
    tolerances: Mapping[str, float] = dataclasses.field(default_factory=lambda: DEFAULT_TOLERANCES)
    primary: tuple[str, ...] = ("accuracy", "roc_auc", "mae")

    def __post_init__(self) -> None:
        if isinstance(self.min_samples, bool) or not isinstance(self.min_samples, int) or self.min_samples < 1:
            raise ConfigurationError("performance policy: 'min_samples' must be an integer >= 1, "
                                     f"got {self.min_samples!r}")
        if not _finite(self.alpha) or not 0 < self.alpha < 1:
            raise ConfigurationError(f"performance policy: 'alpha' must be a number in (0, 1), got {self.alpha!r}")
        if not isinstance(self.tolerances, Mapping):
            raise ConfigurationError("performance policy: 'tolerances' must be a mapping of metric name to tolerance")
        for name, tol in self.tolerances.items():
            if name not in DEFAULT_TOLERANCES:
                raise ConfigurationError(f"performance policy: tolerances: unknown metric {name!r} "
                                         f"(known: {', '.join(DEFAULT_TOLERANCES)})")
            if not _finite(tol) or tol < 0:
                raise ConfigurationError(f"performance policy: tolerances.{name} must be a finite number >= 0, "
                                         f"got {tol!r}")
        merged = {**DEFAULT_TOLERANCES, **self.tolerances}
        object.__setattr__(self, "tolerances", MappingProxyType(merged))
        if isinstance(self.primary, str) or not all(isinstance(m, str) for m in self.primary):
            raise ConfigurationError("performance policy: 'primary' must be a list of metric names, "
                                     f"got {self.primary!r}")
        object.__setattr__(self, "primary", tuple(self.primary))
        for m in self.primary:
            if _base(m) not in merged:
                raise ConfigurationError(f"performance policy: primary metric {m!r} has no tolerance "
                                         f"(metrics that can alarm: {', '.join(DEFAULT_TOLERANCES)})")

    def __hash__(self) -> int:
        return hash((self.min_samples, self.alpha, tuple(sorted(self.tolerances.items())), self.primary))

    def tolerance(self, metric: str) -> float:
        """The tolerance of ``metric`` (a per-class metric uses its base metric's)."""
        return float(self.tolerances[_base(metric)])


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class PerformanceVerdict:
    """The verdict on one metric: ``degraded`` is 1.0, 0.0 or ``NO_VERDICT``; ``p_value`` is Holm-adjusted
    across the judged primary metrics (NaN without a verdict); ``reason`` says why, in one line."""

    metric: str
    current: Estimate
    reference: Estimate
    degraded: float
    p_value: float
    reason: str


def _worsening(metric: str, current: float, reference: float) -> float:
    """How much worse the window is, in the metric's own units (positive = worse)."""
    return reference - current if _base(metric) in HIGHER_IS_BETTER else current - reference


def degradation_verdicts(
    current: Mapping[str, Estimate], reference: Mapping[str, Estimate], policy: PerformancePolicy | None = None
) -> list[PerformanceVerdict]:
    """Judge each primary metric present in both ``current`` and ``reference`` (policy order).

    Degraded (1.0) when the worsening is significant after Holm's correction *and* beyond the tolerance;
    0.0 when judged and not; ``NO_VERDICT`` when the window holds fewer than ``min_samples`` outcomes or
    a value or interval is undefined (a check that cannot decide never passes).
    """
    policy = policy or PerformancePolicy()
    names = [m for m in policy.primary if m in current and m in reference]
    p_raw = np.full(len(names), np.nan)
    worse = np.full(len(names), np.nan)
    reasons: list[str] = []
    for i, m in enumerate(names):
        cur, ref = current[m], reference[m]
        if cur.n < policy.min_samples:
            reasons.append(f"{cur.n:,} outcomes < min_samples {policy.min_samples:,}")
            continue
        values = (cur.value, cur.lower, cur.upper, ref.value, ref.lower, ref.upper)
        if not all(math.isfinite(v) for v in values):
            reasons.append("undefined in the window or the reference")
            continue
        worse[i] = _worsening(m, cur.value, ref.value)
        se = math.hypot(cur.standard_error, ref.standard_error)
        p_raw[i] = 0.5 * math.erfc(worse[i] / se / math.sqrt(2)) if se > 0 else (0.0 if worse[i] > 0 else 1.0)
        reasons.append("")
    p_adj = adjust_p_values(p_raw, np.zeros(len(names)), "holm") if names else p_raw
    out = []
    for i, m in enumerate(names):
        cur, ref = current[m], reference[m]
        if math.isnan(p_adj[i]):
            out.append(PerformanceVerdict(m, cur, ref, float(NO_VERDICT), math.nan, reasons[i]))
            continue
        tol = policy.tolerance(m)
        relative = _base(m) in RELATIVE_TOLERANCE
        change = worse[i] / abs(ref.value) if relative and ref.value != 0 else worse[i]
        shown = f"{100 * change:+.1f}%" if relative else f"{change:+.4f}"
        limit = f"{100 * tol:.0f}%" if relative else f"{tol:g}"
        beyond = change > tol
        significant = p_adj[i] < policy.alpha
        if beyond and significant:
            why = f"worse by {shown} (tolerance {limit}), p={p_adj[i]:.2g} < {policy.alpha:g}"
        elif not beyond:
            why = f"worse by {shown}, within tolerance {limit}" if change > 0 else f"not worse ({shown})"
        else:
            why = f"worse by {shown} but not significant (p={p_adj[i]:.2g} >= {policy.alpha:g})"
        out.append(PerformanceVerdict(m, cur, ref, 1.0 if beyond and significant else 0.0, float(p_adj[i]), why))
    return out
