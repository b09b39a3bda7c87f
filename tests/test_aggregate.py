"""Cumulative counters of a model: exact, bounded memory, small batches folded, snapshots."""

from __future__ import annotations

import numpy as np

import otel_ml
from otel_ml._aggregate import DURATION_BOUNDS, MAX_ERROR_TYPES, ModelAggregate, _Duration


def oracle(values, edges):
    counts = [0] * (len(edges) + 1)
    for v in values:
        counts[sum(1 for e in edges if v > e)] += 1
    return counts


def test_duration_buckets_are_the_otel_defaults():
    assert DURATION_BOUNDS[:3] == (0.0, 0.005, 0.01) and DURATION_BOUNDS[-1] == 10.0
    d = _Duration()
    for x in (0.0, 0.005, 0.0051, 20.0):
        d.add(x)
    assert d.counts[0] == 1 and d.counts[1] == 1 and d.counts[2] == 1 and d.counts[-1] == 1


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
        agg.commit(1000, agg.numeric.stats(v, None), [agg.cat_tables[0].stats([f"u{i}-{j}" for j in range(1000)])],
                   None, None, None, 0.001, f"Err{i}", None)
    assert agg.nbytes() <= before + 200 * (MAX_ERROR_TYPES + 2)
    assert len(agg.durations) <= MAX_ERROR_TYPES + 2
    assert agg.rows == 50_000


def test_small_batches_are_buffered_bounded_and_folded_exactly():
    ref = otel_ml.build_reference({"a": np.linspace(-1, 1, 100), "b": np.linspace(0, 5, 100)}, model="p", version="1",
                                 multivariate=False)  # commits raw rows: no error column
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
    assert snap.num_min.tolist() == v.min(axis=0).tolist()


def test_snapshot_resets_interval_min_max_only():
    ref = otel_ml.build_reference({"a": np.linspace(0, 1, 100)}, model="s", version="1")
    agg = ModelAggregate("s", "1", ref)
    agg.commit(1, agg.numeric.stats(np.array([[0.5]]), None), None, None, None, None, None, None, None)
    s1 = agg.snapshot()
    assert s1.num_min[0] == 0.5 and s1.num_imin[0] == 0.5
    agg.commit(1, agg.numeric.stats(np.array([[0.7]]), None), None, None, None, None, None, None, None)
    s2 = agg.snapshot()
    assert s2.num_min[0] == 0.5 and s2.num_imin[0] == 0.7
    agg.restore_interval(s2)
    assert agg.num_imin[0] == 0.7
