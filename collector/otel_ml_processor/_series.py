"""The series registry: every source series, its last cumulative point, and the increments it adds.

A *series* is what is received: one source time series, ``(metric, resource, attributes)`` -- a
pod's ``ml.feature.value`` histogram for ``age``, or its ``ml.feature.missing`` counter. Each
series writes ``width`` consecutive cells of one stream (:mod:`._state` decides which, when the
series is first seen); per series the last cumulative point is kept (start time, time, total, and
its cell values).

Increments
----------
A new point with the same start and a later time contributes ``values - last``. A changed start
time, a lower total or any lower bucket is a *reset* (a restarted process or a counter reset): the
point contributes its full values, since they count from the new start. A point that is not newer
(duplicate, out-of-order, or from an older incarnation) is ignored. The first point of a new series
contributes its full values if its start time is after the series' *epoch* (the processor's first
start, kept across restarts by the checkpoint, or the time its reference last changed layout), else
it only sets the baseline -- the same rule as the Collector's cumulativetodelta ``auto`` mode. Delta
points contribute their values; a delta point not newer than the last one of its series is a
duplicate. Increments go to :meth:`._windows.Windows.add`.

Everything per request is vectorised over points and cells; the only per-point Python work is the
series lookup (a dict keyed by the digest of the attribute encodings) and the bounds comparison.
Keys are digests (:mod:`._limits`), never the raw resource or attribute bytes; the caches that
attacker-chosen keys can fill (rejections, series ids per structure template) share the byte budget
of a :class:`~._limits.CacheBudget` and drop their oldest entries to stay within it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from ._decode import FLAG_NO_RECORDED_VALUE, TEMPORALITY_DELTA, Decoded
from ._limits import ENTRY_BYTES, CacheBudget, attributes_key, digest
from ._windows import Windows, capacity, ranges

# Rejection reasons (the ``error.type`` attribute of otel_ml.processor.points.rejected).
R_BOUNDS = "bounds_mismatch"
R_UNKNOWN_REFERENCE = "unknown_reference"
R_UNKNOWN_NAME = "unknown_feature"
R_ATTRIBUTES = "missing_attributes"
R_CARDINALITY = "cardinality_limit"
R_MALFORMED = "malformed_point"
R_TOO_LARGE = "attributes_too_large"
REASONS = (R_BOUNDS, R_UNKNOWN_REFERENCE, R_UNKNOWN_NAME, R_ATTRIBUTES, R_CARDINALITY, R_MALFORMED, R_TOO_LARGE)
CODE = {r: -(i + 1) for i, r in enumerate(REASONS)}
_REASON_OF = {v: k for k, v in CODE.items()}
_MESSAGES = {
    R_BOUNDS: "histogram explicit_bounds differ from the reference's edges for the feature",
    R_UNKNOWN_REFERENCE: "no reference profile for the model name and version",
    R_UNKNOWN_NAME: "the reference has no such feature or output (or of another kind)",
    R_ATTRIBUTES: "data point lacks ml.model.name, ml.model.version or the feature/prediction name",
    R_CARDINALITY: "the model's stream or series limit is reached",
    R_MALFORMED: "inconsistent data point (bucket count, sum of buckets, or timestamps)",
    R_TOO_LARGE: "an attribute or the resource exceeds receivers.max_attribute_bytes / max_resource_bytes",
}

_NEGATIVE_CACHE_MAX = 100_000

SeriesKey = tuple[str, bytes, bytes]  # metric, resource digest, attributes digest
#: How a checkpoint's series keys are written (older checkpoints hold the raw encodings).
KEY_FORMAT = "blake2b-128"


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


class Admission(NamedTuple):
    """Where a new series writes, as the state decides it: a stream and a cell range in the windows."""

    stream: int
    dst: int  # first cell
    width: int  # cells
    bounds: bytes | None  # histogram explicit bounds it must keep sending (packed float64), or None
    model: str
    epoch_ns: int  # its first point counts in full only when it starts after this


#: ``(metric, attributes) -> Admission``, or a negative rejection code (:data:`CODE`).
Admit = Callable[[str, dict[str, str]], "Admission | int"]


def parse_attributes(attrs: Iterable[bytes]) -> dict[str, str]:
    """Raw ``KeyValue`` encodings -> ``{key: value as string}`` (scalar values only)."""
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


class _Grow:
    """Capacity-doubling 1-D numpy columns sharing one length (the series columns, by name)."""

    stream: np.ndarray  # int64: the stream it writes
    dst: np.ndarray  # int64: its first cell in the windows
    src: np.ndarray  # int64: its first value in ``last``
    width: np.ndarray  # int64: cells (buckets) per point
    start: np.ndarray  # int64: start time of its last point (ns)
    time: np.ndarray  # int64: time of its last point (ns)
    total: np.ndarray  # float64: count / value of its last point
    seen: np.ndarray  # float64: receive time of its last point (s)
    epoch: np.ndarray  # int64: its first point counts in full only when it starts after this (ns)
    alive: np.ndarray  # bool

    def __init__(self, spec: dict[str, Any], capacity: int = 64) -> None:
        self.cap = capacity
        self.cols = {name: np.zeros(capacity, dtype=dt) for name, dt in spec.items()}
        self.__dict__.update(self.cols)

    def ensure(self, n: int) -> None:
        if n <= self.cap:
            return
        cap = capacity(self.cap, n)
        for name, arr in list(self.cols.items()):
            new = np.zeros(cap, dtype=arr.dtype)
            new[: self.cap] = arr
            self.cols[name] = new
        self.cap = cap
        self.__dict__.update(self.cols)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.cols.values())


_COLUMNS = {"stream": np.int64, "dst": np.int64, "src": np.int64, "width": np.int64, "start": np.int64,
            "time": np.int64, "total": np.float64, "seen": np.float64, "epoch": np.int64, "alive": np.bool_}


class SeriesRegistry:
    """Every source series (``n`` of them, dead ones until the next compaction) and their baselines."""

    def __init__(self, windows: Windows, admit: Admit, clock: Callable[[], float]) -> None:
        self.windows = windows
        self.admit = admit
        self.clock = clock
        self.cols = _Grow(_COLUMNS)
        self.keys: list[SeriesKey] = []
        self.bounds: list[bytes | None] = []
        self.models: list[str] = []
        self.n = 0
        self._lookup: dict[tuple[str, bytes], dict[bytes, int]] = {}
        self._negative: dict[SeriesKey, int] = {}
        self._template_sids_bytes = 0
        self.budget: CacheBudget | None = None
        self.src_used = 0
        self.last = np.zeros(1024)
        # Series ids per structure-cache template, valid while the token is unchanged.
        self._template_sids: dict[int, tuple[int, np.ndarray]] = {}
        self._sids_token = 0
        # Counters (self-telemetry).
        self.resets = 0
        self.duplicates = 0

    # --- ingest ---------------------------------------------------------------------------------
    def ingest(self, decoded: Decoded, now: float) -> IngestResult:
        """Apply one decoded request. Never raises on data: bad points are rejected and counted."""
        res = IngestResult()
        if decoded.too_large:
            res.received += decoded.too_large
            res.rejected[R_TOO_LARGE] += decoded.too_large
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
            bounds = self.bounds
            for attrs, b in zip(g.attrs, g.bounds):
                akey = attributes_key(attrs)
                sid = get(akey)
                if sid is None:
                    sid = self._new_series(g.metric, g.resource, attrs, akey, table)
                if sid >= 0 and b != bounds[sid]:
                    sid = CODE[R_BOUNDS]
                append(sid)
        else:
            for attrs in g.attrs:
                akey = attributes_key(attrs)
                sid = get(akey)
                if sid is None:
                    sid = self._new_series(g.metric, g.resource, attrs, akey, table)
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
            size = ENTRY_BYTES + sids.nbytes
            if len(self._template_sids) >= _NEGATIVE_CACHE_MAX or not self._fits(size):
                self._template_sids.clear()
                self._template_sids_bytes = 0
            if self._fits(size):
                old = self._template_sids.get(tmpl)
                if old is not None:
                    self._template_sids_bytes -= ENTRY_BYTES + old[1].nbytes
                self._template_sids[tmpl] = (self._sids_token, sids)
                self._template_sids_bytes += size
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
        width = self.cols.width[safe]
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
                cells = ranges(offs[sel], w[sel])
                self._apply_unique(sids[sel], start[sel], tim[sel], total[sel], values[cells], w[sel],
                                   delta[sel], now, res)
            return
        self._apply_unique(sids, start, tim, total, values, w, delta, now, res)

    def _apply_unique(self, sids: np.ndarray, start: np.ndarray, tim: np.ndarray, total: np.ndarray,
                      values: np.ndarray, w: np.ndarray, delta: np.ndarray, now: float,
                      res: IngestResult) -> None:
        s = self.cols
        src = ranges(s.src[sids], w)
        dst = ranges(s.dst[sids], w)
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
            self.windows.add(dst, diff)
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
            self.windows.add(dst[nz], inc[nz])

    def _new_series(self, metric: str, resource: bytes, attrs: tuple[bytes, ...], akey: bytes,
                    table: dict[bytes, int]) -> int:
        nkey = (metric, resource, akey)
        code = self._negative.get(nkey)
        if code is not None:
            return code
        code = self._create(metric, resource, attrs, akey, table)
        if code < 0:
            neg = self._negative
            while neg and (len(neg) >= _NEGATIVE_CACHE_MAX or not self._fits(ENTRY_BYTES)):
                del neg[next(iter(neg))]  # the oldest rejection first
            if self._fits(ENTRY_BYTES):
                neg[nkey] = code
        return code

    def _fits(self, size: int) -> bool:
        return self.budget is None or self.budget.room() >= size

    def cache_bytes(self) -> int:
        """Bytes of the caches this registry keeps (rejections, series ids per template)."""
        return ENTRY_BYTES * len(self._negative) + self._template_sids_bytes

    def _create(self, metric: str, resource: bytes, attrs: tuple[bytes, ...], akey: bytes,
                table: dict[bytes, int]) -> int:
        try:
            a = parse_attributes(attrs)
        except Exception:
            return CODE[R_MALFORMED]
        adm = self.admit(metric, a)
        if isinstance(adm, int):
            return adm
        sid = self.n
        self.cols.ensure(sid + 1)
        s = self.cols
        s.stream[sid] = adm.stream
        s.dst[sid] = adm.dst
        s.src[sid] = self._alloc_src(adm.width)
        s.width[sid] = adm.width
        s.start[sid] = s.time[sid] = 0
        s.total[sid] = 0.0
        s.seen[sid] = self.clock()
        s.epoch[sid] = adm.epoch_ns
        s.alive[sid] = True
        self.keys.append((metric, resource, akey))
        self.bounds.append(adm.bounds)
        self.models.append(adm.model)
        self.n += 1
        table[akey] = sid
        if not self._lookup.get((metric, resource)):
            self._lookup[(metric, resource)] = table
        return sid

    def _alloc_src(self, width: int) -> int:
        off = self.src_used
        need = off + width
        if need > len(self.last):
            new = np.zeros(capacity(len(self.last), need))
            new[: len(self.last)] = self.last
            self.last = new
        self.src_used = need
        return off

    # --- lifecycle --------------------------------------------------------------------------------
    def invalidate(self) -> None:
        """Forget cached resolutions (rejections, template series ids): what they depended on changed."""
        self._negative.clear()
        self._sids_token += 1
        self._template_sids.clear()
        self._template_sids_bytes = 0

    def stale(self, before: float) -> np.ndarray:
        """Ids of the live series last seen before ``before``."""
        s = self.cols
        n = self.n
        return np.nonzero(s.alive[:n] & (s.seen[:n] < before))[0]

    def kill(self, sid: int) -> bool:
        """Forget series ``sid`` (its id stays until :meth:`compact`); False if it was dead already."""
        s = self.cols
        if not s.alive[sid]:
            return False
        s.alive[sid] = False
        metric, resource, attrs = self.keys[sid]
        table = self._lookup.get((metric, resource))
        if table is not None:
            table.pop(attrs, None)
            if not table:
                del self._lookup[(metric, resource)]
        return True

    def compact(self, stream_remap: np.ndarray, old_cell0: np.ndarray, new_cell0: np.ndarray) -> None:
        """Keep the live series only, repack their last values, point them at their moved streams
        (stream ``i`` is now ``stream_remap[i]``, its cells start at ``new_cell0[stream_remap[i]]``)."""
        self._sids_token += 1
        s = self.cols
        n = self.n
        offsets = s.dst[:n] - old_cell0[s.stream[:n]] if n else np.zeros(0, dtype=np.int64)
        keep = np.nonzero(s.alive[:n])[0]
        k = len(keep)
        new = _Grow({name: arr.dtype for name, arr in s.cols.items()}, capacity=capacity(64, k))
        for name, arr in s.cols.items():
            new.cols[name][:k] = arr[keep]
        new.__dict__.update(new.cols)
        widths = s.width[keep]
        used = int(widths.sum())
        last = np.zeros(capacity(1024, used))
        last[:used] = self.last[ranges(s.src[keep], widths)]
        new.src[:k] = np.cumsum(widths) - widths
        new_stream = stream_remap[s.stream[keep]]
        new.stream[:k] = new_stream
        new.dst[:k] = new_cell0[new_stream] + offsets[keep] if k else 0
        self.cols = new
        keep_l = keep.tolist()
        self.keys = [self.keys[i] for i in keep_l]
        self.bounds = [self.bounds[i] for i in keep_l]
        self.models = [self.models[i] for i in keep_l]
        self.n = k
        self.last = last
        self.src_used = used
        self._rebuild_lookup()

    def _rebuild_lookup(self) -> None:
        self._lookup = {}
        alive = self.cols.alive
        for sid, (metric, resource, attrs) in enumerate(self.keys):
            if alive[sid]:
                self._lookup.setdefault((metric, resource), {})[attrs] = sid

    # --- size and checkpoints -------------------------------------------------------------------
    @property
    def alive_count(self) -> int:
        return int(self.cols.alive[: self.n].sum())

    @property
    def nbytes(self) -> int:
        return self.last.nbytes + self.cols.nbytes

    def live_per_stream(self) -> tuple[np.ndarray, list[str]]:
        """``(stream id of every live series, its model)``."""
        live = np.nonzero(self.cols.alive[: self.n])[0]
        return self.cols.stream[live], [self.models[i] for i in live.tolist()]

    def snapshot(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Copies of every series' columns and last values, and their keys (hex of the digests)."""
        n = self.n
        arrays = {"last": self.last[: self.src_used].copy()}
        for name, arr in self.cols.cols.items():
            arrays[f"series_{name}"] = arr[:n].copy()
        meta = {
            "series": [
                [metric, resource.hex(), [akey.hex()], None if b is None else b.hex(), model]
                for (metric, resource, akey), b, model in zip(self.keys, self.bounds, self.models)
            ],
            "series_keys": KEY_FORMAT,
            "counters": {"resets": self.resets, "duplicates": self.duplicates},
        }
        return arrays, meta

    def restore(self, arrays: dict[str, np.ndarray], meta: dict[str, Any], stream_alive: Callable[[int], bool]) -> None:
        """Load a :meth:`snapshot` into this empty registry; series of dead streams come back dead."""
        if self.n:
            raise RuntimeError("series can only be restored into an empty registry")
        entries = meta["series"]
        n = len(entries)
        self.cols.ensure(max(n, 1))
        for name, arr in self.cols.cols.items():
            arr[:n] = arrays[f"series_{name}"][:n]
        last = arrays["last"]
        self.src_used = 0
        self._alloc_src(len(last))
        self.last[: len(last)] = last
        digests = meta.get("series_keys") == KEY_FORMAT
        for metric, resource_hex, attrs_hex, bounds_hex, model in entries:
            resource = bytes.fromhex(resource_hex)
            attrs = [bytes.fromhex(a) for a in attrs_hex]
            if digests:
                self.keys.append((metric, resource, attrs[0]))
            else:  # a checkpoint of an older version: raw encodings
                self.keys.append((metric, digest(resource), attributes_key(attrs)))
            self.bounds.append(None if bounds_hex is None else bytes.fromhex(bounds_hex))
            self.models.append(model)
        self.n = n
        s = self.cols
        for sid in range(n):
            if s.alive[sid] and not stream_alive(int(s.stream[sid])):
                s.alive[sid] = False
        self._rebuild_lookup()
        counters = meta.get("counters", {})
        self.resets = int(counters.get("resets", 0))
        self.duplicates = int(counters.get("duplicates", 0))
