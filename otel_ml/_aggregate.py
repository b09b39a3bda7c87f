"""In-memory cumulative counts per monitored model: binning tables, per-call statistics, the registry.

A :class:`ModelAggregate` holds fixed-size numpy arrays sized from the reference (features x bins,
categories + 1, the default duration buckets), so memory never grows with the traffic, whatever the
input. A predict call computes its batch statistics without any lock (:meth:`NumericTable.stats`,
:meth:`CategoricalTable.stats`) and then adds them under the model's one lock (:meth:`ModelAggregate.commit`).
The export thread takes consistent copies with :meth:`ModelAggregate.snapshot`.

Fork safety: ``os.register_at_fork`` gives every aggregate a fresh lock and zero counts in a child
process, so a pre-fork worker reports its own traffic and the parent's counts are untouched.
"""

from __future__ import annotations

import bisect
import math
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import semconv
from ._adapters import numeric_column
from ._errors import ConfigurationError
from ._reference import (
    OUTPUT_LABEL,
    OUTPUT_VALUE,
    PROBA_PREFIX,
    CategoricalProfile,
    NumericProfile,
    Reference,
    category_key,
)

#: Default explicit bucket bounds of OTel duration histograms, in seconds (semantic conventions).
DURATION_BOUNDS: tuple[float, ...] = (
    0.0, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)
#: error.type values kept per model; further distinct types are counted under "_OTHER".
MAX_ERROR_TYPES = 16
ERROR_TYPE_OTHER = "_OTHER"
#: Up to this many edges per feature, batches are binned by comparison passes; above, by searchsorted.
_LOOP_MAX_EDGES = 32
#: Huge batches are binned in slices of this many rows, so temporary arrays stay small.
_BIN_CHUNK_ROWS = 1 << 16
_MAX_KEY_CACHE = 4096
#: Batches of at most this many rows are buffered as Python rows and binned together later.
SMALL_BATCH = 8
#: Buffered rows are folded into the counters (one vectorised pass) once this many are pending.
PENDING_LIMIT = 256

SCHEMA_KINDS: tuple[str, ...] = (
    semconv.SCHEMA_MISSING_COLUMN,
    semconv.SCHEMA_UNEXPECTED_COLUMN,
    semconv.SCHEMA_WIDTH_MISMATCH,
    semconv.SCHEMA_UNSUPPORTED_INPUT,
)
SCHEMA_INDEX = {k: i for i, k in enumerate(SCHEMA_KINDS)}

# Rows of NumericStats.quality / the aggregate's quality matrix.
Q_MISSING, Q_NON_FINITE, Q_WRONG_TYPE, Q_OUT_OF_RANGE = range(4)


class NumericStats:
    """What one batch adds to a :class:`NumericTable`'s counters (arrays are per column)."""

    __slots__ = ("counts", "vmin", "vmax", "vsum", "quality", "first_row")

    def __init__(self, counts: np.ndarray, vmin: np.ndarray, vmax: np.ndarray, vsum: np.ndarray,
                 quality: np.ndarray | None, first_row: list[float] | None = None) -> None:
        self.counts = counts  # flat int64, k * width
        self.vmin = vmin
        self.vmax = vmax
        self.vsum = vsum  # sum of the finite values
        self.quality = quality  # int64 (4, k) or None when every value was finite and in range
        self.first_row = first_row  # the batch's first row (exemplar values of model outputs)


