"""Stream state: cumulative points -> increments -> sliding windows, merged across every instance.

Vocabulary
----------
*stream*  what is judged: ``(model, version, kind, name)``, e.g. ``("churn", "3", "feature", "age")``.
          It owns ``B + 4`` *cells*: the reference's ``B`` buckets, then the quality counters
          ``missing, invalid, out_of_range, unseen`` (``QUALITY_COLUMNS``).
*series*  what is received: one source time series, ``(metric, resource, attributes)``. A pod's
          ``ml.feature.value`` histogram for ``age`` is a series writing the ``B`` bucket cells of the
          ``age`` stream; its ``ml.feature.missing`` counter is a series writing one cell. Every pod's
          series write into the same stream, which is how the fleet's traffic is merged.

Increments
----------
Per series the last cumulative point is kept (start time, time, total, and its cell values). A new
point with the same start and a later time contributes ``values - last``. A changed start time, a
lower total or any lower bucket is a *reset* (a restarted process or a counter reset): the point
contributes its full values, since they count from the new start. A point that is not newer
(duplicate, out-of-order, or from an older incarnation) is ignored. The first point of a new series
contributes its full values if its start time is after the processor's *epoch* (its first start,
kept across restarts by the checkpoint), else it only sets the baseline -- the same rule as the
Collector's cumulativetodelta ``auto`` mode. Delta points contribute their values; a delta point not
newer than the last one of its series is a duplicate.

Windows
-------
Each window (default 5 m and 1 h) is a ring of ``slots_per_window`` time slots over all cells
(``float64[slots, cells]``), so per stream at 20 buckets and two windows of 10 slots the state is
``2 * 10 * 24 * 8`` bytes plus small overhead (see :meth:`State.bytes_per_stream`). Increments are
collected in a ``pending`` vector and added to the current slot of every window when the slot ends or
an evaluation starts; the slot an increment belongs to is the processor's receive time (robust to
clock skew between pods). A window's counts are the sum of its slots: the last ``window - slot`` to
``window`` seconds of traffic.

Everything per request is vectorised over points and cells; the only per-point Python work is the
series lookup (a dict keyed by the raw attribute encodings) and the bounds comparison.
"""

from __future__ import annotations

import time as _time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from otel_ml import semconv

from ._decode import FLAG_NO_RECORDED_VALUE, TEMPORALITY_DELTA, Decoded

QUALITY_COLUMNS = ("missing", "invalid", "out_of_range", "unseen")
_QUALITY_METRIC_COLUMN = {
    semconv.FEATURE_MISSING: 0,
    semconv.FEATURE_INVALID: 1,
    semconv.FEATURE_OUT_OF_RANGE: 2,
    semconv.FEATURE_UNSEEN: 3,
}
KIND_FEATURE = semconv.DRIFT_KIND_FEATURE
KIND_PREDICTION = semconv.DRIFT_KIND_PREDICTION

# Rejection reasons (the ``reason`` attribute of otel_ml.processor.points.rejected).
R_BOUNDS = "bounds_mismatch"
R_UNKNOWN_REFERENCE = "unknown_reference"
R_UNKNOWN_NAME = "unknown_feature"
R_ATTRIBUTES = "missing_attributes"
R_CARDINALITY = "cardinality_limit"
R_MALFORMED = "malformed_point"
_REASONS = (R_BOUNDS, R_UNKNOWN_REFERENCE, R_UNKNOWN_NAME, R_ATTRIBUTES, R_CARDINALITY, R_MALFORMED)
_CODE = {r: -(i + 1) for i, r in enumerate(_REASONS)}
_REASON_OF = {v: k for k, v in _CODE.items()}
_MESSAGES = {
    R_BOUNDS: "histogram explicit_bounds differ from the reference's edges for the feature",
    R_UNKNOWN_REFERENCE: "no reference profile for the model name and version",
    R_UNKNOWN_NAME: "the reference has no such feature or output (or of another kind)",
    R_ATTRIBUTES: "data point lacks ml.model.name, ml.model.version or the feature/prediction name",
    R_CARDINALITY: "the model's stream or series limit is reached",
    R_MALFORMED: "inconsistent data point (bucket count, sum of buckets, or timestamps)",
}

