"""Stream state: cumulative -> increments, resets, duplicates, merging, windows, limits, eviction."""

from __future__ import annotations

import numpy as np
import pytest

from otel_ml_processor._decode import decode_protobuf
from otel_ml_processor._state import State
from otel_ml_processor._store import ReferenceStore

from .payloads import CUMULATIVE, DELTA, Emitter, make_reference

T0 = 1_000_000.0


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def env():
    store = ReferenceStore(None)
    ref = make_reference()
    store.put(ref)
    clock = Clock()
    state = State(store, windows=(60.0, 600.0), slots_per_window=6, clock=clock, epoch_ns=0, series_ttl=1000)
    return store, ref, clock, state


def ingest(state: State, req) -> object:
    return state.ingest(decode_protobuf(req.SerializeToString()))


def sample_counts(state: State, name: str = "f0") -> list[float]:
    st = state.streams[state.stream_index[("churn", "1", "feature", name)]]
    return [float(c[st.cell0: st.cell0 + st.spec.bins].sum()) for c in state.window_counts()]


def test_state_first_point_counts_when_started_after_epoch(env) -> None:
    _, ref, _, state = env
    e = Emitter(ref, start_ns=10)
    e.observe(100)
    res = ingest(state, e.request(time_ns=20))
    assert res.rejected_total == 0 and res.accepted == 11
    assert sample_counts(state) == [100, 100]


def test_state_first_point_before_epoch_is_baseline(env) -> None:
    _, ref, _, state = env
    state.epoch_ns = 1000
    e = Emitter(ref, start_ns=10)
    e.observe(100)
    ingest(state, e.request(time_ns=2000))
    assert sample_counts(state) == [0, 0]
    e.observe(30)
    ingest(state, e.request(time_ns=3000))
    assert sample_counts(state) == [30, 30]


def test_state_cumulative_points_become_increments(env) -> None:
    _, ref, _, state = env
    e = Emitter(ref, start_ns=10)
    for i in range(5):
        e.observe(100)
        ingest(state, e.request(time_ns=100 + i))
    assert sample_counts(state) == [500, 500]
    assert sample_counts(state, "plan") == [500, 500]


def test_state_duplicate_ignored(env) -> None:
    _, ref, _, state = env
    e = Emitter(ref, start_ns=10)
    e.observe(100)
    req = e.request(time_ns=100)
    ingest(state, req)
    res = ingest(state, req)
    assert res.ignored == 11
    assert sample_counts(state) == [100, 100]


def test_state_out_of_order_ignored(env) -> None:
    _, ref, _, state = env
    e = Emitter(ref, start_ns=10)
    e.observe(100)
    old = e.request(time_ns=100)
    e.observe(50)
    new = e.request(time_ns=200)
    ingest(state, new)
    ingest(state, old)
    assert sample_counts(state) == [150, 150]


def test_state_counter_reset_detected(env) -> None:
    _, ref, _, state = env
    e = Emitter(ref, start_ns=10)
    e.observe(100)
    ingest(state, e.request(time_ns=100))
    # The instrumented process restarts: new start time, counts from zero.
    e2 = Emitter(ref, start_ns=500, seed=9)
    e2.observe(40)
    ingest(state, e2.request(time_ns=600))
    assert sample_counts(state) == [140, 140]
    assert state.resets == 11


