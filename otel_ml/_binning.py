"""Binning with a reference's edges and categories, one vectorised pass per batch or column.

Numeric bucket semantics are OpenTelemetry's explicit-bucket histogram: with edges
``e[0] < ... < e[n-1]``, bucket 0 is ``(-inf, e[0]]``, bucket ``i`` is ``(e[i-1], e[i]]`` and bucket
``n`` is ``(e[n-1], +inf)``; ``n`` edges give ``n + 1`` counts. A categorical value is counted under
its key (``_reference.category_key``) when that is one of the reference's categories, else under
``__other__``.

Reference building bins with :func:`bucket_counts` and ``category_key``; the predict hot path and
``otel-ml drift`` (:func:`count_column`) use the tables below, which bin by the same rules (tested
equal), so the processor compares counts directly. Tables are built once per model version from its
profiles; their ``stats`` methods take no lock and return frozen per-batch statistics that
:mod:`otel_ml._aggregate` adds to the cumulative counters.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from . import semconv
from ._adapters import MISSING_TYPE_NAMES, FactorizedColumn, numeric_column

if TYPE_CHECKING:
    from ._reference import CategoricalProfile, NumericProfile

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Batches of at most this many rows are counted as Python lists (cheaper than arrays for a few values).
SMALL_BATCH = 8
#: Up to this many edges per feature, batches are binned by comparison passes; above, by searchsorted.
_LOOP_MAX_EDGES = 32
#: Huge batches are binned in slices of this many rows, so temporary arrays stay small.
_BIN_CHUNK_ROWS = 1 << 16
#: Distinct strings remembered per categorical table (bounded memory whatever the input).
_MAX_KEY_CACHE = 4096
#: More cache misses than this in one column, with room in the cache: learn its distinct strings first.
_COLD_MISSES = 32

# Rows of NumericStats.quality (and of the aggregate's numeric quality matrix).
Q_MISSING, Q_NON_FINITE, Q_WRONG_TYPE, Q_OUT_OF_RANGE = range(4)
N_QUALITY = 4


# --- The rules, shared by reference building and counting -------------------------------------------


def bucket_index(values: FloatArray, edges: FloatArray) -> IntArray:
    """Index of the OTel explicit bucket holding each (finite) value."""
    return np.searchsorted(edges, values, side="left").astype(np.int64, copy=False)


def bucket_counts(values: FloatArray, edges: FloatArray) -> IntArray:
    """Counts per OTel explicit bucket (``len(edges) + 1`` of them) of the finite ``values``."""
    return np.bincount(bucket_index(values, edges), minlength=len(edges) + 1).astype(np.int64)


def quantile_edges(values: FloatArray, bins: int) -> FloatArray:
    """Edges that split ``values`` into about ``bins`` buckets holding a fair share each.

    Ties collapse duplicate edges, so an integer feature with three distinct values gets at most
    three buckets. The top edge sits below the maximum so the last bucket is never empty.
    """
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.empty(0, dtype=np.float64)
    qs = np.quantile(finite, np.linspace(0.0, 1.0, bins + 1)[1:-1], method="inverted_cdf")
    edges = np.unique(qs.astype(np.float64))
    return edges[edges < finite.max()]


# --- Numeric tables ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NumericStats:
    """What one batch adds to a :class:`NumericTable`'s counters (arrays are per column)."""

    counts: IntArray  # flat, k * width (see NumericTable)
    vmin: FloatArray
    vmax: FloatArray
    vsum: FloatArray  # sum of the finite values
    quality: IntArray | None  # (N_QUALITY, k), rows Q_*; None when every value was finite and in range
    first_row: list[float] | None = None  # the batch's first row (exemplar values of model outputs)


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
        self.ref_min_list = self.ref_min.tolist()
        self.ref_max_list = self.ref_max.tolist()
        #: OTel spec: a histogram that may see negative values carries no sum.
        self.sum_ok = np.array([p.min >= 0 for p in profiles], dtype=bool)
        self.size = self.k * self.width

    def stats(self, v: FloatArray, wrong: IntArray | None) -> NumericStats:
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
                quality = np.zeros((N_QUALITY, k), dtype=np.int64)
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
            quality = np.zeros((N_QUALITY, k), dtype=np.int64)
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
                quality = np.zeros((N_QUALITY, k), dtype=np.int64)
            oor = (v < self.ref_min) | (v > self.ref_max)
            if finite is not None:
                oor &= finite
            quality[Q_OUT_OF_RANGE] = oor.sum(axis=0)
        counts = self._bin(v, finite)
        return NumericStats(counts, vmin, vmax, colsum, quality, v[0].tolist() if n else None)

    def bin_index(self, v: FloatArray) -> IntArray:
        """Each cell's flat bucket index (``column * width + bucket``), -1 where the value is not finite.

        The same buckets as :meth:`stats` counts (the rows of a batch, kept apart: segments add them up
        per segment value).
        """
        n, k = v.shape
        idx = np.empty((n, k), dtype=np.int64)
        for j, e in enumerate(self.edges):
            idx[:, j] = np.searchsorted(e, v[:, j], side="left")
        idx += self.offsets
        finite = np.isfinite(v)
        if not finite.all():
            idx[~finite] = -1
        return idx

    def _bin(self, v: FloatArray, finite: npt.NDArray[np.bool_] | None) -> IntArray:
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


