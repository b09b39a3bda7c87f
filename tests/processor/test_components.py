"""Store, checkpoint, evaluation, exporter and ingest admission, in-process."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from otel_ml import semconv
from otel_ml.stats import PolicyBook
from otel_ml_processor import _checkpoint
from otel_ml_processor._decode import decode_protobuf
from otel_ml_processor._evaluate import Evaluator
from otel_ml_processor._exporter import Exporter, Telemetry, build_request, encode_request
from otel_ml_processor._ingest import Ingestor
from otel_ml_processor._state import State
from otel_ml_processor._store import ReferenceStore, file_name

from .conftest import Sink
from .payloads import Emitter, make_reference


def feed(state: State, ref, rows: int = 1000, shift: dict | None = None, pods: int = 2) -> None:
    for p in range(pods):
        e = Emitter(ref, pod=f"p{p}", start_ns=10, seed=p)
        e.observe(rows, shift=shift)
        state.ingest(decode_protobuf(e.request(time_ns=100).SerializeToString()))


# --- store ------------------------------------------------------------------------------------------

def test_store_reloads_changed_files_and_skips_invalid_ones(tmp_path: Path) -> None:
    store = ReferenceStore(str(tmp_path))
    assert len(store) == 0
    make_reference().save(tmp_path / "a.json")
    (tmp_path / "broken.json").write_text("{}")
    assert store.poll()
    assert store.get("churn", "1") is not None
    assert "broken.json" in store.errors and "format_version" in store.errors["broken.json"]
    gen = store.generation
    assert not store.poll()
    make_reference(bins=5).save(tmp_path / "a.json")
    os.utime(tmp_path / "a.json", ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    assert store.poll() and store.generation > gen
    (tmp_path / "a.json").unlink()
    assert store.poll() and store.get("churn", "1") is None


def test_store_put_and_delete_write_the_directory(tmp_path: Path) -> None:
    store = ReferenceStore(str(tmp_path))
    ref = make_reference(model="a/b", version="1.0")
    store.put(ref)
    assert (tmp_path / file_name("a/b", "1.0")).exists() and "/" not in file_name("a/b", "1.0")
    assert [r["model"] for r in store.list()] == ["a/b"]
    assert store.delete("a/b", "1.0")
    assert not store.delete("a/b", "1.0")
    assert not list(tmp_path.glob("*.json"))


@pytest.mark.parametrize("model, version", [
    pytest.param(".hidden", "1", id="hidden_file"),
    pytest.param("..", "..", id="parent_dir"),
    pytest.param("../../etc/x", "1", id="path_traversal"),
    pytest.param("m" * 128, "v" * 128, id="longest_ascii"),
    pytest.param("é" * 128, "😀" * 128, id="longest_multibyte"),
    pytest.param("a@b", "c", id="separator_in_model"),
    pytest.param("a", "b@c", id="separator_in_version"),
    pytest.param("CON", "nul", id="windows_device_names"),
])
def test_store_file_names_are_plain_short_and_unique(model: str, version: str, tmp_path: Path) -> None:
    name = file_name(model, version)
    assert name.startswith("ref-") and name.endswith(".json") and "/" not in name and name.isascii()
    assert len(name.encode()) <= 115
    assert name != file_name(version, model) or model == version
    store = ReferenceStore(str(tmp_path))
    store.put(make_reference(model=model, version=version, rows=500))
    assert [p.name for p in tmp_path.iterdir()] == [name]
    assert ReferenceStore(str(tmp_path)).get(model, version) is not None  # found again by a fresh scan
    assert store.delete(model, version) and not list(tmp_path.iterdir())


def test_store_reports_any_bad_file_by_its_relative_name_and_keeps_the_others(tmp_path: Path) -> None:
    make_reference().save(tmp_path / "z.json")
    doc = make_reference(model="evil").to_dict()
    doc["features"][0]["counts"][0] = 10**400
    doc["features"][0]["kind"] = "numeric"
    (tmp_path / "0-evil.json").write_text(json.dumps(doc))
    (tmp_path / "1-deep.json").write_text("[" * 100_000 + "]" * 100_000)
    store = ReferenceStore(str(tmp_path))
    assert store.get("churn", "1") is not None and len(store) == 1
    assert sorted(store.errors) == ["0-evil.json", "1-deep.json"]
    assert all(m.startswith(n + ":") and str(tmp_path) not in m for n, m in store.errors.items())


def test_store_put_compiles_before_writing(tmp_path: Path, monkeypatch: Any) -> None:
    from otel_ml import ReferenceProfileError
    from otel_ml_processor import _store

    store = ReferenceStore(str(tmp_path))

    def broken(ref: Any, source: str) -> Any:
        raise OverflowError("int too large to convert to float")

    monkeypatch.setattr(_store, "compile_reference", broken)
    with pytest.raises(ReferenceProfileError, match="uploaded reference"):
        store.put(make_reference())
    assert not list(tmp_path.iterdir()) and len(store) == 0


def test_store_removes_temporary_files_at_start(tmp_path: Path) -> None:
    for name in ("churn.json.tmp-4242", "x.json.tmp", "keep.json.tmp-old"):
        (tmp_path / name).write_text("{")
    make_reference().save(tmp_path / "churn.json")
    store = ReferenceStore(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["churn.json", "keep.json.tmp-old"] and len(store) == 1


# --- checkpoint --------------------------------------------------------------------------------------

def test_checkpoint_roundtrip_keeps_windows_and_baselines(tmp_path: Path) -> None:
    store = ReferenceStore(None)
    ref = make_reference()
    store.put(ref)
    clock = [1_000_000.0]
    state = State(store, clock=lambda: clock[0], epoch_ns=0)
    feed(state, ref)
    before = [c.copy() for c in state.window_counts()]
    _checkpoint.save(state, str(tmp_path))
    assert json.loads((tmp_path / "state.json").read_text())["format_version"] == 1
    with np.load(next(tmp_path.glob("state-*.npz")), allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)
    restored = State(store, clock=lambda: clock[0])
    assert _checkpoint.load(restored, str(tmp_path))
    after = restored.window_counts()
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
    assert restored.epoch_ns == 0 and restored.series_count == state.series_count
    # Re-sending the same cumulative points adds nothing: the baselines survived.
    feed(restored, ref)
    assert all(np.array_equal(a, b) for a, b in zip(before, restored.window_counts()))


def test_checkpoint_unreadable_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("{nope")
    state = State(ReferenceStore(None))
    assert not _checkpoint.load(state, str(tmp_path))
    (tmp_path / "state.json").write_text(json.dumps({"format_version": 1, "arrays": "missing.npz"}))
    assert not _checkpoint.load(state, str(tmp_path))


def test_checkpoint_with_other_windows_keeps_baselines_only(tmp_path: Path) -> None:
    store = ReferenceStore(None)
    ref = make_reference()
    store.put(ref)
    state = State(store, epoch_ns=0)
    feed(state, ref)
    _checkpoint.save(state, str(tmp_path))
    other = State(store, windows=(60.0,))
    assert _checkpoint.load(other, str(tmp_path))
    assert not other.window_counts()[0].any()
    assert other.series_count == state.series_count



def test_checkpoint_keeps_the_roles_learnt_and_restores_older_checkpoints_without_them(tmp_path: Path) -> None:
    """ml.model.role survives a restart: the baseline of versions side by side does not depend on seeing
    each version's new series again (issue 13)."""
    store = ReferenceStore(None)
    ref = make_reference()
    store.put(ref)
    state = State(store, epoch_ns=0)
    feed(state, ref)
    assert state.learn_role("churn", "1", "live") and state.learn_role("churn", "2", "canary")
    assert not state.learn_role("churn", "3", "primary") and ("churn", "3") not in state.roles
    _checkpoint.save(state, str(tmp_path))
    restored = State(store)
    shared = restored.roles  # the outcomes path holds this dict: restored in place
    assert _checkpoint.load(restored, str(tmp_path))
    assert restored.roles is shared and shared == {("churn", "1"): "live", ("churn", "2"): "canary"}
    assert restored.series_count == state.series_count
    # A checkpoint written before roles were checkpointed restores, with none.
    index = json.loads((tmp_path / "state.json").read_text())
    del index["roles"]
    (tmp_path / "state.json").write_text(json.dumps(index))
    older = State(store)
    assert _checkpoint.load(older, str(tmp_path))
    assert older.roles == {} and older.series_count == state.series_count


