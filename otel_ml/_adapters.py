"""Input adapters: turn what a model is given (DataFrames, arrays, dicts) into named columns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import semconv


def columns_of(data: Any, feature_names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Named 1-D columns of a table-like object, in column order.

    Accepts pandas and polars DataFrames, 2-D (or 1-D, one row) numpy arrays and nested lists, a
    list of row dicts, or a dict of columns. Used for reference building, where speed is secondary.
    """
    if hasattr(data, "columns") and hasattr(data, "to_numpy") and not isinstance(data, np.ndarray):
        names = [str(c) for c in data.columns]
        if hasattr(data, "get_column"):  # polars
            return {n: data.get_column(n).to_numpy() for n in names}
        return {n: data[c].to_numpy() for n, c in zip(names, data.columns)}
    if isinstance(data, Mapping):
        return {str(k): np.asarray(v) for k, v in data.items()}
    if isinstance(data, Sequence) and data and all(isinstance(r, Mapping) for r in data):
        names = list(dict.fromkeys(str(k) for r in data for k in r))
        return {n: np.array([r.get(n) for r in data], dtype=object) for n in names}
    arr = np.asarray(data)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D table, got an array of shape {arr.shape}")
    names = list(feature_names) if feature_names is not None else [f"x{i}" for i in range(arr.shape[1])]
    if len(names) != arr.shape[1]:
        raise ValueError(f"feature_names has {len(names)} names for {arr.shape[1]} columns")
    return {n: arr[:, i] for i, n in enumerate(names)}


# --- The predict hot path ----------------------------------------------------------------------
#
# ``adapt`` turns whatever a model is given into (rows, numeric matrix, wrong-type counts, categorical
# columns, schema violations), never raising for bad input: problems become counts. Numeric columns
# arrive as one float64 matrix (NaN for missing and wrong-typed cells; the wrong-typed ones are counted
# apart) so the binning is one vectorised pass.

#: Kinds of schema violation (``ml.schema.violation``), in the order of the aggregate's counters;
#: a violation travels as its index here.
SCHEMA_KINDS: tuple[str, ...] = (
    semconv.SCHEMA_MISSING_COLUMN,
    semconv.SCHEMA_UNEXPECTED_COLUMN,
    semconv.SCHEMA_WIDTH_MISMATCH,
    semconv.SCHEMA_UNSUPPORTED_INPUT,
)
MISSING_COLUMN = SCHEMA_KINDS.index(semconv.SCHEMA_MISSING_COLUMN)
UNEXPECTED_COLUMN = SCHEMA_KINDS.index(semconv.SCHEMA_UNEXPECTED_COLUMN)
WIDTH_MISMATCH = SCHEMA_KINDS.index(semconv.SCHEMA_WIDTH_MISMATCH)
UNSUPPORTED_INPUT = SCHEMA_KINDS.index(semconv.SCHEMA_UNSUPPORTED_INPUT)

_NUMERIC_KINDS = "iuf"
_PANDAS_PROBE_ROWS = 1024
_PANDAS_SMALL_ROWS = 64
MISSING_TYPE_NAMES = ("NAType", "NaTType")
_NUMBER_TYPES = (int, float, np.integer, np.floating)


class Schema:
    """Feature layout of one model, pre-computed at decoration time."""

    __slots__ = ("all_numeric", "cat_positions", "ignored", "index", "k_num", "names", "num_names", "num_positions",
                 "width")

    def __init__(self, names: Sequence[str], num_positions: Sequence[int], cat_positions: Sequence[int],
                 ignored: Sequence[str] = ()) -> None:
        self.names = tuple(names)
        self.ignored = frozenset(ignored)  # input columns that are not features (the prediction id)
        self.width = len(self.names)
        self.index = {n: i for i, n in enumerate(self.names)}
        self.num_positions = list(num_positions)
        self.cat_positions = list(cat_positions)
        self.k_num = len(self.num_positions)
        self.num_names = [self.names[i] for i in self.num_positions]
        self.all_numeric = not self.cat_positions and self.num_positions == list(range(self.width))


@dataclass(frozen=True, slots=True)
class Batch:
    """One call's input, adapted to the model's features: what the binning step takes."""

    rows: int
    numeric: np.ndarray | None = None  # rows x numeric features, float64; NaN where missing or wrong-typed
    wrong: np.ndarray | None = None  # int64 per numeric feature: wrong-typed cells (None: none)
    categorical: list[Any] | None = None  # one 1-D column of cells per categorical feature
    violations: list[int] | None = None  # indices into SCHEMA_KINDS
    wrong_cells: np.ndarray | None = None  # rows x numeric features, bool: the wrong-typed cells (None: none)


def _unsupported(rows: int = 0) -> Batch:
    return Batch(rows, violations=[UNSUPPORTED_INPUT])


