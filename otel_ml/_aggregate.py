"""In-memory cumulative counts per monitored model: accumulation, the registry, fork hooks.

A :class:`ModelAggregate` holds fixed-size numpy arrays sized from the reference (features x bins,
categories + 1, the default duration buckets), so memory never grows with the traffic, whatever the
input. A predict call bins its batch without any lock (:mod:`otel_ml._binning`) and then adds the
statistics under the model's one lock (:meth:`ModelAggregate.commit`). The export thread takes
consistent, frozen copies with :meth:`ModelAggregate.snapshot`.

Fork safety: ``os.register_at_fork`` gives every aggregate a fresh lock and zero counts in a child
process, so a pre-fork worker reports its own traffic and the parent's counts are untouched.
"""

from __future__ import annotations

import bisect
import math
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import semconv
from ._adapters import SCHEMA_KINDS
from ._binning import N_QUALITY, CategoricalStats, CategoricalTable, NumericStats, NumericTable
from ._errors import ConfigurationError
from ._multivariate import Multivariate
from ._reference import (
    OUTPUT_LABEL,
    OUTPUT_VALUE,
    PROBA_PREFIX,
    CategoricalProfile,
    NumericProfile,
    Reference,
)
from ._segments import N_KINDS, SegmentColumns

#: Default explicit bucket bounds of OTel duration histograms, in seconds (semantic conventions).
DURATION_BOUNDS: tuple[float, ...] = (
    0.0, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)
#: error.type values kept per model; further distinct types are counted under "_OTHER".
MAX_ERROR_TYPES = 16
ERROR_TYPE_OTHER = "_OTHER"
#: Buffered rows are folded into the counters (one vectorised pass) once this many are pending.
PENDING_LIMIT = 256

# Rows of the categorical quality matrix.
C_MISSING, C_UNSEEN = range(2)


@dataclass(frozen=True, slots=True)
class SampledCall:
    """The latest sampled predict call of a model: what its exemplars link to."""

    trace_id: int
    span_id: int
    time_ns: int
    duration_s: float
    error_type: str | None
    first_output: list[float] | None  # first row of the numeric outputs, when the model has any


@dataclass(frozen=True, slots=True)
class DurationCounts:
    """``ml.predict.duration`` of one error.type (None: success), cumulative."""

    counts: tuple[int, ...]  # per DURATION_BOUNDS bucket
    count: int
    sum: float
    min: float
    max: float


class _Duration:
    __slots__ = ("count", "counts", "max", "min", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(DURATION_BOUNDS) + 1)
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, d: float) -> None:
        self.counts[bisect.bisect_left(DURATION_BOUNDS, d)] += 1
        self.count += 1
        self.sum += d
        if d < self.min:
            self.min = d
        if d > self.max:
            self.max = d

    def frozen(self) -> DurationCounts:
        return DurationCounts(tuple(self.counts), self.count, self.sum, self.min, self.max)


@dataclass(frozen=True, slots=True)
class SegmentCall:
    """What one call adds to one segment column's counters (computed without the lock).

    Dense (arrays with one row per code: the column's values, then ``__other__``) or, for a few rows,
    ``sparse``: per row (code, flat output buckets (-1: not finite), output values, class bucket, quality).
    """

    name: str
    size: int  # codes of the column
    rows: np.ndarray | None = None  # per code
    outputs: np.ndarray | None = None  # (codes, outputs table size): numeric outputs' flat bucket counts
    output_sums: np.ndarray | None = None  # (codes, numeric outputs): sums of the finite outputs
    labels: np.ndarray | None = None  # (codes, label table size): predicted classes
    quality: np.ndarray | None = None  # (codes, QUALITY_KINDS): feature quality counts summed over the features
    sparse: tuple[tuple[int, list[int] | None, list[float] | None, int | None, list[int] | None], ...] | None = None


