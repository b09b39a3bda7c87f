"""A minimal private stand-in for ``otel_ml.stats.performance`` (the contract's interface), used only while
the real module (engineer "gtstats") is not on this branch. :func:`install` does nothing once it is."""

from __future__ import annotations

import math
import sys
import types
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

NO_VERDICT = -1


@dataclass(frozen=True)
class Estimate:
    value: float
    lower: float
    upper: float
    n: int


def _wilson(k: float, n: int) -> Estimate:
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    p = k / n
    z = 1.959964
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return Estimate(p, c - h, c + h, n)


def _mean(x: np.ndarray) -> Estimate:
    n = len(x)
    m = float(np.mean(x))
    se = float(np.std(x, ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return Estimate(m, m - 1.96 * se, m + 1.96 * se, n)


def classification_metrics(y_true, y_pred, proba, classes):
    y_true = np.asarray(y_true, dtype=object)
    if y_pred is None:
        y_pred = np.asarray(classes, dtype=object)[np.argmax(proba, axis=1)]
    y_pred = np.asarray(y_pred, dtype=object)
    n = len(y_true)
    out = {"accuracy": _wilson(float(np.sum(y_true == y_pred)), n)}
    if proba is not None:
        idx = np.array([list(classes).index(c) for c in y_true])
        p = np.clip(np.asarray(proba)[np.arange(n), idx], 1e-15, 1)
        out["log_loss"] = _mean(-np.log(p))
    return out


def regression_metrics(y_true, y_pred):
    return {"mae": _mean(np.abs(np.asarray(y_true) - np.asarray(y_pred)))}


def reliability(y_true_is_positive, proba, bins=10):
    edges = np.linspace(0, 1, bins + 1)
    out = []
    for i in range(bins):
        m = (proba > edges[i]) & (proba <= edges[i + 1]) if i else (proba <= edges[1])
        c = int(m.sum())
        out.append({"upper": float(edges[i + 1]), "count": c,
                    "mean_predicted": float(proba[m].mean()) if c else math.nan,
                    "observed": float(np.mean(y_true_is_positive[m])) if c else math.nan})
    return out


@dataclass(frozen=True)
class PerformancePolicy:
    min_samples: int = 500
    alpha: float = 0.01
    tolerances: Mapping[str, float] = field(default_factory=lambda: {"accuracy": 0.02, "mae": 0.10})
    primary: tuple[str, ...] = ("accuracy", "roc_auc", "mae")


@dataclass(frozen=True)
class PerformanceVerdict:
    metric: str
    current: Estimate
    reference: Estimate
    degraded: float
    p_value: float
    reason: str


def degradation_verdicts(current, reference, policy):
    out = []
    for m in policy.primary:
        if m not in current or m not in reference:
            continue
        cur, ref = current[m], reference[m]
        if cur.n < policy.min_samples:
            out.append(PerformanceVerdict(m, cur, ref, NO_VERDICT, math.nan, "too few samples"))
            continue
        drop = ref.value - cur.value
        out.append(PerformanceVerdict(m, cur, ref, 1.0 if drop > policy.tolerances.get(m, 0.02) else 0.0,
                                      math.nan, "stand-in"))
    return out


def install() -> None:
    try:
        import otel_ml.stats.performance
        return
    except ImportError:
        pass
    mod = types.ModuleType("otel_ml.stats.performance")
    for name in ("Estimate", "classification_metrics", "regression_metrics", "reliability", "PerformancePolicy",
                 "PerformanceVerdict", "degradation_verdicts"):
        setattr(mod, name, globals()[name])
    sys.modules["otel_ml.stats.performance"] = mod
    import otel_ml.stats

    otel_ml.stats.performance = mod  # type: ignore[attr-defined]
