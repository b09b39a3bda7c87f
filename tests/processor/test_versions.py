"""Versions side by side: a candidate model version judged against its baseline version's live traffic."""

from __future__ import annotations

import numpy as np
import pytest

from otel_ml import semconv
from otel_ml._binning import bucket_counts
from otel_ml.stats import PolicyBook, evaluate_batch
from otel_ml_processor._config import ConfigurationError, from_mapping
from otel_ml_processor._decode import decode_protobuf
from otel_ml_processor._evaluate import Evaluator
from otel_ml_processor._exporter import Telemetry, build_request, encode_request
from otel_ml_processor._state import State
from otel_ml_processor._store import ReferenceStore
from otel_ml_processor._versions import VersionPair, choose_pairs

from .payloads import CUMULATIVE, Emitter, kv, make_reference

WINDOWS = ("5m", "1h")


def _emit(state: State, ref, rows: int, *, seed: int, shift: dict | None = None, output_shift: float = 0.0) -> None:
    """One pod of ``ref``'s model version: features (payloads.Emitter) plus the ``value`` output histogram."""
    e = Emitter(ref, pod=f"{ref.model_version}-{seed}", start_ns=10, seed=seed)
    e.observe(rows, shift=shift)
    req = e.request(time_ns=100)
    out = ref.outputs[0]
    values = np.random.default_rng(seed + 100).normal(out.mean + output_shift * out.std, out.std, rows)
    counts = bucket_counts(values, np.asarray(out.edges))
    sm = req.resource_metrics[0].scope_metrics[0]
    h = sm.metrics.add(name=semconv.PREDICTION_VALUE)
    h.histogram.aggregation_temporality = CUMULATIVE
    dp = h.histogram.data_points.add(start_time_unix_nano=10, time_unix_nano=100, count=int(counts.sum()))
    dp.attributes.extend([kv(semconv.MODEL_NAME, ref.model_name), kv(semconv.MODEL_VERSION, ref.model_version),
                          kv(semconv.PREDICTION_NAME, out.name)])
    dp.bucket_counts.extend(int(x) for x in counts)
    dp.explicit_bounds.extend(out.edges)
    res = state.ingest(decode_protobuf(req.SerializeToString()))
    assert res.rejected_total == 0, res.rejected


def _state(*refs) -> tuple[ReferenceStore, State]:
    store = ReferenceStore(None)
    for r in refs:
        store.put(r)
    return store, State(store, epoch_ns=0)


def _verdicts(ev) -> dict[tuple[str, str, str, str, str], int]:
    vc = ev.versions
    assert vc is not None and vc.drift is not None
    return {(c, b, k, n, w): int(d) for (_, c, b, k, n), w, d in zip(vc.keys, vc.windows, vc.drift.detected)}


def test_candidate_with_shifted_outputs_is_flagged_against_its_baseline() -> None:
    live, canary = make_reference(version="1"), make_reference(version="2")  # same training data: same bins
    store, state = _state(live, canary)
    _emit(state, live, 6000, seed=1)
    _emit(state, canary, 2000, seed=2, output_shift=0.6)
    ev = Evaluator(store, PolicyBook.from_mapping({}), WINDOWS).evaluate(state)
    got = _verdicts(ev)
    # Baseline = the version with more rows (v1); only the output differs, in both windows.
    assert got == {("2", "1", k, n, w): int(n == "value")
                   for k, n in [("feature", f) for f in ("f0", "f1", "f2", "plan")] + [("prediction", "value")]
                   for w in WINDOWS}
    assert ev.versions is not None and ev.versions.skipped == []


def test_identical_candidate_is_not_flagged_and_feature_mix_is() -> None:
    live, canary = make_reference(version="1"), make_reference(version="2")
    store, state = _state(live, canary)
    _emit(state, live, 3000, seed=1)
    _emit(state, canary, 5000, seed=2)  # more rows: v2 is the automatic baseline now
    ev = Evaluator(store, PolicyBook.from_mapping({}), WINDOWS).evaluate(state)
    assert set(_verdicts(ev).values()) == {0}
    assert {k[1:3] for k in ev.versions.keys} == {("1", "2")}  # type: ignore[union-attr]

    store, state = _state(live, canary)
    _emit(state, live, 3000, seed=1)
    _emit(state, canary, 3000, seed=2, shift={"f1": 0.5})  # the canary serves other traffic
    got = _verdicts(Evaluator(store, PolicyBook.from_mapping({}), WINDOWS).evaluate(state))
    assert {n for (_, _, _, n, _), d in got.items() if d == 1} == {"f1"}