class NumericTable:
    """Pre-computed binning table for numeric columns sharing one counts matrix (padded to the widest)."""

    def __init__(self, profiles: Sequence[NumericProfile]) -> None:
        self.names = tuple(p.name for p in profiles)
        self.k = len(profiles)
        self.edges = [np.asarray(p.edges, dtype=np.float64) for p in profiles]
        self.edge_lists = [list(p.edges) for p in profiles]
        max_e = max((len(e) for e in self.edges), default=0)
        self.max_edges = max_e
        self.width = max_e + 1
        padded = np.full((self.k, max(max_e, 1)), np.inf)
        for j, e in enumerate(self.edges):
            padded[j, : len(e)] = e
        self.padded = padded
        self.offsets = np.arange(self.k, dtype=np.int64) * self.width
        self.offset_list = self.offsets.tolist()
        self.ref_min = np.array([p.min for p in profiles], dtype=np.float64)
        self.ref_max = np.array([p.max for p in profiles], dtype=np.float64)
        #: OTel spec: a histogram that may see negative values carries no sum.
        self.sum_ok = np.array([p.min >= 0 for p in profiles], dtype=bool)
        self.size = self.k * self.width

    def stats(self, v: np.ndarray, wrong: np.ndarray | None) -> NumericStats:
        """Batch statistics of ``v`` (n x k float64; NaN = missing or wrong type, counted in ``wrong``)."""
        n = v.shape[0]
        k = self.k
        colsum = v.sum(axis=0)
        all_finite = wrong is None and bool(np.isfinite(colsum).all())
        if n == 1 and all_finite:
            row = v[0]
            values = row.tolist()
            idx = [o + bisect.bisect_left(e, x) for o, e, x in zip(self.offset_list, self.edge_lists, values)]
            counts = np.zeros(self.size, dtype=np.int64)
            counts[idx] = 1
            quality = None
            oor = (row < self.ref_min) | (row > self.ref_max)
            if oor.any():
                quality = np.zeros((4, k), dtype=np.int64)
                quality[Q_OUT_OF_RANGE] = oor
            return NumericStats(counts, row, row, colsum, quality, values)
        if all_finite:
            finite = None
            vmin = v.min(axis=0)
            vmax = v.max(axis=0)
            quality = None
        else:
            nan = np.isnan(v)
            finite = np.isfinite(v)
            quality = np.zeros((4, k), dtype=np.int64)
            n_nan = nan.sum(axis=0)
            n_fin = finite.sum(axis=0)
            if wrong is not None:
                quality[Q_WRONG_TYPE] = wrong
                quality[Q_MISSING] = n_nan - wrong
            else:
                quality[Q_MISSING] = n_nan
            quality[Q_NON_FINITE] = n - n_fin - n_nan
            vmin = np.min(v, axis=0, where=finite, initial=np.inf)
            vmax = np.max(v, axis=0, where=finite, initial=-np.inf)
            colsum = np.sum(v, axis=0, where=finite)
        if (vmin < self.ref_min).any() or (vmax > self.ref_max).any():
            if quality is None:
                quality = np.zeros((4, k), dtype=np.int64)
            oor = (v < self.ref_min) | (v > self.ref_max)
            if finite is not None:
                oor &= finite
            quality[Q_OUT_OF_RANGE] = oor.sum(axis=0)
        counts = self._bin(v, finite)
        return NumericStats(counts, vmin, vmax, colsum, quality, v[0].tolist() if n else None)

    def _bin(self, v: np.ndarray, finite: np.ndarray | None) -> np.ndarray:
        """Flat bucket counts of a batch: one comparison pass per edge rank, across all columns at once.

        Bucket index = number of edges strictly below the value (OTel upper-inclusive buckets); padding
        edges are +inf, so shorter edge lists need no special case. With many edges, per-column
        ``searchsorted`` is cheaper and is used instead.
        """
        n, k = v.shape
        if n > _BIN_CHUNK_ROWS:  # bound the temporaries of huge batches
            total = np.zeros(self.size, dtype=np.int64)
            for lo in range(0, n, _BIN_CHUNK_ROWS):
                hi = lo + _BIN_CHUNK_ROWS
                total += self._bin(v[lo:hi], None if finite is None else finite[lo:hi])
            return total
        if self.max_edges <= _LOOP_MAX_EDGES:
            idx = np.zeros((n, k), dtype=np.uint8)
            padded = self.padded
            for r in range(self.max_edges):
                np.add(idx, v > padded[:, r], out=idx, casting="unsafe")
            flat = idx + self.offsets
        else:
            vt = np.ascontiguousarray(v.T)
            idx64 = np.empty((k, n), dtype=np.int64)
            for j, e in enumerate(self.edges):
                idx64[j] = np.searchsorted(e, vt[j], side="left")
            flat = idx64.T + self.offsets
        if finite is not None:
            flat = flat[finite]
        return np.bincount(flat.ravel(), minlength=self.size)


