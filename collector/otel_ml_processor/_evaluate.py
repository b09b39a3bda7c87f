"""One evaluation: every stream x every window against its reference, in one vectorised call.

The state's window counts (one ``float64[cells]`` vector per window) are gathered into padded
``[S * W, B_max]`` matrices with one fancy-indexing step, and :func:`otel_ml.stats.evaluate_batch` is
called once for all of them. The multiple-testing *family* is ``(model, version, window)``: the streams
of one model version judged on one window. Quality ratios (missing, invalid, out-of-range, unseen) go
through :func:`otel_ml.stats.quality_alarm`, Bonferroni-corrected over the family's quality tests.

The static part of the gather (index matrix, reference matrix, positions, spreads, policies) depends
only on the set of streams and references, so it is cached until either changes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from otel_ml.semconv import QUALITY_KINDS
from otel_ml.stats import DRIFT_METHODS, NO_VERDICT, DriftPolicy, PolicyBook, evaluate_batch, quality_alarm

from ._estimated import EstimatedResult, EstimatedTarget, Holdout, estimate, estimated_target, holdout
from ._registry import Lineage
from ._segment_drift import SegmentEvaluation, SegmentLayout, build_layout as build_segment_layout, judge
from ._segment_streams import SEGMENT_KINDS
from ._state import KIND_FEATURE, KIND_PREDICTION, State, Stream
from ._store import ReferenceShares, ReferenceStore
from ._versions import VersionComparison, VersionPair, compare_versions, version_rows

_Q = len(QUALITY_KINDS)
_MISSING = QUALITY_KINDS.index("missing")
_INVALID = QUALITY_KINDS.index("invalid")


@dataclass
class Evaluation:
    """Results of one evaluation, one row per (stream, window); arrays share the row order."""

    time_ns: int
    keys: list[tuple[str, str, str, str]]  # (model, version, kind, name) per row
    windows: list[str]  # window label per row
    sample_count: np.ndarray
    scores: dict[str, np.ndarray]  # method -> float64[R] (NaN: no data)
    p_value: np.ndarray
    detected: np.ndarray  # int8: 1, 0, -1 (no verdict)
    quality_ratio: np.ndarray  # float64[R, len(QUALITY_KINDS)] (NaN: no rows / not applicable)
    quality_alarm: np.ndarray  # int8[R]: 1, 0, -1 (no verdict / not applicable)
    duration_s: float = 0.0
    #: (model, version, shares) of every reference with live streams here: ml.drift.reference.ratio.
    references: list[tuple[str, str, ReferenceShares]] = field(default_factory=list)
    #: ml.performance.estimated per model version x window (see :mod:`._estimated`).
    estimated: list[EstimatedResult] = field(default_factory=list)
    #: ml.performance.reference: the holdout performance of every live model version that has one, sent
    #: with each of ``holdout_windows`` (see :mod:`._estimated`).
    holdout: list[Holdout] = field(default_factory=list)
    holdout_windows: tuple[str, ...] = ()
    #: candidate model versions judged against their baseline version (see :mod:`._versions`).
    versions: VersionComparison | None = None
    #: drift, quality and mix per segment value (see :mod:`._segment_drift`).
    segments: SegmentEvaluation | None = None

    @property
    def rows(self) -> int:
        return len(self.keys)


@dataclass
class _Layout:
    streams: list[Stream]
    index: np.ndarray  # int64[S, Bmax] cell index, or the sentinel (a zero cell)
    q_index: np.ndarray  # int64[S, len(QUALITY_KINDS)]
    reference: np.ndarray  # float64[S, Bmax]
    positions: np.ndarray  # float64[S, Bmax]
    spread: np.ndarray
    numeric: np.ndarray
    bins: np.ndarray
    ref_ratios: np.ndarray  # float64[S, len(QUALITY_KINDS)]
    family_key: list[tuple[str, str]]
    policies: list[DriftPolicy]
    is_feature: np.ndarray
    references: list[tuple[str, str, ReferenceShares]]
    #: (model, version) -> ml.model.role, as the state had it when the layout was built.
    roles: dict[tuple[str, str], str] = field(default_factory=dict)
    #: (stream index, target, min_samples) of each stream that feeds an estimated performance.
    estimated: list[tuple[int, EstimatedTarget, int]] = field(default_factory=list)
    segments: SegmentLayout | None = None


class Evaluator:
    def __init__(self, store: ReferenceStore, book: PolicyBook, window_labels: tuple[str, ...], *,
                 versions: tuple[VersionPair, ...] = (), automatic_versions: bool = True) -> None:
        self.store = store
        self.versions = versions
        self.automatic_versions = automatic_versions
        self.book = book
        self.window_labels = window_labels
        self._layout: _Layout | None = None
        self._layout_key: tuple[int, int, int] | None = None

    def _build_layout(self, state: State) -> _Layout:
        streams: list[Stream] = []
        segment_streams: list[Stream] = []
        for st in state.streams:
            if not st.alive:
                continue
            c = self.store.get(st.key[0], st.key[1])
            if c is None or c.fingerprint != st.fingerprint:
                continue
            (segment_streams if st.key[2] in SEGMENT_KINDS else streams).append(st)
        segments = build_segment_layout(segment_streams, self.store, self.book, state.cells_used) \
            if segment_streams else None
        s = len(streams)
        bins = np.fromiter((st.spec.bins for st in streams), dtype=np.int64, count=s)
        cell0 = np.fromiter((st.cell0 for st in streams), dtype=np.int64, count=s)
        bmax = int(bins.max()) if s else 1
        cols = np.arange(bmax)
        inside = cols[None, :] < bins[:, None]
        index = np.where(inside, cell0[:, None] + cols[None, :], state.cells_used)  # sentinel: a zero cell
        q_index = (cell0 + bins)[:, None] + np.arange(_Q)[None, :]
        specs = []
        policies: list[DriftPolicy] = []
        fam: list[tuple[str, str]] = []
        pcache: dict[tuple[str, str], DriftPolicy] = {}
        get = self.store.get
        for st in streams:
            model, version, kind, name = st.key
            specs.append(get(model, version).eval_spec(kind, name))  # type: ignore[union-attr]
            p = pcache.get((model, name))
            if p is None:
                p = pcache[(model, name)] = self.book.policy_for(name, model=model)
            policies.append(p)
            fam.append((model, version))
        reference = np.zeros((s, bmax))
        positions = np.full((s, bmax), np.nan)
        if s:
            reference[inside] = np.concatenate([es.counts for es in specs])
            positions[inside] = np.concatenate([es.positions if es.positions is not None else
                                                np.full(len(es.counts), np.nan) for es in specs])
        spread = np.fromiter((es.spread for es in specs), dtype=np.float64, count=s)
        numeric = np.fromiter((st.spec.numeric for st in streams), dtype=bool, count=s)
        ratios = np.array([es.quality_ratios for es in specs]).reshape(s, _Q)
        is_feature = np.array([st.key[2] == KIND_FEATURE for st in streams], dtype=bool)
        # The reference shares of the model versions evaluated here (bounded by the live streams).
        refs = [(m, v, get(m, v).shares) for m, v in dict.fromkeys(fam)]  # type: ignore[union-attr]
        targets = {(m, v): estimated_target(get(m, v).reference) for m, v in dict.fromkeys(fam)}  # type: ignore[union-attr]
        est = []
        for i, st in enumerate(streams):
            target = targets[st.key[:2]]
            if (target is not None and st.key[2] == KIND_PREDICTION and st.key[3] == target.output
                    and st.spec.bins == len(target.edges) + 1):
                est.append((i, target, policies[i].min_samples))
        return _Layout(streams, index, q_index, reference, positions, spread, numeric, bins, ratios, fam, policies,
                       is_feature, refs, dict(getattr(state, "roles", {})), est, segments)

    def layout(self, state: State) -> _Layout:
        key = (id(state), state.layout_version, self.store.generation)
        if self._layout is None or self._layout_key != key:
            self._layout = self._build_layout(state)
            self._layout_key = key
        return self._layout

    def evaluate(self, state: State, now: float | None = None, *,
                 also_live: Iterable[tuple[str, str]] = ()) -> Evaluation:
        """Snapshot ``state``'s windows and judge every stream on every window."""
        t0 = time.perf_counter()
        now = state.clock() if now is None else now
        lay, counts, lineage = self.prepare(state, now)
        return self.evaluate_counts(lay, counts, now, t0, lineage=lineage, also_live=also_live)

    def prepare(self, state: State, now: float) -> tuple[_Layout, list[np.ndarray], Lineage]:
        """On the state's thread: the layout, the window counts, and the version lineage for
        :meth:`evaluate_counts` (the state's version registry first notes this evaluation's traffic)."""
        counts = state.window_counts(now)
        lay = self.layout(state)
        registry = getattr(state, "version_registry", None)
        if registry is None or not counts:
            return lay, counts, {}
        longest = int(np.argmax(state.windows.sizes))
        registry.observe(version_rows(lay.streams, counts[longest]), int(now * 1e9))
        return lay, counts, registry.lineage()

    def _holdout(self, lay: _Layout, also_live: Iterable[tuple[str, str]]) -> list[Holdout]:
        """The holdout performance of each model version with live streams or in ``also_live`` (those with
        recent prediction or outcome records: a model may send records only), once each."""
        out = []
        for model, version in dict.fromkeys([*((m, v) for m, v, _ in lay.references), *also_live]):
            c = self.store.get(model, version)
            h = None if c is None else holdout(model, version, c.reference)
            if h is not None:
                out.append(h)
        return out

    def evaluate_counts(
        self, lay: _Layout, counts: list[np.ndarray], now: float, t0: float | None = None, *,
        lineage: Lineage | None = None, also_live: Iterable[tuple[str, str]] = (),
    ) -> Evaluation:
        """Judge the window ``counts`` (of :meth:`prepare`); safe in a worker thread. ``also_live``: model
        versions without live streams whose holdout performance is exported all the same (see
        :meth:`_holdout`)."""
        t0 = time.perf_counter() if t0 is None else t0
        holdouts = self._holdout(lay, also_live)
        s = len(lay.streams)
        w = len(counts)
        cur_parts = []
        q_parts = []
        for c in counts:
            padded = np.append(c, 0.0)
            cur_parts.append(padded[lay.index])
            q_parts.append(padded[lay.q_index])
        current = np.concatenate(cur_parts) if cur_parts else np.zeros((0, 1))
        quality = np.concatenate(q_parts) if q_parts else np.zeros((0, _Q))
        reference = np.tile(lay.reference, (w, 1))
        positions = np.tile(lay.positions, (w, 1))
        spread = np.tile(lay.spread, w)
        numeric = np.tile(lay.numeric, w)
        fam_ids: dict[tuple[str, str, int], int] = {}
        family = np.fromiter(
            (fam_ids.setdefault((m, v, k), len(fam_ids)) for k in range(w) for (m, v) in lay.family_key),
            dtype=np.int64, count=s * w,
        )
        policies = lay.policies * w
        segments = judge(lay.segments, counts, self.window_labels) if lay.segments is not None else None
        if s == 0:
            return Evaluation(int(now * 1e9), [], [], np.zeros(0), {m: np.zeros(0) for m in DRIFT_METHODS}, np.zeros(0),
                              np.zeros(0, np.int8), np.zeros((0, _Q)), np.zeros(0, np.int8),
                              time.perf_counter() - t0, holdout=holdouts, holdout_windows=self.window_labels,
                              segments=segments)
        distinct = {id(p): p for p in policies}
        policy_arg: Any = policies if len(distinct) > 1 else policies[0]
        drift = evaluate_batch(reference, current, numeric=numeric, positions=positions, spread=spread,
                               family=family, policy=policy_arg)
        # Quality: rows = bucket total + missing (+ invalid for numeric features).
        bucket_total = current.sum(axis=1)
        rows = bucket_total + quality[:, _MISSING] + np.where(numeric, quality[:, _INVALID], 0.0)
        ref_ratios = np.tile(lay.ref_ratios, (w, 1))
        is_feature = np.tile(lay.is_feature, w)
        q_ratio = np.full((s * w, _Q), np.nan)
        q_alarm = np.full(s * w, NO_VERDICT, dtype=np.int8)
        feat = np.nonzero(is_feature)[0]
        if len(feat):
            # Bonferroni over the family's quality tests (one per quality kind and feature stream).
            fam_f = family[feat]
            n_tests = np.bincount(fam_f, minlength=len(fam_ids))[fam_f] * _Q
            groups: dict[int, list[int]] = {}
            for j, i in enumerate(feat.tolist()):
                groups.setdefault(id(policies[i]), []).append(j)
            any_alarm = np.zeros(len(feat), dtype=np.int8) - 1
            for members in groups.values():
                sel = np.asarray(members, dtype=np.int64)
                pol = policies[int(feat[sel[0]])]
                for j in range(_Q):
                    r, a = quality_alarm(ref_ratios[feat[sel], j], quality[feat[sel], j], rows[feat[sel]],
                                         policy=pol, n_tests=n_tests[sel])
                    q_ratio[feat[sel], j] = r
                    any_alarm[sel] = np.maximum(any_alarm[sel], np.asarray(a, dtype=np.int8))
            q_alarm[feat] = any_alarm
        keys = [st.key for st in lay.streams] * w
        windows = [lab for lab in self.window_labels[:w] for _ in range(s)]
        scores = {m: np.asarray(getattr(drift, m), dtype=np.float64) for m in DRIFT_METHODS}
        estimated = []
        for k in range(w):
            for i, target, min_samples in lay.estimated:
                metrics = estimate(target, current[k * s + i, : lay.bins[i]], min_samples)
                if metrics is not None:
                    model, version = lay.streams[i].key[:2]
                    estimated.append(EstimatedResult(model, version, self.window_labels[k], metrics))
        versions = compare_versions(lay.streams, current, positions=lay.positions, spread=lay.spread,
                                    policies=lay.policies, window_labels=self.window_labels,
                                    explicit=self.versions, automatic=self.automatic_versions, roles=lay.roles,
                                    lineage=lineage)
        return Evaluation(
            time_ns=int(now * 1e9),
            keys=keys,
            windows=windows,
            sample_count=np.asarray(drift.sample_count, dtype=np.float64),
            scores=scores,
            p_value=np.asarray(drift.p_value, dtype=np.float64),
            detected=np.asarray(drift.detected, dtype=np.int8),
            quality_ratio=q_ratio,
            quality_alarm=q_alarm,
            duration_s=time.perf_counter() - t0,
            references=lay.references,
            estimated=estimated,
            holdout=holdouts,
            holdout_windows=self.window_labels,
            versions=versions,
            segments=segments,
        )
