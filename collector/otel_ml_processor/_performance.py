"""Realized performance: joined pairs in per-version windows, judged against the reference's holdout.

A pair enters its model version's windows when it is *joined* (when the later of prediction and
outcome arrives), so a window of 1h holds the pairs completed in the last hour whatever their label
delay; the prediction time and the delay travel with each pair (``ml.label.delay``, ``otel-ml outcomes
export``). The windows are the drift windows (``windows.sizes``).

Memory is bounded: each model version keeps the newest ``outcomes.max_window_pairs`` joined pairs as
numpy columns (join time, actual, predicted, probabilities as float32, trace and span id); a window
evaluates the pairs of that ring that fall in it. (With more pairs per largest window than the ring
holds, the largest windows see the newest ``max_window_pairs``: the sample count says so.) Waiting
predictions are never in memory (they are in the join store).

At each evaluation, per model version x window: :func:`otel_ml.stats.performance.classification_metrics`
or ``regression_metrics`` (the task from the reference: ``proba:<class>``/``label`` outputs ->
classification, a ``value`` output -> regression; the performance section's ``task`` wins), then
``degradation_verdicts`` against the reference's ``performance`` section (none -> the values are
exported and ``ml.performance.degraded`` is NO_VERDICT). The worst-scored pairs of the window (highest
per-row log loss, or absolute error) become exemplars on ``ml.performance.value`` of ``log_loss`` /
``mae``, carrying their trace and span id.
"""

from __future__ import annotations

import copy
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb

from otel_ml import semconv
from otel_ml.reference import (
    OUTPUT_LABEL,
    OUTPUT_VALUE,
    PROBA_PREFIX,
    CategoricalProfile,
    Reference,
    ReferencePerformance,
)
from otel_ml.stats import NO_VERDICT

from ._joins import Pair
from ._segment_streams import DEFAULT_MAX_SEGMENT_SERIES, SERIES_PER_PERFORMANCE_SLICE
from ._segments import SegmentVerdict, segment_verdicts, slices
from ._store import le_label
from ._telemetry import kv

CLASSIFICATION = ("binary", "multiclass")
REGRESSION = "regression"
EXEMPLARS = 5
#: Metrics whose worst rows are exported as exemplars, and how a row is scored.
_LOSS_METRICS = ("log_loss", "mae")


@dataclass(frozen=True)
class TaskSpec:
    """How a model version's pairs are read: the task, its classes (classification) and the reference's
    holdout performance (metric -> :class:`otel_ml.stats.Estimate`), when the reference has one."""

    task: str
    classes: tuple[str, ...] = ()
    reference: Mapping[str, Any] | None = None


def reference_performance(ref: Reference) -> ReferencePerformance | None:
    """The reference's holdout ``performance`` section, or ``None``."""
    return ref.performance


def task_spec(ref: Reference) -> TaskSpec | None:
    """The :class:`TaskSpec` of a reference, or ``None`` when its outputs say nothing to judge."""
    names = [p.name for p in ref.outputs]
    classes = tuple(n[len(PROBA_PREFIX):] for n in names if n.startswith(PROBA_PREFIX))
    if not classes:
        for p in ref.outputs:
            if p.name == OUTPUT_LABEL and isinstance(p, CategoricalProfile):
                classes = tuple(c for c in p.categories if c != semconv.OTHER_CATEGORY)
    section = ref.performance
    if section is not None and section.classes:
        classes = tuple(section.classes)
    if section is not None:
        task = section.task
    elif classes:
        task = "binary" if len(classes) == 2 else "multiclass"
    elif OUTPUT_VALUE in names:
        task = REGRESSION
    else:
        return None
    if task != REGRESSION and not classes:
        return None
    reference = None if section is None else dict(section.metrics)
    return TaskSpec(task, classes if task != REGRESSION else (), reference)