@dataclass(slots=True)
class SegmentCounts:
    """One segment column's cumulative counters (arrays as in :class:`SegmentCall`) and, in a snapshot,
    the value of each code (``labels``; the last is ``__other__``) and how many are known."""

    name: str
    rows: np.ndarray
    outputs: np.ndarray | None
    output_sums: np.ndarray | None
    labels: np.ndarray | None
    quality: np.ndarray
    values: tuple[str, ...] = ()
    known: int = 0

    @staticmethod
    def zeros(name: str, size: int, agg: ModelAggregate) -> SegmentCounts:
        ot, lt = agg.outputs, agg.label_table
        return SegmentCounts(
            name, np.zeros(size, dtype=np.int64),
            np.zeros((size, ot.size), dtype=np.int64) if ot is not None else None,
            np.zeros((size, ot.k)) if ot is not None else None,
            np.zeros((size, lt.size), dtype=np.int64) if lt is not None else None,
            np.zeros((size, N_KINDS), dtype=np.int64))

    def add(self, c: SegmentCall) -> None:
        if c.sparse is not None:
            self._add_rows(c.sparse)
            return
        self.rows += c.rows
        if c.outputs is not None and self.outputs is not None:
            self.outputs += c.outputs
            self.output_sums += c.output_sums  # type: ignore[operator]
        if c.labels is not None and self.labels is not None:
            self.labels += c.labels
        if c.quality is not None:
            self.quality += c.quality

    def _add_rows(self, rows: Any) -> None:
        outs, sums, labels, quality = self.outputs, self.output_sums, self.labels, self.quality
        for code, bins, values, label, q in rows:
            self.rows[code] += 1
            if bins is not None and outs is not None and sums is not None:
                for j, b in enumerate(bins):
                    if b >= 0:
                        outs[code, b] += 1
                        sums[code, j] += values[j]
            if label is not None and labels is not None and label < labels.shape[1]:  # (missing: one past)
                labels[code, label] += 1
            if q is not None:
                for j, x in enumerate(q):
                    if x:
                        quality[code, j] += x

    def copy(self, values: tuple[str, ...], known: int) -> SegmentCounts:
        return SegmentCounts(self.name, self.rows.copy(), None if self.outputs is None else self.outputs.copy(),
                             None if self.output_sums is None else self.output_sums.copy(),
                             None if self.labels is None else self.labels.copy(), self.quality.copy(), values, known)

    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.rows, self.outputs, self.output_sums, self.labels, self.quality)
                   if a is not None)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Consistent copy of a model's counters, taken by the export thread.

    Arrays are laid out like the model's tables (:class:`~otel_ml._binning.NumericTable` for ``num_*``
    and ``out_*``). ``*_min``/``*_max`` are cumulative since ``start_ns``; ``*_imin``/``*_imax`` cover the
    interval since the previous snapshot (delta temporality).
    """

    time_ns: int
    start_ns: int
    rows: int
    errors: int
    schema: np.ndarray  # per SCHEMA_KINDS
    num_counts: np.ndarray
    num_min: np.ndarray
    num_max: np.ndarray
    num_imin: np.ndarray
    num_imax: np.ndarray
    num_sum: np.ndarray
    num_quality: np.ndarray  # (N_QUALITY, features), rows _binning.Q_*
    cat_counts: list[np.ndarray]  # per categorical table: categories then __other__
    cat_quality: np.ndarray  # (2, tables), rows C_MISSING, C_UNSEEN
    out_counts: np.ndarray
    out_min: np.ndarray
    out_max: np.ndarray
    out_imin: np.ndarray
    out_imax: np.ndarray
    out_sum: np.ndarray
    label_counts: np.ndarray
    durations: dict[str | None, DurationCounts]
    exemplar: SampledCall | None
    segments: tuple[SegmentCounts, ...] = ()


class ModelAggregate:
    """Cumulative counters of one (model name, version): bounded by features x bins."""

    def __init__(self, name: str, version: str, reference: Reference | None) -> None:
        self.name = name
        self.version = version
        self.reference = reference
        self.attributes = {semconv.MODEL_NAME: name, semconv.MODEL_VERSION: version}
        num: list[NumericProfile] = []
        self.num_positions: list[int] = []
        self.cat_tables: list[CategoricalTable] = []
        self.cat_positions: list[int] = []
        out_num: list[NumericProfile] = []
        self.label_table: CategoricalTable | None = None
        self.value_output = False
        self.proba_outputs: list[str] = []
        if reference is not None:
            for i, p in enumerate(reference.features):
                if isinstance(p, NumericProfile):
                    num.append(p)
                    self.num_positions.append(i)
                else:
                    self.cat_tables.append(CategoricalTable(p))
                    self.cat_positions.append(i)
            for p in reference.outputs:
                if isinstance(p, NumericProfile) and (p.name == OUTPUT_VALUE or p.name.startswith(PROBA_PREFIX)):
                    out_num.append(p)
                    if p.name == OUTPUT_VALUE:
                        self.value_output = True
                    else:
                        self.proba_outputs.append(p.name)
                elif isinstance(p, CategoricalProfile) and p.name == OUTPUT_LABEL:
                    self.label_table = CategoricalTable(p)
        #: the multivariate summary; its reconstruction error is the numeric table's last column
        self.multivariate: Multivariate | None = None
        #: the numeric columns the summary reads (None: all of them, in order)
        self.mv_columns: list[int] | slice | None = None
        #: per categorical table: (position in the summary's categorical features, bucket -> level-table
        #: row as an array and as a list), or None when the summary does not encode it
        self.mv_levels: list[tuple[int, np.ndarray, list[int]] | None] = [None] * len(self.cat_tables)
        if reference is not None and reference.multivariate is not None and num:
            names = [p.name for p in num]
            self.multivariate = reference.multivariate.summary
            cols = [names.index(f) for f in self.multivariate.features]
            if cols != list(range(len(names))):
                self.mv_columns = slice(0, len(cols)) if cols == list(range(len(cols))) else cols
            tables = {t.name: i for i, t in enumerate(self.cat_tables)}
            for j, (name, _) in enumerate(self.multivariate.categorical):
                t = self.cat_tables[tables[name]]
                rows = self.multivariate.level_rows(j, t.categories)
                self.mv_levels[tables[name]] = (j, rows, rows.tolist())
            num.append(reference.multivariate.error)
        self.numeric = NumericTable(num) if num else None
        self.outputs = NumericTable(out_num) if out_num else None
        self.output_index = {p.name: j for j, p in enumerate(out_num)}
        #: the numeric outputs are exactly the probability columns, in class order
        self.proba_in_order = bool(out_num) and [p.name for p in out_num] == self.proba_outputs
        #: the segment columns' bounded values, shared by every monitored function of this model version
        self.segment_columns = SegmentColumns(reference)
        self._reset()

    # --- state -------------------------------------------------------------------------------
    def _reset(self) -> None:
        self.lock = threading.Lock()
        self.start_ns = time.time_ns()
        self.rows = 0
        self.errors = 0
        self.schema = np.zeros(len(SCHEMA_KINDS), dtype=np.int64)
        nt = self.numeric
        k = nt.k if nt else 0
        self.num_counts = np.zeros(nt.size if nt else 0, dtype=np.int64)
        self.num_min = np.full(k, np.inf)
        self.num_max = np.full(k, -np.inf)
        self.num_imin = np.full(k, np.inf)  # since the last snapshot (delta temporality)
        self.num_imax = np.full(k, -np.inf)
        self.num_sum = np.zeros(k)
        self.num_quality = np.zeros((N_QUALITY, k), dtype=np.int64)
        self.cat_counts = [np.zeros(t.size, dtype=np.int64) for t in self.cat_tables]
        self.cat_quality = np.zeros((2, len(self.cat_tables)), dtype=np.int64)  # rows C_MISSING, C_UNSEEN
        ot = self.outputs
        ko = ot.k if ot else 0
        self.out_counts = np.zeros(ot.size if ot else 0, dtype=np.int64)
        self.out_min = np.full(ko, np.inf)
        self.out_max = np.full(ko, -np.inf)
        self.out_imin = np.full(ko, np.inf)
        self.out_imax = np.full(ko, -np.inf)
        self.out_sum = np.zeros(ko)
        self.label_counts = np.zeros(self.label_table.size if self.label_table else 0, dtype=np.int64)
        # Small batches wait here as Python rows; _fold() bins them in one vectorised pass. Bounded
        # by PENDING_LIMIT rows; always folded before a snapshot, so exported counts stay exact.
        self.pending_num: list[list[float]] = []
        self.pending_out: list[list[float]] = []
        self.durations: dict[str | None, _Duration] = {}
        self.exemplar: SampledCall | None = None
        self.segments: dict[str, SegmentCounts] = {}  # per segment column, created at its first call

    # --- recording (called on the predict path) -------------------------------------------------
    def commit(
        self,
        rows: int,
        num: NumericStats | list[list[float]] | None,
        cats: list[CategoricalStats] | None,
        schema: list[int] | None,
        out: NumericStats | list[list[float]] | None,
        label: CategoricalStats | None,
        duration_s: float | None,
        error_type: str | None,
        exemplar: SampledCall | None,
        segments: list[SegmentCall] | None = None,
    ) -> None:
        """Add one call's statistics; the only code that runs under the model's lock.

        ``num``/``out`` are either NumericStats or, for small batches, the rows themselves (buffered);
        ``cats`` has one entry per categorical table, in order; ``schema`` holds indices into SCHEMA_KINDS;
        ``segments`` one entry per segment column of the call.
        """
        with self.lock:
            if segments:
                for sc in segments:
                    seg = self.segments.get(sc.name)
                    if seg is None:
                        seg = self.segments[sc.name] = SegmentCounts.zeros(sc.name, sc.size, self)
                    seg.add(sc)
            self.rows += rows
            if num is not None:
                if isinstance(num, list):
                    pending = self.pending_num
                    pending.extend(num)
                    if len(pending) >= PENDING_LIMIT:
                        self._fold()
                else:
                    self._add_num(num)
            if cats:
                for j, c in enumerate(cats):
                    _add_categorical(self.cat_counts[j], c)
                    self.cat_quality[C_MISSING, j] += c.missing
                    self.cat_quality[C_UNSEEN, j] += c.unseen
            if schema:
                for s in schema:
                    self.schema[s] += 1
            if out is not None:
                if isinstance(out, list):
                    pending = self.pending_out
                    pending.extend(out)
                    if len(pending) >= PENDING_LIMIT:
                        self._fold()
                else:
                    self._add_out(out)
            if label is not None:
                _add_categorical(self.label_counts, label)
            if duration_s is not None:
                d = self.durations.get(error_type)
                if d is None:
                    if error_type is not None and len(self.durations) > MAX_ERROR_TYPES:
                        error_type = ERROR_TYPE_OTHER
                        d = self.durations.get(error_type)
                    if d is None:
                        d = self.durations[error_type] = _Duration()
                d.add(duration_s)
            if exemplar is not None:
                self.exemplar = exemplar

    def _add_num(self, num: NumericStats) -> None:
        self.num_counts += num.counts
        np.minimum(self.num_min, num.vmin, out=self.num_min)
        np.maximum(self.num_max, num.vmax, out=self.num_max)
        np.minimum(self.num_imin, num.vmin, out=self.num_imin)
        np.maximum(self.num_imax, num.vmax, out=self.num_imax)
        self.num_sum += num.vsum
        if num.quality is not None:
            self.num_quality += num.quality

    def _add_out(self, out: NumericStats) -> None:
        self.out_counts += out.counts
        np.minimum(self.out_min, out.vmin, out=self.out_min)
        np.maximum(self.out_max, out.vmax, out=self.out_max)
        np.minimum(self.out_imin, out.vmin, out=self.out_imin)
        np.maximum(self.out_imax, out.vmax, out=self.out_imax)
        self.out_sum += out.vsum

    def _fold(self) -> None:
        """Bin the buffered small-batch rows (caller holds the lock)."""
        if self.pending_num and self.numeric is not None:
            v = np.array(self.pending_num, dtype=np.float64).reshape(-1, self.numeric.k)
            self.pending_num = []
            self._add_num(self.numeric.stats(v, None))
        if self.pending_out and self.outputs is not None:
            v = np.array(self.pending_out, dtype=np.float64).reshape(-1, self.outputs.k)
            self.pending_out = []
            self._add_out(self.outputs.stats(v, None))

    def count_error(self) -> None:
        with self.lock:
            self.errors += 1

    # --- export ---------------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """Copies of every counter; resets the since-last-snapshot min/max."""
        # the values first: a value counted under the lock below got its code (and label) before
        tables = {name: (tuple(col.label_table()), col.known()) for name, col in self.segment_columns.items()}
        with self.lock:
            self._fold()
            snap = Snapshot(
                time_ns=time.time_ns(),
                start_ns=self.start_ns,
                rows=self.rows,
                errors=self.errors,
                schema=self.schema.copy(),
                num_counts=self.num_counts.copy(),
                num_min=self.num_min.copy(),
                num_max=self.num_max.copy(),
                num_imin=self.num_imin.copy(),
                num_imax=self.num_imax.copy(),
                num_sum=self.num_sum.copy(),
                num_quality=self.num_quality.copy(),
                cat_counts=[c.copy() for c in self.cat_counts],
                cat_quality=self.cat_quality.copy(),
                out_counts=self.out_counts.copy(),
                out_min=self.out_min.copy(),
                out_max=self.out_max.copy(),
                out_imin=self.out_imin.copy(),
                out_imax=self.out_imax.copy(),
                out_sum=self.out_sum.copy(),
                label_counts=self.label_counts.copy(),
                durations={k: d.frozen() for k, d in self.durations.items()},
                exemplar=self.exemplar,
                segments=tuple(c.copy(*tables[name]) for name, c in self.segments.items() if name in tables),
            )
            self.num_imin.fill(np.inf)
            self.num_imax.fill(-np.inf)
            self.out_imin.fill(np.inf)
            self.out_imax.fill(-np.inf)
        return snap

    def restore_interval(self, snap: Snapshot) -> None:
        """Fold an unexported snapshot's interval min/max back (its export failed)."""
        with self.lock:
            np.minimum(self.num_imin, snap.num_imin, out=self.num_imin)
            np.maximum(self.num_imax, snap.num_imax, out=self.num_imax)
            np.minimum(self.out_imin, snap.out_imin, out=self.out_imin)
            np.maximum(self.out_imax, snap.out_imax, out=self.out_imax)

    def nbytes(self) -> int:
        """Bytes held by the counters (bounded by features x bins)."""
        arrays = [self.num_counts, self.num_min, self.num_max, self.num_imin, self.num_imax, self.num_sum,
                  self.num_quality, self.cat_quality, self.out_counts, self.out_min, self.out_max,
                  self.out_imin, self.out_imax, self.out_sum, self.label_counts, self.schema, *self.cat_counts]
        pending = 8 * (len(self.pending_num) * (self.numeric.k if self.numeric else 0)
                       + len(self.pending_out) * (self.outputs.k if self.outputs else 0))
        segments = sum(c.nbytes() for c in self.segments.values())
        return int(sum(a.nbytes for a in arrays)) + 200 * len(self.durations) + pending + segments