@pytest.mark.parametrize("roles", [[["churn", "1", "primary"]], [["churn", "1"]], [["churn", "", "live"]],
                                   "live", [["churn", "1", 7]]],
                         ids=["unknown_role", "short_entry", "empty_version", "not_a_list", "role_not_a_string"])
def test_checkpoint_with_bad_roles_is_ignored_as_a_whole(roles: Any, tmp_path: Path) -> None:
    store = ReferenceStore(None)
    ref = make_reference()
    store.put(ref)
    state = State(store, epoch_ns=0)
    feed(state, ref)
    state.learn_role("churn", "1", "live")
    arrays, meta = state.snapshot()
    meta["roles"] = [["churn", "2", "shadow"], *roles] if isinstance(roles, list) else roles
    fresh = State(store, epoch_ns=5)
    with pytest.raises(ValueError):
        fresh.restore(arrays, meta)
    assert (fresh.roles, fresh.streams, fresh.epoch_ns) == ({}, [], 5)  # untouched
    np.savez(tmp_path / "state-1.npz", **arrays)
    (tmp_path / "state.json").write_text(json.dumps({**meta, "format_version": 1, "arrays": "state-1.npz"}))
    assert not _checkpoint.load(fresh, str(tmp_path))
    assert fresh.roles == {} and fresh.streams == []