_NEGATIVE_CACHE_MAX = 100_000


@dataclass(frozen=True)
class StreamSpec:
    """What the state needs to know about one feature/output of a reference (built by the store)."""

    kind: str  # KIND_FEATURE | KIND_PREDICTION
    name: str
    numeric: bool
    bins: int
    edges_bytes: bytes = b""  # packed little-endian float64 edges (numeric)
    category_index: dict[str, int] = field(default_factory=dict)  # categorical: label -> bucket

    @property
    def width(self) -> int:
        return self.bins + len(QUALITY_COLUMNS)


class SpecSource:
    """What the state asks the reference store (duck-typed: :class:`~._store.ReferenceStore`)."""

    generation: int

    def spec(self, model: str, version: str, kind: str, name: str) -> StreamSpec | None | bool:
        """The spec; ``False`` when the model version has no reference, ``None`` when it lacks the name."""
        raise NotImplementedError

    def fingerprint(self, model: str, version: str) -> str | None:
        raise NotImplementedError


@dataclass(slots=True)
class Stream:
    key: tuple[str, str, str, str]  # model, version, kind, name
    spec: StreamSpec
    cell0: int
    alive: bool = True
    series: int = 0  # live series writing into it
    fingerprint: str = ""


@dataclass
class IngestResult:
    received: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    ignored: int = 0  # duplicates / out-of-order / no-recorded-value: valid but not counted

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def message(self) -> str:
        return "; ".join(f"{n} points rejected: {_MESSAGES.get(r, r)} ({r})" for r, n in sorted(self.rejected.items()))


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(s, s + l)`` for each pair, vectorised."""
    if len(lengths) == 0:
        return np.empty(0, dtype=np.int64)
    ends = np.cumsum(lengths)
    return np.repeat(starts - ends + lengths, lengths) + np.arange(int(ends[-1]), dtype=np.int64)


def _parse_attributes(attrs: Iterable[bytes]) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw in attrs:
        kv = KeyValue.FromString(raw)
        v = kv.value
        which = v.WhichOneof("value")
        if which == "string_value":
            out[kv.key] = v.string_value
        elif which == "int_value":
            out[kv.key] = str(v.int_value)
        elif which == "bool_value":
            out[kv.key] = "true" if v.bool_value else "false"
        elif which == "double_value":
            d = v.double_value
            out[kv.key] = str(int(d)) if d.is_integer() else repr(d)
    return out


def _capacity(cap: int, n: int) -> int:
    """``cap`` doubled until it holds ``n``: the size every growable array here grows to."""
    while cap < n:
        cap *= 2
    return cap


class _Grow:
    """Capacity-doubling 1-D numpy columns sharing one length."""

    def __init__(self, spec: dict[str, Any], capacity: int = 64) -> None:
        self.cap = capacity
        self.cols = {name: np.zeros(capacity, dtype=dt) for name, dt in spec.items()}
        self.__dict__.update(self.cols)

    def ensure(self, n: int) -> None:
        if n <= self.cap:
            return
        cap = _capacity(self.cap, n)
        for name, arr in list(self.cols.items()):
            new = np.zeros(cap, dtype=arr.dtype)
            new[: self.cap] = arr
            self.cols[name] = new
        self.cap = cap
        self.__dict__.update(self.cols)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.cols.values())


class State:
    """All streams, series and windows. Not thread-safe: the service touches it from its event loop."""

    def __init__(
        self,
        specs: SpecSource,
        *,
        windows: Sequence[float] = (300.0, 3600.0),
        slots_per_window: int = 10,
        series_ttl: float = 7200.0,
        max_streams_per_model: int = 5000,
        max_series_per_model: int = 100_000,
        clock: Callable[[], float] = _time.time,
        epoch_ns: int | None = None,
    ) -> None:
        self.specs = specs
        self.windows = tuple(float(w) for w in windows)
        self.slots = int(slots_per_window)
        self.slot_seconds = tuple(w / self.slots for w in self.windows)
        self.series_ttl = float(series_ttl)
        self.max_streams_per_model = max_streams_per_model
        self.max_series_per_model = max_series_per_model
        self.clock = clock
        now = clock()
        self.epoch_ns = int(now * 1e9) if epoch_ns is None else int(epoch_ns)
        # Streams and their cells.
        self.streams: list[Stream] = []
        self.stream_index: dict[tuple[str, str, str, str], int] = {}
        self.cells_used = 0
        self._cell_cap = 256
        self.rings = [np.zeros((self.slots, self._cell_cap)) for _ in self.windows]
        self.pending = np.zeros(self._cell_cap)
        self.current_slot = [int(now // s) for s in self.slot_seconds]
        # Series.
        self.series = _Grow({"stream": np.int64, "dst": np.int64, "src": np.int64, "width": np.int64,
                             "start": np.int64, "time": np.int64, "total": np.float64, "seen": np.float64,
                             "epoch": np.int64, "alive": np.bool_})
        self.series_keys: list[tuple[str, bytes, tuple[bytes, ...]]] = []
        self.series_bounds: list[bytes | None] = []
        self.series_model: list[str] = []
        self.n_series = 0
        self._lookup: dict[tuple[str, bytes], dict[tuple[bytes, ...], int]] = {}
        self._negative: dict[tuple[str, bytes, tuple[bytes, ...]], int] = {}
        self.src_used = 0
        self.last = np.zeros(1024)
        # Per model name: [streams, series].
        self.model_counts: dict[str, list[int]] = {}
        self._specs_generation = getattr(specs, "generation", 0)
        # After a reference changed layout: first points of a series count only if they start later.
        self._rebaseline: dict[tuple[str, str], int] = {}
        # Series ids per structure-cache template, valid while the token is unchanged.
        self._template_sids: dict[int, tuple[int, np.ndarray]] = {}
        self._sids_token = 0
        self.layout_version = 0  # bumped whenever streams are added, removed or moved
        # Counters (self-telemetry).
        self.resets = 0
        self.duplicates = 0
        self.evicted_series = 0
        self.evicted_streams = 0

    # --- public: ingest -------------------------------------------------------------------------
    def ingest(self, decoded: Decoded, now: float | None = None) -> IngestResult:
        """Apply one decoded request. Never raises on data: bad points are rejected and counted."""
        now = self.clock() if now is None else now
        self._sync_specs()
        self.advance(now)
        res = IngestResult()
        if decoded.histograms:
            self._ingest_kind(decoded.histograms, True, now, res)
        if decoded.sums:
            self._ingest_kind(decoded.sums, False, now, res)
        return res

    def _resolve(self, g: Any, histogram: bool, out: list[int]) -> None:
        """Series id per point of group ``g`` (negative: a rejection code), appended to ``out``."""
        table = self._lookup.get((g.metric, g.resource))
        if table is None:
            table = {}  # registered by _create_series once a series of this resource is accepted
        get = table.get
        append = out.append
        if histogram:
            bounds = self.series_bounds
            for attrs, b in zip(g.attrs, g.bounds):
                sid = get(attrs)
                if sid is None:
                    sid = self._new_series(g.metric, g.resource, attrs, table)
                if sid >= 0 and b != bounds[sid]:
                    sid = _CODE[R_BOUNDS]
                append(sid)
        else:
            for attrs in g.attrs:
                sid = get(attrs)
                if sid is None:
                    sid = self._new_series(g.metric, g.resource, attrs, table)
                append(sid)

    def _group_sids(self, g: Any, histogram: bool) -> np.ndarray:
        tmpl = g.template * 2 + (0 if histogram else 1) if g.template >= 0 else -1
        if tmpl >= 0:
            cached = self._template_sids.get(tmpl)
            if cached is not None and cached[0] == self._sids_token:
                return cached[1]
        out: list[int] = []
        self._resolve(g, histogram, out)
        sids = np.fromiter(out, dtype=np.int64, count=len(out))
        if tmpl >= 0:
            if len(self._template_sids) >= _NEGATIVE_CACHE_MAX:
                self._template_sids.clear()
            self._template_sids[tmpl] = (self._sids_token, sids)
        return sids

    def _ingest_kind(self, groups: list[Any], histogram: bool, now: float, res: IngestResult) -> None:
        """All histogram (or all sum) points of a request, resolved per group, then vectorised at once."""
        sid_p, start_p, time_p, tot_p, flag_p, delta_p, val_p, w_p = [], [], [], [], [], [], [], []
        for g in groups:
            n = len(g.start)
            sid_p.append(self._group_sids(g, histogram))
            flag_p.append(np.fromiter(g.flags, dtype=np.int64, count=n))
            delta_p.append(np.full(n, g.temporality == TEMPORALITY_DELTA))
            if histogram and g.values is not None:  # decoded by the structure cache
                start_p.append(g.start)
                time_p.append(g.time)
                tot_p.append(g.count.astype(np.float64))
                val_p.append(g.values)
                w_p.append(g.widths)
                continue
            if not histogram and g.template >= 0:  # a sum decoded by the structure cache
                start_p.append(g.start)
                time_p.append(g.time)
                tot_p.append(g.value)
                continue
            start_p.append(np.fromiter(g.start, dtype=np.uint64, count=n).astype(np.int64))
            time_p.append(np.fromiter(g.time, dtype=np.uint64, count=n).astype(np.int64))
            if histogram:
                tot_p.append(np.fromiter(g.count, dtype=np.uint64, count=n).astype(np.float64))
                blobs = [b if len(b) % 8 == 0 else b"" for b in g.buckets]
                w_p.append(np.fromiter(map(len, blobs), dtype=np.int64, count=n) // 8)
                val_p.append(np.frombuffer(b"".join(blobs), dtype="<u8").astype(np.float64))
            else:
                tot_p.append(np.fromiter(g.value, dtype=np.float64, count=n))
        sid_arr = np.concatenate(sid_p)
        n = len(sid_arr)
        res.received += n
        delta = np.concatenate(delta_p)
        flags = np.concatenate(flag_p)
        start_a = np.concatenate(start_p)
        tim_a = np.concatenate(time_p)
        total = np.concatenate(tot_p)
        ok = sid_arr >= 0
        if not ok.all():
            for code, cnt in zip(*np.unique(sid_arr[~ok], return_counts=True)):
                res.rejected[_REASON_OF[int(code)]] += int(cnt)
        safe = np.where(ok, sid_arr, 0)
        width = self.series.width[safe]
        if histogram:
            got_w = np.concatenate(w_p)
            all_values = np.concatenate(val_p)
        else:
            got_w = np.ones(n, dtype=np.int64)
            all_values = total
        # Structural checks: right number of buckets, a timestamp, a finite non-negative total.
        good = ok & (got_w == width) & (tim_a > 0) & np.isfinite(total) & (total >= 0)
        bad = ok & ~good
        if bad.any():
            res.rejected[R_MALFORMED] += int(bad.sum())
        no_value = good & ((flags & FLAG_NO_RECORDED_VALUE) != 0)
        res.ignored += int(no_value.sum())
        use = good & ~no_value
        if not use.any():
            return
        idx = np.nonzero(use)[0]
        values = all_values if len(idx) == n else all_values[np.repeat(use, got_w)]
        w = width[idx]
        if histogram:
            sums = np.add.reduceat(values, np.cumsum(w) - w) if len(values) else np.zeros(0)
            consistent = sums == total[idx]
            if not consistent.all():
                res.rejected[R_MALFORMED] += int((~consistent).sum())
                values = values[np.repeat(consistent, w)]
                idx = idx[consistent]
                w = w[consistent]
        if len(idx) == 0:
            return
        res.accepted += len(idx)
        self._apply(sid_arr[idx], start_a[idx], tim_a[idx], total[idx], values, w, delta[idx], now, res)

    def _apply(self, sids: np.ndarray, start: np.ndarray, tim: np.ndarray, total: np.ndarray,
               values: np.ndarray, w: np.ndarray, delta: np.ndarray, now: float, res: IngestResult) -> None:
        # The same series twice in one request (a batch of several exports): apply in time order.
        ordered = np.sort(sids)
        if len(ordered) > 1 and (ordered[1:] == ordered[:-1]).any():
            order = np.lexsort((tim, sids))
            rank = np.empty(len(sids), dtype=np.int64)
            s_sorted = sids[order]
            first = np.r_[True, s_sorted[1:] != s_sorted[:-1]]
            grp_start = np.maximum.accumulate(np.where(first, np.arange(len(sids)), 0))
            rank[order] = np.arange(len(sids)) - grp_start
            offs = np.cumsum(w) - w
            for r in range(int(rank.max()) + 1):
                sel = np.nonzero(rank == r)[0]
                cells = _ranges(offs[sel], w[sel])
                self._apply_unique(sids[sel], start[sel], tim[sel], total[sel], values[cells], w[sel],
                                   delta[sel], now, res)
            return
        self._apply_unique(sids, start, tim, total, values, w, delta, now, res)

    def _apply_unique(self, sids: np.ndarray, start: np.ndarray, tim: np.ndarray, total: np.ndarray,
                      values: np.ndarray, w: np.ndarray, delta: np.ndarray, now: float,
                      res: IngestResult) -> None:
        s = self.series
        src = _ranges(s.src[sids], w)
        dst = _ranges(s.dst[sids], w)
        last_time = s.time[sids]
        last_start = s.start[sids]
        diff = values - self.last[src]
        if not delta.any() and (start == last_start).all() and (tim > last_time).all() and \
                (last_time > 0).all() and (total >= s.total[sids]).all() and not (diff < 0).any():
            # Steady state (every point a later cumulative point of a known series): plain increments.
            self.last[src] = values
            s.time[sids] = tim
            s.total[sids] = total
            s.seen[sids] = now
            np.add.at(self.pending, dst, diff)
            return
        known = last_time > 0
        # Cumulative: stale (duplicate, out of order, older incarnation), reset, or a plain increment.
        stale = known & ((start < last_start) | ((start == last_start) & (tim <= last_time)))
        # Delta: a point not newer than the series' last one is a duplicate.
        stale = np.where(delta, tim <= last_time, stale)
        offs = np.cumsum(w) - w
        neg = np.logical_or.reduceat(diff < 0, offs) if len(diff) else np.zeros(0, bool)
        live = known & ~stale & ~delta
        reset = live & ((start != last_start) | (total < s.total[sids]) | neg)
        full = ~stale & (delta | reset | (~known & (start >= s.epoch[sids]) & (start > 0)))
        use_diff = live & ~reset
        inc = np.where(np.repeat(full, w), values, np.where(np.repeat(use_diff, w), diff, 0.0))
        upd = ~stale
        self.resets += int(reset.sum())
        n_dup = int(stale.sum())
        self.duplicates += n_dup
        res.ignored += n_dup
        if not upd.all():
            cells = np.repeat(upd, w)
            self.last[src[cells]] = values[cells]
            u = sids[upd]
            s.start[u] = start[upd]
            s.time[u] = tim[upd]
            s.total[u] = total[upd]
        else:
            self.last[src] = values
            s.start[sids] = start
            s.time[sids] = tim
            s.total[sids] = total
        s.seen[sids] = now
        nz = inc != 0
        if nz.any():
            np.add.at(self.pending, dst[nz], inc[nz])

    # --- series and streams ---------------------------------------------------------------------
    def _new_series(self, metric: str, resource: bytes, attrs: tuple[bytes, ...],
                    table: dict[tuple[bytes, ...], int]) -> int:
        nkey = (metric, resource, attrs)
        code = self._negative.get(nkey)
        if code is not None:
            return code
        code = self._create_series(metric, resource, attrs, table)
        if code < 0:
            if len(self._negative) >= _NEGATIVE_CACHE_MAX:
                self._negative.clear()
            self._negative[nkey] = code
        return code

    def _create_series(self, metric: str, resource: bytes, attrs: tuple[bytes, ...],
                       table: dict[tuple[bytes, ...], int]) -> int:
        try:
            a = _parse_attributes(attrs)
        except Exception:
            return _CODE[R_MALFORMED]
        model = a.get(semconv.MODEL_NAME)
        version = a.get(semconv.MODEL_VERSION)
        if metric in (semconv.PREDICTION_VALUE, semconv.PREDICTION_CLASS_COUNT):
            kind, name = KIND_PREDICTION, a.get(semconv.PREDICTION_NAME)
        else:
            kind, name = KIND_FEATURE, a.get(semconv.FEATURE_NAME)
        if not model or not version or not name:
            return _CODE[R_ATTRIBUTES]
        spec = self.specs.spec(model, version, kind, name)
        if spec is False:
            return _CODE[R_UNKNOWN_REFERENCE]
        if spec is None or not isinstance(spec, StreamSpec):
            return _CODE[R_UNKNOWN_NAME]
        bounds: bytes | None = None
        if metric in (semconv.FEATURE_VALUE, semconv.PREDICTION_VALUE):
            if not spec.numeric:
                return _CODE[R_UNKNOWN_NAME]
            offset, width, bounds = 0, spec.bins, spec.edges_bytes
        elif metric in (semconv.FEATURE_CATEGORY_COUNT, semconv.PREDICTION_CLASS_COUNT):
            if spec.numeric:
                return _CODE[R_UNKNOWN_NAME]
            label = a.get(semconv.FEATURE_CATEGORY if kind == KIND_FEATURE else semconv.PREDICTION_CLASS)
            if label is None:
                return _CODE[R_ATTRIBUTES]
            offset = spec.category_index.get(label, spec.bins - 1)  # unknown label: the "other" bucket
            width = 1
        else:
            offset, width = spec.bins + _QUALITY_METRIC_COLUMN[metric], 1
        counts = self.model_counts.setdefault(model, [0, 0])
        if counts[1] >= self.max_series_per_model:
            return _CODE[R_CARDINALITY]
        key = (model, version, kind, name)
        st = self.stream_index.get(key)
        if st is None:
            if counts[0] >= self.max_streams_per_model:
                return _CODE[R_CARDINALITY]
            st = self._new_stream(key, spec)
        stream = self.streams[st]
        sid = self.n_series
        self.series.ensure(sid + 1)
        s = self.series
        s.stream[sid] = st
        s.dst[sid] = stream.cell0 + offset
        s.src[sid] = self._alloc_src(width)
        s.width[sid] = width
        s.start[sid] = s.time[sid] = 0
        s.total[sid] = 0.0
        s.seen[sid] = self.clock()
        s.epoch[sid] = max(self.epoch_ns, self._rebaseline.get((model, version), 0))
        s.alive[sid] = True
        self.series_keys.append((metric, resource, attrs))
        self.series_bounds.append(bounds)
        self.series_model.append(model)
        self.n_series += 1
        stream.series += 1
        counts[1] += 1
        table[attrs] = sid
        if not self._lookup.get((metric, resource)):
            self._lookup[(metric, resource)] = table
        return sid

    def _alloc_src(self, width: int) -> int:
        off = self.src_used
        need = off + width
        if need > len(self.last):
            new = np.zeros(_capacity(len(self.last), need))
            new[: len(self.last)] = self.last
            self.last = new
        self.src_used = need
        return off

    def _new_stream(self, key: tuple[str, str, str, str], spec: StreamSpec) -> int:
        width = spec.width
        cell0 = self.cells_used
        self._ensure_cells(cell0 + width)
        self.cells_used = cell0 + width
        st = len(self.streams)
        fp = self.specs.fingerprint(key[0], key[1]) or ""
        self.streams.append(Stream(key, spec, cell0, fingerprint=fp))
        self.stream_index[key] = st
        self.layout_version += 1
        self.model_counts.setdefault(key[0], [0, 0])[0] += 1
        return st

    def _ensure_cells(self, n: int) -> None:
        if n <= self._cell_cap:
            return
        cap = _capacity(self._cell_cap, n)
        for i, ring in enumerate(self.rings):
            new = np.zeros((self.slots, cap))
            new[:, : self._cell_cap] = ring
            self.rings[i] = new
        pend = np.zeros(cap)
        pend[: self._cell_cap] = self.pending
        self.pending = pend
        self._cell_cap = cap

    def _sync_specs(self) -> None:
        """After the reference store changed: forget negative results, drop streams whose layout changed."""
        gen = getattr(self.specs, "generation", 0)
        if gen == self._specs_generation:
            return
        self._specs_generation = gen
        self._negative.clear()
        self._sids_token += 1
        changed = False
        for i, st in enumerate(self.streams):
            if st.alive and (self.specs.fingerprint(st.key[0], st.key[1]) or "") != st.fingerprint:
                self._retire_stream(i)
                self._rebaseline[(st.key[0], st.key[1])] = int(self.clock() * 1e9)
                changed = True
        if changed:
            self._drop_dead_streams_series()
            self.compact()

    # --- time -----------------------------------------------------------------------------------
    def advance(self, now: float | None = None) -> None:
        """Move every window's current slot to ``now``: flush pending increments, clear reused slots."""
        now = self.clock() if now is None else now
        flushed = False
        for k, slot_s in enumerate(self.slot_seconds):
            cur = int(now // slot_s)
            old = self.current_slot[k]
            if cur <= old:
                continue
            if not flushed:
                self._flush()
                flushed = True
            ring = self.rings[k]
            if cur - old >= self.slots:
                ring[:, : self.cells_used] = 0.0
            else:
                for a in range(old + 1, cur + 1):
                    ring[a % self.slots, : self.cells_used] = 0.0
            self.current_slot[k] = cur

    def _flush(self) -> None:
        n = self.cells_used
        pend = self.pending[:n]
        if not pend.any():
            return
        for k, ring in enumerate(self.rings):
            ring[self.current_slot[k] % self.slots, :n] += pend
        pend[:] = 0.0

    def window_counts(self, now: float | None = None) -> list[np.ndarray]:
        """Per window, the counts of every cell over the window (``float64[cells_used]``)."""
        self.advance(now)
        self._flush()
        n = self.cells_used
        return [ring[:, :n].sum(axis=0) for ring in self.rings]

    # --- eviction and compaction ---------------------------------------------------------------
    def evict(self, now: float | None = None) -> int:
        """Forget series not seen for ``series_ttl`` and streams with no series and empty windows."""
        now = self.clock() if now is None else now
        s = self.series
        n = self.n_series
        stale = s.alive[:n] & (s.seen[:n] < now - self.series_ttl)
        count = int(stale.sum())
        if count:
            for sid in np.nonzero(stale)[0].tolist():
                self._kill_series(sid)
            self.evicted_series += count
            self._negative.clear()  # cardinality rejections may no longer apply
            self._sids_token += 1
        sums = self.window_counts(now) if self.streams else []
        dead_streams = 0
        for i, st in enumerate(self.streams):
            if st.alive and st.series == 0:
                w = st.spec.width
                if all(not c[st.cell0: st.cell0 + w].any() for c in sums):
                    self._retire_stream(i)
                    dead_streams += 1
        self.evicted_streams += dead_streams
        live_cells = sum(st.spec.width for st in self.streams if st.alive)
        if count or dead_streams:
            if self.cells_used > 2 * live_cells + 1024 or self.n_series > 2 * int(s.alive[:n].sum()) + 1024:
                self.compact()
        return count + dead_streams

    def _kill_series(self, sid: int) -> None:
        s = self.series
        if not s.alive[sid]:
            return
        s.alive[sid] = False
        metric, resource, attrs = self.series_keys[sid]
        table = self._lookup.get((metric, resource))
        if table is not None:
            table.pop(attrs, None)
            if not table:
                del self._lookup[(metric, resource)]
        self.model_counts[self.series_model[sid]][1] -= 1
        self.streams[int(s.stream[sid])].series -= 1

    def _retire_stream(self, i: int) -> None:
        st = self.streams[i]
        st.alive = False
        self.layout_version += 1
        if self.stream_index.get(st.key) == i:
            del self.stream_index[st.key]
            self.model_counts[st.key[0]][0] -= 1

    def _drop_dead_streams_series(self) -> None:
        for sid in range(self.n_series):
            if self.series.alive[sid] and not self.streams[int(self.series.stream[sid])].alive:
                self._kill_series(sid)

    def compact(self) -> None:
        """Rebuild the arrays with live streams and series only (after evictions)."""
        self._flush()
        self._sids_token += 1
        s = self.series
        n = self.n_series
        old_cell0 = np.array([st.cell0 for st in self.streams] or [0], dtype=np.int64)
        offsets = s.dst[:n] - old_cell0[s.stream[:n]] if n else np.zeros(0, dtype=np.int64)
        live_ids = [i for i, st in enumerate(self.streams) if st.alive]
        live = [self.streams[i] for i in live_ids]
        remap = np.full(max(len(self.streams), 1), -1, dtype=np.int64)
        remap[live_ids] = np.arange(len(live_ids))
        widths_st = np.array([st.spec.width for st in live], dtype=np.int64)
        new_cell0 = np.cumsum(widths_st) - widths_st
        cells = int(widths_st.sum())
        cap = _capacity(256, cells)
        cells_from = _ranges(np.array([st.cell0 for st in live], dtype=np.int64), widths_st)
        rings = []
        for ring in self.rings:
            new_ring = np.zeros((self.slots, cap))
            new_ring[:, :cells] = ring[:, cells_from]
            rings.append(new_ring)
        for st, c0 in zip(live, new_cell0.tolist()):
            st.cell0 = c0
        self.rings = rings
        self.pending = np.zeros(cap)
        self._cell_cap = cap
        self.cells_used = cells
        self.streams = live
        self.stream_index = {st.key: i for i, st in enumerate(live)}
        self.layout_version += 1
        # Series: keep live ones, repack their last values, point them at the moved streams.
        keep = np.nonzero(s.alive[:n])[0]
        k = len(keep)
        new = _Grow({name: arr.dtype for name, arr in s.cols.items()}, capacity=_capacity(64, k))
        for name, arr in s.cols.items():
            new.cols[name][:k] = arr[keep]
        new.__dict__.update(new.cols)
        widths = s.width[keep]
        used = int(widths.sum())
        last = np.zeros(_capacity(1024, used))
        last[:used] = self.last[_ranges(s.src[keep], widths)]
        new.src[:k] = np.cumsum(widths) - widths
        new_stream = remap[s.stream[keep]]
        new.stream[:k] = new_stream
        new.dst[:k] = new_cell0[new_stream] + offsets[keep] if k else 0
        self.series = new
        keep_l = keep.tolist()
        self.series_keys = [self.series_keys[i] for i in keep_l]
        self.series_bounds = [self.series_bounds[i] for i in keep_l]
        self.series_model = [self.series_model[i] for i in keep_l]
        self.n_series = k
        self.last = last
        self.src_used = used
        self._lookup = {}
        for sid, (metric, resource, attrs) in enumerate(self.series_keys):
            self._lookup.setdefault((metric, resource), {})[attrs] = sid

    # --- introspection --------------------------------------------------------------------------
    @property
    def stream_count(self) -> int:
        return sum(1 for st in self.streams if st.alive)

    @property
    def series_count(self) -> int:
        return int(self.series.alive[: self.n_series].sum())

    def nbytes(self) -> int:
        """Approximate memory of the state: arrays plus an estimate of the Python objects."""
        arrays = sum(r.nbytes for r in self.rings) + self.pending.nbytes + self.last.nbytes + self.series.nbytes
        objects = 400 * len(self.streams) + 350 * self.n_series
        return int(arrays + objects)

    def bytes_per_stream(self, bins: int = 20) -> int:
        """Window state of one stream with ``bins`` buckets (cells in every ring + pending + objects)."""
        cells = bins + len(QUALITY_COLUMNS)
        return cells * 8 * (self.slots * len(self.windows) + 1) + 400
