"""Input and output adapters: every supported container, and junk, without raising."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

from otel_ml._adapters import (
    MISSING_COLUMN,
    UNEXPECTED_COLUMN,
    UNSUPPORTED_INPUT,
    WIDTH_MISMATCH,
    FactorizedColumn,
    Schema,
    adapt,
    batch_size,
    columns_of,
    numeric_column,
    output_array,
    series_cells,
)

NUM = Schema(["a", "b"], [0, 1], [])
MIXED = Schema(["a", "k", "b"], [0, 2], [1])


def test_numpy_fast_path_is_zero_copy():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    b = adapt(x, NUM)
    assert b.rows == 2 and b.numeric is x and b.wrong is None and b.violations is None


def test_int_matrix_and_one_dimensional_row():
    b = adapt(np.array([[1, 2]]), NUM)
    assert b.numeric.dtype == np.float64 and b.numeric.tolist() == [[1.0, 2.0]]
    b = adapt(np.array([5.0, 6.0]), NUM)
    assert b.rows == 1 and b.numeric.tolist() == [[5.0, 6.0]]


def test_single_feature_models_read_one_dimensional_input_as_a_column():
    one = Schema(["a"], [0], [])
    assert adapt(np.array([1.0, 2.0, 3.0]), one).rows == 3
    assert adapt(2.5, one).rows == 1
    assert adapt([1.0, 2.0], one).rows == 2


def test_pandas_columns_by_name_in_any_order():
    df = pd.DataFrame({"b": [2.0, 4.0], "a": [1.0, 3.0]})
    b = adapt(df, NUM)
    assert b.numeric.tolist() == [[1.0, 2.0], [3.0, 4.0]]


@pytest.mark.parametrize("rows", [3, 2000])  # the to_numpy probe and the dtype check
def test_pandas_fast_path_only_for_plain_numbers(rows):
    ok = pd.DataFrame({"a": np.arange(rows), "b": np.linspace(0, 1, rows)})
    b = adapt(ok, NUM)
    assert b.wrong is None and b.numeric.dtype == np.float64 and b.numeric[-1, 0] == rows - 1
    flags = pd.DataFrame({"a": np.ones(rows), "b": np.zeros(rows, dtype=bool)})
    assert adapt(flags, NUM).wrong.tolist() == [0, rows]
    text = pd.DataFrame({"a": np.ones(rows), "b": ["7"] * rows})
    assert adapt(text, NUM).wrong.tolist() == [0, rows]


@pytest.mark.parametrize("repeat", [1, 100])  # one whole-frame to_numpy() / a column at a time
def test_pandas_nullable_and_categorical_dtypes(repeat):
    df = pd.DataFrame({
        "a": pd.array([1, None, 3] * repeat, dtype="Int64"),
        "k": pd.Categorical(["x", "y", None] * repeat),
        "b": pd.array([0.5, 1.5, None] * repeat, dtype="Float64"),
        "flag": [True, False, True] * repeat,
    })
    b = adapt(df, MIXED)
    assert np.isnan(b.numeric[1, 0]) and np.isnan(b.numeric[2, 1]) and b.wrong is None
    assert b.numeric[0].tolist() == [1.0, 0.5]
    assert list(b.categorical[0])[:2] == ["x", "y"]
    assert b.violations == [UNEXPECTED_COLUMN]


@pytest.mark.parametrize("repeat", [1, 100])
def test_pandas_mixed_frames_count_wrong_types_alike(repeat):
    df = pd.DataFrame({"a": [1.0, "7", None] * repeat, "k": ["x", "y", "z"] * repeat, "b": [True, 2, 3.5] * repeat})
    b = adapt(df, MIXED)
    assert b.wrong.tolist() == [repeat, repeat]
    assert np.isnan(b.numeric[2, 0]) and b.numeric[2, 1] == 3.5


def test_polars_frame():
    df = pl.DataFrame({"a": [1.0, None], "k": ["x", None], "b": [1, 2]})
    b = adapt(df, MIXED)
    assert b.rows == 2 and np.isnan(b.numeric[1, 0]) and b.numeric[1, 1] == 2.0


def test_dicts_rows_and_columns():
    assert adapt({"a": 1.0, "b": 2.0}, NUM).numeric.tolist() == [[1.0, 2.0]]
    assert adapt({"a": [1.0, 3.0], "b": np.array([2.0, 4.0])}, NUM).rows == 2
    b = adapt([{"a": 1.0, "b": 2.0}, {"a": 3.0}], NUM)
    assert b.rows == 2 and np.isnan(b.numeric[1, 1])
    assert adapt({"a": [1.0], "b": [1.0, 2.0]}, NUM).violations == [UNSUPPORTED_INPUT]
    b = adapt({"a": pd.Series([1.0, 2.0]), "b": pl.Series([3, None])}, NUM)
    assert b.rows == 2 and b.numeric[0].tolist() == [1.0, 3.0] and np.isnan(b.numeric[1, 1])


def test_schema_violations():
    assert adapt(pd.DataFrame({"a": [1.0], "z": [1.0]}), NUM).violations == [UNEXPECTED_COLUMN, MISSING_COLUMN]
    assert adapt(np.zeros((3, 4)), NUM).violations == [WIDTH_MISMATCH]
    assert adapt(np.zeros((3, 4)), NUM).rows == 3
    for junk in (None, "text", b"bytes", 1.5, object(), np.zeros((1, 2, 2)), {1, 2}):
        assert adapt(junk, NUM).violations == [UNSUPPORTED_INPUT]
    assert adapt(pd.DataFrame([[1.0, 2.0]], columns=["a", "a"]), NUM).violations == [UNSUPPORTED_INPUT]


def test_sparse_and_array_likes():
    from scipy import sparse

    b = adapt(sparse.csr_matrix(np.array([[1.0, 0.0], [0.0, 2.0]])), NUM)
    assert b.numeric.tolist() == [[1.0, 0.0], [0.0, 2.0]]

    class Tensor:
        def __array__(self, dtype=None, copy=None):
            return np.array([[3.0, 4.0]])

    assert adapt(Tensor(), NUM).numeric.tolist() == [[3.0, 4.0]]

    class Broken:
        def __array__(self, dtype=None, copy=None):
            raise RuntimeError("no")

    assert adapt(Broken(), NUM).violations == [UNSUPPORTED_INPUT]


def test_lists_of_rows():
    b = adapt([[1, 2], [3, 4]], NUM)
    assert b.rows == 2 and b.numeric.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    b = adapt([[1, "x"], [None, 2.0]], NUM)
    assert b.wrong.tolist() == [0, 1] and np.isnan(b.numeric[1, 0])
    assert adapt([1.0, 2.0], NUM).rows == 1
    assert adapt([[1, 2], [1, 2, 3]], NUM).violations == [WIDTH_MISMATCH]
    assert adapt([], NUM).rows == 0


@pytest.mark.parametrize("values, floats, wrong", [
    ([1, 2.5, None], [1.0, 2.5, None], 0),
    (["1", True, [1], 3], [None, None, None, 3.0], 3),
    (np.array([np.float32(1.5), np.int8(2), pd.NA], dtype=object), [1.5, 2.0, None], 0),
    (np.array([True, False]), [None, None], 2),
    (np.array([10**400 if False else 1e308], dtype=object), [1e308], 0),
])
def test_numeric_column(values, floats, wrong):
    out, w = numeric_column(values)
    assert w == wrong
    assert [None if np.isnan(v) else v for v in out.tolist()] == floats


def test_mixed_lists_are_not_turned_into_strings():
    out, w = numeric_column(["1", 2.0, 3])
    assert w == 1 and out.tolist()[1:] == [2.0, 3.0]
    b = adapt([[1.0, "x"], [2.0, 3.0]], NUM)
    assert b.numeric[:, 0].tolist() == [1.0, 2.0] and b.wrong.tolist() == [0, 1]
    b = adapt({"a": ["1", 2.0], "b": [1, 2]}, NUM)
    assert b.wrong.tolist() == [1, 0] and b.numeric[1, 0] == 2.0


def test_huge_python_int_is_wrong_type_not_a_crash():
    out, w = numeric_column(np.array([10**400, 1], dtype=object))
    assert w == 1 and out[1] == 1.0


def test_outputs():
    assert output_array(np.zeros((3, 1))).shape == (3,)
    assert output_array(pd.Series([1, 2])).tolist() == [1, 2]
    assert output_array(pd.DataFrame({"p0": [0.1], "p1": [0.9]})).shape == (1, 2)
    assert output_array(0.5).shape == (1,)
    assert output_array(np.zeros((2, 2, 2))) is None


def test_batch_size_and_columns_of():
    assert batch_size(np.zeros((4, 2))) == 4 and batch_size({"a": 1}) == 1 and batch_size(3) is None
    assert batch_size({"a": [1, 2, 3], "b": np.zeros(3)}) == 3  # a dict of columns: their length
    assert batch_size({"a": [1, 2, 3], "b": [1]}) is None
    cols = columns_of(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}))
    assert list(cols) == ["a", "b"] and cols["b"].tolist() == ["x", "y"]
    assert list(columns_of(np.zeros((2, 3)))) == ["x0", "x1", "x2"]
    assert list(columns_of(pl.DataFrame({"q": [1]}))) == ["q"]


# --- Big pandas frames: numeric features in one block, string columns factorized ------------------

def _cells(col):
    return list(col)


@pytest.mark.parametrize("dtype", ["str", "string", "category", "object"])
def test_big_frames_give_the_same_cells_whatever_the_string_dtype(dtype):
    rng = np.random.default_rng(4)
    n = 200  # above the few-rows path
    k = rng.choice(np.array(["red", "blue", "x", None], dtype=object), n)
    df = pd.DataFrame({"a": rng.normal(size=n), "k": pd.Series(k, dtype=dtype), "b": rng.integers(0, 5, n)})
    df.loc[3, "a"] = np.nan
    b = adapt(df, MIXED)
    from_rows = adapt([{"a": a, "k": kk, "b": bb} for a, kk, bb in zip(df["a"], k, df["b"])], MIXED)
    assert np.array_equal(b.numeric, from_rows.numeric, equal_nan=True) and b.wrong is None
    cells = [None if (v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))) else v
             for v in _cells(b.categorical[0])]
    assert cells == k.tolist() and len(b.categorical[0]) == n


def test_string_dtypes_come_factorized_and_mixed_objects_do_not():
    s = pd.Series(["a", None, "b", "a"], dtype="string")
    col = series_cells(s)
    assert isinstance(col, FactorizedColumn) and sorted(col.uniques) == ["a", "b"]
    assert [col[i] for i in range(4)] == ["a", None, "b", "a"]
    mixed = series_cells(pd.Series(["1", 1, True], dtype=object))
    assert not isinstance(mixed, FactorizedColumn) and mixed.tolist() == ["1", 1, True]
    numbers_as_categories = series_cells(pd.Series(pd.Categorical([1, 2, 1])))
    assert not isinstance(numbers_as_categories, FactorizedColumn)


def test_a_numeric_feature_of_a_non_number_dtype_leaves_the_block_path():
    n = 100
    df = pd.DataFrame({"a": pd.array([1, None] * (n // 2), dtype="Int64"), "b": ["x", 2.0] * (n // 2)})
    b = adapt(df, NUM)
    assert np.isnan(b.numeric[1::2, 0]).all() and b.numeric[::2, 0].tolist() == [1.0] * (n // 2)
    assert b.wrong.tolist() == [0, n // 2]
