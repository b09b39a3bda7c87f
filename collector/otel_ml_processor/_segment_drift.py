"""Drift, data quality and traffic mix per segment value, judged and ranked per model version and window.

The segment streams (:mod:`._segment_streams`) are judged against the reference's profile of *that segment
value* (the optional "segments" section) with the engine the overall streams use:

* output drift: :func:`otel_ml.stats.evaluate_batch` (chi-square homogeneity + effect floor) of the segment's
  output counts against the segment value's reference counts; the *drift score* is the effect size the floor
  applies to (binned Wasserstein distance in the output's reference standard deviations, or total variation);
* data quality: per kind, the ratio ``bad / (rows x reference features)`` against the segment value's
  reference ratio, alarmed when it rises by ``quality_min_increase`` and the one-sided binomial test
  (:func:`otel_ml.stats.quality_p_value`) is significant; the *quality excess* is the largest
  ``ratio - reference ratio`` over the kinds;
* segment mix: per column, the window's rows over its values against the reference's rows (categorical
  drift, same engine).

``min_samples`` (the output's or the model's drift policy) applies to each segment stream: fewer output rows
(drift) or segment rows (quality) in the window give ``NO_VERDICT``, as does a reference without a profile of
the segment value (listed in :attr:`SegmentEvaluation.no_profile`), never 0. Multiple testing: Holm across
the segment tests of the model version and window, one family per signal (output drift, quality, mix), apart
from the overall streams' families: adding segments never weakens the overall verdicts.

Intervals (95 %), exported for the streams with a verdict only: each quality ratio's Wilson score interval
(its denominator: segment rows x reference features, as the judgment's) and the drift score's seeded
bootstrap percentile interval (:func:`otel_ml.stats.effect_interval`: the window's counts resampled, the
segment value's reference profile fixed; biased upward near 0, as a distance is).

Ranking: per model version and window, the judged segment outputs by drift score and the judged segment
values by quality excess, largest first (rank 1); streams without a verdict have no rank.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from otel_ml import semconv
from otel_ml.stats import (
    NO_VERDICT,
    DriftPolicy,
    PolicyBook,
    effect_interval,
    evaluate_batch,
    segment_quality,
)
from otel_ml.stats.performance import wilson

from ._segment_streams import KIND_SEGMENT_PREDICTION, KIND_SEGMENT_QUALITY, unpack_name
from ._state import KIND_PREDICTION, Stream
from ._store import ReferenceStore

_Q = len(semconv.QUALITY_KINDS)
#: Streams without a segment profile listed at most (the status endpoint); all are counted.
MAX_LISTED = 20
NO_PROFILE = "reference has no segment profile"


@dataclass
class SegmentLayout:
    """The static part of a segment evaluation (depends only on the streams and references)."""

    # Output drift: P streams.
    pred_keys: list[tuple[str, str, str, str, str]]  # model, version, output, column, value
    pred_index: np.ndarray  # int64[P, Bmax] cells (sentinel: a zero cell)
    pred_reference: np.ndarray  # float64[P, Bmax] (zeros: no profile)
    pred_positions: np.ndarray
    pred_spread: np.ndarray
    pred_numeric: np.ndarray
    pred_policies: list[DriftPolicy]
    # Quality: Q streams.
    qual_keys: list[tuple[str, str, str, str]]  # model, version, column, value
    qual_index: np.ndarray  # int64[Q, 1 + len(QUALITY_KINDS)]: rows, then the quality cells
    qual_ref_ratio: np.ndarray  # float64[Q, len(QUALITY_KINDS)] (NaN: no profile)
    qual_features: np.ndarray  # float64[Q]: reference features (the quality denominator's factor)
    qual_policies: list[DriftPolicy]
    # Mix: C columns, each a categorical distribution over its values.
    mix_keys: list[tuple[str, str, str]]  # model, version, column
    mix_index: np.ndarray  # int64[C, Vmax, K]: the rows cells of each bucket's values (sentinel: a zero cell)
    mix_reference: np.ndarray  # float64[C, Vmax]
    mix_policies: list[DriftPolicy]
    no_profile: list[tuple[str, str, str, str]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.pred_keys and not self.qual_keys


@dataclass
class SegmentEvaluation:
    """Results of one evaluation's segment streams; rows are (stream, window), windows outermost."""

    pred_keys: list[tuple[str, str, str, str, str]]
    pred_windows: list[str]
    drift_detected: np.ndarray  # int8: 1, 0, NO_VERDICT
    drift_score: np.ndarray  # float64 (NaN: no verdict)
    drift_lower: np.ndarray  # float64: the drift score's 95 % bootstrap interval (NaN: no verdict)
    drift_upper: np.ndarray
    drift_rank: np.ndarray  # int64 (0: no rank)
    drift_samples: np.ndarray
    drift_p_adjusted: np.ndarray  # Holm-adjusted within the segment outputs of the version and window (NaN: none)
    qual_keys: list[tuple[str, str, str, str]]
    qual_windows: list[str]
    quality_ratio: np.ndarray  # float64[R, len(QUALITY_KINDS)] (NaN: no rows)
    quality_lower: np.ndarray  # float64[R, len(QUALITY_KINDS)]: 95 % Wilson interval (NaN: no verdict)
    quality_upper: np.ndarray
    quality_alarm: np.ndarray  # int8
    quality_excess: np.ndarray  # float64 (NaN: no verdict)
    quality_rank: np.ndarray  # int64 (0: no rank)
    quality_p_adjusted: np.ndarray  # float64[R, len(QUALITY_KINDS)]: Holm within the version and window's tests
    mix_keys: list[tuple[str, str, str]]
    mix_windows: list[str]
    mix_detected: np.ndarray  # int8
    no_profile: int = 0  # segment streams whose value the reference has no profile of
    no_profile_listed: list[tuple[str, str, str, str]] = field(default_factory=list)


