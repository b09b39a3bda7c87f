"""Segment columns (``monitor(..., segments=[...])``): each row's bounded segment value, per column.

A segment is an input column (or a name the ``segments`` callable returns). Its values are bounded, so
the series per model are too:

* when the reference profiles the column as categorical: its categories (the reference's top ones);
* else, when the reference has a "segments" section for it: the values profiled there (the column's
  top values, by the same rule);
* else: the first :data:`MAX_VALUES_SEEN` distinct values this process sees, in order of arrival;

every other value, and a missing one, becomes ``__other__`` (:data:`otel_ml.semconv.OTHER_CATEGORY`).
At most :data:`otel_ml.semconv.MAX_SEGMENT_COLUMNS` segments per model, and at most
:data:`otel_ml.semconv.MAX_SEGMENT_SERIES` segment series per model version (:func:`series_bound`,
checked at decoration).

On the predict path each column becomes one integer code per row (:meth:`SegmentValues.codes`: each
distinct value is looked up once; pandas columns through their own codes); the aggregate adds the
call's rows, outputs and quality counts per code (:mod:`otel_ml._aggregate`). Prediction records carry
the same bounded value as ``ml.segment.<name>`` (mapped in the background sender through the same
:class:`SegmentValues`, so both agree).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt

from . import semconv
from ._adapters import MISSING_TYPE_NAMES, FactorizedColumn
from ._binning import SMALL_BATCH
from ._errors import ConfigurationError
from ._log import log_once
from ._reference import (
    OUTPUT_LABEL,
    OUTPUT_VALUE,
    PROBA_PREFIX,
    CategoricalProfile,
    NumericProfile,
    Reference,
    category_key,
    name_problem,
)

#: Distinct values kept per segment column the reference does not bound (first seen).
MAX_VALUES_SEEN = 20
#: Characters the processor's packing reserves; a value holding one becomes ``__other__``.
_RESERVED = ("\x1e", "\x1f")
#: Distinct strings remembered per segment column with their code (bounded memory whatever the input).
_MAX_CACHE = 4096
#: Quality kinds counted per segment value (summed over the features).
N_KINDS = len(semconv.QUALITY_KINDS)

Codes = npt.NDArray[np.intp]


class SegmentValues:
    """The bounded values of one segment column and each one's code (``__other__``: :attr:`other`).

    Fixed (from the reference) or learnt (the first :data:`MAX_VALUES_SEEN` values seen, under a lock:
    the predict path and the records' sender share it). Codes never change once given.
    """

    def __init__(self, name: str, allowed: Sequence[str] | None) -> None:
        self.name = name
        self.fixed = allowed is not None
        self.labels: list[str] = list(allowed) if allowed is not None else []
        self.capacity = len(self.labels) if allowed is not None else MAX_VALUES_SEEN
        self.other = self.capacity  # the code of __other__; codes run 0..capacity
        self._index = {v: i for i, v in enumerate(self.labels)}
        self._lock = threading.Lock()
        #: str cell -> code, bounded: a code never changes once given (nor does __other__ once all are given)
        self._cache: dict[str, int] = {}

    def label_table(self) -> list[str]:
        """The value of every code (unused codes of a learnt column: ``__other__``), then ``__other__``."""
        with self._lock:
            labels = list(self.labels)
        return labels + [semconv.OTHER_CATEGORY] * (self.capacity + 1 - len(labels))

    def known(self) -> int:
        """How many values (besides ``__other__``) have a code now."""
        return len(self.labels)

    def _code(self, value: Any) -> int:
        """The code of one value (the caller holds the lock)."""
        i = self._code_of(value)
        if type(value) is str and len(self._cache) < _MAX_CACHE:
            self._cache[value] = i
        return i

    def _code_of(self, value: Any) -> int:
        if type(value).__name__ in MISSING_TYPE_NAMES:  # pandas NA, NaT
            return self.other
        try:
            key = category_key(value)
        except Exception:
            return self.other
        if key is None:
            return self.other
        if self.fixed:  # looked up as a categorical feature is counted: under its first characters
            i = self._index.get(key[: semconv.MAX_NAME_LENGTH])
            return self.other if i is None else i
        i = self._index.get(key)
        if i is not None:
            return i
        if (len(self.labels) >= self.capacity or not key or len(key) > semconv.MAX_NAME_LENGTH
                or key == semconv.OTHER_CATEGORY or any(c in key for c in _RESERVED)):
            return self.other
        i = self._index[key] = len(self.labels)
        self.labels.append(key)
        return i

    def codes(self, column: Any, rows: int) -> Codes:
        """One code per row of ``column`` (ndarray, list, pandas/polars Series, factorized column, or one
        cell for a one-row input). Raises ValueError when its length is not ``rows``."""
        if _is_cell(column):
            column = [column]
        n = len(column)
        if n != rows:
            raise ValueError(f"segment {self.name!r} has {n} values for {rows} rows")
        if n <= SMALL_BATCH:
            cells = _cells(column)
            with self._lock:
                return np.array([self._code(v) for v in cells], dtype=np.intp)
        if isinstance(column, FactorizedColumn):
            return self._lookup(column.uniques, np.asarray(column.codes, dtype=np.intp))
        if type(column).__module__.startswith("pandas"):
            dtype = getattr(column.dtype, "name", None)
            if dtype == "category":
                return self._lookup(column.cat.categories.tolist(), column.cat.codes.to_numpy().astype(np.intp))
            if dtype in ("str", "string"):  # arrow or pandas strings: their own factorization
                codes, uniques = column.array.factorize()
                return self._lookup(uniques.tolist(), np.asarray(codes, dtype=np.intp))
        if hasattr(column, "to_numpy") and not isinstance(column, np.ndarray):  # pandas and polars Series
            column = column.to_numpy()
        if isinstance(column, np.ndarray) and column.ndim == 1 and column.dtype.kind in "iufb":
            uniq, inverse = np.unique(column, return_inverse=True)
            return self._lookup(uniq.tolist(), inverse.reshape(-1).astype(np.intp, copy=False))
        cells = column.tolist() if isinstance(column, np.ndarray) else list(column)
        try:  # strings seen before: one C-level pass
            idx = np.fromiter(map(self._cache.get, cells, repeat(-1, n)), dtype=np.intp, count=n)
        except TypeError:  # an unhashable cell
            return self._lookup(*_distinct(cells))
        miss = np.flatnonzero(idx < 0)
        if miss.size:
            idx[miss] = self._lookup(*_distinct([cells[i] for i in miss.tolist()]))
        return idx

    def _lookup(self, uniques: list[Any], inverse: Codes) -> Codes:
        """Codes of the rows of a column given as its distinct cells and each row's index (-1: missing)."""
        lut = np.full(len(uniques) + 1, self.other, dtype=np.intp)  # inverse -1 (missing): the last entry
        with self._lock:
            if self.fixed or len(self.labels) >= self.capacity:  # codes no longer depend on the order
                for u, v in enumerate(uniques):
                    lut[u] = self._code(v)
            else:
                present, first = np.unique(inverse, return_index=True)
                for u in present[np.argsort(first, kind="stable")].tolist():  # in order of arrival
                    if u >= 0:
                        lut[u] = self._code(uniques[u])
        return lut[inverse]

    def values(self, column: Any, rows: int) -> list[str]:
        """One bounded string per row (the prediction records' ``ml.segment.<name>``)."""
        codes = self.codes(column, rows)
        table = self.label_table()
        return [table[c] for c in codes.tolist()]


def _is_cell(v: Any) -> bool:
    return v is None or isinstance(v, (str, bytes, int, float, bool, np.generic))


def _cells(column: Any) -> list[Any]:
    if isinstance(column, FactorizedColumn):
        return list(column)
    if hasattr(column, "to_numpy") and not isinstance(column, np.ndarray):
        column = column.to_numpy()
    return column.tolist() if isinstance(column, np.ndarray) else list(column)


def _distinct(cells: list[Any]) -> tuple[list[Any], Codes]:
    """``(uniques, inverse)``: the distinct cells and each row's index among them."""
    try:
        keys = dict.fromkeys(cells)
    except TypeError:  # unhashable cells: each row on its own
        return cells, np.arange(len(cells), dtype=np.intp)
    if len(keys) > 1:
        kinds = {type(k) for k in keys}
        if any(t is bool or t is np.bool_ for t in kinds) and any(t is not bool and t is not np.bool_ for t in kinds):
            return cells, np.arange(len(cells), dtype=np.intp)  # True == 1 as dict keys, not as segment values
    position = {k: i for i, k in enumerate(keys)}
    return list(keys), np.fromiter(map(position.__getitem__, cells), dtype=np.intp, count=len(cells))


class SegmentColumns:
    """The :class:`SegmentValues` of a model version's segment columns, by name: at most
    :data:`~otel_ml.semconv.MAX_SEGMENT_COLUMNS`, created on first use and kept (shared by every
    monitored function of the model version and its prediction records)."""

    def __init__(self, reference: Reference | None) -> None:
        self.reference = reference
        self._columns: dict[str, SegmentValues] = {}
        self._lock = threading.Lock()
        self._per_value = 1 + output_series(reference) + N_KINDS
        self.series = 0  # the bound of the columns held (several monitored functions may add columns)

    def get(self, name: str) -> SegmentValues | None:
        """The column ``name`` (created now if there is room), or None beyond the limits: at most
        :data:`~otel_ml.semconv.MAX_SEGMENT_COLUMNS` columns, within :data:`~otel_ml.semconv.MAX_SEGMENT_SERIES`."""
        col = self._columns.get(name)
        if col is not None:
            return col
        with self._lock:
            col = self._columns.get(name)
            if col is None and len(self._columns) < semconv.MAX_SEGMENT_COLUMNS:
                new = SegmentValues(name, allowed_values(self.reference, name))
                series = (new.capacity + 1) * self._per_value
                if self.series + series <= semconv.MAX_SEGMENT_SERIES:
                    col = self._columns[name] = new
                    self.series += series
            return col

    def after_fork(self) -> None:
        """Fresh locks in a forked child (a lock held by another thread of the parent stays held there)."""
        self._lock = threading.Lock()
        for col in self._columns.values():
            col._lock = threading.Lock()

    def items(self) -> list[tuple[str, SegmentValues]]:
        with self._lock:
            return list(self._columns.items())


class Segments:
    """The segment columns of one monitored function, built at decoration time (validated here)."""

    def __init__(self, segments: Sequence[str] | Callable[[Any], Mapping[str, Any]],
                 reference: Reference | None) -> None:
        self.func: Callable[[Any], Mapping[str, Any]] | None = None
        self.columns: tuple[str, ...] = ()
        if callable(segments):
            self.func = segments
        else:
            self.columns = check_columns(segments)
        self.reference = reference
        bound = series_bound(self.columns if self.func is None else None, reference)
        if bound > semconv.MAX_SEGMENT_SERIES:
            what = (f"columns {list(self.columns)!r}" if self.func is None else
                    f"a segments callable (up to {semconv.MAX_SEGMENT_COLUMNS} segments of up to "
                    f"{max_values(reference)} values each)")
            raise ConfigurationError(
                f"segments: {what} make up to {bound} segment series per model version, more than "
                f"MAX_SEGMENT_SERIES = {semconv.MAX_SEGMENT_SERIES} (series = Σ columns (values + 1) × "
                f"(1 + output series + {N_KINDS})); segment by fewer or coarser columns, or build the reference "
                f"with a smaller top_k")
        self.state = SegmentColumns(reference)

    def share(self, state: SegmentColumns) -> None:
        """Use ``state`` (the model version's, held by its aggregate) instead of this function's own."""
        self.state = state

    # predict path: never raises (the caller counts a failure)
    def take(self, x: Any) -> dict[str, Any]:
        """The call's segment columns, as given (converted later, in the sender)."""
        if self.func is not None:
            got = self.func(x)
            if not isinstance(got, Mapping):
                raise TypeError(f"the segments callable returned {type(got).__name__}, not a mapping")
            return dict(got)
        from ._records import _column

        return {name: _column(x, name) for name in self.columns}

    def named(self, taken: Mapping[str, Any]) -> list[tuple[str, Any]]:
        """The segments of a call (at most four, in order), names checked. Raises ValueError on a bad name."""
        if len(taken) > semconv.MAX_SEGMENT_COLUMNS:
            log_once("segments:too_many", "otel-ml: the segments callable returned %d segments; only the first %d "
                     "are used (%s)", len(taken), semconv.MAX_SEGMENT_COLUMNS, ", ".join(map(str, list(taken)[:8])))
        out = []
        for name, column in list(taken.items())[: semconv.MAX_SEGMENT_COLUMNS]:
            if not isinstance(name, str) or name_problem(name) or any(c in name for c in _RESERVED):
                raise ValueError(f"segment name {name!r} is not a name of 1 to {semconv.MAX_NAME_LENGTH} characters")
            out.append((name, column))
        return out

    def column(self, name: str) -> SegmentValues | None:
        col = self.state.get(name)
        if col is None:
            log_once(f"segments:columns:{name}", "otel-ml: segment %r is not counted: a model version has at most "
                     "%d segment columns and %d segment series (%d held)", name, semconv.MAX_SEGMENT_COLUMNS,
                     semconv.MAX_SEGMENT_SERIES, self.state.series)
        return col

    # sender thread
    def values(self, taken: Mapping[str, Any], rows: int) -> list[tuple[str, list[str]]]:
        """Per segment (at most four, in order): one bounded string per row. Raises ValueError when a
        column's length differs from the call's rows."""
        out = []
        for name, column in self.named(taken):
            col = self.state.get(name) or SegmentValues(name, [])  # beyond the columns kept: all __other__
            out.append((name, col.values(column, rows)))
        return out


def sum_by_code(codes: Codes, per_row: np.ndarray, size: int) -> np.ndarray:
    """``per_row`` (rows x k) summed per code: a (size x k) int64 matrix (one bincount per non-zero column)."""
    out = np.zeros((size, per_row.shape[1]), dtype=np.int64)
    for j in np.flatnonzero(per_row.any(axis=0)).tolist():
        out[:, j] = np.bincount(codes, weights=per_row[:, j], minlength=size)
    return out


def check_columns(segments: Any) -> tuple[str, ...]:
    """``segments`` as a tuple of 1 to 4 distinct, valid column names; :class:`ConfigurationError` otherwise."""
    if not (isinstance(segments, (list, tuple)) and segments and all(isinstance(s, str) for s in segments)):
        raise ConfigurationError("segments must be a non-empty list of input column names or a callable(X) "
                                 f"returning a mapping of segment name to one value per row, got {segments!r}")
    if len(set(segments)) != len(segments):
        raise ConfigurationError(f"segments: a column is named twice in {list(segments)!r}")
    for s in segments:
        _check_name(s)
    if len(segments) > semconv.MAX_SEGMENT_COLUMNS:
        raise ConfigurationError(f"segments: at most {semconv.MAX_SEGMENT_COLUMNS} columns, got {len(segments)}")
    return tuple(segments)


def _check_name(name: str) -> None:
    problem = name_problem(name)
    if problem or any(c in name for c in _RESERVED):
        raise ConfigurationError(f"segments: column name {problem or 'holds a reserved control character'}, "
                                 f"got {name!r}")


def _usable(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(v for v in values if v != semconv.OTHER_CATEGORY and v and len(v) <= semconv.MAX_NAME_LENGTH
                 and not any(r in v for r in _RESERVED))


def allowed_values(reference: Reference | None, name: str) -> tuple[str, ...] | None:
    """The values the reference bounds segment ``name`` to (its categories as a categorical feature, else
    its "segments" section's values), or None (the first values seen)."""
    if reference is None:
        return None
    for p in reference.features:
        if p.name == name and isinstance(p, CategoricalProfile):
            return _usable(p.categories)
    if reference.segments is not None and name in reference.segments:
        return _usable(list(reference.segments[name].values))
    return None


def output_series(reference: Reference | None) -> int:
    """Output series per segment value: one per numeric output (value, class probabilities), one per
    predicted class (and ``__other__``) of a label output, as the aggregate counts them."""
    if reference is None:
        return 0
    n = 0
    for p in reference.outputs:
        if isinstance(p, NumericProfile) and (p.name == OUTPUT_VALUE or p.name.startswith(PROBA_PREFIX)):
            n += 1
        elif isinstance(p, CategoricalProfile) and p.name == OUTPUT_LABEL:
            n += len(p.categories) + 1
    return n


def max_values(reference: Reference | None) -> int:
    """The most values any segment column can have with ``reference`` (what a callable may return)."""
    most = MAX_VALUES_SEEN
    if reference is not None:
        for p in reference.features:
            if isinstance(p, CategoricalProfile):
                most = max(most, len(_usable(p.categories)))
        for col in (reference.segments or {}).values():
            most = max(most, len(_usable(list(col.values))))
    return most


def series_bound(columns: Sequence[str] | None, reference: Reference | None) -> int:
    """Σ over the segment columns of (values + 1) × (1 + output series + 4): the segment series a model
    version can emit (``columns`` None: a callable, up to :data:`~otel_ml.semconv.MAX_SEGMENT_COLUMNS`
    segments of :func:`max_values` values each)."""
    per_value = 1 + output_series(reference) + N_KINDS
    if columns is None:
        return semconv.MAX_SEGMENT_COLUMNS * (max_values(reference) + 1) * per_value
    total = 0
    for name in columns:
        allowed = allowed_values(reference, name)
        total += ((MAX_VALUES_SEEN if allowed is None else len(allowed)) + 1) * per_value
    return total


__all__ = ["MAX_VALUES_SEEN", "SegmentColumns", "SegmentValues", "Segments", "allowed_values", "check_columns",
           "series_bound", "sum_by_code"]