def test_scores_match_a_direct_evaluate_batch_of_the_two_versions_counts() -> None:
    live, canary = make_reference(version="1"), make_reference(version="2")
    store, state = _state(live, canary)
    _emit(state, live, 4000, seed=1)
    _emit(state, canary, 1000, seed=2, output_shift=0.3)
    evaluator = Evaluator(store, PolicyBook.from_mapping({}), WINDOWS)
    ev = evaluator.evaluate(state)
    vc = ev.versions
    assert vc is not None and vc.drift is not None
    counts = state.window_counts()[0]
    idx = {st.key: st for st in state.streams}
    rows = [r for r, w in enumerate(vc.windows) if w == "5m"]
    ref, cur, pos, spread, numeric = [], [], [], [], []
    lay = evaluator.layout(state)
    where = {st.key: i for i, st in enumerate(lay.streams)}
    width = lay.reference.shape[1]
    for r in rows:
        m, c, b, k, n = vc.keys[r]
        sc, sb = idx[(m, c, k, n)], idx[(m, b, k, n)]
        row_c = np.zeros(width)
        row_b = np.zeros(width)
        row_c[: sc.spec.bins] = counts[sc.cell0: sc.cell0 + sc.spec.bins]
        row_b[: sb.spec.bins] = counts[sb.cell0: sb.cell0 + sb.spec.bins]
        cur.append(row_c)
        ref.append(row_b)
        pos.append(lay.positions[where[(m, b, k, n)]])
        spread.append(lay.spread[where[(m, b, k, n)]])
        numeric.append(sb.spec.numeric)
    direct = evaluate_batch(np.array(ref), np.array(cur), numeric=np.array(numeric), positions=np.array(pos),
                            spread=np.array(spread), family=np.zeros(len(rows), dtype=np.int64),
                            policy=lay.policies[0])
    for method in ("chi_square", "psi", "wasserstein", "p_adjusted"):
        np.testing.assert_allclose(getattr(vc.drift, method)[rows], getattr(direct, method), equal_nan=True)
    np.testing.assert_array_equal(vc.drift.detected[rows], direct.detected)
    assert vc.drift.detected[rows].tolist().count(1) == 1  # the output only


def test_streams_with_different_bins_are_skipped_and_listed() -> None:
    live = make_reference(version="1")
    other = make_reference(version="2", seed=7)  # another training sample: other numeric edges
    store, state = _state(live, other)
    _emit(state, live, 3000, seed=1)
    _emit(state, other, 1000, seed=2)
    ev = Evaluator(store, PolicyBook.from_mapping({}), WINDOWS).evaluate(state)
    vc = ev.versions
    assert vc is not None
    assert {k[4] for k in vc.skipped} == {"f0", "f1", "f2", "value"}  # numeric edges differ
    assert {k[4] for k in vc.keys} == {"plan"}  # the categories are the same


def test_thin_baseline_or_candidate_gives_no_verdict() -> None:
    live, canary = make_reference(version="1"), make_reference(version="2")
    store, state = _state(live, canary)
    _emit(state, live, 3000, seed=1)
    _emit(state, canary, 50, seed=2, output_shift=2.0)
    ev = Evaluator(store, PolicyBook.from_mapping({"min_samples": 100}), WINDOWS).evaluate(state)
    assert set(_verdicts(ev).values()) == {-1}


