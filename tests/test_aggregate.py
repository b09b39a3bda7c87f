"""Binning tables and cumulative counters: exact against a plain-Python oracle, bounded memory."""

from __future__ import annotations

import numpy as np
import pytest

import otel_ml
from otel_ml._aggregate import (
    DURATION_BOUNDS,
    MAX_ERROR_TYPES,
    Q_MISSING,
    Q_NON_FINITE,
    Q_OUT_OF_RANGE,
    CategoricalTable,
    ModelAggregate,
    NumericTable,
    _Duration,
)
from otel_ml._reference import CategoricalProfile, NumericProfile


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


def test_duration_buckets_are_the_otel_defaults():
    assert DURATION_BOUNDS[:3] == (0.0, 0.005, 0.01) and DURATION_BOUNDS[-1] == 10.0
    d = _Duration()
    for x in (0.0, 0.005, 0.0051, 20.0):
        d.add(x)
    assert d.counts[0] == 1 and d.counts[1] == 1 and d.counts[2] == 1 and d.counts[-1] == 1


def test_categorical_table_counts_and_cache_bound():
    t = CategoricalTable(CategoricalProfile("k", ("a", "1", "true"), (1, 1, 1), 0, 3, 0))

    def dense(counts):  # small batches come back as bucket indices
        return np.bincount(counts, minlength=4).tolist() if isinstance(counts, list) else counts.tolist()

    values = ["a", "b", None, 1, 1.0, True, float("nan")]
    for repeat in (1, 3):  # 7 values: the small path; 21: the array path
        counts, missing, unseen = t.stats(np.array(values * repeat, dtype=object))
        assert dense(counts) == [x * repeat for x in [1, 2, 1, 1]] and missing == 2 * repeat and unseen == repeat
    for repeat in (1, 5):
        counts, missing, unseen = t.stats(np.array([1, 1, 2, 3] * repeat))
        assert dense(counts) == [0, 2 * repeat, 0, 2 * repeat] and unseen == 2 * repeat
    t.stats([f"x{i}" for i in range(10_000)])
    assert len(t._str_cache) <= 4096


def test_memory_is_bounded_by_features_times_bins():
    rng = np.random.default_rng(0)
    ref = otel_ml.build_reference(
        {"a": rng.normal(size=1000), "k": rng.choice(list("abc"), 1000).astype(object)},
        model="mem", version="1", categorical=["k"],
    )
    agg = ModelAggregate("mem", "1", ref)
    before = agg.nbytes()
    for i in range(50):
        v = rng.normal(scale=100, size=(1000, 1))
        agg.commit(1000, agg.numeric.stats(v, None), [(0, *agg.cat_tables[0].stats([f"u{i}-{j}" for j in range(1000)]))],
                   None, None, None, 0.001, f"Err{i}", None)
    assert agg.nbytes() <= before + 200 * (MAX_ERROR_TYPES + 2)
    assert len(agg.durations) <= MAX_ERROR_TYPES + 2
    assert agg.rows == 50_000


def test_small_batches_are_buffered_bounded_and_folded_exactly():
    ref = otel_ml.build_reference({"a": np.linspace(-1, 1, 100), "b": np.linspace(0, 5, 100)}, model="p", version="1")
    agg = ModelAggregate("p", "1", ref)
    rng = np.random.default_rng(5)
    rows = rng.normal(size=(1000, 2)).tolist()
    for r in rows:
        agg.commit(1, [r], None, None, None, None, None, None, None)
        assert len(agg.pending_num) < 256
    snap = agg.snapshot()
    assert not agg.pending_num
    v = np.array(rows)
    m = snap.num_counts.reshape(agg.numeric.k, agg.numeric.width)
    for j, name in enumerate("ab"):
        e = list(ref.feature(name).edges)
        assert m[j, : len(e) + 1].tolist() == oracle(v[:, j], e)
    assert snap.num_min[0].tolist() == v.min(axis=0).tolist()


def test_snapshot_resets_interval_min_max_only():
    ref = otel_ml.build_reference({"a": np.linspace(0, 1, 100)}, model="s", version="1")
    agg = ModelAggregate("s", "1", ref)
    agg.commit(1, agg.numeric.stats(np.array([[0.5]]), None), None, None, None, None, None, None, None)
    s1 = agg.snapshot()
    assert s1.num_min[0][0] == 0.5 and s1.num_min[1][0] == 0.5
    agg.commit(1, agg.numeric.stats(np.array([[0.7]]), None), None, None, None, None, None, None, None)
    s2 = agg.snapshot()
    assert s2.num_min[0][0] == 0.5 and s2.num_min[1][0] == 0.7
    agg.restore_interval(s2)
    assert agg.num_imin[0] == 0.7


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
    from otel_ml._aggregate import Q_WRONG_TYPE, count_column

    rng = np.random.default_rng(11)
    ref = otel_ml.build_reference(
        {"a": rng.normal(size=500), "k": rng.choice(list("abc"), 500).astype(object)},
        model="cc", version="1", categorical=["k"],
    )
    n = 40
    a = np.array([*rng.normal(scale=3, size=n - 8), None, float("nan"), "x", True, np.inf, -np.inf, 1e6, 2], dtype=object)
    k = np.array([*rng.choice(list("abcz"), n - 5), None, float("nan"), 1, "a", "new"], dtype=object)
    agg = ModelAggregate("cc", "1", ref)
    batch = adapt({"a": a, "k": k}, Schema(ref.feature_names, agg.num_positions, agg.cat_positions))
    with np.errstate(invalid="ignore"):
        num = agg.numeric.stats(batch.numeric, batch.wrong)
    cat, cat_missing, cat_unseen = agg.cat_tables[0].stats(batch.categorical[0])

    got = count_column(ref.feature("a"), a, n)
    assert got.buckets.tolist() == num.counts[: agg.numeric.width].tolist()
    q = num.quality[:, 0]
    assert (got.missing, got.invalid, got.out_of_range) == (q[Q_MISSING], q[Q_NON_FINITE] + q[Q_WRONG_TYPE], q[Q_OUT_OF_RANGE])
    assert got.rows == n
    got = count_column(ref.feature("k"), k, n)
    assert got.buckets.tolist() == cat.tolist() and (got.missing, got.unseen, got.rows) == (cat_missing, cat_unseen, n)
    for p in ref.features:  # an absent column: every row missing; no rows: nothing
        absent, empty = count_column(p, None, n), count_column(p, np.array([]), 0)
        assert (absent.missing, absent.rows, int(absent.buckets.sum())) == (n, n, 0)
        assert (empty.rows, int(empty.buckets.sum())) == (0, 0)
