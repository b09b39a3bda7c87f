"""The version registry: each new version's baseline is fixed when it appears, survives restarts, is bounded."""

from __future__ import annotations

import json

import numpy as np
import pytest

from otel_ml import semconv
from otel_ml._binning import bucket_counts
from otel_ml.stats import PolicyBook
from otel_ml_processor import _checkpoint
from otel_ml_processor._decode import decode_protobuf
from otel_ml_processor._evaluate import Evaluator
from otel_ml_processor._registry import VersionEntry, VersionRegistry
from otel_ml_processor._state import State
from otel_ml_processor._store import ReferenceStore
from otel_ml_processor._versions import VersionPair, choose_pairs

from .payloads import CUMULATIVE, Emitter, kv, make_reference

WINDOWS = ("5m", "1h")


class _Pod:
    """One pod of a model version sending cumulative features and the ``value`` output histogram."""

    def __init__(self, ref, seed: int) -> None:
        self.ref = ref
        self.emitter = Emitter(ref, pod=f"{ref.model_version}-{seed}", start_ns=10, seed=seed)
        self.rng = np.random.default_rng(seed + 100)
        self.outputs = np.zeros(len(ref.outputs[0].edges) + 1)

    def send(self, state: State, rows: int, now: float) -> None:
        out = self.ref.outputs[0]
        self.emitter.observe(rows)
        self.outputs += bucket_counts(self.rng.normal(out.mean, out.std, rows), np.asarray(out.edges))
        req = self.emitter.request(time_ns=int(now * 1e9) + 100)
        h = req.resource_metrics[0].scope_metrics[0].metrics.add(name=semconv.PREDICTION_VALUE)
        h.histogram.aggregation_temporality = CUMULATIVE
        dp = h.histogram.data_points.add(start_time_unix_nano=10, time_unix_nano=int(now * 1e9) + 100,
                                         count=int(self.outputs.sum()))
        dp.attributes.extend([kv(semconv.MODEL_NAME, self.ref.model_name),
                              kv(semconv.MODEL_VERSION, self.ref.model_version), kv(semconv.PREDICTION_NAME, out.name)])
        dp.bucket_counts.extend(int(x) for x in self.outputs)
        dp.explicit_bounds.extend(out.edges)
        res = state.ingest(decode_protobuf(req.SerializeToString()), now)
        assert res.rejected_total == 0, res.rejected


class _Rollout:
    """v1 serves alone, v2 appears as a canary and takes 90 % of the traffic, then v3 appears."""

    def __init__(self) -> None:
        self.refs = {v: make_reference(version=v) for v in ("1", "2", "3")}  # same data: same bins
        self.store = ReferenceStore(None)
        for r in self.refs.values():
            self.store.put(r)
        self.now = 0.0
        self.state = self.new_state()
        self.pods = {v: _Pod(r, seed=int(v)) for v, r in self.refs.items()}
        self.evaluator = Evaluator(self.store, PolicyBook.from_mapping({}), WINDOWS)

    def new_state(self) -> State:
        return State(self.store, epoch_ns=0, clock=lambda: self.now)

    def step(self, seconds: float, **rows: int) -> set[tuple[str, str]]:
        """Advance the clock, send ``rows`` per version (``v1=...``), evaluate; the compared pairs."""
        self.now += seconds
        for v, n in rows.items():
            self.pods[v[1:]].send(self.state, n, self.now)
        return self.pairs()

    def pairs(self, evaluator: Evaluator | None = None) -> set[tuple[str, str]]:
        ev = (evaluator or self.evaluator).evaluate(self.state, self.now)
        assert ev.versions is not None
        return {(c, b) for _, c, b, _, _ in ev.versions.keys}


def _rollout_until_v3() -> _Rollout:
    r = _Rollout()
    assert r.step(0, v1=9000) == set()  # the first version has no baseline
    assert r.step(600, v1=1000, v2=500) == {("2", "1")}  # the canary appears: baseline v1
    for _ in range(7):  # v2 takes 90 % of the traffic; v1's early rows leave the 1 h window
        assert r.step(600, v1=100, v2=900) == {("2", "1")}  # fixed: v2 is not re-based on itself flipping
    return r


def test_rollout_each_new_version_against_the_one_that_served_most_before_it() -> None:
    r = _rollout_until_v3()
    # Lifetime rows: v1 10,700 > v2 6,800; in the hour before v3 appeared v2 served 90 %: v2 is v3's baseline.
    assert r.step(600, v1=100, v2=900, v3=300) == {("2", "1"), ("3", "2")}
    reg = r.state.version_registry
    assert [reg.baseline("churn", v) for v in ("1", "2", "3")] == [None, "1", "2"]
    lineage = reg.lineage()
    assert lineage[("churn", "1")].first_seen_ns == 0
    assert lineage[("churn", "2")].first_seen_ns == 600 * 10**9
    assert lineage[("churn", "3")].first_seen_ns == 5400 * 10**9
    # v3 grows to most of the traffic: its baseline stays v2, and v2's stays v1.
    for _ in range(3):
        assert r.step(600, v1=50, v2=100, v3=2000) == {("2", "1"), ("3", "2")}