def test_explicit_pairs_replace_the_automatic_choice_for_their_model() -> None:
    live, canary = make_reference(version="1"), make_reference(version="2")
    store, state = _state(live, canary)
    _emit(state, live, 3000, seed=1)
    _emit(state, canary, 1000, seed=2, output_shift=0.6)
    ev = Evaluator(store, PolicyBook.from_mapping({}), WINDOWS,
                   versions=(VersionPair("churn", "1", "2"),)).evaluate(state)
    assert {k[1:3] for k in ev.versions.keys} == {("1", "2")}  # type: ignore[union-attr]
    off = Evaluator(store, PolicyBook.from_mapping({}), WINDOWS, automatic_versions=False).evaluate(state)
    assert off.versions is not None and off.versions.rows == 0


def test_choose_pairs_automatic_default_and_explicit() -> None:
    rows = {"churn": {"1": 100.0, "2": 900.0, "3": 50.0}, "fraud": {"7": 10.0, "8": 10.0}, "solo": {"1": 5.0}}
    pairs = choose_pairs(rows, [VersionPair("fraud", "7", "8"), VersionPair("fraud", "9", "8")])
    assert pairs == [VersionPair("fraud", "7", "8"),  # explicit; v9 is not live: nothing
                     VersionPair("churn", "1", "2"), VersionPair("churn", "3", "2")]
    assert choose_pairs({"fraud": {"7": 10.0, "8": 10.0}}, []) == [VersionPair("fraud", "7", "8")]  # tie: greater
    assert choose_pairs(rows, [], automatic=False) == []
    # ml.model.role = live pins the baseline whatever the traffic (a shadow scores every request too).
    roles = {("churn", "1"): "live", ("churn", "2"): "shadow"}
    assert choose_pairs({"churn": {"1": 100.0, "2": 900.0}}, [], roles=roles) == [VersionPair("churn", "2", "1")]


def test_export_carries_version_gauges_with_the_baseline_attribute() -> None:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    live, canary = make_reference(version="1"), make_reference(version="2")
    store, state = _state(live, canary)
    _emit(state, live, 3000, seed=1)
    _emit(state, canary, 1000, seed=2, output_shift=0.6)
    ev = Evaluator(store, PolicyBook.from_mapping({}), WINDOWS).evaluate(state)
    slow = build_request(ev, Telemetry())
    fast = ExportMetricsServiceRequest.FromString(encode_request(ev, Telemetry()))
    by_name = [{m.name: m for m in r.resource_metrics[0].scope_metrics[0].metrics} for r in (slow, fast)]
    for name in (semconv.VERSION_DRIFT_DETECTED, semconv.VERSION_DRIFT_SCORE):
        assert by_name[0][name] == by_name[1][name], name  # the wire-format fast path writes the same points
    for metrics in by_name:
        pts = metrics[semconv.VERSION_DRIFT_DETECTED].gauge.data_points
        flagged = [{a.key: a.value.string_value for a in p.attributes} for p in pts if p.as_int == 1]
        assert flagged == [{semconv.MODEL_NAME: "churn", semconv.MODEL_VERSION: "2",
                            semconv.MODEL_BASELINE_VERSION: "1", semconv.FEATURE_NAME: "value",
                            semconv.DRIFT_KIND: "prediction", semconv.DRIFT_WINDOW: w} for w in WINDOWS]
        methods = {a.value.string_value for p in metrics[semconv.VERSION_DRIFT_SCORE].gauge.data_points
                   for a in p.attributes if a.key == semconv.DRIFT_METHOD}
        assert {"psi", "chi_square", "wasserstein"} <= methods


@pytest.mark.parametrize(("compare", "message"), [
    ("churn", "must be a list"),
    ([{"model": "churn", "candidate": "2"}], "versions.compare[0]: must be a mapping with exactly"),
    ([{"model": "churn", "candidate": "2", "baseline": "2"}], "same version"),
    ([{"model": "", "candidate": "2", "baseline": "1"}], "non-empty"),
    ([{"model": "m", "candidate": "2", "baseline": "1"}] * 2, "versions.compare[1]: duplicate"),
])
def test_config_rejects_bad_version_pairs(compare, message) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        from_mapping({"versions": {"compare": compare}}, env={})


def test_config_reads_pairs_and_numeric_versions() -> None:
    cfg = from_mapping({"versions": {"compare": [{"model": "churn", "candidate": 4, "baseline": "3"}],
                                     "automatic": False}}, env={})
    assert cfg.versions.compare == (("churn", "4", "3"),)
    assert cfg.versions.automatic is False
    assert from_mapping({}, env={}).versions.automatic is True