class _Ring:
    """The newest ``capacity`` joined pairs of one model version, as columns."""

    def __init__(self, capacity: int, width: int) -> None:
        self.capacity = capacity
        self.t = np.zeros(capacity)
        self.actual = np.zeros(capacity)
        self.pred = np.full(capacity, np.nan)
        self.proba = np.full((capacity, width), np.nan, np.float32)
        self.trace = np.zeros((capacity, 24), np.uint8)
        self.seg = np.full(capacity, "", dtype=object)  # packed segments (:mod:`._segments`), shared strings
        self.size = 0
        self.pos = 0

    def extend(self, t: np.ndarray, actual: np.ndarray, pred: np.ndarray, proba: np.ndarray | None,
               trace: np.ndarray, seg: np.ndarray | None = None) -> None:
        """Append rows (the newest ``capacity`` are kept)."""
        m = len(t)
        if seg is None:
            seg = np.full(m, "", dtype=object)
        if m > self.capacity:
            keep = slice(m - self.capacity, m)
            t, actual, pred, trace, seg = t[keep], actual[keep], pred[keep], trace[keep], seg[keep]
            proba = None if proba is None else proba[keep]
            m = self.capacity
        idx = (self.pos + np.arange(m)) % self.capacity
        self.t[idx], self.actual[idx], self.pred[idx], self.trace[idx] = t, actual, pred, trace
        self.seg[idx] = seg
        self.proba[idx] = np.nan if proba is None else proba
        self.pos = (self.pos + m) % self.capacity
        self.size = min(self.size + m, self.capacity)

    def select(self, since: float) -> np.ndarray:
        return np.nonzero(self.t[: self.size] >= since)[0]

    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.t, self.actual, self.pred, self.proba, self.trace, self.seg))

    def __deepcopy__(self, memo: dict[int, Any]) -> _Ring:
        # Column copies; the packed segment strings are immutable and shared (deepcopy would visit each).
        other = copy.copy(self)
        for name in ("t", "actual", "pred", "proba", "trace", "seg"):
            setattr(other, name, getattr(self, name).copy())
        return other


@dataclass
class _Version:
    spec: TaskSpec
    ring: _Ring
    #: predictions received, per slot start (seconds): the coverage ratio's denominator.
    received: dict[int, int] = field(default_factory=dict)


