"""Segmented realized performance: each (segment name, value) slice of a window against the rest of it.

A *slice* is the joined pairs of one window whose prediction record carried ``ml.segment.<name> = value``.
For each slice with at least ``policy.min_samples`` pairs the primary metric (accuracy for classifiers,
MAE for regression) is computed on the slice and on the *rest of the window* (the window's other pairs),
and the slice is judged:

* a one-sided two-sample test of "the slice is no worse than the rest": two-proportion z test with
  unpooled variances for accuracy, Welch's z for MAE (windows hold hundreds of pairs per judged slice,
  so the normal approximation is the t one), Holm-corrected at ``policy.alpha`` across *all* judged slices
  of the model version and window, and
* a worsening beyond the metric's tolerance (``policy.tolerances``: accuracy absolute, MAE relative to
  the rest's MAE).

Both must hold for ``degraded = 1``; ``0`` when judged and not; ``NO_VERDICT`` below ``min_samples``
(never 0). The effect size is ``gap = slice − rest`` in the metric's units with its 95 % interval.
Judged slices are ranked by worsening (1 = worst); slices without a verdict have no rank.

How many slices are judged is bounded by ``state.max_segment_series`` (see :mod:`._segment_streams`).
Drift and data quality per segment are judged in :mod:`._segment_drift`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from otel_ml import semconv

if TYPE_CHECKING:
    from otel_ml.stats.performance import PerformancePolicy

#: Segment columns a prediction record may carry (more are dropped by the library and the processor).
MAX_SEGMENT_COLUMNS = semconv.MAX_SEGMENT_COLUMNS
#: ``ml.segment.<name>`` attributes are packed per pair as ``name=value`` joined by this separator.
_SEP = "\x1f"
_EQ = "\x1e"


@dataclass(frozen=True)
class SegmentVerdict:
    """One slice of one window: its metric (with 95 % interval), the gap to the rest, the verdict, the rank."""

    name: str
    value: str
    metric: str  # "accuracy" or "mae"
    n: int
    estimate: float
    lower: float
    upper: float
    gap: float  # slice − rest, metric units
    gap_lower: float
    gap_upper: float
    degraded: float  # 1.0, 0.0 or NO_VERDICT
    p_value: float  # Holm-adjusted (NaN without a verdict)
    rank: int  # 1 = worst among judged slices; 0 = not ranked (no verdict)


def is_packable(text: str) -> bool:
    """Whether ``text`` holds none of the packing's separators."""
    return _SEP not in text and _EQ not in text


def pack(segments: Mapping[str, str]) -> str:
    """The compact text a pair keeps its segments in (``""`` for none): ``name\\x1evalue`` joined by ``\\x1f``."""
    return _SEP.join(f"{k}{_EQ}{v}" for k, v in sorted(segments.items()))


def unpack(text: str | None) -> dict[str, str]:
    """Inverse of :func:`pack`."""
    if not text:
        return {}
    out = {}
    for item in text.split(_SEP):
        k, _, v = item.partition(_EQ)
        out[k] = v
    return out


def slices(packed: npt.NDArray[Any], max_segments: int) -> tuple[dict[tuple[str, str], npt.NDArray[np.bool_]], int]:
    """Row masks per (name, value) from packed segment texts, at most ``max_segments`` of them (the most
    populated first, then by name and value); returns ``(masks, overflow)`` where overflow counts the
    slices left out."""
    index: dict[str, int] = {}  # packed text -> code (a dict: much faster than sorting strings)
    inverse = np.fromiter((index.setdefault(p or "", len(index)) for p in packed), np.int64, len(packed))
    per_code = np.bincount(inverse, minlength=len(index))
    codes: dict[tuple[str, str], list[int]] = {}
    for text, code in index.items():
        for key in unpack(text).items():
            codes.setdefault(key, []).append(code)
    sizes = {key: int(per_code[idx].sum()) for key, idx in codes.items()}
    order = sorted(sizes, key=lambda k: (-sizes[k], k))
    kept = order[:max_segments]
    masks = {}
    for key in kept:
        lookup = np.zeros(len(index), bool)
        lookup[codes[key]] = True
        masks[key] = lookup[inverse]
    return masks, len(order) - len(kept)


