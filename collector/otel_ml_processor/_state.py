"""Stream state: which stream every source series feeds, merged across every instance of a model.

Vocabulary
----------
*stream*  what is judged: ``(model, version, kind, name)``, e.g. ``("churn", "3", "feature", "age")``.
          It owns ``B + len(QUALITY_KINDS)`` *cells* in the windows: the reference's ``B`` buckets,
          then the quality counters ``missing, invalid, out_of_range, unseen``.
          Segment streams (:mod:`._segment_streams`) have kinds of their own and live here alike, their
          number bounded per model by ``max_segment_series`` (refusals counted in ``segment_overflow``).
*series*  what is received: one source time series (:mod:`._series`). A pod's ``ml.feature.value``
          histogram for ``age`` writes the ``B`` bucket cells of the ``age`` stream; its
          ``ml.feature.missing`` counter writes one cell. Every pod's series write into the same
          stream, which is how the fleet's traffic is merged.

:class:`State` joins the two parts -- the :class:`~._series.SeriesRegistry` (cumulative points ->
increments) and the :class:`~._windows.Windows` (increments -> slot rings) -- and owns the streams:
admission of new series (reference lookup, cardinality limits), reference layout changes, eviction
of stale series and empty streams, compaction, and checkpoints (:meth:`State.snapshot`,
:meth:`State.restore`). Per stream at 20 buckets and two windows of 10 slots the window state is
``2 * 10 * 24 * 8`` bytes plus small overhead (see :meth:`State.bytes_per_stream`).
"""

from __future__ import annotations

import collections
import logging
import time as _time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from otel_ml import semconv

from ._decode import Decoded
from ._limits import CacheBudget
from ._registry import VersionRegistry
from ._segment_streams import (
    DEFAULT_MAX_SEGMENT_SERIES,
    KIND_SEGMENT_PREDICTION,
    KIND_SEGMENT_QUALITY,
    METRICS as SEGMENT_METRICS,
    OUTPUT_METRICS as SEGMENT_OUTPUT_METRICS,
    QUALITY_CELL as SEGMENT_QUALITY_CELL,
    SEGMENT_KINDS,
    SERIES_PER_COLUMN,
    pack_name,
    stream_cost,
    unpack_name,
    valid_part,
)
from ._series import (
    CODE,
    R_ATTRIBUTES,
    R_CARDINALITY,
    R_UNKNOWN_NAME,
    R_UNKNOWN_REFERENCE,
    Admission,
    IngestResult,
    SeriesRegistry,
)
from ._windows import Windows, ranges

__all__ = ["KIND_FEATURE", "KIND_PREDICTION", "IngestResult", "SpecSource", "State", "Stream", "StreamSpec"]

log = logging.getLogger("otel_ml_processor")

#: Most (model, version) roles remembered (as many as the version registry's 32 versions x 4096 models).
MAX_ROLES = 32 * 4096
_QUALITY_CELL = {metric: i for i, metric in enumerate(semconv.QUALITY_COUNTERS[k] for k in semconv.QUALITY_KINDS)}
KIND_FEATURE = semconv.DRIFT_KIND_FEATURE
KIND_PREDICTION = semconv.DRIFT_KIND_PREDICTION


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
        return self.bins + len(semconv.QUALITY_KINDS)


class SpecSource(Protocol):
    """What the state asks the reference store (:class:`~._store.ReferenceStore`)."""

    generation: int

    def spec(self, model: str, version: str, kind: str, name: str) -> StreamSpec | bool | None:
        """The spec; ``False`` when the model version has no reference, ``None`` when it lacks the name."""
        ...

    def fingerprint(self, model: str, version: str) -> str | None: ...


