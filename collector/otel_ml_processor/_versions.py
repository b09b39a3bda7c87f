"""Versions side by side: a candidate model version judged against its baseline version's live traffic.

For every model with two or more live versions, each *candidate* version's window counts are compared
with its *baseline* version's counts over the same window, stream by stream (outputs: prediction
distribution drift between the versions; features: the feature mix of their traffic), with the verdict
engine of drift (:func:`otel_ml.stats.evaluate_batch`): chi-square homogeneity (both sides are finite
samples), the effect-size floor, Holm's correction across the streams of one
``(model, candidate, baseline, window)`` and ``min_samples`` rows on *both* sides (below it: no verdict).

Realized performance, where outcomes are joined (:func:`performance_gaps`, from the ground-truth path's
window results): per pair, window and primary metric, the candidate's value minus the baseline's
(``ml.version.performance.gap``) and the verdict of :func:`otel_ml.stats.degradation_verdicts` with the
baseline's window in the place of the reference's holdout (``ml.version.performance.degraded``: 1 worse
beyond the tolerance and significant, 0 not, -1 no verdict: either side below ``min_samples`` outcomes).
Its pairs are chosen by the same rule, on joined outcomes instead of rows.

Which pairs (:func:`choose_pairs`), in this order of precedence:

1. ``versions.compare`` lists explicit ``{model, candidate, baseline}`` pairs; a model named there is
   compared only as listed.
2. Every other model (when ``versions.automatic`` is on) with a version whose points carry
   ``ml.model.role = live`` (``monitor(..., role="live")``): that version is the baseline of all its other
   live versions (two such: the one with more rows).
3. Otherwise each live version is compared with the baseline fixed when it first appeared
   (:mod:`._registry`: the version with the most rows in the longest window at that moment); when that
   one no longer serves, with the nearest live one up its chain of baselines, else with the live version
   that appeared before it with the most rows now. The oldest live version is no candidate.
4. A version the registry does not know (yet) falls back to the old rule: the live version with the most
   rows in the longest window (ties: the greater version string) is its baseline.

Only streams whose bins are identical in both versions (same
edges, same categories) are comparable; the others are *skipped* and listed in
:attr:`VersionComparison.skipped` (and counted in the log), never judged on mismatched buckets.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb

from otel_ml import semconv
from otel_ml.stats import DRIFT_METHODS, NO_VERDICT, BatchDrift, evaluate_batch

from ._telemetry import kv, new_metric

if TYPE_CHECKING:
    from ._registry import Lineage
    from ._state import Stream

log = logging.getLogger("otel_ml_processor")

#: (model, candidate version, baseline version, kind, name) of one compared stream.
PairKey = tuple[str, str, str, str, str]


@dataclass(frozen=True)
class VersionPair:
    """One comparison: ``candidate`` judged against ``baseline``, both versions of ``model``."""

    model: str
    candidate: str
    baseline: str


@dataclass(frozen=True)
class VersionComparison:
    """Results of one evaluation's version comparisons, one row per (compared stream, window)."""

    keys: list[PairKey]
    windows: list[str]
    drift: BatchDrift | None  # None: nothing compared
    skipped: list[PairKey]  # streams present in both versions whose bins differ

    @property
    def rows(self) -> int:
        return len(self.keys)


def _comparable(a: Stream, b: Stream) -> bool:
    sa, sb = a.spec, b.spec
    return (sa.numeric == sb.numeric and sa.bins == sb.bins and sa.edges_bytes == sb.edges_bytes
            and sa.category_index == sb.category_index)


def choose_pairs(rows_by_version: dict[str, dict[str, float]], explicit: Sequence[VersionPair],
                 automatic: bool = True, roles: Mapping[tuple[str, str], str] | None = None,
                 lineage: Lineage | None = None) -> list[VersionPair]:
    """The pairs to compare: ``explicit`` ones whose both versions are live, then the automatic default.

    ``rows_by_version`` maps model -> live version -> rows in the longest window; ``roles`` (model, version)
    -> ``ml.model.role``: a ``live`` version is the baseline of the model's others; ``lineage`` the version
    registry's entries (:meth:`._registry.VersionRegistry.lineage`): each version's fixed baseline.
    """
    roles = roles or {}
    lineage = lineage or {}
    pairs = [p for p in explicit if p.candidate in rows_by_version.get(p.model, {})
             and p.baseline in rows_by_version.get(p.model, {})]
    pinned = {p.model for p in explicit}
    if automatic:
        for model, rows in rows_by_version.items():
            if model in pinned or len(rows) < 2:
                continue
            most = max(rows, key=lambda v: (roles.get((model, v)) == "live", rows[v], v))
            for v in sorted(rows):
                if roles.get((model, most)) == "live" or (model, v) not in lineage:
                    baseline: str | None = most
                else:
                    baseline = _registered_baseline(model, v, rows, lineage)
                if baseline is not None and baseline != v:
                    pairs.append(VersionPair(model, v, baseline))
    return pairs