def test_state_counter_decrease_without_new_start_is_a_reset(env) -> None:
    _, ref, _, state = env
    e = Emitter(ref, start_ns=10)
    e.observe(100)
    ingest(state, e.request(time_ns=100))
    e.hist = {k: v // 10 for k, v in e.hist.items()}
    e.cats = {}
    e.missing = {}
    before = sample_counts(state)[0]
    ingest(state, e.request(time_ns=200))
    assert sample_counts(state)[0] == before + sum(e.hist["f0"])
    assert state.resets >= 1


def test_state_batched_points_of_one_series_in_one_request(env) -> None:
    _, ref, _, state = env
    e = Emitter(ref, start_ns=10)
    e.observe(100)
    r1 = e.request(time_ns=100)
    e.observe(100)
    r2 = e.request(time_ns=200)
    r2.resource_metrics.extend(r1.resource_metrics)  # newer first, older second
    ingest(state, r2)
    assert sample_counts(state) == [200, 200]


def test_state_delta_streams_accepted(env) -> None:
    _, ref, _, state = env
    for i in range(3):
        e = Emitter(ref, start_ns=10 + i)
        e.observe(100)
        ingest(state, e.request(time_ns=100 + i, temporality=DELTA))
    assert sample_counts(state) == [300, 300]
    # A repeated delta point is a duplicate.
    ingest(state, e.request(time_ns=102, temporality=DELTA))
    assert sample_counts(state) == [300, 300]


def test_state_merges_pods_of_a_model_version(env) -> None:
    _, ref, _, state = env
    for pod in range(5):
        e = Emitter(ref, pod=f"pod-{pod}", start_ns=10, seed=pod)
        e.observe(100)
        ingest(state, e.request(time_ns=100))
    assert sample_counts(state) == [500, 500]
    assert state.stream_count == 4  # f0, f1, f2, plan: one stream each, whatever the pod count
    assert state.series_count == 5 * 11


@pytest.mark.parametrize(
    "mutate, reason",
    [
        pytest.param(lambda r: r.resource_metrics[0].scope_metrics[0].metrics[0].histogram.data_points[0]
         .explicit_bounds.append(99.0), "bounds_mismatch", id="bounds_mismatch"),
        pytest.param(lambda r: [kv.value.__setattr__("string_value", "nope") for m in
                                     r.resource_metrics[0].scope_metrics[0].metrics for dp in
                                     (m.histogram.data_points if m.HasField("histogram") else m.sum.data_points)
                                     for kv in dp.attributes if kv.key == "ml.model.name"], "unknown_reference",
                     id="unknown_model"),
        pytest.param(lambda r: r.resource_metrics[0].scope_metrics[0].metrics[0].histogram
         .data_points[0].__setattr__("count", 5), "malformed_point", id="sum_of_buckets_differs"),
        pytest.param(lambda r: r.resource_metrics[0].scope_metrics[0].metrics[0].histogram
         .data_points[0].attributes.pop(), "missing_attributes", id="missing_feature_name"),
    ],
)
def test_state_rejections_are_counted(env, mutate, reason) -> None:
    _, ref, _, state = env
    e = Emitter(ref, start_ns=10)
    e.observe(100)
    req = e.request(time_ns=100)
    mutate(req)
    res = ingest(state, req)
    assert res.rejected[reason] >= 1, res.rejected
    assert reason in res.message()


def test_state_cardinality_cap_per_model(env) -> None:
    store, ref, clock, _ = env
    state = State(store, windows=(60.0,), clock=clock, epoch_ns=0, max_series_per_model=30)
    for pod in range(5):
        e = Emitter(ref, pod=f"pod-{pod}", start_ns=10)
        e.observe(10)
        ingest(state, e.request(time_ns=100))
    assert state.series_count == 30
    assert state.model_counts["churn"][1] == 30


def test_state_window_slides(env) -> None:
    _, ref, clock, state = env
    e = Emitter(ref, start_ns=10)
    e.observe(100)
    ingest(state, e.request(time_ns=100))
    clock.t += 30
    e.observe(50)
    ingest(state, e.request(time_ns=200))
    assert sample_counts(state) == [150, 150]
    clock.t += 45  # the first batch is now older than the 60 s window (slots of 10 s)
    assert sample_counts(state) == [50, 150]
    clock.t += 700
    assert sample_counts(state) == [0, 0]


def test_state_stale_series_evicted_and_compacted(env) -> None:
    _, ref, clock, state = env
    e = Emitter(ref, pod="old", start_ns=10)
    e.observe(10)
    ingest(state, e.request(time_ns=100))
    clock.t += 2000
    e2 = Emitter(ref, pod="new", start_ns=10)
    e2.observe(20)
    ingest(state, e2.request(time_ns=200))
    assert state.series_count == 22
    state.evict()
    assert state.series_count == 11
    state.compact()
    assert state.series.n == 11
    e2.observe(5)
    ingest(state, e2.request(time_ns=300))
    assert sample_counts(state)[1] == 25
    # Streams with neither series nor data go too.
    clock.t += 5000
    state.evict()
    assert state.stream_count == 0


def test_state_reference_layout_change_drops_streams(env) -> None:
    store, ref, _, state = env
    e = Emitter(ref, start_ns=10)
    e.observe(100)
    ingest(state, e.request(time_ns=100))
    store.put(make_reference(bins=5))  # same model version, other edges
    e.observe(10)
    res = ingest(state, e.request(time_ns=200))
    assert res.rejected["bounds_mismatch"] == 3
    # The model version's streams start afresh: new baselines, nothing of the old layout counted.
    assert sample_counts(state, "plan") == [0, 0]
    e.observe(10)
    ingest(state, e.request(time_ns=300))
    assert sample_counts(state, "plan") == [10, 10]


def test_state_bytes_per_stream_at_20_bins_two_windows_is_under_10kb() -> None:
    store = ReferenceStore(None)
    state = State(store)  # defaults: 5m and 1h, 10 slots each
    assert state.bytes_per_stream(20) <= 10_000


def test_state_never_raises_on_odd_values(env) -> None:
    _, ref, _, state = env
    e = Emitter(ref, start_ns=10)
    e.observe(10)
    req = e.request(time_ns=0)  # no timestamp
    res = ingest(state, req)
    assert res.rejected["malformed_point"] == 11
    req = e.request(time_ns=100, temporality=CUMULATIVE)
    req.resource_metrics[0].scope_metrics[0].metrics[1].sum.data_points[0].as_double = float("nan")
    res = ingest(state, req)
    assert res.rejected["malformed_point"] >= 1
    assert np.isfinite(state.windows.pending).all()


def test_state_unknown_model_is_counted_then_evaluated_once_its_reference_arrives(env) -> None:
    store, _, _, state = env
    other = make_reference(model="late")
    e = Emitter(other, start_ns=10)
    e.observe(100)
    res = ingest(state, e.request(time_ns=100))
    assert res.rejected["unknown_reference"] == 11
    store.put(other)
    e.observe(20)
    res = ingest(state, e.request(time_ns=200))
    assert res.rejected_total == 0
    st = state.streams[state.stream_index[("late", "1", "feature", "f0")]]
    # Cumulative counts carry everything since the process started: nothing was lost while waiting.
    assert [float(c[st.cell0: st.cell0 + st.spec.bins].sum()) for c in state.window_counts()] == [120, 120]


def test_state_snapshot_restore_round_trip_through_the_public_methods(env) -> None:
    store, ref, clock, state = env
    a, b = Emitter(ref, "pod-a", start_ns=10), Emitter(ref, "pod-b", start_ns=10)
    for e in (a, b):
        e.observe(100)
        ingest(state, e.request(time_ns=20))
    arrays, meta = state.snapshot()
    assert all(arr.dtype != object for arr in arrays.values())
    restored = State(store, windows=(60.0, 600.0), slots_per_window=6, clock=clock, series_ttl=1000)
    assert restored.restore(arrays, meta)  # same windows: counts restored
    assert sample_counts(restored) == sample_counts(state) == [200, 200]
    assert (restored.series_count, restored.stream_count) == (state.series_count, state.stream_count)
    assert restored.model_counts == state.model_counts
    a.observe(5)
    ingest(restored, a.request(time_ns=30))  # the baseline survived: only the 5 new rows count
    assert sample_counts(restored) == [205, 205]
    with pytest.raises(RuntimeError, match="only be restored into an empty state"):
        restored.restore(arrays, meta)


def test_state_restore_with_other_windows_keeps_baselines_only(env) -> None:
    store, ref, clock, state = env
    e = Emitter(ref, start_ns=10)
    e.observe(100)
    ingest(state, e.request(time_ns=20))
    other = State(store, windows=(120.0,), slots_per_window=6, clock=clock, series_ttl=1000)
    assert not other.restore(*state.snapshot())
    assert sample_counts(other) == [0]
    e.observe(7)
    ingest(other, e.request(time_ns=30))
    assert sample_counts(other) == [7]