class PerformanceWindows:
    """Joined pairs per model version, evaluated per window (see the module docstring)."""

    def __init__(self, windows: Sequence[float], labels: Sequence[str], *, max_pairs: int = 100_000,
                 max_segment_series: int = DEFAULT_MAX_SEGMENT_SERIES) -> None:
        self.max_segment_series = max_segment_series
        #: model -> exported series its segment streams already take (the state's, set before evaluating).
        self.segment_series_used: Mapping[str, int] = {}
        self.windows = tuple(windows)
        self.labels = tuple(labels)
        self.max_pairs = max_pairs
        self.slot = max(1, int(min(self.windows) // 10))
        self.versions: dict[tuple[str, str], _Version] = {}
        self.rejected: dict[tuple[str, str], int] = {}

    def _version(self, model: str, version: str, spec: TaskSpec) -> _Version:
        v = self.versions.get((model, version))
        if v is None or v.spec.classes != spec.classes or v.spec.task != spec.task:
            v = self.versions[(model, version)] = _Version(spec, _Ring(self.max_pairs, len(spec.classes)))
        else:
            v.spec = spec
        return v

    def received(self, model: str, version: str, count: int, now: float, spec: TaskSpec) -> None:
        """``count`` prediction records of a model version arrived (the coverage ratio's denominator);
        predictions usually come before any outcome, so this starts the version's state."""
        v = self._version(model, version, spec)
        slot = int(now) // self.slot * self.slot
        v.received[slot] = v.received.get(slot, 0) + count

    def add(self, model: str, version: str, pairs: Sequence[Pair], spec: TaskSpec) -> np.ndarray:
        """Put joined pairs of one model version in its windows; the mask of those that could be judged
        (the others -- an actual outside the reference's classes, no usable output -- are counted by the caller)."""
        v = self._version(model, version, spec)
        n = len(pairs)
        t = np.fromiter((p.t_join for p in pairs), np.float64, n) / 1000.0
        trace = np.frombuffer(b"".join(p.trace if len(p.trace) == 24 else bytes(24) for p in pairs),
                              np.uint8).reshape(n, 24)
        seg = np.empty(n, dtype=object)
        seg[:] = [sys.intern(p.segments) for p in pairs]
        proba = None
        if spec.task == REGRESSION:
            actual = np.array([math.nan if p.actual_value is None else p.actual_value for p in pairs], np.float64)
            pred = np.array([math.nan if p.value is None else p.value for p in pairs], np.float64)
            ok = np.isfinite(actual) & np.isfinite(pred)
        else:
            index = {c: i for i, c in enumerate(spec.classes)}
            k = len(spec.classes)
            actual = np.fromiter((index.get(p.actual_label, -1) for p in pairs), np.float64, n)  # type: ignore[arg-type]
            pred = np.fromiter((-1 if p.label is None else index.get(p.label, -1) for p in pairs), np.float64, n)
            width = 4 * k
            has = np.fromiter((p.prob is not None and len(p.prob) == width for p in pairs), bool, n)
            proba = np.full((n, k), np.nan, np.float32)
            if has.any():
                proba[has] = np.frombuffer(b"".join(p.prob for p, h in zip(pairs, has) if h),  # type: ignore[misc]
                                           np.float32).reshape(-1, k)
                fill = has & (pred < 0)
                pred[fill] = np.argmax(proba[fill], axis=1)
            ok = (actual >= 0) & (pred >= 0)
        if ok.any():
            v.ring.extend(t[ok], actual[ok], pred[ok], None if proba is None else proba[ok], trace[ok], seg[ok])
        return ok

    def nbytes(self) -> int:
        return sum(v.ring.nbytes() for v in self.versions.values())

    def live(self, now: float) -> list[tuple[str, str]]:
        """The model versions with a prediction received or a pair joined within the longest window."""
        since = now - max(self.windows)
        out = []
        for key, v in self.versions.items():
            ring = v.ring
            newest = ring.t[(ring.pos - 1) % ring.capacity] if ring.size else -math.inf
            if newest >= since or any(s + self.slot >= since for s in v.received):
                out.append(key)
        return out

    def snapshot(self) -> PerformanceWindows:
        """A copy to evaluate in another thread while ingest keeps adding to this one (on the loop)."""
        return copy.deepcopy(self)

    # --- evaluation -----------------------------------------------------------------------------
    def slices_per_window(self, model: str, evaluations: int) -> int:
        """Slices each of a model's ``evaluations`` (versions x windows) may judge: what its segment streams
        leave of ``max_segment_series``, shared equally (:mod:`._segment_streams`)."""
        left = max(0, self.max_segment_series - self.segment_series_used.get(model, 0))
        return left // (SERIES_PER_PERFORMANCE_SLICE * max(1, evaluations))

    def evaluate(self, now: float, policy: Any) -> list[WindowResult]:
        """Every model version x window with pairs: metrics, verdicts, calibration, exemplars."""
        out = []
        horizon = now - max(self.windows)
        evaluations: dict[str, int] = {}
        for model, _ in self.versions:
            evaluations[model] = evaluations.get(model, 0) + len(self.windows)
        for (model, version), v in self.versions.items():
            max_segments = self.slices_per_window(model, evaluations[model])
            v.received = {s: c for s, c in v.received.items() if s + self.slot >= horizon}
            for size, label in zip(self.windows, self.labels):
                rows = v.ring.select(now - size)
                received = sum(c for s, c in v.received.items() if s + self.slot > now - size)
                res = _evaluate_window(model, version, label, v, rows, received, policy)
                _evaluate_segments(res, v, rows, policy, max_segments)
                out.append(res)
        return out


@dataclass
class WindowResult:
    model: str
    version: str
    window: str
    n: int
    coverage: float
    metrics: dict[str, Any]  # name -> Estimate
    verdicts: dict[str, Any]  # metric -> PerformanceVerdict
    degraded_default: tuple[str, ...]  # primary metrics present without a verdict (NO_VERDICT)
    reference: Mapping[str, Any]
    calibration: list[tuple[float, float]]  # (upper bound, observed)
    exemplars: dict[str, list[tuple[float, bytes, float]]]  # metric -> (row score, trace+span, time s)
    segments: list[SegmentVerdict] = field(default_factory=list)
    segments_dropped: int = 0  # slices beyond the budget (not judged, counted)


def _evaluate_window(model: str, version: str, label: str, v: _Version, rows: np.ndarray, received: int,
                     policy: Any) -> WindowResult:
    from otel_ml.stats.performance import (
        classification_metrics,
        degradation_verdicts,
        regression_metrics,
        reliability,
    )

    spec, ring = v.spec, v.ring
    n = len(rows)
    coverage = n / received if received else math.nan
    reference = dict(spec.reference or {})
    res = WindowResult(model, version, label, n, coverage, {}, {}, (), reference, [], {})
    if n == 0:
        return res
    actual, pred = ring.actual[rows], ring.pred[rows]
    trace, times = ring.trace[rows], ring.t[rows]
    if spec.task == REGRESSION:
        res.metrics = dict(regression_metrics(actual, pred))
        score = np.abs(actual - pred)
        res.exemplars["mae"] = _worst(score, trace, times)
    else:
        classes = np.asarray(spec.classes, dtype=object)
        y_true = classes[actual.astype(np.int64)].tolist()
        y_pred = classes[pred.astype(np.int64)].tolist()
        proba = ring.proba[rows].astype(np.float64)
        has_proba = proba.shape[1] > 0 and bool(np.isfinite(proba).all())
        res.metrics = dict(classification_metrics(y_true, y_pred, proba if has_proba else None, spec.classes))
        if has_proba:
            p_true = proba[np.arange(n), actual.astype(np.int64)]
            res.exemplars["log_loss"] = _worst(-np.log(np.clip(p_true, 1e-15, 1.0)), trace, times)
            if len(spec.classes) == 2:
                bins = reliability(actual == 1, proba[:, 1])
                res.calibration = [(float(b["upper"]), float(b["observed"])) for b in bins
                                   if b.get("count") and math.isfinite(float(b["observed"]))]
    if reference:
        res.verdicts = {vd.metric: vd for vd in degradation_verdicts(res.metrics, reference, policy)}
    primary = tuple(getattr(policy, "primary", ()))
    res.degraded_default = tuple(m for m in primary if m in res.metrics and m not in res.verdicts)
    return res


def _evaluate_segments(res: WindowResult, v: _Version, rows: np.ndarray, policy: Any, max_segments: int) -> None:
    """Each segment slice of the window against the rest (:mod:`._segments`)."""
    seg = v.ring.seg[rows]
    if not len(rows) or not any(seg):
        return
    masks, res.segments_dropped = slices(seg, max_segments)
    actual, pred = v.ring.actual[rows], v.ring.pred[rows]
    if v.spec.task == REGRESSION:
        res.segments = segment_verdicts(np.abs(actual - pred), masks, "mae", policy)
    else:
        res.segments = segment_verdicts((actual == pred).astype(np.float64), masks, "accuracy", policy)


def _worst(score: np.ndarray, trace: np.ndarray, times: np.ndarray) -> list[tuple[float, bytes, float]]:
    has = trace.any(axis=1)
    idx = np.nonzero(has & np.isfinite(score))[0]
    if not len(idx):
        return []
    top = idx[np.argsort(-score[idx], kind="stable")[:EXEMPLARS]]
    return [(float(score[i]), trace[i].tobytes(), float(times[i])) for i in top]


# --- OTLP -----------------------------------------------------------------------------------------
def add_performance(sm: pb.ScopeMetrics, results: Sequence[WindowResult], now_ns: int) -> None:
    """Append the ``ml.performance.*``, coverage and calibration gauges of ``results`` to ``sm`` (the
    reference's holdout value, ``ml.performance.reference``, comes from the drift evaluation, with or
    without outcomes: :func:`._estimated.add_holdout`)."""
    from ._telemetry import new_metric

    metrics: dict[str, pb.Metric] = {}

    def gauge(name: str) -> Any:
        if name not in metrics:
            metrics[name] = new_metric(sm, name)
        return metrics[name].gauge.data_points

    for r in results:
        base = [kv(semconv.MODEL_NAME, r.model), kv(semconv.MODEL_VERSION, r.version),
                kv(semconv.DRIFT_WINDOW, r.window)]
        gauge(semconv.PERFORMANCE_SAMPLE_COUNT).add(time_unix_nano=now_ns, as_int=r.n).attributes.extend(base)
        if math.isfinite(r.coverage):
            gauge(semconv.OUTCOME_COVERAGE_RATIO).add(time_unix_nano=now_ns,
                                                      as_double=r.coverage).attributes.extend(base)
        for key, est in r.metrics.items():
            metric, _, cls = key.partition(":")
            attrs = [*base, kv(semconv.PERFORMANCE_METRIC, metric)]
            if cls:
                attrs.append(kv(semconv.PREDICTION_CLASS, cls))
            for name, value in ((semconv.PERFORMANCE_VALUE, est.value), (semconv.PERFORMANCE_LOWER, est.lower),
                                (semconv.PERFORMANCE_UPPER, est.upper)):
                if value is not None and math.isfinite(value):
                    dp = gauge(name).add(time_unix_nano=now_ns, as_double=float(value))
                    dp.attributes.extend(attrs)
                    if name == semconv.PERFORMANCE_VALUE and key in r.exemplars:
                        for score, trace, t in r.exemplars[key]:
                            dp.exemplars.add(time_unix_nano=int(t * 1e9), as_double=score,
                                             trace_id=trace[:16], span_id=trace[16:])
            verdict = r.verdicts.get(key)
            degraded = verdict.degraded if verdict is not None else (
                NO_VERDICT if key in r.degraded_default else None)
            if degraded is not None:
                gauge(semconv.PERFORMANCE_DEGRADED).add(time_unix_nano=now_ns,
                                                        as_int=int(degraded)).attributes.extend(attrs)
        for upper, observed in r.calibration:
            dp = gauge(semconv.CALIBRATION_OBSERVED).add(time_unix_nano=now_ns, as_double=observed)
            dp.attributes.extend([*base, kv(semconv.BUCKET_LE, le_label(upper))])