def test_exported_gauges_name_the_registered_baseline() -> None:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    from otel_ml_processor._exporter import Telemetry, encode_request

    r = _rollout_until_v3()
    r.step(600, v1=100, v2=900, v3=1000)  # enough rows for a verdict: only verdicts are exported
    ev = r.evaluator.evaluate(r.state, r.now)
    req = ExportMetricsServiceRequest.FromString(encode_request(ev, Telemetry()))
    metrics = {m.name: m for m in req.resource_metrics[0].scope_metrics[0].metrics}
    pairs = set()
    for p in metrics[semconv.VERSION_DRIFT_DETECTED].gauge.data_points:
        a = {x.key: x.value.string_value for x in p.attributes}
        pairs.add((a[semconv.MODEL_VERSION], a[semconv.MODEL_BASELINE_VERSION]))
    assert pairs == {("2", "1"), ("3", "2")}


def test_baselines_survive_a_restart_through_the_checkpoint_files(tmp_path) -> None:
    r = _rollout_until_v3()
    r.step(600, v1=100, v2=900, v3=300)
    _checkpoint.save(r.state, str(tmp_path))
    index = json.loads((tmp_path / _checkpoint.INDEX).read_text())
    assert [e[0] for e in index["versions"]["models"]["churn"]] == ["1", "2", "3"]
    r.state = r.new_state()
    assert _checkpoint.load(r.state, str(tmp_path))
    assert [r.state.version_registry.baseline("churn", v) for v in ("1", "2", "3")] == [None, "1", "2"]
    # After the restart v1 carries the most traffic in the window; the fixed baselines still hold.
    assert r.step(600, v1=5000, v2=100, v3=100) == {("2", "1"), ("3", "2")}


def test_restart_without_the_registry_falls_back_to_most_rows_and_the_old_checkpoint_restores(tmp_path) -> None:
    r = _rollout_until_v3()
    r.step(600, v1=100, v2=900, v3=300)
    arrays, meta = _checkpoint.snapshot(r.state)
    del meta["versions"]  # a checkpoint written before the registry existed
    _checkpoint.write(str(tmp_path), arrays, meta)
    r.state = r.new_state()
    assert _checkpoint.load(r.state, str(tmp_path))
    assert r.state.stream_count == 15 and len(r.state.version_registry) == 0
    # The first evaluation registers the versions most rows first: v2 (the most), then v1 and v3 against it.
    assert r.pairs() == {("1", "2"), ("3", "2")}


def test_malformed_registry_rejects_the_whole_checkpoint() -> None:
    r = _rollout_until_v3()
    arrays, meta = r.state.snapshot()
    for bad in ({"models": {"churn": [["1", 0, 0, None], ["1", 1, 1, "1"]]}},
                {"models": {"churn": [["2", "x", 0, None]]}}, {"models": []}, {"models": {"churn": []}}):
        fresh = r.new_state()
        with pytest.raises(ValueError, match="versions"):
            fresh.restore(arrays, {**meta, "versions": bad})
        assert fresh.stream_count == 0 and len(fresh.version_registry) == 0  # all or nothing


def test_explicit_pairs_and_role_live_take_precedence_over_the_registry() -> None:
    r = _rollout_until_v3()
    r.step(600, v1=100, v2=900, v3=300)
    explicit = Evaluator(r.store, PolicyBook.from_mapping({}), WINDOWS, versions=(VersionPair("churn", "3", "1"),))
    assert r.pairs(explicit) == {("3", "1")}
    r.state.roles[("churn", "1")] = "live"  # as learnt from ml.model.role on v1's points
    assert r.pairs(Evaluator(r.store, PolicyBook.from_mapping({}), WINDOWS)) == {("2", "1"), ("3", "1")}
    lineage = r.state.version_registry.lineage()
    rows = {"churn": {"1": 700.0, "2": 5400.0, "3": 300.0}}
    assert choose_pairs(rows, [], roles={("churn", "2"): "live"}, lineage=lineage) == [
        VersionPair("churn", "1", "2"), VersionPair("churn", "3", "2")]
    assert choose_pairs(rows, [], lineage=lineage) == [VersionPair("churn", "2", "1"), VersionPair("churn", "3", "2")]