# --- Categorical tables -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CategoricalStats:
    """What one column of a batch adds to a :class:`CategoricalTable`'s counters.

    Exactly one of ``counts`` (per bucket: the categories, then ``__other__``) and ``indices`` (the
    bucket of each non-missing value; cheaper for a few values) is set.
    """

    counts: IntArray | None
    indices: list[int] | None
    missing: int
    unseen: int

    def dense(self, size: int) -> IntArray:
        """Counts per bucket, whichever form the batch was counted in."""
        if self.counts is not None:
            return self.counts
        return np.bincount(np.asarray(self.indices, dtype=np.int64), minlength=size)


class CategoricalTable:
    """Reference categories of one column, with a bounded cache from raw string to bucket index."""

    def __init__(self, profile: CategoricalProfile) -> None:
        from ._reference import category_key  # that module imports this one: bound here

        self.name = profile.name
        self.categories = profile.categories
        self.labels = profile.bucket_labels
        self.index = {c: i for i, c in enumerate(profile.categories)}
        self.other = len(profile.categories)
        self.size = self.other + 1
        self._missing = self.size  # bucket of missing values while counting; never exported
        self._max_len = semconv.MAX_NAME_LENGTH  # a longer value counts under its first characters
        self._category_key = category_key
        #: str -> bucket, bounded; only str keys, so 1, 1.0 and True (equal as dict keys) never meet here
        self._str_cache: dict[str, int] = {}

    @property
    def missing_bucket(self) -> int:
        """The bucket :meth:`row_buckets` gives a missing value (one past ``__other__``; never exported)."""
        return self._missing

    def key_index(self, value: Any) -> int | None:
        """Bucket of one value; None when it is missing."""
        if type(value) is str:
            i = self._str_cache.get(value)
            if i is not None:
                return i
            i = self.index.get(value[: self._max_len], self.other)
            if len(self._str_cache) < _MAX_KEY_CACHE:
                self._str_cache[value] = i
            return i
        if value is None or type(value).__name__ in MISSING_TYPE_NAMES:
            return None
        try:
            key = self._category_key(value)
        except Exception:
            return self.other
        if key is None:
            return None
        return self.index.get(key[: self._max_len], self.other)

    def row_buckets(self, values: Any) -> npt.NDArray[np.intp]:
        """Each cell's bucket (the categories, then ``__other__``; :attr:`missing_bucket` when missing):
        what :meth:`stats` counts, row by row."""
        if len(values) <= SMALL_BATCH:
            bucket = self._bucket
            cells = values.tolist() if isinstance(values, np.ndarray) else values
            return np.array([bucket(v) for v in cells], dtype=np.intp)
        return self._rows(values)

    def stats_of_buckets(self, idx: npt.NDArray[np.intp]) -> CategoricalStats:
        """:meth:`stats` of a column already turned into :meth:`row_buckets`."""
        return self._stats(np.bincount(idx, minlength=self.size + 1))

    def stats(self, values: Any) -> CategoricalStats:
        """Counts of a column (ndarray, list or other sequence of cells), missing and unseen values."""
        if len(values) <= SMALL_BATCH:
            idx = []
            missing = 0
            for v in (values.tolist() if isinstance(values, np.ndarray) else values):
                i = self.key_index(v)
                if i is None:
                    missing += 1
                else:
                    idx.append(i)
            return CategoricalStats(None, idx, missing, idx.count(self.other))
        return self._stats(np.bincount(self._rows(values), minlength=self.size + 1))

    def stats_and_codes(self, values: Any) -> tuple[CategoricalStats, npt.NDArray[np.intp] | list[int]]:
        """:meth:`stats` and each row's bucket (``size``: missing; a list for a small batch), from one
        lookup pass (the multivariate summary's categorical columns)."""
        if len(values) <= SMALL_BATCH:
            key_index, gone = self.key_index, self._missing
            codes = [gone if (i := key_index(v)) is None else i
                     for v in (values.tolist() if isinstance(values, np.ndarray) else values)]
            missing = codes.count(gone)
            idx = [c for c in codes if c != gone] if missing else codes
            return CategoricalStats(None, idx, missing, idx.count(self.other)), codes
        rows = self._rows(values)
        return self._stats(np.bincount(rows, minlength=self.size + 1)), rows

    def _stats(self, counts: IntArray) -> CategoricalStats:
        missing = int(counts[self._missing])
        counts = counts[: self.size]
        return CategoricalStats(counts, None, missing, int(counts[self.other]))

    def _rows(self, values: Any) -> npt.NDArray[np.intp]:
        """Each row's bucket (``size``: missing)."""
        arr = values if isinstance(values, np.ndarray) else None
        if arr is not None and arr.ndim == 1 and arr.dtype.kind in "iufb":
            return self._number_rows(arr)
        if isinstance(values, FactorizedColumn):
            return self._factorized_rows(values)
        return self._cell_rows(arr.tolist() if arr is not None else list(values))

    def _number_rows(self, arr: npt.NDArray[Any]) -> npt.NDArray[np.intp]:
        """A number or bool array: each distinct value is looked up once."""
        uniq, inverse = np.unique(arr, return_inverse=True)
        lut = np.array([self._bucket(u) for u in uniq.tolist()], dtype=np.intp)
        return lut[inverse.reshape(-1)]

    def _cell_rows(self, cells: list[Any]) -> npt.NDArray[np.intp]:
        """Python cells: strings through the cache in one C-level pass, the rest one by one.

        Only ``str`` keys are ever cached, and no other type compares equal to a ``str``, so a cache
        hit is exactly what :meth:`key_index` would return (``1``, ``1.0`` and ``True``, equal as dict
        keys, never meet here); every miss (a new string, a number, None, NaN) goes through
        :meth:`key_index`. A cold cache learns the batch's distinct strings first.
        """
        n = len(cells)
        try:
            learned = n > _COLD_MISSES and not self._str_cache  # a new table: learn first, look up once
            if learned:
                self._learn(cells)
            idx, miss = self._lookup(cells)
            if not learned and miss.size > _COLD_MISSES and len(self._str_cache) < _MAX_KEY_CACHE:
                self._learn(cells)
                idx, miss = self._lookup(cells)
        except TypeError:  # an unhashable cell (a list, a dict): one by one
            return np.fromiter(map(self._bucket, cells), dtype=np.intp, count=n)
        if miss.size:
            bucket = self._bucket
            idx[miss] = [bucket(cells[i]) for i in miss.tolist()]
        return idx

    def _lookup(self, cells: list[Any]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """Bucket of every cached string (-1 elsewhere) and the positions of the misses."""
        idx = np.fromiter(map(self._str_cache.get, cells, repeat(-1, len(cells))), dtype=np.intp, count=len(cells))
        return idx, np.flatnonzero(idx < 0)

    def _learn(self, cells: list[Any]) -> None:
        """Cache the distinct strings among ``cells`` (while the cache has room)."""
        key_index = self.key_index
        for v in dict.fromkeys(cells):
            if type(v) is str:
                key_index(v)

    def _factorized_rows(self, col: FactorizedColumn) -> npt.NDArray[np.intp]:
        """A column the adapter already reduced to codes over its distinct strings."""
        lut = np.array([*map(self._bucket, col.uniques), self._missing], dtype=np.intp)  # code -1: missing
        return lut[col.codes]

    def _bucket(self, value: Any) -> int:
        i = self.key_index(value)
        return self._missing if i is None else i


# --- Whole columns (offline counting) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ColumnCounts:
    """What the library counts for one feature (or model output) over a whole column (docs/semantic-conventions.md)."""

    buckets: IntArray  # len(edges) + 1 numeric buckets, or the categories then "__other__"
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
    from ._reference import NumericProfile  # that module imports this one

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
        q = s.quality[:, 0].tolist() if s.quality is not None else [0] * N_QUALITY
        invalid = q[Q_NON_FINITE] + q[Q_WRONG_TYPE]
        return ColumnCounts(s.counts, rows=int(s.counts.sum()) + q[Q_MISSING] + invalid, missing=q[Q_MISSING],
                            invalid=invalid, out_of_range=q[Q_OUT_OF_RANGE])
    cat = CategoricalTable(profile)
    c = cat.stats(np.full(rows, np.nan) if values is None else values)
    counts = c.dense(cat.size)
    return ColumnCounts(counts, rows=int(counts.sum()) + c.missing, missing=c.missing, unseen=c.unseen)
