"""Binning tables (numeric and categorical) and whole-column counting: exact against plain-Python oracles."""

from __future__ import annotations

import math

import numpy as np
import pytest

import otel_ml
from otel_ml._binning import (
    Q_MISSING,
    Q_NON_FINITE,
    Q_OUT_OF_RANGE,
    Q_WRONG_TYPE,
    SMALL_BATCH,
    CategoricalStats,
    CategoricalTable,
    NumericTable,
    count_column,
)
from otel_ml._reference import CategoricalProfile, NumericProfile, category_key


def oracle(values, edges):
    counts = [0] * (len(edges) + 1)
    for v in values:
        counts[sum(1 for e in edges if v > e)] += 1
    return counts


def profile(name, edges, lo, hi):
    return NumericProfile(name, tuple(edges), (0,) * (len(edges) + 1), 0, 0, 0, lo, hi, 0.0, 1.0)


TABLE = NumericTable([
    profile("neg", [-2.0, -1.0, 0.0, 1.0, 2.0], -3.0, 3.0),
    profile("few", [10.0], 5.0, 15.0),
    profile("none", [], 0.0, 0.0),
])


@pytest.mark.parametrize("n", [1, 2, 7, 300, 5000, 150_001])
def test_numeric_stats_match_oracle_for_every_batch_size(n):
    rng = np.random.default_rng(n)
    v = np.column_stack([rng.normal(scale=2, size=n), rng.uniform(0, 20, size=n), rng.normal(size=n)])
    v[0, 0] = -1.0  # exactly on an edge: upper-inclusive bucket (-2, -1]
    s = TABLE.stats(v, None)
    counts = s.counts.reshape(TABLE.k, TABLE.width)
    assert counts[0, :6].tolist() == oracle(v[:, 0], [-2.0, -1.0, 0.0, 1.0, 2.0])
    assert counts[1, :2].tolist() == oracle(v[:, 1], [10.0])
    assert counts[2, :1].tolist() == [n]
    assert s.vmin.tolist() == v.min(axis=0).tolist()
    oor = ((v < TABLE.ref_min) | (v > TABLE.ref_max)).sum(axis=0)
    got = s.quality[Q_OUT_OF_RANGE].tolist() if s.quality is not None else [0, 0, 0]
    assert got == oor.tolist()


def test_edge_values_are_upper_inclusive():
    v = np.array([[-2.0, 10.0, 0.0], [-1.9999, 10.0001, 0.0], [2.0, 9.9999, 0.0]])
    counts = TABLE.stats(v, None).counts.reshape(TABLE.k, TABLE.width)
    assert counts[0, :6].tolist() == [1, 1, 0, 0, 1, 0]
    assert counts[1, :2].tolist() == [2, 1]


def test_non_finite_and_wrong_type_are_separated():
    v = np.array([[np.nan, 1.0, 0.0], [np.inf, 1.0, 0.0], [-np.inf, np.nan, 0.0], [0.5, 11.0, 0.0]])
    wrong = np.array([0, 1, 0])  # the NaN of column 1 was a string
    s = TABLE.stats(v, wrong)
    assert s.quality[Q_MISSING].tolist() == [1, 0, 0]
    assert s.quality[Q_NON_FINITE].tolist() == [2, 0, 0]
    counts = s.counts.reshape(TABLE.k, TABLE.width)
    assert counts[0].sum() == 1 and counts[1].sum() == 3
    assert (s.vmin[0], s.vmax[0]) == (0.5, 0.5)


def test_categorical_table_counts_and_cache_bound():
    t = CategoricalTable(CategoricalProfile("k", ("a", "1", "true"), (1, 1, 1), 0, 3, 0))

    values = ["a", "b", None, 1, 1.0, True, float("nan")]
    for repeat in (1, 3):  # 7 values: the small path; 21: the array path
        s = t.stats(np.array(values * repeat, dtype=object))
        assert s.dense(t.size).tolist() == [x * repeat for x in [1, 2, 1, 1]]
        assert (s.missing, s.unseen) == (2 * repeat, repeat)
    for repeat in (1, 5):
        s = t.stats(np.array([1, 1, 2, 3] * repeat))
        assert s.dense(t.size).tolist() == [0, 2 * repeat, 0, 2 * repeat] and s.unseen == 2 * repeat
    t.stats([f"x{i}" for i in range(10_000)])
    assert len(t._str_cache) <= 4096