def _lineage(*entries: tuple[str, str | None]) -> dict[tuple[str, str], VersionEntry]:
    return {("m", v): VersionEntry(i, i, b, i) for i, (v, b) in enumerate(entries)}


def test_a_retired_baseline_is_replaced_by_the_nearest_live_ancestor_else_an_older_version() -> None:
    lineage = _lineage(("1", None), ("2", "1"), ("3", "2"), ("4", "3"))
    # v2 and v3 retired: v4 is judged against v1, the nearest live one up its chain.
    assert choose_pairs({"m": {"1": 10.0, "4": 10.0}}, [], lineage=lineage) == [VersionPair("m", "4", "1")]
    # v1 forgotten and v3 retired: up the chain nothing serves; the older live version with most rows, v2.
    lineage = _lineage(("2", "1"), ("3", "2"), ("4", "3"), ("5", "3"))
    lineage.pop(("m", "3"))
    assert choose_pairs({"m": {"2": 1.0, "4": 50.0, "5": 10.0}}, [], lineage=lineage) == [
        VersionPair("m", "4", "2"), VersionPair("m", "5", "4")]
    # The oldest live version is no candidate (no pair in both directions).
    assert choose_pairs({"m": {"2": 100.0, "3": 900.0}}, [], lineage=_lineage(("2", None), ("3", "2"))) == [
        VersionPair("m", "3", "2")]


def test_performance_gaps_follow_the_registry() -> None:
    from otel_ml.stats import PerformancePolicy
    from otel_ml_processor._versions import performance_gaps

    from .test_versions import _window

    results = [_window("1", 0.9, 4000, 1), _window("2", 0.9, 2000, 2), _window("3", 0.9, 1000, 3)]
    lineage = _lineage(("1", None), ("2", "1"), ("3", "2"))
    lineage = {("churn", v): e for (_, v), e in lineage.items()}
    pairs = {(g.pair.candidate, g.pair.baseline) for g in
             performance_gaps(results, (), True, PerformancePolicy(), lineage=lineage)}
    assert pairs == {("2", "1"), ("3", "2")}


def test_registry_rules_ties_and_cap() -> None:
    reg = VersionRegistry(max_versions=3)
    # Together: most rows first (ties: the greater version), each against the best one known before it
    # (ties: the most recently first-seen, a).
    reg.observe({"m": {"a": 10.0, "b": 10.0, "c": 5.0, "z": 0.0}}, 1)
    assert [reg.baseline("m", v) for v in ("b", "a", "c")] == [None, "b", "a"]
    assert reg.baseline("m", "z") is None and ("m", "z") not in reg.lineage()  # no rows: not seen yet
    reg.observe({"m": {"c": 1.0, "d": 1.0}}, 2)  # a and b have no rows now; c ties with nothing: c
    assert reg.baseline("m", "d") == "c"
    assert set(reg.lineage()) == {("m", v) for v in ("a", "c", "d")}  # cap 3: b, least recently seen, forgotten
    reg2 = VersionRegistry(max_versions=3)
    reg2.observe({"m": {"1": 5.0}}, 1)
    for t, v in enumerate(("2", "3", "4", "5"), start=2):
        reg2.observe({"m": {"1": 5.0, v: 1.0}}, t)  # v1 keeps serving: never forgotten
    assert [v for _, v in reg2.lineage()] == ["1", "4", "5"]
    assert all(e.baseline == "1" for (_, v), e in reg2.lineage().items() if v != "1")
    # A tie in rows: the most recently first-seen known version is the baseline.
    reg3 = VersionRegistry()
    reg3.observe({"m": {"1": 5.0}}, 1)
    reg3.observe({"m": {"2": 5.0}}, 2)
    reg3.observe({"m": {"1": 3.0, "2": 3.0, "3": 1.0}}, 3)
    assert reg3.baseline("m", "3") == "2"
    many = VersionRegistry(max_models=2)
    for t, model in enumerate(("x", "y", "z")):
        many.observe({model: {"1": 1.0}}, t)
    assert {m for m, _ in many.lineage()} == {"y", "z"}
    # A checkpoint restored under a smaller cap keeps the most recently seen versions.
    small = VersionRegistry(max_versions=2)
    small.restore(reg2.snapshot())
    assert [v for _, v in small.lineage()] == ["1", "5"]


def test_docs_state_the_registry_bounds() -> None:
    from pathlib import Path

    from otel_ml_processor._registry import MAX_MODELS, MAX_VERSIONS_PER_MODEL

    text = " ".join((Path(__file__).resolve().parents[2] / "docs" / "processor.md").read_text().split())
    assert f"{MAX_VERSIONS_PER_MODEL} versions per model, {MAX_MODELS} models" in text