# --- realized performance: candidate vs baseline windows --------------------------------------------------

def _window(version: str, accuracy: float, n: int, seed: int, window: str = "5m"):
    from otel_ml.stats import classification_metrics
    from otel_ml_processor._performance import WindowResult

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    pred = np.where(rng.uniform(size=n) < accuracy, y, 1 - y)
    metrics = dict(classification_metrics([str(v) for v in y], [str(v) for v in pred], None, ("0", "1")))
    return WindowResult("churn", version, window, n, 1.0, metrics, {}, (), {}, [], {})


def test_performance_gap_against_a_direct_degradation_verdict() -> None:
    from otel_ml.stats import PerformancePolicy, degradation_verdicts
    from otel_ml_processor._versions import performance_gaps

    policy = PerformancePolicy()
    base, worse, same = _window("1", 0.90, 4000, 1), _window("2", 0.80, 2000, 2), _window("3", 0.90, 2000, 3)
    gaps = {(g.pair.candidate, g.pair.baseline, g.metric): g for g in
            performance_gaps([base, worse, same], (), True, policy)}
    assert set(gaps) == {("2", "1", "accuracy"), ("3", "1", "accuracy")}  # v1: most outcomes, the baseline
    direct = {vd.metric: vd for vd in degradation_verdicts(worse.metrics, base.metrics, policy)}["accuracy"]
    g = gaps[("2", "1", "accuracy")]
    assert g.gap == pytest.approx(direct.current.value - direct.reference.value)
    assert g.gap == pytest.approx(-0.10, abs=0.03)
    assert g.degraded == int(direct.degraded) == 1
    assert gaps[("3", "1", "accuracy")].degraded == 0


def test_performance_gap_takes_the_live_role_as_baseline_whatever_the_outcome_counts() -> None:
    from otel_ml.stats import PerformancePolicy
    from otel_ml_processor._versions import performance_gaps

    # Versions side by side on equal traffic (shadows, an even split): the live role, not the greatest
    # version string, is the baseline, as for the drift comparison of the same versions.
    results = [_window("1", 0.90, 2000, 1), _window("2", 0.80, 2000, 2), _window("3", 0.90, 2000, 3)]
    roles = {("churn", "1"): "live", ("churn", "2"): "canary", ("churn", "3"): "canary"}
    gaps = performance_gaps(results, (), True, PerformancePolicy(), roles)
    assert {(g.pair.candidate, g.pair.baseline) for g in gaps} == {("2", "1"), ("3", "1")}
    assert {g.pair.candidate: g.degraded for g in gaps if g.metric == "accuracy"} == {"2": 1, "3": 0}


def test_performance_gap_needs_min_samples_on_both_sides_and_is_exported() -> None:
    from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb

    from otel_ml.stats import PerformancePolicy
    from otel_ml_processor._versions import add_performance_gaps, performance_gaps

    policy = PerformancePolicy(min_samples=500)
    cand = _window("2", 0.70, 3000, 2)
    gaps = performance_gaps([_window("1", 0.9, 200, 1), cand], (VersionPair("churn", "2", "1"),), True, policy)
    assert [g.degraded for g in gaps] == [-1]  # a 200-outcome baseline window decides nothing
    sm = pb.ScopeMetrics()
    add_performance_gaps(sm, gaps, 1)
    metrics = {m.name: m for m in sm.metrics}
    point = metrics[semconv.VERSION_PERFORMANCE_DEGRADED].gauge.data_points[0]
    assert point.as_int == -1
    assert {a.key: a.value.string_value for a in point.attributes} == {
        semconv.MODEL_NAME: "churn", semconv.MODEL_VERSION: "2", semconv.MODEL_BASELINE_VERSION: "1",
        semconv.DRIFT_WINDOW: "5m", semconv.PERFORMANCE_METRIC: "accuracy"}
    assert metrics[semconv.VERSION_PERFORMANCE_GAP].gauge.data_points[0].as_double == pytest.approx(-0.2, abs=0.07)