# --- evaluation --------------------------------------------------------------------------------------

def test_evaluate_flags_only_the_shifted_feature_per_window_family() -> None:
    store = ReferenceStore(None)
    ref = make_reference()
    store.put(ref)
    state = State(store, epoch_ns=0)
    feed(state, ref, rows=2000, shift={"f2": 0.5})
    ev = Evaluator(store, PolicyBook.from_mapping({}), ("5m", "1h")).evaluate(state)
    got = {(k[3], w): int(d) for k, w, d in zip(ev.keys, ev.windows, ev.detected)}
    assert got == {(f, w): int(f == "f2") for f in ("f0", "f1", "f2", "plan") for w in ("5m", "1h")}
    assert np.all(ev.sample_count == 4000)


def test_evaluate_per_model_policy_and_no_verdict_below_min_samples() -> None:
    store = ReferenceStore(None)
    ref = make_reference()
    store.put(ref)
    state = State(store, epoch_ns=0)
    feed(state, ref, rows=50, pods=1)
    book = PolicyBook.from_mapping({"models": {"churn": {"min_samples": 10}}, "min_samples": 500})
    ev = Evaluator(store, book, ("5m", "1h")).evaluate(state)
    assert set(ev.detected.tolist()) <= {0, 1}
    ev = Evaluator(store, PolicyBook.from_mapping({"min_samples": 500}), ("5m", "1h")).evaluate(state)
    assert set(ev.detected.tolist()) == {-1}


def test_evaluate_quality_alarm_on_missing_values() -> None:
    store = ReferenceStore(None)
    ref = make_reference()
    store.put(ref)
    state = State(store, epoch_ns=0)
    for p in range(2):
        e = Emitter(ref, pod=f"p{p}", start_ns=10, seed=p)
        e.observe(3000, missing=0.05)
        state.ingest(decode_protobuf(e.request(time_ns=100).SerializeToString()))
    ev = Evaluator(store, PolicyBook.from_mapping({}), ("5m", "1h")).evaluate(state)
    assert (ev.quality_alarm == 1).all()
    assert np.allclose(ev.quality_ratio[:, 0], 0.05, atol=0.01)


def test_build_request_uses_semconv_names_and_attributes() -> None:
    store = ReferenceStore(None)
    ref = make_reference()
    store.put(ref)
    state = State(store, epoch_ns=0)
    feed(state, ref)
    ev = Evaluator(store, PolicyBook.from_mapping({}), ("5m", "1h")).evaluate(state)
    req = build_request(ev, Telemetry(received=5))
    rm = req.resource_metrics[0]
    assert {kv.key: kv.value.string_value for kv in rm.resource.attributes}["service.name"] == "otel-ml-processor"
    names = {m.name for m in rm.scope_metrics[0].metrics}
    assert names <= set(semconv.PROCESSOR_METRICS)
    assert {semconv.DRIFT_SCORE, semconv.DRIFT_DETECTED, semconv.DRIFT_SAMPLE_COUNT, semconv.QUALITY_ALARM,
            semconv.PROCESSOR_STATE_BYTES} <= names
    score = next(m for m in rm.scope_metrics[0].metrics if m.name == semconv.DRIFT_SCORE)
    keys = {kv.key for kv in score.gauge.data_points[0].attributes}
    assert keys == {semconv.MODEL_NAME, semconv.MODEL_VERSION, semconv.FEATURE_NAME, semconv.DRIFT_KIND,
                    semconv.DRIFT_WINDOW, semconv.DRIFT_METHOD}
    # The fast hand encoding is the same message.
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    tel = Telemetry(received=5, start_ns=1)
    fast = ExportMetricsServiceRequest.FromString(encode_request(ev, tel, now_ns=123))
    slow = build_request(ev, tel, now_ns=123)
    for r in (fast, slow):  # the instance id differs by nothing but is process-specific: drop it
        del r.resource_metrics[0].resource.attributes[:]
    assert fast == slow


