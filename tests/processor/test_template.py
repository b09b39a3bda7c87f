"""The histogram structure cache: exact on hits, never used when the structure differs."""

from __future__ import annotations

import numpy as np

from otel_ml import semconv
from otel_ml_processor._decode import decode_protobuf
from otel_ml_processor._state import State
from otel_ml_processor._store import ReferenceStore
from otel_ml_processor._template import TemplateCache

from .payloads import Emitter, make_reference


def _hist(d):
    return d.histograms[0]


def test_template_hit_decodes_the_same_numbers_as_the_full_path() -> None:
    e = Emitter(make_reference(), start_ns=10)
    cache = TemplateCache()
    for i in range(4):
        e.observe(100)
        data = e.request(time_ns=100 + i).SerializeToString()
        fast = _hist(decode_protobuf(data, cache))
    assert cache.hits >= 1 and fast.template >= 0
    slow = _hist(decode_protobuf(data))
    assert list(fast.attrs) == list(slow.attrs) and list(fast.bounds) == [bytes(b) for b in slow.bounds]
    assert fast.start.tolist() == list(slow.start) and fast.time.tolist() == list(slow.time)
    assert fast.count.tolist() == list(slow.count)
    expected = np.frombuffer(b"".join(slow.buckets), dtype="<u8").astype(float)
    assert np.array_equal(fast.values, expected)


def test_template_miss_when_the_structure_changes_at_equal_length() -> None:
    ref = make_reference()
    cache = TemplateCache()
    e = Emitter(ref, start_ns=10)
    e.observe(10)
    req = e.request(time_ns=100)
    for _ in range(3):
        decode_protobuf(req.SerializeToString(), cache)
    # Same length, other attribute value: must not be served from the cache.
    for m in req.resource_metrics[0].scope_metrics[0].metrics:
        if m.name == semconv.FEATURE_VALUE:
            for kv in m.histogram.data_points[0].attributes:
                if kv.key == semconv.FEATURE_NAME:
                    kv.value.string_value = "fX"  # same length as "f0"
    d = decode_protobuf(req.SerializeToString(), cache)
    assert _hist(d).template == -1  # the histogram was decoded the normal way
    assert b"fX" in _hist(d).attrs[0][2]


def test_template_sum_values_equal_the_full_path() -> None:
    e = Emitter(make_reference(), start_ns=10)
    cache = TemplateCache()
    for i in range(4):
        e.observe(100, missing=0.1)
        data = e.request(time_ns=100 + i).SerializeToString()
        fast = decode_protobuf(data, cache).sums
    slow = decode_protobuf(data).sums
    assert [g.template >= 0 for g in fast] == [True] * len(fast)
    for f, s in zip(fast, slow):
        assert list(f.attrs) == list(s.attrs)
        assert f.start.tolist() == list(s.start) and f.time.tolist() == list(s.time)
        assert f.value.tolist() == list(s.value)


def test_template_state_results_equal_the_full_path() -> None:
    store = ReferenceStore(None)
    ref = make_reference()
    store.put(ref)
    states = [State(store, epoch_ns=0), State(store, epoch_ns=0)]
    cache = TemplateCache()
    pods = [Emitter(ref, pod=f"p{i}", start_ns=10, seed=i) for i in range(3)]
    for k in range(6):
        for e in pods:
            e.observe(50, shift={"f1": 0.2})
            data = e.request(time_ns=100 + k).SerializeToString()
            r1 = states[0].ingest(decode_protobuf(data, cache))
            r2 = states[1].ingest(decode_protobuf(data))
            assert (r1.accepted, dict(r1.rejected), r1.ignored) == (r2.accepted, dict(r2.rejected), r2.ignored)
        if k == 3:
            states[0].evict()
            states[0].compact()  # invalidates cached series ids
    assert cache.hits > 0
    for a, b in zip(states[0].window_counts(), states[1].window_counts()):
        assert np.array_equal(a, b)


def test_template_sum_as_double_values() -> None:
    e = Emitter(make_reference(), start_ns=10)
    e.observe(100, missing=0.1)
    req = e.request(time_ns=100)
    for m in req.resource_metrics[0].scope_metrics[0].metrics:
        if m.name == semconv.FEATURE_MISSING:
            for dp in m.sum.data_points:
                dp.as_double = float(dp.as_int) + 0.5
    data = req.SerializeToString()
    cache = TemplateCache()
    for _ in range(3):
        fast = decode_protobuf(data, cache).sums
    slow = decode_protobuf(data).sums
    assert all(g.template >= 0 for g in fast)
    assert [g.value.tolist() for g in fast] == [list(g.value) for g in slow]


def test_template_fuzzed_payloads_never_break_decode_or_state() -> None:
    import random

    from otel_ml_processor._decode import DecodeError

    store = ReferenceStore(None)
    ref = make_reference()
    store.put(ref)
    state = State(store, epoch_ns=0)
    cache = TemplateCache()
    e = Emitter(ref, start_ns=10)
    e.observe(100)
    data = bytearray(e.request(time_ns=100).SerializeToString())
    for _ in range(3):
        state.ingest(decode_protobuf(bytes(data), cache))
    rng = random.Random(3)
    for _ in range(300):
        mutated = bytearray(data)
        for _ in range(rng.randrange(1, 6)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        try:
            decoded = decode_protobuf(bytes(mutated), cache)
        except DecodeError:
            continue
        state.ingest(decoded)
    assert np.isfinite(state.windows.pending).all()