class CategoricalTable:
    """Reference categories of one column, with a bounded cache from raw value to bucket index."""

    def __init__(self, profile: CategoricalProfile) -> None:
        self.name = profile.name
        self.categories = profile.categories
        self.labels = profile.bucket_labels
        self.index = {c: i for i, c in enumerate(profile.categories)}
        self.other = len(profile.categories)
        self._str_cache: dict[str, int] = {}

    def key_index(self, value: Any) -> int | None:
        """Bucket of one value; None when it is missing."""
        if type(value) is str:
            i = self._str_cache.get(value)
            if i is not None:
                return i
            i = self.index.get(value[: semconv.MAX_NAME_LENGTH], self.other)
            if len(self._str_cache) < _MAX_KEY_CACHE:
                self._str_cache[value] = i
            return i
        if value is None or type(value).__name__ in ("NAType", "NaTType"):
            return None
        try:
            key = category_key(value)
        except Exception:
            return self.other
        if key is None:
            return None
        return self.index.get(key[: semconv.MAX_NAME_LENGTH], self.other)

    def stats(self, values: Any) -> tuple[Any, int, int]:
        """(counts per bucket incl. 'other', missing, unseen) of a column (ndarray or list).

        For a few values the counts come back as a list of bucket indices (cheaper than an array).
        """
        if len(values) <= SMALL_BATCH:
            idx = []
            missing = 0
            for v in (values.tolist() if isinstance(values, np.ndarray) else values):
                i = self.key_index(v)
                if i is None:
                    missing += 1
                else:
                    idx.append(i)
            return idx, missing, idx.count(self.other)
        counts = np.zeros(self.other + 1, dtype=np.int64)
        missing = 0
        arr = values if isinstance(values, np.ndarray) else None
        if arr is not None and arr.dtype.kind in "iufb" and arr.ndim == 1:
            if arr.dtype.kind == "f":
                nan = np.isnan(arr)
                missing = int(nan.sum())
                arr = arr[~nan]
            uniq, cnt = np.unique(arr, return_counts=True)
            for u, c in zip(uniq.tolist(), cnt.tolist()):
                i = self.key_index(u)
                counts[i] += c
        else:
            seq = values.tolist() if arr is not None else values
            key_index = self.key_index
            for v in seq:
                i = key_index(v)
                if i is None:
                    missing += 1
                else:
                    counts[i] += 1
        return counts, missing, int(counts[self.other])


@dataclass(frozen=True)
class ColumnCounts:
    """What the library counts for one feature (or model output) over a whole column (docs/semantic-conventions.md)."""

    buckets: np.ndarray  # int64: len(edges) + 1 numeric buckets, or the categories then "__other__"
    rows: int
    missing: int = 0
    invalid: int = 0  # numeric: non-finite or wrong-typed
    out_of_range: int = 0  # numeric: finite values outside the reference [min, max]
    unseen: int = 0  # categorical: values not among the reference categories