# --- exporter ------------------------------------------------------------------------------------------

def test_exporter_retries_then_delivers_and_counts_drops(sink: Sink) -> None:
    async def main() -> None:
        tel = Telemetry()
        ex = Exporter(sink.endpoint, telemetry=tel, queue_size=2, timeout=2)
        sink.fail_next = 2
        stop = asyncio.Event()
        task = asyncio.create_task(ex.run(stop))
        payload = build_request(None, tel).SerializeToString()
        ex.submit(payload)
        for _ in range(100):
            if sink.requests:
                break
            await asyncio.sleep(0.1)
        assert len(sink.requests) == 1 and tel.export_failures["retryable"] == 2
        stop.set()
        await task
        for _ in range(3):
            ex.submit(payload)
        assert tel.export_failures["queue_full"] == 1
        assert await ex.flush(5) and len(sink.requests) == 3
        await ex.close()

    asyncio.run(main())


# --- ingest admission -----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "lag, draining, points, expect",
    [
        pytest.param(0.0, False, 10, None, id="idle_admits"),
        pytest.param(5.0, False, 10, "busy", id="lagging_loop_is_busy"),
        pytest.param(0.0, True, 10, "busy", id="draining_is_busy"),
        pytest.param(0.0, False, 150, "rate", id="over_rate_is_rate_limited"),
    ],
)
def test_ingest_overload_policy(lag: float, draining: bool, points: int, expect: str | None) -> None:
    ing = Ingestor(State(ReferenceStore(None)), Telemetry(), max_points_per_second=100, max_loop_lag=2.0)
    ing.lag = lag
    ing.draining = draining
    ov = ing.busy() or ing.take(points) or ing.take(points)
    assert (ov.reason if ov else None) == expect
    if ov:
        assert ov.retry_after >= 1


# --- reference distribution (ml.drift.reference.ratio) ------------------------------------------------

def test_le_label_spells_bounds_as_the_collector_spells_prometheus_le() -> None:
    from otel_ml_processor._store import le_label

    # Go's strconv.FormatFloat(f, 'f', -1, 64), as tests/e2e observed it ("0", "1", "2.5", "+Inf").
    cases = {0.0: "0", 1.0: "1", 2.5: "2.5", 10.0: "10", -3.25: "-3.25", 1e-7: "0.0000001", 1e22: "1" + "0" * 22,
             0.1 + 0.2: "0.30000000000000004", 123456.789: "123456.789", float("inf"): "+Inf"}
    assert {b: le_label(b) for b in cases} == cases