def numeric_column(values: Any) -> tuple[np.ndarray, int]:
    """A column as float64 (NaN where missing or wrong-typed) and the number of wrong-typed cells.

    Numbers (not booleans) are kept; None, NaN, pandas NA are missing; strings, booleans and anything
    else are of the wrong type. Never raises.
    """
    col, wrong = numeric_cells(values)
    return col, 0 if wrong is None else int(wrong.sum())


def numeric_cells(values: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`numeric_column` with the wrong-typed cells as a boolean mask (None when there are none)."""
    arr = values if isinstance(values, np.ndarray) else None
    if arr is None:
        try:
            arr = np.asarray(values)
        except Exception:
            arr = None
        if arr is None or arr.ndim != 1 or arr.dtype.kind in "USV":
            # numpy would turn [1, "x"] into strings, or fail on ragged items: keep the objects as they are
            seq = values if isinstance(values, (list, tuple)) else [values]
            arr = np.empty(len(seq), dtype=object)
            for i, v in enumerate(seq):
                arr[i] = v
    if arr.ndim != 1:
        arr = arr.reshape(-1) if arr.ndim == 0 else _object_rows(arr)
    kind = arr.dtype.kind
    if kind in _NUMERIC_KINDS:
        return arr.astype(np.float64, copy=False), None
    if kind == "b":
        return np.full(arr.shape[0], np.nan), np.ones(arr.shape[0], dtype=bool)
    out = np.empty(arr.shape[0], dtype=np.float64)
    wrong: np.ndarray | None = None
    for i, v in enumerate(arr.tolist()):
        t = type(v)
        if t is float:
            out[i] = v
            continue
        if v is None or t.__name__ in MISSING_TYPE_NAMES:
            out[i] = np.nan
            continue
        if isinstance(v, _NUMBER_TYPES) and not isinstance(v, (bool, np.bool_)):
            try:
                out[i] = float(v)
                continue
            except (OverflowError, ValueError, TypeError):
                pass
        out[i] = np.nan
        if wrong is None:
            wrong = np.zeros(arr.shape[0], dtype=bool)
        wrong[i] = True
    return out, wrong


def series_values(s: Any) -> np.ndarray:
    """A pandas Series as a 1-D array: float64 (NaN for NA) for number dtypes, else its own values."""
    if getattr(s.dtype, "kind", "O") in _NUMERIC_KINDS:
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    return s.to_numpy()


@dataclass(frozen=True, slots=True)
class FactorizedColumn:
    """A column of strings as codes over its distinct values (code -1: missing), as pandas holds it.

    The binning step looks each distinct value up once instead of every cell.
    """

    codes: np.ndarray  # integer codes, one per row
    uniques: list[str]

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, i: int) -> str | None:
        c = int(self.codes[i])
        return None if c < 0 else self.uniques[c]

    def __iter__(self) -> Any:
        uniques = self.uniques
        return (None if c < 0 else uniques[c] for c in self.codes.tolist())


def series_cells(s: Any) -> Any:
    """A pandas Series holding a categorical feature: string and category dtypes of strings come
    factorized (:class:`FactorizedColumn`), anything else as :func:`series_values`."""
    name = getattr(s.dtype, "name", None)
    try:
        if name in ("str", "string"):
            codes, uniques = s.array.factorize()
            values = uniques.tolist()
        elif name == "category":
            codes, values = s.cat.codes.to_numpy(), s.cat.categories.tolist()
        else:
            return series_values(s)
    except Exception:
        return series_values(s)
    if all(type(v) is str for v in values):
        return FactorizedColumn(np.asarray(codes), values)
    return series_values(s)


def _pandas_numeric_block(frame: Any, names: Sequence[str], schema: Schema) -> np.ndarray | None:
    """The numeric features of a DataFrame as one float64 matrix, when all are present with number dtypes."""
    if not schema.k_num:
        return None
    position = {n: i for i, n in enumerate(names)}
    try:
        cols = [position[n] for n in schema.num_names]
    except KeyError:
        return None
    dtypes = frame.dtypes.tolist()
    if not all(isinstance(dtypes[i], np.dtype) and dtypes[i].kind in _NUMERIC_KINDS for i in cols):
        return None
    if cols == list(range(cols[0], cols[0] + len(cols))):  # side by side (e.g. ahead of ids, segments): a slice
        return frame.iloc[:, cols[0]:cols[0] + len(cols)].to_numpy(dtype=np.float64)
    return frame.iloc[:, cols].to_numpy(dtype=np.float64)


def _object_rows(arr: np.ndarray) -> np.ndarray:
    """A 1-D object array with one entry per leading-axis item of ``arr``."""
    out = np.empty(arr.shape[0], dtype=object)
    for i in range(arr.shape[0]):
        out[i] = arr[i]
    return out


def _from_columns(get: Any, present: Sequence[str], rows: int, schema: Schema, *,
                  get_categorical: Any = None, numeric: np.ndarray | None = None) -> Batch:
    """Batch from named columns; ``get(name)`` returns a 1-D array-like of ``rows`` values.

    ``get_categorical`` (default ``get``) reads a categorical column; ``numeric``, when given, is the
    numeric features already converted in one block (all present, all of a number dtype).
    """
    violations: list[int] = []
    present_set = set(present)
    for name in present:
        if name not in schema.index and name not in schema.ignored:
            violations.append(UNEXPECTED_COLUMN)
    wrong = None
    cells = None
    if schema.k_num and numeric is None:
        numeric = np.empty((rows, schema.k_num), dtype=np.float64)
        for j, name in enumerate(schema.num_names):
            if name in present_set:
                col, w = numeric_cells(get(name))
                if col.shape[0] != rows:
                    numeric[:, j] = np.nan
                    violations.append(WIDTH_MISMATCH)
                    continue
                numeric[:, j] = col
                if w is not None:
                    if wrong is None:
                        wrong = np.zeros(schema.k_num, dtype=np.int64)
                        cells = np.zeros((rows, schema.k_num), dtype=bool)
                    wrong[j] = int(w.sum())
                    cells[:, j] = w  # type: ignore[index]
            else:
                numeric[:, j] = np.nan
                violations.append(MISSING_COLUMN)
    categorical = None
    if schema.cat_positions:
        categorical = []
        get_cat = get_categorical or get
        for pos in schema.cat_positions:
            name = schema.names[pos]
            if name in present_set:
                categorical.append(get_cat(name))
            else:
                categorical.append([None] * rows)
                violations.append(MISSING_COLUMN)
    return Batch(rows, numeric, wrong, categorical, violations or None, cells)


def _from_matrix(arr: np.ndarray, schema: Schema) -> Batch:
    """Batch from a 2-D array whose columns are the reference features in order."""
    rows, width = arr.shape
    if width != schema.width:
        return Batch(rows, violations=[WIDTH_MISMATCH])
    if rows == 0:
        return Batch(0)
    kind = arr.dtype.kind
    if schema.all_numeric and kind in _NUMERIC_KINDS:
        return Batch(rows, arr.astype(np.float64, copy=False))
    return _from_columns(lambda n: arr[:, schema.index[n]], schema.names, rows, schema)


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, bytes, int, float, bool, np.generic))


def _is_column(v: Any) -> bool:
    """A dict value holding a column (list, tuple, array, pandas/polars Series), not one cell."""
    if isinstance(v, (list, tuple, np.ndarray)):
        return True
    return hasattr(v, "__array__") and hasattr(v, "__len__") and not _is_scalar(v)


def adapt(x: Any, schema: Schema) -> Batch:
    """Adapt one predict input to the model's features. Never raises for bad input (counted instead)."""
    if isinstance(x, np.ndarray):
        if x.ndim == 2:
            return _from_matrix(x, schema)
        if x.ndim == 1:
            if schema.width == 1 and x.shape[0] != 1:
                return _from_matrix(x.reshape(-1, 1), schema)
            if x.shape[0] == 0:
                return Batch(0)
            return _from_matrix(x.reshape(1, -1), schema)
        return _unsupported()
    if x is None or _is_scalar(x):
        if schema.width == 1 and x is not None and not isinstance(x, (str, bytes)):
            return _from_matrix(np.asarray([[x]]), schema)
        return _unsupported()
    mod = type(x).__module__
    if mod.startswith("pandas"):
        if hasattr(x, "columns"):  # DataFrame
            labels = x.columns.tolist()
            names = labels if all(type(c) is str for c in labels) else [str(c) for c in labels]
            if len(set(names)) != len(names):
                return _unsupported(len(x))
            cols = dict(zip(names, labels))
            rows = len(x)
            if rows == 0:
                return Batch(0)
            whole = None  # x.to_numpy(), once
            if schema.all_numeric and names == list(schema.names):
                # Fast path: every column a plain number type. For small frames one to_numpy() tells
                # (an object/bool/extension column makes the result non-numeric); big frames check dtypes
                # first so a mixed frame is not converted to objects for nothing.
                if rows <= _PANDAS_PROBE_ROWS:
                    whole = x.to_numpy()
                    if whole.dtype.kind in _NUMERIC_KINDS:
                        return Batch(rows, whole.astype(np.float64, copy=False))
                elif all(isinstance(d, np.dtype) and d.kind in _NUMERIC_KINDS for d in x.dtypes.tolist()):
                    return Batch(rows, x.to_numpy(dtype=np.float64))
            if rows <= _PANDAS_SMALL_ROWS:
                # A few rows: one to_numpy() of the whole frame (objects for mixed dtypes) is much cheaper
                # than a Series per column; the cells keep their Python types (NA, bools, strings).
                cells = whole if whole is not None else x.to_numpy()
                if cells.ndim == 2 and cells.shape[1] == len(names):
                    position = {n: i for i, n in enumerate(names)}
                    return _from_columns(lambda n: cells[:, position[n]], names, rows, schema)

            return _from_columns(lambda n: series_values(x[cols[n]]), names, rows, schema,
                                 get_categorical=lambda n: series_cells(x[cols[n]]),
                                 numeric=_pandas_numeric_block(x, names, schema))
        if hasattr(x, "index") and hasattr(x, "to_dict"):  # Series: one row keyed by the index
            try:
                return adapt({str(k): v for k, v in x.items()}, schema)
            except Exception:
                return _unsupported()
        return _unsupported()
    if mod.startswith("polars"):
        if hasattr(x, "get_column") and hasattr(x, "columns"):
            names = [str(c) for c in x.columns]
            rows = x.height
            if rows == 0:
                return Batch(0)
            return _from_columns(lambda n: x.get_column(n).to_numpy(), names, rows, schema)
        return _unsupported()
    if isinstance(x, Mapping):
        keys = [str(k) for k in x]
        values = list(x.values())
        if values and all(_is_column(v) for v in values):
            lengths = {len(v) for v in values}
            if len(lengths) != 1:
                return _unsupported()
            data = dict(zip(keys, values))
            return _from_columns(lambda n: data[n], keys, lengths.pop(), schema)
        row = dict(zip(keys, values))
        return _from_columns(lambda n: [row[n]], keys, 1, schema)
    if hasattr(x, "toarray") and len(getattr(x, "shape", ())) == 2:  # scipy.sparse
        try:
            dense = x.toarray()
        except Exception:
            return _unsupported()
        return adapt(np.asarray(dense), schema)
    if isinstance(x, (list, tuple)):
        if len(x) == 0:
            return Batch(0)
        if all(isinstance(r, Mapping) for r in x):
            names = list(dict.fromkeys(str(k) for r in x for k in r))
            rows_ = [{str(k): v for k, v in r.items()} for r in x]
            return _from_columns(lambda n: [r.get(n) for r in rows_], names, len(rows_), schema)
        if all(_is_scalar(v) for v in x):
            if schema.width == 1 and len(x) != 1:
                return _from_matrix(np.array([[v] for v in x], dtype=object), schema)
            return _from_matrix(np.array([list(x)], dtype=object), schema)
        if all(isinstance(r, (list, tuple, np.ndarray)) for r in x):
            widths = {len(r) for r in x}
            if len(widths) != 1:
                return Batch(len(x), violations=[WIDTH_MISMATCH])
            try:
                arr = np.array(x)
            except Exception:
                arr = None
            if arr is None or arr.ndim != 2 or arr.dtype.kind not in _NUMERIC_KINDS:
                # mixed or junk cells: an object matrix, cell by cell (never reinterpreted as strings)
                arr = np.empty((len(x), widths.pop()), dtype=object)
                for i, r in enumerate(x):
                    for j, v in enumerate(r):
                        arr[i, j] = v
            return _from_matrix(arr, schema)
        return _unsupported(len(x))
    if hasattr(x, "__array__"):  # array-likes: torch/jax tensors (on CPU), xarray, ...
        try:
            arr = np.asarray(x)
        except Exception:
            return _unsupported()
        if arr.ndim >= 1:
            return adapt(arr, schema)
    return _unsupported()


def batch_size(x: Any) -> int | None:
    """Number of rows of an input, cheaply, for the span attribute; None when unknown."""
    if isinstance(x, np.ndarray):
        return 1 if x.ndim == 1 else (int(x.shape[0]) if x.ndim else None)
    if isinstance(x, Mapping):  # one row, or a dict of equally long columns
        values = list(x.values())
        if values and all(_is_column(v) for v in values):
            lengths = {len(v) for v in values}
            return lengths.pop() if len(lengths) == 1 else None
        return 1
    try:
        return len(x)
    except Exception:
        return None


# --- Model outputs -------------------------------------------------------------------------------


def output_array(y: Any) -> np.ndarray | None:
    """A model's return value as a numpy array (1-D values/labels or 2-D probabilities), or None."""
    if isinstance(y, np.ndarray):
        arr = y
    else:
        if hasattr(y, "to_numpy"):
            try:
                y = y.to_numpy()
            except Exception:
                return None
        try:
            arr = np.asarray(y)
        except Exception:
            return None
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim > 2:
        return None
    return arr