def _add_categorical(counts: np.ndarray, c: CategoricalStats) -> None:
    if c.indices is not None:
        for i in c.indices:
            counts[i] += 1
    else:
        counts += c.counts


# --- registry --------------------------------------------------------------------------------------

_registry_lock = threading.Lock()
_registry: dict[tuple[str, str], ModelAggregate] = {}


def set_role(agg: ModelAggregate, role: str) -> None:
    """Put ``ml.model.role`` on every metric point of ``agg`` (the processor pins the baseline with it)."""
    if agg.attributes.get(semconv.MODEL_ROLE) != role:
        agg.attributes = {**agg.attributes, semconv.MODEL_ROLE: role}  # a new dict: an export may be reading


def get_aggregate(name: str, version: str, reference: Reference | None) -> ModelAggregate:
    """The aggregate of (name, version), created on first use; one per model version per process.

    Raises ConfigurationError when the same model version is monitored with two different references.
    """
    key = (name, version)
    with _registry_lock:
        agg = _registry.get(key)
        if agg is None:
            agg = _registry[key] = ModelAggregate(name, version, reference)
        elif _layout(agg.reference) != _layout(reference):
            raise ConfigurationError(
                f"model {name!r} version {version!r} is already monitored with a reference of different "
                "features, edges or categories"
            )
        return agg


def _layout(reference: Reference | None) -> Any:
    """What the counters depend on: names, kinds, edges, categories and min/max (not counts or dates)."""
    if reference is None:
        return None

    def one(p: Any) -> Any:
        if isinstance(p, NumericProfile):
            return (p.name, "n", p.edges, p.min, p.max)
        return (p.name, "c", p.categories)

    segments = tuple((name, tuple(col.values)) for name, col in (reference.segments or {}).items())
    return tuple(one(p) for p in reference.streamed_features), tuple(one(p) for p in reference.outputs), \
        reference.multivariate, segments


def aggregates() -> list[ModelAggregate]:
    with _registry_lock:
        return list(_registry.values())


def _clear() -> None:
    """Forget every aggregate (tests)."""
    with _registry_lock:
        _registry.clear()


def _after_fork_in_child() -> None:
    global _registry_lock
    _registry_lock = threading.Lock()
    for agg in list(_registry.values()):
        agg._reset()
        agg.segment_columns.after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
