"""Estimated performance (no labels): per model version x window, the expected accuracy, F1 and ROC AUC
of a binary classifier from its window's ``proba:<positive class>`` histogram, through the reference's
calibration curve (:func:`otel_ml.stats.estimate_binary`).

Only for references with a ``performance`` section of task ``binary`` with calibration bins and a numeric
``proba:<classes[1]>`` output (whose edges are the histogram's bounds). A window with fewer rows of that
output than the drift policy's ``min_samples`` exports nothing (no estimate rather than a noisy one).

The value both the estimate and the realized performance are compared with, the reference's holdout
value (``ml.performance.reference``), is exported here too (:func:`add_holdout`), once per evaluation for
every live model version whose reference has a ``performance`` section, with or without outcomes: a
model whose labels never come still has the line its estimate is judged against.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
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


@dataclass(frozen=True)
class Holdout:
    """A live model version's holdout performance (metric key -> estimate), from its reference."""

    model: str
    version: str
    metrics: Mapping[str, Estimate]


def holdout(model: str, version: str, ref: Reference) -> Holdout | None:
    """The :class:`Holdout` of ``ref``, or ``None`` without a ``performance`` section."""
    perf = ref.performance
    if perf is None or not perf.metrics:
        return None
    return Holdout(model, version, perf.metrics)


def add_holdout(sm: pb.ScopeMetrics, holdouts: Sequence[Holdout], windows: Sequence[str], now_ns: int) -> None:
    """Append ``ml.performance.reference`` of ``holdouts`` to ``sm``: one point per model version, window
    and metric (a per-class metric ``<metric>:<class>`` carries ``ml.prediction.class``; finite values only).
    The value does not depend on the window; it is sent with each so that it joins the per-window series
    it is drawn and judged beside."""
    points = [(h, *key.partition(":")[::2], float(est.value)) for h in holdouts
              for key, est in h.metrics.items() if math.isfinite(est.value)]
    if not points or not windows:
        return
    gauge = new_metric(sm, semconv.PERFORMANCE_REFERENCE).gauge.data_points
    for window in windows:
        for h, metric, cls, value in points:
            attrs = [kv(semconv.MODEL_NAME, h.model), kv(semconv.MODEL_VERSION, h.version),
                     kv(semconv.DRIFT_WINDOW, window), kv(semconv.PERFORMANCE_METRIC, metric)]
            if cls:
                attrs.append(kv(semconv.PREDICTION_CLASS, cls))
            gauge.add(time_unix_nano=now_ns, as_double=value).attributes.extend(attrs)