def _policy(book: PolicyBook, model: str, name: str = "") -> DriftPolicy:
    return book.policy_for(name, model=model)


def build_layout(streams: Sequence[Stream], store: ReferenceStore, book: PolicyBook, sentinel: int) -> SegmentLayout:
    """The gather indices, reference counts and policies of the live segment ``streams`` (all of one store)."""
    pred = [st for st in streams if st.key[2] == KIND_SEGMENT_PREDICTION]
    qual = [st for st in streams if st.key[2] == KIND_SEGMENT_QUALITY]
    no_profile: list[tuple[str, str, str, str]] = []

    # --- output drift
    p = len(pred)
    bins = np.fromiter((st.spec.bins for st in pred), np.int64, p)
    bmax = int(bins.max()) if p else 1
    cols = np.arange(bmax)
    inside = cols[None, :] < bins[:, None]
    cell0 = np.fromiter((st.cell0 for st in pred), np.int64, p)
    pred_index = np.where(inside, cell0[:, None] + cols[None, :], sentinel)
    pred_reference = np.zeros((p, bmax))
    pred_positions = np.full((p, bmax), np.nan)
    pred_spread = np.ones(p)
    pred_numeric = np.fromiter((st.spec.numeric for st in pred), bool, p)
    pred_keys = []
    pred_policies = []
    for i, st in enumerate(pred):
        model, version, _, name = st.key
        output, column, value = unpack_name(name)
        pred_keys.append((model, version, output, column, value))
        pred_policies.append(_policy(book, model, output))
        c = store.get(model, version)
        assert c is not None
        es = c.eval_spec(KIND_PREDICTION, output)
        b = int(bins[i])
        if es.positions is not None:
            pred_positions[i, :b] = es.positions
        pred_spread[i] = es.spread
        vp = c.segment_profile(column, value)
        counts = None if vp is None else vp.outputs.get(output)
        if counts is None:
            no_profile.append((model, version, column, value))
            continue
        if isinstance(counts, tuple):
            pred_reference[i, :b] = counts
        else:  # categorical: the reference's class counts, unknown classes in the "other" bucket
            index = st.spec.category_index
            for label, n in counts.items():
                pred_reference[i, index.get(label, b - 1)] += n

    # --- quality
    q = len(qual)
    q_cell0 = np.fromiter((st.cell0 for st in qual), np.int64, q)
    qual_index = q_cell0[:, None] + np.arange(1 + _Q)[None, :]
    qual_ref_ratio = np.full((q, _Q), np.nan)
    qual_features = np.ones(q)
    qual_keys = []
    qual_policies = []
    rows_cell: dict[tuple[str, str, str], dict[str, int]] = {}
    for i, st in enumerate(qual):
        model, version, _, name = st.key
        _, column, value = unpack_name(name)
        qual_keys.append((model, version, column, value))
        qual_policies.append(_policy(book, model))
        rows_cell.setdefault((model, version, column), {})[value] = int(q_cell0[i])
        c = store.get(model, version)
        assert c is not None
        qual_features[i] = max(1, len(c.reference.features))
        vp = c.segment_profile(column, value)
        if vp is None:
            no_profile.append((model, version, column, value))
            continue
        denominator = vp.rows * qual_features[i]
        if denominator > 0:
            qual_ref_ratio[i] = [vp.quality.get(k, 0) / denominator for k in semconv.QUALITY_KINDS]

    # --- mix: per column, its values' rows (values the profile lacks go to its "__other__" bucket, if any)
    mix_keys = list(rows_cell)
    groups: list[tuple[list[list[int]], list[float]]] = []
    for model, version, column in mix_keys:
        c = store.get(model, version)
        segments = getattr(c.reference, "segments", None) if c is not None else None
        profile = None if segments is None else segments.get(column)
        labels = list(profile.values) if profile is not None else []
        position = {v: j for j, v in enumerate(labels)}
        cells: list[list[int]] = [[] for _ in labels]
        extra: list[int] = []
        for value, cell in rows_cell[(model, version, column)].items():
            j = position.get(value, position.get(semconv.OTHER_CATEGORY, -1))
            (cells[j] if j >= 0 else extra).append(cell)
        if extra:
            cells.append(extra)
        ref = [float(profile.values[v].rows) for v in labels] if profile is not None else []
        ref += [0.0] * (len(cells) - len(ref))
        groups.append((cells, ref))  # a bucket may gather several values (unprofiled ones pooled)
    mix_policies = [_policy(book, m) for m, _, _ in mix_keys]
    vmax = max((len(r) for _, r in groups), default=1) or 1
    cmax = max((max((len(cs) for cs in g), default=1) for g, _ in groups), default=1) or 1
    mix_index = np.full((len(groups), vmax, cmax), sentinel, dtype=np.int64)
    mix_reference = np.zeros((len(groups), vmax))
    for i, (cells_of, ref) in enumerate(groups):
        for j, cs in enumerate(cells_of):
            mix_index[i, j, : len(cs)] = cs
        mix_reference[i, : len(ref)] = ref
    no_profile = list(dict.fromkeys(no_profile))
    return SegmentLayout(pred_keys, pred_index, pred_reference, pred_positions, pred_spread, pred_numeric,
                         pred_policies, qual_keys, qual_index, qual_ref_ratio, qual_features, qual_policies,
                         mix_keys, mix_index, mix_reference, mix_policies, no_profile)