def count_column(profile: NumericProfile | CategoricalProfile, values: Any, rows: int) -> ColumnCounts:
    """Count a whole column against its profile with the predict path's own adapter and tables.

    ``values`` is a 1-D array-like of ``rows`` cells, or None for an absent column (every row missing,
    as on the predict path). Used by the offline ``otel-ml drift`` command, so it can never count
    differently from a monitored process.
    """
    if isinstance(profile, NumericProfile):
        table = NumericTable([profile])
        if rows == 0:
            return ColumnCounts(np.zeros(table.size, dtype=np.int64), rows=0)
        if values is None:
            col, wrong = np.full(rows, np.nan), 0
        else:
            col, wrong = numeric_column(values)
        with np.errstate(invalid="ignore", over="ignore"):  # inf + -inf in the column's sum: no warning
            s = table.stats(col.reshape(-1, 1), np.array([wrong], dtype=np.int64) if wrong else None)
        q = s.quality[:, 0].tolist() if s.quality is not None else [0, 0, 0, 0]
        invalid = q[Q_NON_FINITE] + q[Q_WRONG_TYPE]
        return ColumnCounts(s.counts, rows=int(s.counts.sum()) + q[Q_MISSING] + invalid, missing=q[Q_MISSING],
                            invalid=invalid, out_of_range=q[Q_OUT_OF_RANGE])
    cat = CategoricalTable(profile)
    counts, missing, unseen = cat.stats(np.full(rows, np.nan) if values is None else values)
    if isinstance(counts, list):  # a few values come back as bucket indices
        counts = np.bincount(np.asarray(counts, dtype=np.int64), minlength=cat.other + 1)
    return ColumnCounts(counts, rows=int(counts.sum()) + missing, missing=missing, unseen=unseen)


class _Duration:
    __slots__ = ("counts", "count", "sum", "min", "max")

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

    def copy(self) -> _Duration:
        c = _Duration()
        c.counts = list(self.counts)
        c.count, c.sum, c.min, c.max = self.count, self.sum, self.min, self.max
        return c


