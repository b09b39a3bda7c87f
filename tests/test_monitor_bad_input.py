"""Bad input never breaks the model: the same object comes back, problems are counted exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

import otel_ml
from otel_ml import semconv as M
from otel_ml._aggregate import aggregates

from _otel_ml_support import point, points, value

NUM = otel_ml.build_reference(
    {"a": np.linspace(-10, 10, 101), "b": np.linspace(0, 1, 101), "c": np.linspace(5, 6, 101)},
    model="num", version="1",
)
MIX = otel_ml.build_reference(
    {"a": np.linspace(-10, 10, 60), "k": np.array(["red", "green", "blue"] * 20, dtype=object)},
    model="mix", version="1", categorical=["k"],
)


def run(ref, x):
    sentinel = object()

    @otel_ml.monitor(model=ref.model_name, version=ref.model_version, reference=ref)
    def predict(batch):
        return sentinel

    assert predict(x) is sentinel
    assert otel_ml.flush(5.0)
    assert aggregates()[0].errors == 0, "bad input must be counted as data quality, not as internal errors"


def q(exporter, metric, feature, **extra):
    return value(exporter.last, metric, **{M.FEATURE_NAME: feature}, **extra)


def hist_count(exporter, feature):
    return point(exporter.last, M.FEATURE_VALUE, **{M.FEATURE_NAME: feature}).count


def schema(exporter, kind):
    return value(exporter.last, M.SCHEMA_VIOLATIONS, **{M.SCHEMA_VIOLATION: kind})


def test_nan_inf_none_and_strings_in_numeric_columns(exporter):
    x = pd.DataFrame({
        "a": [1.0, np.nan, np.inf, -np.inf, None, "7", True, 3.0],
        "b": [0.5] * 8,
        "c": [5.5] * 8,
    })
    run(NUM, x)
    assert value(exporter.last, M.PREDICT_ROWS) == 8
    assert q(exporter, M.FEATURE_MISSING, "a") == 2  # NaN, None
    assert q(exporter, M.FEATURE_INVALID, "a", **{M.QUALITY_REASON: M.REASON_NON_FINITE}) == 2
    assert q(exporter, M.FEATURE_INVALID, "a", **{M.QUALITY_REASON: M.REASON_WRONG_TYPE}) == 2  # "7", True
    assert hist_count(exporter, "a") == 2
    assert hist_count(exporter, "b") == 8
    p = point(exporter.last, M.FEATURE_VALUE, **{M.FEATURE_NAME: "a"})
    assert (p.min, p.max) == (1.0, 3.0)


def test_numpy_float_matrix_with_non_finite(exporter):
    x = np.array([[np.nan, 0.5, 5.5], [np.inf, 0.5, 5.5], [-20.0, 2.0, 5.5]])
    run(NUM, x)
    assert q(exporter, M.FEATURE_MISSING, "a") == 1
    assert q(exporter, M.FEATURE_INVALID, "a", **{M.QUALITY_REASON: M.REASON_NON_FINITE}) == 1
    assert q(exporter, M.FEATURE_OUT_OF_RANGE, "a") == 1
    assert q(exporter, M.FEATURE_OUT_OF_RANGE, "b") == 1
    p = point(exporter.last, M.FEATURE_VALUE, **{M.FEATURE_NAME: "a"})
    assert p.count == 1 and p.bucket_counts[0] == 1 and p.min == -20.0


def test_missing_and_extra_columns(exporter):
    run(NUM, pd.DataFrame({"a": [1.0, 2.0], "zzz": [1, 2], "yyy": ["p", "q"]}))
    assert schema(exporter, M.SCHEMA_MISSING_COLUMN) == 2
    assert schema(exporter, M.SCHEMA_UNEXPECTED_COLUMN) == 2
    assert q(exporter, M.FEATURE_MISSING, "b") == 2 and q(exporter, M.FEATURE_MISSING, "c") == 2
    assert hist_count(exporter, "a") == 2
    # attribute values stay bounded: no point names an unexpected column
    assert not points(exporter.last, M.FEATURE_MISSING, **{M.FEATURE_NAME: "zzz"})


@pytest.mark.parametrize(
    "x, rows, kind",
    [
        (np.zeros((4, 5)), 4, M.SCHEMA_WIDTH_MISMATCH),
        (np.zeros(7), 1, M.SCHEMA_WIDTH_MISMATCH),
        ([[1, 2], [3, 4, 5]], 2, M.SCHEMA_WIDTH_MISMATCH),
        (None, 0, M.SCHEMA_UNSUPPORTED_INPUT),
        (3.5, 0, M.SCHEMA_UNSUPPORTED_INPUT),
        ("a string", 0, M.SCHEMA_UNSUPPORTED_INPUT),
        (object(), 0, M.SCHEMA_UNSUPPORTED_INPUT),
        (np.zeros((2, 3, 3)), 0, M.SCHEMA_UNSUPPORTED_INPUT),
        ([1, [2, [3]], {"x": None}], 3, M.SCHEMA_UNSUPPORTED_INPUT),
    ],
    ids=["wrong_width", "1d_wrong_width", "ragged", "none", "scalar", "string", "object", "3d", "nested_junk"],
)
def test_schema_violations(exporter, x, rows, kind):
    run(NUM, x)
    assert value(exporter.last, M.PREDICT_ROWS) == rows
    assert schema(exporter, kind) == 1
    assert hist_count(exporter, "a") == 0


def test_one_dimensional_row_and_empty_batch(exporter):
    run(NUM, np.array([1.0, 0.5, 5.5]))
    assert value(exporter.last, M.PREDICT_ROWS) == 1
    assert hist_count(exporter, "a") == 1


@pytest.mark.parametrize("empty", [
    pytest.param(np.zeros((0, 3)), id="ndarray_no_rows"),
    pytest.param([], id="empty_list"),
    pytest.param(pd.DataFrame({"a": [], "b": [], "c": []}), id="dataframe_no_rows"),
    pytest.param(np.zeros(0), id="ndarray_1d_empty"),
])
def test_empty_batches(exporter, empty):
    run(NUM, empty)
    assert value(exporter.last, M.PREDICT_ROWS) == 0
    assert sum(p.value for p in points(exporter.last, M.SCHEMA_VIOLATIONS)) == 0


def test_object_dtype_array_with_junk(exporter):
    x = np.array([[1.0, "x", 5.5], [None, 0.5, [1, 2]], [np.float32(2.0), np.int64(0), 5.5]], dtype=object)
    run(NUM, x)
    assert q(exporter, M.FEATURE_MISSING, "a") == 1
    assert q(exporter, M.FEATURE_INVALID, "b", **{M.QUALITY_REASON: M.REASON_WRONG_TYPE}) == 1
    assert q(exporter, M.FEATURE_INVALID, "c", **{M.QUALITY_REASON: M.REASON_WRONG_TYPE}) == 1
    assert hist_count(exporter, "a") == 2 and hist_count(exporter, "b") == 2


def test_bools_in_numeric_features_are_wrong_type(exporter):
    run(NUM, np.array([[True, False, True]]))
    for f in "abc":
        assert q(exporter, M.FEATURE_INVALID, f, **{M.QUALITY_REASON: M.REASON_WRONG_TYPE}) == 1


def test_categorical_unseen_missing_and_pandas_categorical_dtype(exporter):
    df = pd.DataFrame({
        "a": [1.0, 2.0, 3.0, 4.0, 5.0],
        "k": pd.Categorical(["red", "purple", None, "blue", "purple"]),
    })
    run(MIX, df)
    cats = {p.attributes[M.FEATURE_CATEGORY]: p.value for p in points(exporter.last, M.FEATURE_CATEGORY_COUNT)}
    assert cats == {"red": 1, "green": 0, "blue": 1, M.OTHER_CATEGORY: 2}
    assert q(exporter, M.FEATURE_UNSEEN, "k") == 2
    assert q(exporter, M.FEATURE_MISSING, "k") == 1


def test_hostile_categories_keep_cardinality_bounded(exporter):
    x = {"a": list(np.zeros(5000)), "k": [f"v{i}" for i in range(5000)]}
    run(MIX, x)
    cats = points(exporter.last, M.FEATURE_CATEGORY_COUNT)
    assert {p.attributes[M.FEATURE_CATEGORY] for p in cats} == {"red", "green", "blue", M.OTHER_CATEGORY}
    assert q(exporter, M.FEATURE_UNSEEN, "k") == 5000
    table = aggregates()[0].cat_tables[0]
    assert len(table._str_cache) <= 4096


def test_unhashable_and_odd_categories(exporter):
    run(MIX, [{"a": 1.0, "k": ["list"]}, {"a": 1.0, "k": 3}, {"a": 1.0, "k": "red"}, {"a": 1.0}])
    assert q(exporter, M.FEATURE_UNSEEN, "k") == 2
    assert q(exporter, M.FEATURE_MISSING, "k") == 1


def test_polars_frames(exporter):
    df = pl.DataFrame({"a": [1.0, None, -3.0], "k": ["red", "blue", None]})
    run(MIX, df)
    assert q(exporter, M.FEATURE_MISSING, "a") == 1
    assert hist_count(exporter, "a") == 2
    assert q(exporter, M.FEATURE_MISSING, "k") == 1


def test_huge_batch_counts_exactly(exporter):
    rng = np.random.default_rng(3)
    x = rng.normal(scale=8, size=(200_000, 3))
    run(NUM, x)
    edges = np.asarray(NUM.feature("a").edges)
    expected = np.bincount(np.searchsorted(edges, x[:, 0], side="left"), minlength=len(edges) + 1)
    p = point(exporter.last, M.FEATURE_VALUE, **{M.FEATURE_NAME: "a"})
    assert list(p.bucket_counts) == expected.tolist()
    assert value(exporter.last, M.PREDICT_ROWS) == 200_000


def test_unknown_output_shapes_are_counted_not_raised(exporter):
    ref = otel_ml.build_reference(
        {"a": np.linspace(0, 1, 50)}, model="out", version="1",
        predictions=np.column_stack([np.linspace(0, 1, 50), np.linspace(1, 0, 50)]),
    )
    outputs = [np.zeros((2, 5)), object(), "text", np.zeros((2, 2, 2)), [[0.1, 0.9]], None]

    for out in outputs:
        @otel_ml.monitor(model="out", version="1", reference=ref)
        def predict(batch, _out=out):
            return _out

        assert predict(np.array([[0.5]])) is out
    assert otel_ml.flush(5.0)
    bad = sum(p.value for p in points(exporter.last, M.SCHEMA_VIOLATIONS))
    assert bad == 5  # everything but the valid [[0.1, 0.9]]
    p = point(exporter.last, M.PREDICTION_VALUE, **{M.PREDICTION_NAME: "proba:1"})
    assert p.count == 1