def _family(keys: Sequence[tuple[str, ...]], windows: int) -> np.ndarray:
    ids: dict[tuple[Any, ...], int] = {}
    return np.fromiter((ids.setdefault((k[0], k[1], w), len(ids)) for w in range(windows) for k in keys),
                       np.int64, len(keys) * windows)


def _ranks(score: np.ndarray, judged: np.ndarray, family: np.ndarray) -> np.ndarray:
    """Per family, 1 for the largest ``score`` among ``judged`` rows, 2 for the next...; 0 for the others."""
    rank = np.zeros(len(score), dtype=np.int64)
    idx = np.nonzero(judged & np.isfinite(score))[0]
    if not len(idx):
        return rank
    order = idx[np.lexsort((-score[idx], family[idx]))]
    fam = family[order]
    first = np.r_[True, fam[1:] != fam[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
    rank[order] = np.arange(len(order)) - start + 1
    return rank


def _drift(ref: np.ndarray, cur: np.ndarray, numeric: np.ndarray, positions: np.ndarray, spread: np.ndarray,
           family: np.ndarray, policies: list[DriftPolicy]) -> Any:
    distinct = {id(p): p for p in policies}
    policy: Any = policies if len(distinct) > 1 else policies[0]
    return evaluate_batch(ref, cur, numeric=numeric, positions=positions, spread=spread, family=family,
                          policy=policy)


def judge(lay: SegmentLayout, counts: Sequence[np.ndarray], labels: Sequence[str]) -> SegmentEvaluation:
    """Judge and rank every segment stream of ``lay`` on each window's ``counts`` (module docstring)."""
    w = len(counts)
    padded = [np.append(c, 0.0) for c in counts]  # the sentinel cell reads 0

    # --- output drift
    p = len(lay.pred_keys)
    pred_family = _family(lay.pred_keys, w)
    if p:
        cur = np.concatenate([c[lay.pred_index] for c in padded])
        d = _drift(np.tile(lay.pred_reference, (w, 1)), cur, np.tile(lay.pred_numeric, w),
                   np.tile(lay.pred_positions, (w, 1)), np.tile(lay.pred_spread, w), pred_family,
                   lay.pred_policies * w)
        detected = np.asarray(d.detected, dtype=np.int8)
        judged = detected != NO_VERDICT
        score = np.where(judged, np.asarray(d.effect, dtype=np.float64), np.nan)
        samples = np.asarray(d.sample_count, dtype=np.float64)
        p_drift = np.asarray(d.p_adjusted, dtype=np.float64)
        drift_lower, drift_upper = np.full(p * w, np.nan), np.full(p * w, np.nan)
        if judged.any():
            drift_lower[judged], drift_upper[judged] = effect_interval(
                np.tile(lay.pred_reference, (w, 1))[judged], cur[judged], numeric=np.tile(lay.pred_numeric, w)[judged],
                positions=np.tile(lay.pred_positions, (w, 1))[judged], spread=np.tile(lay.pred_spread, w)[judged])
    else:
        detected, judged, score, samples = (np.zeros(0, np.int8), np.zeros(0, bool), np.zeros(0), np.zeros(0))
        p_drift, drift_lower, drift_upper = np.zeros(0), np.zeros(0), np.zeros(0)
    drift_rank = _ranks(score, judged, pred_family)

    # --- quality
    q = len(lay.qual_keys)
    qual_family = _family(lay.qual_keys, w)
    if q:
        cells = np.concatenate([c[lay.qual_index] for c in padded])  # [Q*W, 1 + kinds]
        rows = cells[:, 0]
        bad = cells[:, 1:]
        total = rows * np.tile(lay.qual_features, w)
        ratio, p_adj, alarm, excess = segment_quality(np.tile(lay.qual_ref_ratio, (w, 1)), bad, rows,
                                                      np.tile(lay.qual_features, w), qual_family, lay.qual_policies * w)
        judged_q = alarm != NO_VERDICT
        _, q_lower, q_upper = wilson(bad, total[:, None])
        q_lower = np.where(judged_q[:, None], q_lower, np.nan)
        q_upper = np.where(judged_q[:, None], q_upper, np.nan)
    else:
        ratio, alarm, excess, judged_q = np.zeros((0, _Q)), np.zeros(0, np.int8), np.zeros(0), np.zeros(0, bool)
        p_adj, q_lower, q_upper = np.zeros((0, _Q)), np.zeros((0, _Q)), np.zeros((0, _Q))
    quality_rank = _ranks(excess, judged_q, qual_family)

    # --- mix
    m = len(lay.mix_keys)
    if m:
        cur_mix = np.concatenate([c[lay.mix_index].sum(axis=2) for c in padded])
        vmax = lay.mix_reference.shape[1]
        d = _drift(np.tile(lay.mix_reference, (w, 1)), cur_mix, np.zeros(m * w, bool), np.full((m * w, vmax), np.nan),
                   np.ones(m * w), _family(lay.mix_keys, w), lay.mix_policies * w)
        mix_detected = np.asarray(d.detected, dtype=np.int8)
    else:
        mix_detected = np.zeros(0, np.int8)

    def windows(n: int) -> list[str]:
        return [lab for lab in labels[:w] for _ in range(n)]

    return SegmentEvaluation(
        lay.pred_keys * w, windows(p), detected, score, drift_lower, drift_upper, drift_rank, samples, p_drift,
        lay.qual_keys * w, windows(q), ratio, q_lower, q_upper, alarm, excess, quality_rank, p_adj,
        lay.mix_keys * w, windows(m), mix_detected,
        no_profile=len(lay.no_profile), no_profile_listed=lay.no_profile[:MAX_LISTED])


# --- OTLP -----------------------------------------------------------------------------------------
#: The segment gauges in export order (the fast encoder, ``_exporter.encode_request``, writes the same order).
METRICS = (semconv.SEGMENT_DRIFT_DETECTED, semconv.SEGMENT_DRIFT_SCORE, semconv.SEGMENT_DRIFT_SCORE_LOWER,
           semconv.SEGMENT_DRIFT_SCORE_UPPER, semconv.SEGMENT_DRIFT_RANK, semconv.SEGMENT_QUALITY_RATIO,
           semconv.SEGMENT_QUALITY_RATIO_LOWER, semconv.SEGMENT_QUALITY_RATIO_UPPER, semconv.SEGMENT_QUALITY_ALARM,
           semconv.SEGMENT_QUALITY_RANK, semconv.SEGMENT_MIX_DETECTED)


def _pred_attributes(ev: SegmentEvaluation) -> list[list[tuple[str, str]]]:
    """The attributes of each segment output row's points."""
    return [[(semconv.MODEL_NAME, model), (semconv.MODEL_VERSION, version), (semconv.DRIFT_WINDOW, window),
             (semconv.PREDICTION_NAME, output), (semconv.SEGMENT_NAME, column), (semconv.SEGMENT_VALUE, value)]
            for (model, version, output, column, value), window in zip(ev.pred_keys, ev.pred_windows)]


def _qual_attributes(ev: SegmentEvaluation) -> list[list[tuple[str, str]]]:
    """The attributes of each segment quality row's points (the ratios add :data:`semconv.QUALITY_KIND`)."""
    return [[(semconv.MODEL_NAME, model), (semconv.MODEL_VERSION, version), (semconv.DRIFT_WINDOW, window),
             (semconv.SEGMENT_NAME, column), (semconv.SEGMENT_VALUE, value)]
            for (model, version, column, value), window in zip(ev.qual_keys, ev.qual_windows)]


def _mix_attributes(ev: SegmentEvaluation) -> list[list[tuple[str, str]]]:
    """The attributes of each segment column row's mix point."""
    return [[(semconv.MODEL_NAME, model), (semconv.MODEL_VERSION, version), (semconv.DRIFT_WINDOW, window),
             (semconv.SEGMENT_NAME, column)] for (model, version, column), window in zip(ev.mix_keys, ev.mix_windows)]


def gauges(ev: SegmentEvaluation) -> dict[str, tuple[list[list[tuple[str, str]]], np.ndarray, np.ndarray, bool]]:
    """Per gauge of :data:`METRICS`: ``(attributes per row, rows exported, values, as_int)``.

    Intervals only for rows with a verdict (their bounds are NaN otherwise); quality ratios are one row per
    (segment value, kind), kinds innermost."""
    pred, qual, mix = _pred_attributes(ev), _qual_attributes(ev), _mix_attributes(ev)
    by_kind = [[*attrs, (semconv.QUALITY_KIND, k)] for attrs in qual for k in semconv.QUALITY_KINDS]

    def finite(values: np.ndarray) -> np.ndarray:
        return np.flatnonzero(np.isfinite(values))

    ratio, lower, upper = (np.ravel(a) for a in (ev.quality_ratio, ev.quality_lower, ev.quality_upper))
    return {
        semconv.SEGMENT_DRIFT_DETECTED: (pred, np.arange(len(pred)), ev.drift_detected, True),
        semconv.SEGMENT_DRIFT_SCORE: (pred, finite(ev.drift_score), ev.drift_score, False),
        semconv.SEGMENT_DRIFT_SCORE_LOWER: (pred, finite(ev.drift_lower), ev.drift_lower, False),
        semconv.SEGMENT_DRIFT_SCORE_UPPER: (pred, finite(ev.drift_upper), ev.drift_upper, False),
        semconv.SEGMENT_DRIFT_RANK: (pred, np.flatnonzero(ev.drift_rank), ev.drift_rank, True),
        semconv.SEGMENT_QUALITY_RATIO: (by_kind, finite(ratio), ratio, False),
        semconv.SEGMENT_QUALITY_RATIO_LOWER: (by_kind, finite(lower), lower, False),
        semconv.SEGMENT_QUALITY_RATIO_UPPER: (by_kind, finite(upper), upper, False),
        semconv.SEGMENT_QUALITY_ALARM: (qual, np.arange(len(qual)), ev.quality_alarm, True),
        semconv.SEGMENT_QUALITY_RANK: (qual, np.flatnonzero(ev.quality_rank), ev.quality_rank, True),
        semconv.SEGMENT_MIX_DETECTED: (mix, np.arange(len(mix)), ev.mix_detected, True),
    }


def add_segment_drift(sm: Any, ev: SegmentEvaluation | None, now_ns: int) -> None:
    """Append the ``ml.segment.drift.*``, ``ml.segment.quality.*`` and ``ml.segment.mix.detected`` gauges
    (:data:`METRICS` order; a gauge without points is left out)."""
    if ev is None:
        return
    from ._telemetry import kv, new_metric

    table = gauges(ev)
    for name in METRICS:
        attrs, rows, values, as_int = table[name]
        if not len(rows):
            continue
        points = new_metric(sm, name).gauge.data_points
        for r, v in zip(rows.tolist(), values[rows].tolist()):
            value = {"as_int": int(v)} if as_int else {"as_double": float(v)}
            points.add(time_unix_nano=now_ns, **value).attributes.extend(kv(k, a) for k, a in attrs[r])