class Snapshot:
    """Consistent copy of a model's counters, taken by the export thread."""

    __slots__ = (
        "time_ns", "start_ns", "rows", "errors", "schema", "num_counts", "num_min", "num_max", "num_sum",
        "num_quality", "cat_counts", "cat_quality", "out_counts", "out_min", "out_max", "out_sum",
        "label_counts", "durations", "exemplar",
    )

    def __init__(self, **kw: Any) -> None:
        for k, v in kw.items():
            setattr(self, k, v)


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
        self.numeric = NumericTable(num) if num else None
        self.outputs = NumericTable(out_num) if out_num else None
        self.output_index = {p.name: j for j, p in enumerate(out_num)}
        #: the numeric outputs are exactly the probability columns, in class order
        self.proba_in_order = bool(out_num) and [p.name for p in out_num] == self.proba_outputs
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
        self.num_quality = np.zeros((4, k), dtype=np.int64)
        self.cat_counts = [np.zeros(t.other + 1, dtype=np.int64) for t in self.cat_tables]
        self.cat_quality = np.zeros((2, len(self.cat_tables)), dtype=np.int64)  # missing, unseen
        ot = self.outputs
        ko = ot.k if ot else 0
        self.out_counts = np.zeros(ot.size if ot else 0, dtype=np.int64)
        self.out_min = np.full(ko, np.inf)
        self.out_max = np.full(ko, -np.inf)
        self.out_imin = np.full(ko, np.inf)
        self.out_imax = np.full(ko, -np.inf)
        self.out_sum = np.zeros(ko)
        self.label_counts = np.zeros(self.label_table.other + 1 if self.label_table else 0, dtype=np.int64)
        # Small batches wait here as Python rows; _fold() bins them in one vectorised pass. Bounded
        # by PENDING_LIMIT rows; always folded before a snapshot, so exported counts stay exact.
        self.pending_num: list[list[float]] = []
        self.pending_out: list[list[float]] = []
        self.durations: dict[str | None, _Duration] = {}
        #: latest sampled call: (trace id, span id, time, duration, error.type, first output row or None)
        self.exemplar: tuple[Any, ...] | None = None

    # --- recording (called on the predict path) -------------------------------------------------
    def commit(
        self,
        rows: int,
        num: NumericStats | list[list[float]] | None,
        cats: list[tuple[int, Any, int, int]] | None,
        schema: list[int] | None,
        out: NumericStats | list[list[float]] | None,
        label: tuple[Any, int, int] | None,
        duration_s: float | None,
        error_type: str | None,
        exemplar: tuple[Any, ...] | None,
    ) -> None:
        """Add one call's statistics; the only code that runs under the model's lock.

        ``num``/``out`` are either NumericStats or, for small batches, the rows themselves (buffered).
        """
        with self.lock:
            self.rows += rows
            if num is not None:
                if type(num) is list:
                    pending = self.pending_num
                    pending.extend(num)
                    if len(pending) >= PENDING_LIMIT:
                        self._fold()
                else:
                    self._add_num(num)  # type: ignore[arg-type]
            if cats:
                for j, counts, missing, unseen in cats:
                    if type(counts) is list:
                        cc = self.cat_counts[j]
                        for i in counts:
                            cc[i] += 1
                    else:
                        self.cat_counts[j] += counts
                    self.cat_quality[0, j] += missing
                    self.cat_quality[1, j] += unseen
            if schema:
                for s in schema:
                    self.schema[s] += 1
            if out is not None:
                if type(out) is list:
                    pending = self.pending_out
                    pending.extend(out)
                    if len(pending) >= PENDING_LIMIT:
                        self._fold()
                else:
                    self._add_out(out)  # type: ignore[arg-type]
            if label is not None:
                counts = label[0]
                if type(counts) is list:
                    lc = self.label_counts
                    for i in counts:
                        lc[i] += 1
                else:
                    self.label_counts += counts
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
        with self.lock:
            self._fold()
            snap = Snapshot(
                time_ns=time.time_ns(),
                start_ns=self.start_ns,
                rows=self.rows,
                errors=self.errors,
                schema=self.schema.copy(),
                num_counts=self.num_counts.copy(),
                num_min=(self.num_min.copy(), self.num_imin.copy()),
                num_max=(self.num_max.copy(), self.num_imax.copy()),
                num_sum=self.num_sum.copy(),
                num_quality=self.num_quality.copy(),
                cat_counts=[c.copy() for c in self.cat_counts],
                cat_quality=self.cat_quality.copy(),
                out_counts=self.out_counts.copy(),
                out_min=(self.out_min.copy(), self.out_imin.copy()),
                out_max=(self.out_max.copy(), self.out_imax.copy()),
                out_sum=self.out_sum.copy(),
                label_counts=self.label_counts.copy(),
                durations={k: d.copy() for k, d in self.durations.items()},
                exemplar=self.exemplar,
            )
            self.num_imin.fill(np.inf)
            self.num_imax.fill(-np.inf)
            self.out_imin.fill(np.inf)
            self.out_imax.fill(-np.inf)
        return snap

    def restore_interval(self, snap: Snapshot) -> None:
        """Fold an unexported snapshot's interval min/max back (its export failed)."""
        with self.lock:
            np.minimum(self.num_imin, snap.num_min[1], out=self.num_imin)
            np.maximum(self.num_imax, snap.num_max[1], out=self.num_imax)
            np.minimum(self.out_imin, snap.out_min[1], out=self.out_imin)
            np.maximum(self.out_imax, snap.out_max[1], out=self.out_imax)

    def nbytes(self) -> int:
        """Bytes held by the counters (bounded by features x bins)."""
        arrays = [self.num_counts, self.num_min, self.num_max, self.num_imin, self.num_imax, self.num_sum,
                  self.num_quality, self.cat_quality, self.out_counts, self.out_min, self.out_max,
                  self.out_imin, self.out_imax, self.out_sum, self.label_counts, self.schema, *self.cat_counts]
        pending = 8 * (len(self.pending_num) * (self.numeric.k if self.numeric else 0)
                       + len(self.pending_out) * (self.outputs.k if self.outputs else 0))
        return int(sum(a.nbytes for a in arrays)) + 200 * len(self.durations) + pending


# --- registry --------------------------------------------------------------------------------------

_registry_lock = threading.Lock()
_registry: dict[tuple[str, str], ModelAggregate] = {}


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

    return tuple(one(p) for p in reference.features), tuple(one(p) for p in reference.outputs)


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


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