@dataclass(slots=True)
class Stream:
    key: tuple[str, str, str, str]  # model, version, kind, name
    spec: StreamSpec
    cell0: int
    alive: bool = True
    series: int = 0  # live series writing into it
    fingerprint: str = ""


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
        cache_budget: CacheBudget | None = None,
        max_segment_series: int = DEFAULT_MAX_SEGMENT_SERIES,
        segment_overflow: collections.Counter[tuple[str, str]] | None = None,
    ) -> None:
        self.specs = specs
        self.max_segment_series = max_segment_series
        #: (model, version) -> segment streams (and performance slices) refused by the budget; exported
        #: as ``ml.segment.overflow`` (shared with the performance windows).
        self.segment_overflow: collections.Counter[tuple[str, str]] = (
            collections.Counter() if segment_overflow is None else segment_overflow)
        self._overflow_logged: set[str] = set()
        #: model -> exported series its segment streams and columns take (see :mod:`._segment_streams`).
        self.segment_series: dict[str, int] = {}
        #: (model, version, column) -> live segment streams of that column.
        self._segment_columns: collections.Counter[tuple[str, str, str]] = collections.Counter()
        self.series_ttl = float(series_ttl)
        self.max_streams_per_model = max_streams_per_model
        self.max_series_per_model = max_series_per_model
        self.clock = clock
        now = clock()
        self.epoch_ns = int(now * 1e9) if epoch_ns is None else int(epoch_ns)
        self.windows = Windows(windows, slots_per_window, now)
        self.cache_budget = cache_budget
        self.series = SeriesRegistry(self.windows, self._admit, clock)
        self._attach_budget()
        self.streams: list[Stream] = []
        #: (model, version) -> ml.model.role, learnt from new series and prediction records (:meth:`learn_role`;
        #: checkpointed). The same dict object for the state's whole life: the outcomes path shares it.
        self.roles: dict[tuple[str, str], str] = {}
        #: Per model, the versions in order of appearance and their baselines (checkpointed; :mod:`._registry`).
        self.version_registry = VersionRegistry()
        self.stream_index: dict[tuple[str, str, str, str], int] = {}
        # Per model name: [streams, series].
        self.model_counts: dict[str, list[int]] = {}
        self._specs_generation = getattr(specs, "generation", 0)
        # After a reference changed layout: first points of a series count only if they start later.
        self._rebaseline: dict[tuple[str, str], int] = {}
        self.layout_version = 0  # bumped whenever streams are added, removed or moved
        self.evicted_series = 0
        self.evicted_streams = 0

    # --- ingest and time ------------------------------------------------------------------------
    def ingest(self, decoded: Decoded, now: float | None = None) -> IngestResult:
        """Apply one decoded request. Never raises on data: bad points are rejected and counted."""
        now = self.clock() if now is None else now
        self._sync_specs()
        self.windows.advance(now)
        return self.series.ingest(decoded, now)

    def advance(self, now: float | None = None) -> None:
        """Move every window's current slot to ``now`` (see :meth:`Windows.advance`)."""
        self.windows.advance(self.clock() if now is None else now)

    def window_counts(self, now: float | None = None) -> list[np.ndarray]:
        """Per window, the counts of every cell over the window (``float64[cells_used]``)."""
        return self.windows.counts(self.clock() if now is None else now)

    @property
    def cells_used(self) -> int:
        return self.windows.cells_used

    # --- streams --------------------------------------------------------------------------------
    def _admit(self, metric: str, a: dict[str, str]) -> Admission | int:
        """Where a new series of ``metric`` with attributes ``a`` writes, or why it is rejected."""
        model = a.get(semconv.MODEL_NAME)
        version = a.get(semconv.MODEL_VERSION)
        if metric in SEGMENT_METRICS:
            return self._admit_segment(metric, a, model, version)
        if metric in (semconv.PREDICTION_VALUE, semconv.PREDICTION_CLASS_COUNT):
            kind, name = KIND_PREDICTION, a.get(semconv.PREDICTION_NAME)
        else:
            kind, name = KIND_FEATURE, a.get(semconv.FEATURE_NAME)
        if not model or not version or not name:
            return CODE[R_ATTRIBUTES]
        self.learn_role(model, version, a.get(semconv.MODEL_ROLE))
        spec = self._stream_spec(model, version, kind, name)
        if not isinstance(spec, StreamSpec):
            return spec
        bounds: bytes | None = None
        if metric in (semconv.FEATURE_VALUE, semconv.PREDICTION_VALUE):
            if not spec.numeric:
                return CODE[R_UNKNOWN_NAME]
            offset, width, bounds = 0, spec.bins, spec.edges_bytes
        elif metric in (semconv.FEATURE_CATEGORY_COUNT, semconv.PREDICTION_CLASS_COUNT):
            if spec.numeric:
                return CODE[R_UNKNOWN_NAME]
            label = a.get(semconv.FEATURE_CATEGORY if kind == KIND_FEATURE else semconv.PREDICTION_CLASS)
            if label is None:
                return CODE[R_ATTRIBUTES]
            offset = spec.category_index.get(label, spec.bins - 1)  # unknown label: the "other" bucket
            width = 1
        else:
            offset, width = spec.bins + _QUALITY_CELL[metric], 1
        return self._place((model, version, kind, name), spec, offset, width, bounds)

    def _stream_spec(self, model: str, version: str, kind: str, name: str) -> StreamSpec | int:
        """The stream's spec from the references, or the rejection code (no reference / unknown name)."""
        spec = self.specs.spec(model, version, kind, name)
        if spec is False:
            return CODE[R_UNKNOWN_REFERENCE]
        if spec is None or not isinstance(spec, StreamSpec):
            return CODE[R_UNKNOWN_NAME]
        return spec

    def learn_role(self, model: str, version: str, role: object) -> bool:
        """Remember ``ml.model.role`` of a model version (it pins the baseline of versions side by side);
        False, and nothing learnt, unless ``role`` is one of ``semconv.MODEL_ROLES``. Bounded: beyond
        :data:`MAX_ROLES` versions, new ones are not learnt (known ones still change role)."""
        if role not in semconv.MODEL_ROLES:
            return False
        key = (model, version)
        if key not in self.roles and len(self.roles) >= MAX_ROLES:
            return False
        self.roles[key] = role
        return True

    def _admit_segment(self, metric: str, a: dict[str, str], model: str | None, version: str | None) -> Admission | int:
        """A series of the per-segment metrics (:mod:`._segment_streams`)."""
        column, value = a.get(semconv.SEGMENT_NAME), a.get(semconv.SEGMENT_VALUE)
        if not model or not version or not valid_part(column) or not valid_part(value):
            return CODE[R_ATTRIBUTES]
        assert column is not None and value is not None
        if metric in SEGMENT_OUTPUT_METRICS:
            output = a.get(semconv.PREDICTION_NAME)
            if not output:
                return CODE[R_ATTRIBUTES]
            kind, name = KIND_SEGMENT_PREDICTION, pack_name(output, column, value)
        else:
            kind, name = KIND_SEGMENT_QUALITY, pack_name("", column, value)
        spec = self._stream_spec(model, version, kind, name)
        if not isinstance(spec, StreamSpec):
            return spec
        bounds: bytes | None = None
        if metric == semconv.SEGMENT_PREDICTION_VALUE:
            if not spec.numeric:
                return CODE[R_UNKNOWN_NAME]
            offset, width, bounds = 0, spec.bins, spec.edges_bytes
        elif metric == semconv.SEGMENT_PREDICTION_CLASS_COUNT:
            label = a.get(semconv.PREDICTION_CLASS)
            if spec.numeric:
                return CODE[R_UNKNOWN_NAME]
            if label is None:
                return CODE[R_ATTRIBUTES]
            offset, width = spec.category_index.get(label, spec.bins - 1), 1
        else:
            offset, width = SEGMENT_QUALITY_CELL[metric], 1
        return self._place((model, version, kind, name), spec, offset, width, bounds)

    def _segment_cost(self, key: tuple[str, str, str, str]) -> int:
        """Exported series a new segment stream ``key`` adds to its model (its column's mix if it is new)."""
        windows = len(self.windows.sizes)
        column = unpack_name(key[3])[1]
        new_column = self._segment_columns[(key[0], key[1], column)] == 0
        return stream_cost(key[2], windows) + (SERIES_PER_COLUMN * windows if new_column else 0)

    def _count_segment_stream(self, key: tuple[str, str, str, str], sign: int) -> None:
        column = (key[0], key[1], unpack_name(key[3])[1])
        cost = stream_cost(key[2], len(self.windows.sizes))
        before = self._segment_columns[column]
        self._segment_columns[column] += sign
        if (before == 0) != (self._segment_columns[column] == 0):
            cost += SERIES_PER_COLUMN * len(self.windows.sizes)
        if not self._segment_columns[column]:
            del self._segment_columns[column]
        self.segment_series[key[0]] = self.segment_series.get(key[0], 0) + sign * cost

    def _segment_overflow(self, key: tuple[str, str, str, str]) -> int:
        model, version = key[0], key[1]
        self.segment_overflow[(model, version)] += 1
        if model not in self._overflow_logged:
            self._overflow_logged.add(model)
            log.warning("model %r: segment streams beyond state.max_segment_series (%d exported series) are "
                        "refused; counted in %s (logged once per model)", model[:64], self.max_segment_series,
                        semconv.SEGMENT_OVERFLOW)
        return CODE[R_CARDINALITY]

    def _place(self, key: tuple[str, str, str, str], spec: StreamSpec, offset: int, width: int,
               bounds: bytes | None) -> Admission | int:
        """Admit a series writing ``width`` cells at ``offset`` of stream ``key`` (created if new)."""
        model, version = key[0], key[1]
        counts = self.model_counts.setdefault(model, [0, 0])
        if counts[1] >= self.max_series_per_model:
            return CODE[R_CARDINALITY]
        st = self.stream_index.get(key)
        if st is None:
            if counts[0] >= self.max_streams_per_model:
                return CODE[R_CARDINALITY]
            if key[2] in SEGMENT_KINDS and \
                    self.segment_series.get(model, 0) + self._segment_cost(key) > self.max_segment_series:
                return self._segment_overflow(key)
            st = self._new_stream(key, spec)
        stream = self.streams[st]
        stream.series += 1
        counts[1] += 1
        epoch = max(self.epoch_ns, self._rebaseline.get((model, version), 0))
        return Admission(st, stream.cell0 + offset, width, bounds, model, epoch)

    def _new_stream(self, key: tuple[str, str, str, str], spec: StreamSpec) -> int:
        cell0 = self.windows.allocate(spec.width)
        st = len(self.streams)
        fp = self.specs.fingerprint(key[0], key[1]) or ""
        self.streams.append(Stream(key, spec, cell0, fingerprint=fp))
        self.stream_index[key] = st
        self.layout_version += 1
        self.model_counts.setdefault(key[0], [0, 0])[0] += 1
        if key[2] in SEGMENT_KINDS:
            self._count_segment_stream(key, 1)
        return st

    def _sync_specs(self) -> None:
        """After the reference store changed: forget cached rejections, drop streams whose layout changed."""
        gen = getattr(self.specs, "generation", 0)
        if gen == self._specs_generation:
            return
        self._specs_generation = gen
        self.series.invalidate()
        changed = False
        for i, st in enumerate(self.streams):
            if st.alive and (self.specs.fingerprint(st.key[0], st.key[1]) or "") != st.fingerprint:
                self._retire_stream(i)
                self._rebaseline[(st.key[0], st.key[1])] = int(self.clock() * 1e9)
                changed = True
        if changed:
            self._drop_dead_streams_series()
            self.compact()

    # --- eviction and compaction ---------------------------------------------------------------
    def evict(self, now: float | None = None) -> int:
        """Forget series not seen for ``series_ttl`` and streams with no series and empty windows."""
        now = self.clock() if now is None else now
        stale = self.series.stale(now - self.series_ttl)
        count = len(stale)
        if count:
            for sid in stale.tolist():
                self._kill_series(sid)
            self.evicted_series += count
            self.series.invalidate()  # cardinality rejections may no longer apply
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
        too_sparse = self.cells_used > 2 * live_cells + 1024 or self.series.n > 2 * self.series.alive_count + 1024
        if (count or dead_streams) and too_sparse:
            self.compact()
        return count + dead_streams

    def _kill_series(self, sid: int) -> None:
        if self.series.kill(sid):
            self.model_counts[self.series.models[sid]][1] -= 1
            self.streams[int(self.series.cols.stream[sid])].series -= 1

    def _retire_stream(self, i: int) -> None:
        st = self.streams[i]
        st.alive = False
        self.layout_version += 1
        if self.stream_index.get(st.key) == i:
            del self.stream_index[st.key]
            self.model_counts[st.key[0]][0] -= 1
            if st.key[2] in SEGMENT_KINDS:
                self._count_segment_stream(st.key, -1)

    def _drop_dead_streams_series(self) -> None:
        s = self.series.cols
        for sid in range(self.series.n):
            if s.alive[sid] and not self.streams[int(s.stream[sid])].alive:
                self._kill_series(sid)

    def compact(self) -> None:
        """Rebuild the arrays with live streams and series only (after evictions)."""
        old_cell0 = np.array([st.cell0 for st in self.streams] or [0], dtype=np.int64)
        live_ids = [i for i, st in enumerate(self.streams) if st.alive]
        live = [self.streams[i] for i in live_ids]
        remap = np.full(max(len(self.streams), 1), -1, dtype=np.int64)
        remap[live_ids] = np.arange(len(live_ids))
        widths = np.array([st.spec.width for st in live], dtype=np.int64)
        new_cell0 = np.cumsum(widths) - widths
        self.windows.compact(ranges(np.array([st.cell0 for st in live], dtype=np.int64), widths))
        for st, c0 in zip(live, new_cell0.tolist()):
            st.cell0 = c0
        self.streams = live
        self.stream_index = {st.key: i for i, st in enumerate(live)}
        self.layout_version += 1
        self.series.compact(remap, old_cell0, new_cell0)

    # --- checkpoints ----------------------------------------------------------------------------
    def snapshot(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Copies of everything a checkpoint holds: numeric arrays, and JSON-able metadata."""
        arrays, meta = self.windows.snapshot()
        series_arrays, series_meta = self.series.snapshot()
        arrays.update(series_arrays)
        meta.update(series_meta)
        meta["epoch_ns"] = self.epoch_ns
        meta["streams"] = [
            {"key": list(st.key), "cell0": st.cell0, "alive": st.alive, "fingerprint": st.fingerprint}
            for st in self.streams
        ]
        meta["versions"] = self.version_registry.snapshot()
        meta["roles"] = [[m, v, r] for (m, v), r in self.roles.items()]
        return arrays, meta

    def restore(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> bool:
        """Load a :meth:`snapshot` into this empty state (same reference store), all or nothing.

        Streams whose reference is gone or changed layout are dropped, with their series. False when the
        snapshot was taken with other windows: baselines are kept, the windows start empty. A snapshot
        that is inconsistent in any way (a cell range outside the windows, a series outside its stream,
        a key that does not decode, ...) raises ``ValueError`` (or the error that revealed it) and leaves
        this state untouched: the snapshot is restored into a staging state, checked, and only then
        taken over.
        """
        if self.streams or self.series.n:
            raise RuntimeError("a snapshot can only be restored into an empty state")
        staging = self._empty_like()
        same_windows = staging._restore_unchecked(arrays, meta)
        staging._check_consistent()
        self._adopt(staging)
        return same_windows

    def _empty_like(self) -> State:
        """A new empty state with this one's parameters (the staging area of :meth:`restore`)."""
        return State(self.specs, windows=self.windows.sizes, slots_per_window=self.windows.slots,
                     series_ttl=self.series_ttl, max_streams_per_model=self.max_streams_per_model,
                     max_series_per_model=self.max_series_per_model, clock=self.clock, epoch_ns=self.epoch_ns,
                     max_segment_series=self.max_segment_series)

    def _adopt(self, other: State) -> None:
        """Take over what :meth:`restore` filled in ``other`` (a state of :meth:`_empty_like`)."""
        self.epoch_ns = other.epoch_ns
        self.windows = other.windows
        self.series = other.series
        self.series.admit = self._admit  # the registry asks this state, not the staging one, for admissions
        self._attach_budget()
        self.streams = other.streams
        self.stream_index = other.stream_index
        self.model_counts = other.model_counts
        self.segment_series = other.segment_series
        self._segment_columns = other._segment_columns
        self.layout_version = max(self.layout_version, other.layout_version) + 1
        self.version_registry.take(other.version_registry)
        self.roles.update(other.roles)  # in place: the outcomes path holds this dict

    def _attach_budget(self) -> None:
        self.series.budget = self.cache_budget
        if self.cache_budget is not None:
            self.cache_budget.register("series", self.series.cache_bytes)

    def _check_consistent(self) -> None:
        """Raise ``ValueError`` unless every live range lies where evaluation and ingest will index."""
        w = self.windows
        cells = w.cells_used
        if not 0 <= cells <= w.rings[0].shape[1] or any(r.shape != w.rings[0].shape for r in w.rings):
            raise ValueError(f"cells_used {cells} does not fit the window arrays")
        if not all(np.isfinite(r[:, :cells]).all() and (r[:, :cells] >= 0).all() for r in w.rings):
            raise ValueError("window counts must be finite and non-negative")
        ends = 0
        for st in sorted((st for st in self.streams if st.alive), key=lambda st: st.cell0):
            if st.cell0 < ends or st.cell0 + st.spec.width > cells:
                raise ValueError(f"stream {st.key[2]} {st.key[3]!r}: cells outside the windows or overlapping")
            ends = st.cell0 + st.spec.width
        reg = self.series
        n = reg.n
        if not len(reg.keys) == len(reg.bounds) == len(reg.models) == n:
            raise ValueError("series keys and columns differ in length")
        if not 0 <= reg.src_used <= len(reg.last) or not np.isfinite(reg.last[: reg.src_used]).all():
            raise ValueError("series last values are inconsistent")
        c = reg.cols
        live = np.nonzero(c.alive[:n])[0]
        if not len(live):
            return
        sid_stream = c.stream[live]
        if ((sid_stream < 0) | (sid_stream >= len(self.streams))).any():
            raise ValueError("a series names a stream that does not exist")
        cell0 = np.array([st.cell0 for st in self.streams], dtype=np.int64)[sid_stream]
        width = np.array([st.spec.width for st in self.streams], dtype=np.int64)[sid_stream]
        alive = np.array([st.alive for st in self.streams], dtype=bool)[sid_stream]
        dst, src, sw = c.dst[live], c.src[live], c.width[live]
        bad = ~alive | (sw < 1) | (dst < cell0) | (dst + sw > cell0 + width) | (src < 0) | (src + sw > reg.src_used)
        if bad.any():
            raise ValueError(f"{int(bad.sum())} series write outside their stream's cells or values")

    def _restore_unchecked(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> bool:
        """The body of :meth:`restore`, into this fresh staging state."""
        self.epoch_ns = int(meta["epoch_ns"])
        self.version_registry.restore(meta.get("versions"))  # absent in older checkpoints
        self._restore_roles(meta.get("roles", []))  # absent in older checkpoints
        cells = meta["cells_used"]
        rings = [a for k, a in arrays.items() if k.startswith("ring")]
        if type(cells) is not int or cells < 0 or not rings or any(a.ndim != 2 or a.shape[1] != cells for a in rings):
            raise ValueError("cells_used does not match the window arrays")
        for entry in meta["streams"]:
            model, version, kind, name = key = tuple(entry["key"])
            spec = self.specs.spec(model, version, kind, name)
            fp = self.specs.fingerprint(model, version) or ""
            usable = isinstance(spec, StreamSpec) and fp == entry["fingerprint"]
            if not isinstance(spec, StreamSpec):
                spec = StreamSpec(kind, name, True, 1)
            alive = bool(entry["alive"]) and usable
            st = Stream(key, spec, int(entry["cell0"]), alive=alive, fingerprint=entry["fingerprint"])
            self.streams.append(st)
            if alive:
                if st.key in self.stream_index:
                    raise ValueError(f"stream {kind} {name!r} appears twice")
                self.stream_index[st.key] = len(self.streams) - 1
                self.model_counts.setdefault(model, [0, 0])[0] += 1
                if kind in SEGMENT_KINDS:
                    self._count_segment_stream(st.key, 1)
        same_windows = self.windows.restore(arrays, meta)
        self.series.restore(arrays, meta, self._restored_stream_alive)
        stream_ids, models = self.series.live_per_stream()
        for i, model in zip(stream_ids.tolist(), models):
            self.streams[i].series += 1
            self.model_counts.setdefault(model, [0, 0])[1] += 1
        self.layout_version += 1
        self._check_consistent()
        if any(not st.alive for st in self.streams):
            self.compact()
        return same_windows

    def _restore_roles(self, entries: object) -> None:
        if not isinstance(entries, list) or len(entries) > MAX_ROLES:
            raise ValueError("roles must be a list of at most MAX_ROLES [model, version, role]")
        for entry in entries:
            if not (isinstance(entry, list) and len(entry) == 3 and all(isinstance(x, str) and x for x in entry)
                    and self.learn_role(entry[0], entry[1], entry[2])):
                raise ValueError(f"invalid role entry {str(entry)[:100]!r}")

    def _restored_stream_alive(self, i: int) -> bool:
        if not 0 <= i < len(self.streams):
            raise ValueError(f"a series names stream {i}, the checkpoint has {len(self.streams)}")
        return self.streams[i].alive

    # --- introspection --------------------------------------------------------------------------
    @property
    def stream_count(self) -> int:
        return sum(1 for st in self.streams if st.alive)

    @property
    def series_count(self) -> int:
        return self.series.alive_count

    @property
    def resets(self) -> int:
        return self.series.resets

    @property
    def duplicates(self) -> int:
        return self.series.duplicates

    def nbytes(self) -> int:
        """Approximate memory of the state: arrays plus an estimate of the Python objects."""
        arrays = self.windows.nbytes + self.series.nbytes
        objects = 400 * len(self.streams) + 350 * self.series.n
        return int(arrays + objects)

    def bytes_per_stream(self, bins: int = 20) -> int:
        """Window state of one stream with ``bins`` buckets (cells in every ring + pending + objects)."""
        return (bins + len(semconv.QUALITY_KINDS)) * self.windows.bytes_per_cell() + 400
