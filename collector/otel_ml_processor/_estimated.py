"""Estimated performance (no labels): per model version x window, the expected accuracy, F1 and ROC AUC
of a binary classifier from its window's ``proba:<positive class>`` histogram, through the reference's
calibration curve (:func:`otel_ml.stats.estimate_binary`).

Only for references with a ``performance`` section of task ``binary`` with calibration bins and a numeric
``proba:<classes[1]>`` output (whose edges are the histogram's bounds). A window with fewer rows of that
output than the drift policy's ``min_samples`` exports nothing (no estimate rather than a noisy one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb

from otel_ml import semconv
from otel_ml.reference import PROBA_PREFIX, NumericProfile, Reference
from otel_ml.stats import Estimate, estimate_binary

from ._telemetry import kv, new_metric


@dataclass(frozen=True)
class EstimatedTarget:
    """The stream an estimate reads and what it needs from the reference."""

    output: str  # the prediction stream's name: proba:<positive class>
    edges: np.ndarray
    calibration: tuple[Any, ...]


def estimated_target(ref: Reference) -> EstimatedTarget | None:
    """What to estimate for ``ref``, or ``None`` when it cannot be estimated (module docstring)."""
    perf = ref.performance
    if perf is None or perf.task != "binary" or not perf.calibration or len(perf.classes) != 2:
        return None
    name = PROBA_PREFIX + perf.classes[1]
    for p in ref.outputs:
        if p.name == name and isinstance(p, NumericProfile):
            return EstimatedTarget(name, np.asarray(p.edges, dtype=np.float64), tuple(perf.calibration))
    return None


@dataclass(frozen=True)
class EstimatedResult:
    model: str
    version: str
    window: str
    metrics: dict[str, Estimate]


def estimate(target: EstimatedTarget, counts: np.ndarray, min_samples: int) -> dict[str, Estimate] | None:
    """The estimates of one window from its bucket ``counts``, or ``None`` below ``min_samples`` rows."""
    counts = np.maximum(counts, 0.0)  # window increments are >= 0; never let rounding fail an evaluation
    if not np.isfinite(counts).all() or float(counts.sum()) < min_samples:
        return None
    return estimate_binary(target.edges, counts, target.calibration)


def add_estimated(sm: pb.ScopeMetrics, results: Sequence[EstimatedResult], now_ns: int) -> None:
    """Append the ``ml.performance.estimated*`` gauges of ``results`` to ``sm`` (finite values only)."""
    if not results:
        return
    names = (semconv.PERFORMANCE_ESTIMATED, semconv.PERFORMANCE_ESTIMATED_LOWER,
             semconv.PERFORMANCE_ESTIMATED_UPPER)
    gauges = {name: new_metric(sm, name).gauge.data_points for name in names}
    for r in results:
        base = [kv(semconv.MODEL_NAME, r.model), kv(semconv.MODEL_VERSION, r.version),
                kv(semconv.DRIFT_WINDOW, r.window)]
        for metric, est in r.metrics.items():
            attrs = [*base, kv(semconv.PERFORMANCE_METRIC, metric)]
            for name, value in zip(names, (est.value, est.lower, est.upper)):
                if math.isfinite(value):
                    gauges[name].add(time_unix_nano=now_ns, as_double=float(value)).attributes.extend(attrs)