def _registered_baseline(model: str, version: str, rows: Mapping[str, float], lineage: Lineage) -> str | None:
    """``version``'s fixed baseline, else the nearest live one up its chain, else the live version that
    appeared before it with the most rows; None when it is the oldest live version."""
    entry = lineage[(model, version)]
    seen = {version}
    b = entry.baseline
    while b is not None and b not in rows and b not in seen:
        seen.add(b)
        up = lineage.get((model, b))
        b = None if up is None else up.baseline
    if b is not None and b in rows and b != version:
        return b
    older = [u for u in rows if (model, u) in lineage and lineage[(model, u)].order < entry.order]
    return max(older, key=lambda u: (rows[u], lineage[(model, u)].order), default=None)


def version_rows(streams: Sequence[Stream], counts: np.ndarray) -> dict[str, dict[str, float]]:
    """model -> version -> rows in ``counts`` (one window's cell counts): its streams' greatest bucket total."""
    out: dict[str, dict[str, float]] = {}
    if not streams:
        return out
    cell0 = np.fromiter((st.cell0 for st in streams), dtype=np.int64, count=len(streams))
    bins = np.fromiter((st.spec.bins for st in streams), dtype=np.int64, count=len(streams))
    csum = np.concatenate(([0.0], np.cumsum(counts, dtype=np.float64)))
    totals = (csum[cell0 + bins] - csum[cell0]).tolist()
    for st, total in zip(streams, totals):
        per_model = out.setdefault(st.key[0], {})
        per_model[st.key[1]] = max(per_model.get(st.key[1], 0.0), total)
    return out


def compare_versions(
    streams: Sequence[Stream],
    current: np.ndarray,
    *,
    positions: np.ndarray,
    spread: np.ndarray,
    policies: Sequence[Any],
    window_labels: Sequence[str],
    explicit: Sequence[VersionPair] = (),
    automatic: bool = True,
    roles: Mapping[tuple[str, str], str] | None = None,
    lineage: Lineage | None = None,
) -> VersionComparison:
    """Compare versions on the evaluation's window counts.

    ``current`` is the evaluation's ``[W * S, Bmax]`` bucket-count matrix (window-major, stream order of
    ``streams``); ``positions``/``spread``/``policies`` are per stream (``[S, Bmax]``, ``[S]``, ``S``).
    """
    s = len(streams)
    w = current.shape[0] // s if s else 0
    by_model: dict[str, dict[str, dict[tuple[str, str], int]]] = {}
    for i, st in enumerate(streams):
        model, version, kind, name = st.key
        by_model.setdefault(model, {}).setdefault(version, {})[(kind, name)] = i
    multi = {m: vs for m, vs in by_model.items() if len(vs) >= 2}
    if not multi or w == 0:
        return VersionComparison([], [], None, [])
    # The longest window holds the most rows (windows end now and nest); no need to know their sizes.
    totals = current.sum(axis=1).reshape(w, s)
    totals = totals[int(np.argmax(totals.sum(axis=1)))]
    rows_by_version = {m: {v: float(max(totals[i] for i in idx.values())) for v, idx in vs.items()}
                       for m, vs in multi.items()}
    pairs = choose_pairs(rows_by_version, explicit, automatic, roles, lineage)
    cand: list[int] = []
    base: list[int] = []
    keys: list[PairKey] = []
    skipped: list[PairKey] = []
    for p in pairs:
        c_idx, b_idx = multi[p.model][p.candidate], multi[p.model][p.baseline]
        for kn, ci in c_idx.items():
            bi = b_idx.get(kn)
            if bi is None:
                continue
            key = (p.model, p.candidate, p.baseline, *kn)
            if not _comparable(streams[ci], streams[bi]):
                skipped.append(key)
                continue
            cand.append(ci)
            base.append(bi)
            keys.append(key)
    if skipped:
        log.debug("version comparison: %d stream(s) skipped, bins differ: %s", len(skipped), skipped[:5])
    if not keys:
        return VersionComparison([], [], None, skipped)
    ci_arr = np.asarray(cand, dtype=np.int64)
    bi_arr = np.asarray(base, dtype=np.int64)
    n = len(keys)
    offsets = (np.arange(w, dtype=np.int64) * s)[:, None]
    cur = current[(offsets + ci_arr[None, :]).ravel()]
    ref = current[(offsets + bi_arr[None, :]).ravel()].copy()
    pols = [policies[i] for i in cand] * w
    min_samples = np.array([p.min_samples for p in pols], dtype=np.float64)
    ref[ref.sum(axis=1) < min_samples] = 0.0  # a thin baseline gives no verdict, as a thin candidate does
    pair_ids: dict[tuple[str, str, str], int] = {}
    pair_of = [pair_ids.setdefault(k[:3], len(pair_ids)) for k in keys]
    family = (np.arange(w, dtype=np.int64)[:, None] * max(len(pair_ids), 1) + np.asarray(pair_of)[None, :]).ravel()
    numeric = np.tile(np.array([streams[i].spec.numeric for i in cand], dtype=bool), w)
    distinct = {id(p): p for p in pols}
    drift = evaluate_batch(ref, cur, numeric=numeric, positions=np.tile(positions[bi_arr], (w, 1)),
                           spread=np.tile(spread[bi_arr], w), family=family,
                           policy=pols if len(distinct) > 1 else pols[0])
    return VersionComparison(keys * w, [lab for lab in window_labels[:w] for _ in range(n)], drift, skipped)