def test_reference_ratio_exports_each_evaluated_reference_once_per_bucket() -> None:
    store = ReferenceStore(None)
    ref = make_reference()
    store.put(ref)
    store.put(make_reference(version="2"))  # a reference without live streams: nothing exported for it
    state = State(store, epoch_ns=0)
    feed(state, ref)
    ev = Evaluator(store, PolicyBook.from_mapping({}), ("5m", "1h")).evaluate(state)
    req = build_request(ev, Telemetry())
    (metric,) = [m for m in req.resource_metrics[0].scope_metrics[0].metrics
                 if m.name == semconv.DRIFT_REFERENCE_RATIO]
    assert metric.unit == "1"
    points: dict[tuple[str, str], dict[str, float]] = {}
    for dp in metric.gauge.data_points:
        attrs = {kv.key: kv.value.string_value for kv in dp.attributes}
        assert dp.time_unix_nano == ev.time_ns
        assert (attrs[semconv.MODEL_NAME], attrs[semconv.MODEL_VERSION]) == ("churn", "1")
        assert semconv.DRIFT_WINDOW not in attrs
        bucket_key = semconv.BUCKET_LE if semconv.BUCKET_LE in attrs else semconv.FEATURE_CATEGORY
        assert set(attrs) == {semconv.MODEL_NAME, semconv.MODEL_VERSION, semconv.FEATURE_NAME, semconv.DRIFT_KIND,
                              bucket_key}
        per = points.setdefault((attrs[semconv.DRIFT_KIND], attrs[semconv.FEATURE_NAME]), {})
        assert attrs[bucket_key] not in per
        per[attrs[bucket_key]] = dp.as_double
    expected = {(semconv.DRIFT_KIND_FEATURE, p.name) for p in ref.streamed_features}
    expected |= {(semconv.DRIFT_KIND_PREDICTION, p.name) for p in ref.outputs}
    assert set(points) == expected and ref.outputs
    from otel_ml_processor._store import le_label

    for kind, items in ((semconv.DRIFT_KIND_FEATURE, ref.features), (semconv.DRIFT_KIND_PREDICTION, ref.outputs)):
        for p in items:
            got = points[(kind, p.name)]
            if p.kind == "numeric":
                # Cumulative share of reference values <= each bound, in bound order, +Inf last and exactly 1.
                labels = [le_label(e) for e in p.edges] + ["+Inf"]
                assert list(got) == labels
                cum = np.cumsum(p.counts) / sum(p.counts)
                assert np.allclose(list(got.values()), cum)
                assert got["+Inf"] == 1.0 and all(np.diff(list(got.values())) >= 0)
            else:
                assert list(got) == list(p.bucket_labels) and semconv.OTHER_CATEGORY in got
                total = sum(p.bucket_counts)
                assert got == pytest.approx({c: n / total for c, n in zip(p.bucket_labels, p.bucket_counts)})
                assert sum(got.values()) == pytest.approx(1.0)
    # The fast hand encoding carries the same points.
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    fast = ExportMetricsServiceRequest.FromString(encode_request(ev, Telemetry(start_ns=1), now_ns=5))
    slow = build_request(ev, Telemetry(start_ns=1), now_ns=5)
    for r in (fast, slow):
        del r.resource_metrics[0].resource.attributes[:]
    assert fast == slow
    # No live streams, no reference points.
    idle = Evaluator(store, PolicyBook.from_mapping({}), ("5m",)).evaluate(State(store, epoch_ns=0))
    assert semconv.DRIFT_REFERENCE_RATIO not in {m.name for m in build_request(idle, Telemetry())
                                                 .resource_metrics[0].scope_metrics[0].metrics}


@pytest.mark.parametrize("corrupt", [
    lambda a, m: m["series"][-1].__setitem__(1, "not hex"),
    lambda a, m: m.__setitem__("cells_used", m["cells_used"] + 1000),
    lambda a, m: m.__setitem__("cells_used", -1),
    lambda a, m: a.__setitem__("series_dst", a["series_dst"] + 10_000),
    lambda a, m: a.__setitem__("series_stream", a["series_stream"] - 100),
], ids=["series_key_not_hex", "cells_used_beyond_arrays", "cells_used_negative", "series_outside_windows",
        "series_of_no_stream"])
def test_checkpoint_restore_is_all_or_nothing(corrupt: Any, tmp_path: Path) -> None:
    store = ReferenceStore(None)
    ref = make_reference()
    store.put(ref)
    state = State(store, epoch_ns=0)
    feed(state, ref)
    arrays, meta = state.snapshot()
    corrupt(arrays, meta)
    fresh = State(store, epoch_ns=5)
    with pytest.raises(ValueError):
        fresh.restore(arrays, meta)
    assert (fresh.streams, fresh.series.n, fresh.cells_used, fresh.epoch_ns) == ([], 0, 0, 5)  # untouched
    # Through the files: ignored as a whole, moved aside, the next checkpoint is a good one.
    np.savez(tmp_path / "state-1.npz", **arrays)
    (tmp_path / "state.json").write_text(json.dumps({**meta, "format_version": 1, "arrays": "state-1.npz"}))
    assert not _checkpoint.load(fresh, str(tmp_path))
    assert fresh.streams == [] and sorted(p.name.split(".bad-")[0] for p in tmp_path.iterdir()) == \
        ["state-1.npz", "state.json"]
    _checkpoint.save(state, str(tmp_path))
    assert _checkpoint.load(State(store), str(tmp_path))


def test_checkpoint_write_that_fails_leaves_nothing(tmp_path: Path, monkeypatch: Any) -> None:
    state = State(ReferenceStore(None))
    _checkpoint.save(state, str(tmp_path))
    before = sorted(p.name for p in tmp_path.iterdir())

    def full_disk(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(json, "dumps", full_disk)  # the index, after the arrays were written
    with pytest.raises(OSError):
        _checkpoint.save(state, str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == before