def test_many_edges_use_the_searchsorted_path_with_the_same_result():
    rng = np.random.default_rng(11)
    edges = sorted(set(np.round(rng.normal(size=120), 3).tolist()))
    table = NumericTable([profile("wide", edges, -3.0, 3.0), profile("narrow", [0.0], -1.0, 1.0)])
    assert table.max_edges > 32
    v = np.column_stack([rng.normal(size=500), rng.normal(size=500)])
    v[0, 0] = edges[5]
    counts = table.stats(v, None).counts.reshape(table.k, table.width)
    assert counts[0, : len(edges) + 1].tolist() == oracle(v[:, 0], edges)
    assert counts[1, :2].tolist() == oracle(v[:, 1], [0.0])


def test_count_column_counts_a_column_as_the_predict_path_does():
    from otel_ml._adapters import Schema, adapt
    from otel_ml._aggregate import ModelAggregate

    rng = np.random.default_rng(11)
    ref = otel_ml.build_reference(
        {"a": rng.normal(size=500), "k": rng.choice(list("abc"), 500).astype(object)},
        model="cc", version="1", categorical=["k"],
    )
    n = 40
    a = np.array([*rng.normal(scale=3, size=n - 8), None, float("nan"), "x", True, np.inf, -np.inf, 1e6, 2],
                 dtype=object)
    k = np.array([*rng.choice(list("abcz"), n - 5), None, float("nan"), 1, "a", "new"], dtype=object)
    agg = ModelAggregate("cc", "1", ref)
    batch = adapt({"a": a, "k": k}, Schema(ref.feature_names, agg.num_positions, agg.cat_positions))
    with np.errstate(invalid="ignore"):
        num = agg.numeric.stats(batch.numeric, batch.wrong)
    cat = agg.cat_tables[0].stats(batch.categorical[0])

    got = count_column(ref.feature("a"), a, n)
    assert got.buckets.tolist() == num.counts[: agg.numeric.width].tolist()
    q = num.quality[:, 0]
    expected = (q[Q_MISSING], q[Q_NON_FINITE] + q[Q_WRONG_TYPE], q[Q_OUT_OF_RANGE])
    assert (got.missing, got.invalid, got.out_of_range) == expected
    assert got.rows == n
    got = count_column(ref.feature("k"), k, n)
    assert got.buckets.tolist() == cat.counts.tolist()
    assert (got.missing, got.unseen, got.rows) == (cat.missing, cat.unseen, n)
    for p in ref.features:  # an absent column: every row missing; no rows: nothing
        absent, empty = count_column(p, None, n), count_column(p, np.array([]), 0)
        assert (absent.missing, absent.rows, int(absent.buckets.sum())) == (n, n, 0)
        assert (empty.rows, int(empty.buckets.sum())) == (0, 0)


# --- The vectorised categorical step counts exactly what the per-value rule counts -----------------

CATS = CategoricalProfile("k", ("a", "1", "true", "2.5", "b'x'", "None"), (1,) * 6, 0, 6, 0)


def per_value_oracle(table, values):
    """Counts by the per-value rule (key_index), one value at a time: what every path must equal."""
    counts = [0] * table.size
    missing = 0
    for v in values:
        i = table.key_index(v)
        if i is None:
            missing += 1
        else:
            counts[i] += 1
    return counts, missing, counts[table.other]


class Odd:
    def __str__(self):
        return "a"


class Broken:
    def __str__(self):
        raise RuntimeError("no")


MIXED = ["a", "b", None, 1, 1.0, True, False, "1", "true", "True", float("nan"), np.nan, np.float64(1.0),
         np.int64(1), np.bool_(True), 2.5, np.float32(2.5), b"x", "None", np.str_("a"), Odd(), Broken(),
         "a" * 300, ["list"], {"d": 1}, (1,), float("inf"), -0.0, 0]