@dataclass(frozen=True)
class PerformanceGap:
    """One pair x window x primary metric: candidate value - baseline value, and the verdict (1, 0, -1)."""

    pair: VersionPair
    window: str
    metric: str
    gap: float
    degraded: int


def performance_gaps(results: Sequence[Any], explicit: Sequence[VersionPair], automatic: bool,
                     policy: Any, roles: Mapping[tuple[str, str], str] | None = None,
                     lineage: Lineage | None = None) -> list[PerformanceGap]:
    """Candidate vs baseline realized performance from ``results`` (:class:`._performance.WindowResult`);
    pairs by :func:`choose_pairs` on joined outcomes."""
    from otel_ml.stats import degradation_verdicts

    by_key = {(r.model, r.version, r.window): r for r in results}
    rows: dict[str, dict[str, float]] = {}
    for r in results:
        per_model = rows.setdefault(r.model, {})
        per_model[r.version] = max(per_model.get(r.version, 0.0), float(r.n))
    out = []
    for pair in choose_pairs({m: v for m, v in rows.items() if len(v) >= 2}, explicit, automatic, roles, lineage):
        windows = [r.window for r in results if r.model == pair.model and r.version == pair.candidate]
        for window in windows:
            cand, base = by_key[(pair.model, pair.candidate, window)], by_key.get((pair.model, pair.baseline, window))
            if base is None:
                continue
            for vd in degradation_verdicts(cand.metrics, base.metrics, policy):
                degraded = int(vd.degraded)
                if vd.reference.n < policy.min_samples:
                    degraded = NO_VERDICT  # a thin baseline decides nothing, as a thin candidate does not
                out.append(PerformanceGap(pair, window, vd.metric, vd.current.value - vd.reference.value, degraded))
    return out


def add_performance_gaps(sm: pb.ScopeMetrics, gaps: Sequence[PerformanceGap], now_ns: int) -> None:
    """Append ``ml.version.performance.gap`` / ``.degraded`` of ``gaps`` to ``sm``."""
    if not gaps:
        return
    gap_pts = new_metric(sm, semconv.VERSION_PERFORMANCE_GAP).gauge.data_points
    degraded_pts = new_metric(sm, semconv.VERSION_PERFORMANCE_DEGRADED).gauge.data_points
    for g in gaps:
        attrs = [kv(semconv.MODEL_NAME, g.pair.model), kv(semconv.MODEL_VERSION, g.pair.candidate),
                 kv(semconv.MODEL_BASELINE_VERSION, g.pair.baseline), kv(semconv.DRIFT_WINDOW, g.window),
                 kv(semconv.PERFORMANCE_METRIC, g.metric)]
        if np.isfinite(g.gap):
            gap_pts.add(time_unix_nano=now_ns, as_double=float(g.gap)).attributes.extend(attrs)
        degraded_pts.add(time_unix_nano=now_ns, as_int=g.degraded).attributes.extend(attrs)


def add_versions(sm: pb.ScopeMetrics, vc: VersionComparison | None, now_ns: int) -> None:
    """Append ``ml.version.drift.detected`` / ``ml.version.drift.score`` of ``vc`` to ``sm``."""
    if vc is None or vc.drift is None or not vc.rows:
        return
    base = [[kv(semconv.MODEL_NAME, m), kv(semconv.MODEL_VERSION, c), kv(semconv.MODEL_BASELINE_VERSION, b),
             kv(semconv.FEATURE_NAME, n), kv(semconv.DRIFT_KIND, k), kv(semconv.DRIFT_WINDOW, win)]
            for (m, c, b, k, n), win in zip(vc.keys, vc.windows)]
    detected = new_metric(sm, semconv.VERSION_DRIFT_DETECTED).gauge.data_points
    for r, d in enumerate(vc.drift.detected.tolist()):
        if d != NO_VERDICT:
            detected.add(time_unix_nano=now_ns, as_int=int(d)).attributes.extend(base[r])
    score = new_metric(sm, semconv.VERSION_DRIFT_SCORE).gauge.data_points
    for method in DRIFT_METHODS:
        method_kv = kv(semconv.DRIFT_METHOD, method)
        for r, v in enumerate(np.asarray(getattr(vc.drift, method), dtype=np.float64).tolist()):
            if np.isfinite(v):
                dp = score.add(time_unix_nano=now_ns, as_double=v)
                dp.attributes.extend(base[r])
                dp.attributes.append(method_kv)