def segment_verdicts(score: npt.ArrayLike, masks: Mapping[tuple[str, str], npt.NDArray[np.bool_]], metric: str,
                     policy: PerformancePolicy | None = None) -> list[SegmentVerdict]:
    """Judge each slice against the rest of the window (module docstring).

    ``score`` is one number per pair of the window: 1/0 correct for ``accuracy``, the absolute error for
    ``mae``. ``masks`` selects each slice's pairs.
    """
    # Imported here, as in ._performance: a library without otel_ml.stats.performance leaves counters only.
    from otel_ml.stats import NO_VERDICT, adjust_p_values
    from otel_ml.stats.performance import PerformancePolicy, Z, wilson

    if metric not in ("accuracy", "mae"):
        raise ValueError(f"segment metric must be 'accuracy' or 'mae', got {metric!r}")
    policy = policy or PerformancePolicy()
    s = np.asarray(score, dtype=np.float64)
    total_n, total_sum, total_sq = s.shape[0], float(s.sum()), float((s * s).sum())
    keys = list(masks)
    rows: list[dict[str, float]] = []
    p_raw = np.full(len(keys), np.nan)
    for i, key in enumerate(keys):
        m = masks[key]
        n1 = int(m.sum())
        n2 = total_n - n1
        sum1 = float(s[m].sum())
        sq1 = float((s[m] ** 2).sum())
        mean1 = sum1 / n1 if n1 else math.nan
        mean2 = (total_sum - sum1) / n2 if n2 else math.nan
        if metric == "accuracy":
            _, lo, hi = wilson(sum1, n1) if n1 else (math.nan, math.nan, math.nan)
            var1, var2 = mean1 * (1 - mean1), mean2 * (1 - mean2)
        else:
            var1 = (sq1 - n1 * mean1 ** 2) / (n1 - 1) if n1 > 1 else math.nan
            var2 = (total_sq - sq1 - n2 * mean2 ** 2) / (n2 - 1) if n2 > 1 else math.nan
            half = Z * math.sqrt(var1 / n1) if n1 > 1 else math.nan
            lo, hi = max(0.0, mean1 - half), mean1 + half
        se = math.sqrt(var1 / n1 + var2 / n2) if n1 > 1 and n2 > 1 else math.nan
        gap = mean1 - mean2
        worse = -gap if metric == "accuracy" else gap
        row = {"n": n1, "value": mean1, "lower": float(lo), "upper": float(hi), "gap": gap, "se": se,
               "worse": worse, "rest": mean2}
        rows.append(row)
        if n1 >= policy.min_samples and n2 >= 1 and math.isfinite(se) and math.isfinite(gap):
            p_raw[i] = 0.5 * math.erfc(worse / se / math.sqrt(2)) if se > 0 else (0.0 if worse > 0 else 1.0)
    p_adj = adjust_p_values(p_raw, np.zeros(len(keys)), "holm") if keys else p_raw
    judged = [i for i in range(len(keys)) if not math.isnan(p_adj[i])]
    ranks = {i: r + 1 for r, i in enumerate(sorted(judged, key=lambda i: (-rows[i]["worse"], keys[i])))}
    tol = policy.tolerance(metric)
    out = []
    for i, (name, value) in enumerate(keys):
        r = rows[i]
        half = Z * r["se"] if math.isfinite(r["se"]) else math.nan
        if i in ranks:
            change = r["worse"] / abs(r["rest"]) if metric == "mae" and r["rest"] else r["worse"]
            degraded = 1.0 if p_adj[i] < policy.alpha and change > tol else 0.0
        else:
            degraded = float(NO_VERDICT)
        out.append(SegmentVerdict(name, value, metric, int(r["n"]), r["value"], r["lower"], r["upper"], r["gap"],
                                  r["gap"] - half, r["gap"] + half, degraded, float(p_adj[i]), ranks.get(i, 0)))
    return out


# --- OTLP -----------------------------------------------------------------------------------------
def add_segments(sm: Any, results: Sequence[Any], now_ns: int) -> None:
    """Append the ``ml.segment.*`` gauges of each window result's slices to ``sm`` (a ``ScopeMetrics``):
    value and interval, gap to the rest, verdict and sample count for every slice; the rank for judged ones."""
    from ._telemetry import kv, new_metric

    metrics: dict[str, Any] = {}

    def point(name: str, attrs: list[Any], **value: Any) -> None:
        if name not in metrics:
            metrics[name] = new_metric(sm, name)
        metrics[name].gauge.data_points.add(time_unix_nano=now_ns, **value).attributes.extend(attrs)

    for r in results:
        for sv in r.segments:
            attrs = [kv(semconv.MODEL_NAME, r.model), kv(semconv.MODEL_VERSION, r.version),
                     kv(semconv.DRIFT_WINDOW, r.window), kv(semconv.PERFORMANCE_METRIC, sv.metric),
                     kv(semconv.SEGMENT_NAME, sv.name), kv(semconv.SEGMENT_VALUE, sv.value)]
            point(semconv.SEGMENT_SAMPLE_COUNT, attrs, as_int=sv.n)
            point(semconv.SEGMENT_PERFORMANCE_DEGRADED, attrs, as_int=int(sv.degraded))
            for name, value in ((semconv.SEGMENT_PERFORMANCE_VALUE, sv.estimate),
                                (semconv.SEGMENT_PERFORMANCE_LOWER, sv.lower),
                                (semconv.SEGMENT_PERFORMANCE_UPPER, sv.upper),
                                (semconv.SEGMENT_PERFORMANCE_GAP, sv.gap)):
                if math.isfinite(value):
                    point(name, attrs, as_double=float(value))
            if sv.rank:
                point(semconv.SEGMENT_PERFORMANCE_RANK, attrs, as_int=sv.rank)