@pytest.mark.parametrize(
    "values",
    [
        pytest.param(MIXED, id="mixed_python_objects"),
        pytest.param(np.array(MIXED, dtype=object), id="mixed_object_array"),
        pytest.param(np.array(["a", "b", "1", "true", "zz"] * 7), id="strings_unicode_array"),
        pytest.param(np.array([b"x", b"a"] * 9), id="bytes_array"),
        pytest.param(np.array([1, 1, 0, 2, 1] * 4), id="ints_with_one_and_true_apart"),
        pytest.param(np.array([1.0, np.nan, 2.5, 1.5, -0.0, np.inf] * 3), id="floats_with_nan_and_integral"),
        pytest.param(np.array([True, False, True] * 4), id="bools"),
        pytest.param(np.array([2.5, 1.0, np.nan] * 4, dtype=np.float32), id="float32"),
        pytest.param([["x"]] + ["a"] * 20, id="unhashable_first"),
        pytest.param(tuple("ab1" * 5), id="tuple_of_strings"),
    ],
)
def test_categorical_paths_equal_the_per_value_rule(values):
    table = CategoricalTable(CATS)
    cells = values.tolist() if isinstance(values, np.ndarray) else list(values)  # as the small path reads them
    expected = per_value_oracle(CategoricalTable(CATS), cells)
    for _ in range(2):  # twice: the second pass is served from the string cache
        s = table.stats(values)
        assert isinstance(s, CategoricalStats)
        assert (s.dense(table.size).tolist(), s.missing, s.unseen) == expected


def test_one_true_and_one_string_are_kept_apart_in_a_long_column():
    """1, 1.0, True are equal as dict keys; their category keys are "1", "1" and "true"."""
    table = CategoricalTable(CATS)
    s = table.stats(np.array(["1", 1, 1.0, True, np.True_, "true"] * 5, dtype=object))
    counts = dict(zip(table.labels, s.counts.tolist()))
    assert counts["1"] == 15 and counts["true"] == 15 and s.unseen == 0 and s.missing == 0
    assert category_key(True) == "true" and category_key(1.0) == "1"


def test_long_strings_are_truncated_like_the_reference_and_cache_stays_bounded():
    long = "c" * 200
    table = CategoricalTable(CategoricalProfile("k", ("c" * 128,), (1,), 0, 1, 0))
    s = table.stats([long] * (SMALL_BATCH + 1) + [f"u{i}" for i in range(6000)])
    assert s.counts.tolist() == [SMALL_BATCH + 1, 6000] and s.unseen == 6000
    assert len(table._str_cache) <= 4096


def test_pandas_missing_values_count_as_missing():
    pd = pytest.importorskip("pandas")
    table = CategoricalTable(CATS)
    col = pd.Series(["a", None, "b", "a"] * 5, dtype="string").to_numpy()  # pd.NA cells
    s = table.stats(col)
    assert (s.counts[0], s.missing, s.unseen) == (10, 5, 5)
    nat = pd.Series(pd.to_datetime(["2024-01-01", None] * 5)).to_numpy(dtype=object)
    assert table.stats(nat).missing == 5


def test_count_column_categorical_matches_the_oracle_for_a_large_column():
    rng = np.random.default_rng(3)
    values = rng.choice(np.array(["a", "1", "true", "zz", None, 1, True, 2.5], dtype=object), 10_000)
    got = count_column(CATS, values, len(values))
    counts, missing, unseen = per_value_oracle(CategoricalTable(CATS), values.tolist())
    assert got.buckets.tolist() == counts and (got.missing, got.unseen, got.rows) == (missing, unseen, 10_000)
    assert not math.isnan(got.rows)


def test_factorized_columns_count_like_their_cells():
    from otel_ml._adapters import FactorizedColumn

    col = FactorizedColumn(np.array([0, 1, -1, 2, 0, 0, 1, -1, 2, 3] * 3), ["a", "zz", "1", "c" * 300])
    table = CategoricalTable(CATS)
    s = table.stats(col)
    assert (s.counts.tolist(), s.missing, s.unseen) == per_value_oracle(CategoricalTable(CATS), list(col))
