"""ml.performance.estimated in the processor: from the window's proba:<positive> histogram through the
reference's calibration, only for binary references with calibration and windows of min_samples rows."""

from __future__ import annotations

import numpy as np
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from otel_ml import build_reference, semconv
from otel_ml._binning import bucket_counts
from otel_ml.reference import NumericProfile, Reference
from otel_ml.stats import PolicyBook, estimate_binary
from otel_ml_processor._decode import decode_protobuf
from otel_ml_processor._evaluate import Evaluator
from otel_ml_processor._exporter import Telemetry, build_request, encode_request
from otel_ml_processor._state import State
from otel_ml_processor._store import ReferenceStore

from .payloads import kv


def _reference(labels: bool = True) -> Reference:
    rng = np.random.default_rng(7)
    n = 5_000
    logit = 2.5 * rng.standard_normal(n)
    p1 = 1 / (1 + np.exp(-1.5 * logit))  # overconfident
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return build_reference({"x": rng.normal(size=n)}, model="fraud", version="1",
                           predictions=np.column_stack([1 - p1, p1]), class_names=["no", "yes"],
                           labels=y if labels else None)


def _request(ref: Reference, p1: np.ndarray) -> bytes:
    req = ExportMetricsServiceRequest()
    sm = req.resource_metrics.add().scope_metrics.add()
    h = sm.metrics.add(name=semconv.PREDICTION_VALUE)
    h.histogram.aggregation_temporality = 2  # cumulative
    for prof, values in ((o, p1 if o.name == "proba:yes" else 1 - p1) for o in ref.outputs):
        assert isinstance(prof, NumericProfile)
        counts = bucket_counts(values, np.asarray(prof.edges))
        dp = h.histogram.data_points.add(start_time_unix_nano=10, time_unix_nano=100, count=int(counts.sum()))
        dp.attributes.extend([kv(semconv.MODEL_NAME, "fraud"), kv(semconv.MODEL_VERSION, "1"),
                              kv(semconv.PREDICTION_NAME, prof.name)])
        dp.bucket_counts.extend(int(x) for x in counts)
        dp.explicit_bounds.extend(prof.edges)
    return req.SerializeToString()


def _evaluate(ref: Reference, rows: int, min_samples: int = 500):
    store = ReferenceStore(None)
    store.put(ref)
    state = State(store, epoch_ns=0)
    p1 = 1 / (1 + np.exp(-1.5 * 2.5 * np.random.default_rng(8).standard_normal(rows)))
    state.ingest(decode_protobuf(_request(ref, p1)))
    ev = Evaluator(store, PolicyBook.from_mapping({"min_samples": min_samples}), ("5m", "1h")).evaluate(state)
    return ev, p1


def test_estimates_each_window_from_the_positive_class_histogram() -> None:
    ref = _reference()
    ev, p1 = _evaluate(ref, 3_000)
    assert [(r.model, r.version, r.window) for r in ev.estimated] == [("fraud", "1", "5m"), ("fraud", "1", "1h")]
    edges = next(o for o in ref.outputs if o.name == "proba:yes").edges  # type: ignore[union-attr]
    assert ref.performance is not None
    direct = estimate_binary(edges, bucket_counts(p1, np.asarray(edges)), ref.performance.calibration)
    assert ev.estimated[0].metrics == direct
    # calibration at work: the overconfident scores taken at face value would claim more
    naive = estimate_binary(edges, bucket_counts(p1, np.asarray(edges)))
    assert naive["accuracy"].value - direct["accuracy"].value > 0.02

    req = build_request(ev, Telemetry())
    metrics = {m.name: m for m in req.resource_metrics[0].scope_metrics[0].metrics}
    points = metrics[semconv.PERFORMANCE_ESTIMATED].gauge.data_points
    seen = {tuple(sorted((a.key, a.value.string_value) for a in dp.attributes)): dp.as_double for dp in points}
    key = tuple(sorted({semconv.MODEL_NAME: "fraud", semconv.MODEL_VERSION: "1", semconv.DRIFT_WINDOW: "5m",
                        semconv.PERFORMANCE_METRIC: "accuracy"}.items()))
    assert seen[key] == direct["accuracy"].value
    assert len(points) == 6  # 3 metrics x 2 windows
    assert {semconv.PERFORMANCE_ESTIMATED_LOWER, semconv.PERFORMANCE_ESTIMATED_UPPER} <= set(metrics)
    fast = ExportMetricsServiceRequest.FromString(encode_request(ev, Telemetry(start_ns=1), now_ns=5))
    slow = build_request(ev, Telemetry(start_ns=1), now_ns=5)
    for r in (fast, slow):
        del r.resource_metrics[0].resource.attributes[:]
    assert fast == slow


def test_nothing_below_min_samples_or_without_calibration() -> None:
    ev, _ = _evaluate(_reference(), 300, min_samples=500)
    assert ev.rows and ev.estimated == []
    assert semconv.PERFORMANCE_ESTIMATED not in {
        m.name for m in build_request(ev, Telemetry()).resource_metrics[0].scope_metrics[0].metrics}
    ev, _ = _evaluate(_reference(labels=False), 3_000)
    assert ev.rows and ev.estimated == []


def test_estimate_guards_the_evaluation_against_odd_counts() -> None:
    from otel_ml_processor._estimated import estimate, estimated_target

    target = estimated_target(_reference())
    assert target is not None and target.output == "proba:yes"
    counts = np.full(len(target.edges) + 1, 100.0)
    counts[0] = -1e-9  # rounding in a window increment must not raise inside the evaluation
    assert estimate(target, counts, 500) is not None
    counts[1] = np.nan
    assert estimate(target, counts, 500) is None
    assert estimated_target(_reference(labels=False)) is None


def _reference_points(req: ExportMetricsServiceRequest) -> dict[tuple[tuple[str, str], ...], float]:
    points = [dp for rm in req.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
              if m.name == semconv.PERFORMANCE_REFERENCE for dp in m.gauge.data_points]
    seen = {tuple(sorted((a.key, a.value.string_value) for a in dp.attributes)): dp.as_double for dp in points}
    assert len(seen) == len(points), "one point per model version, window, metric and class"
    return seen


def test_holdout_reference_is_exported_without_outcomes_for_each_window_and_metric() -> None:
    """A label-free model (no outcome ever joined): the estimate's comparison line, ml.performance.reference,
    comes with the drift evaluation, with the labels the realized path used (window, metric, class)."""
    ref = _reference()
    assert ref.performance is not None
    ev, _ = _evaluate(ref, 3_000)
    req = build_request(ev, Telemetry(start_ns=1), now_ns=5)
    seen = _reference_points(req)
    expected = {}
    for window in ("5m", "1h"):
        for key, est in ref.performance.metrics.items():
            metric, _, cls = key.partition(":")
            attrs = {semconv.MODEL_NAME: "fraud", semconv.MODEL_VERSION: "1", semconv.DRIFT_WINDOW: window,
                     semconv.PERFORMANCE_METRIC: metric, **({semconv.PREDICTION_CLASS: cls} if cls else {})}
            expected[tuple(sorted(attrs.items()))] = est.value
    assert seen == expected
    # each estimated series has its reference series (the alert's join: model, version, metric, window)
    estimated = {tuple(sorted((a.key, a.value.string_value) for a in dp.attributes))
                 for m in req.resource_metrics[0].scope_metrics[0].metrics if m.name == semconv.PERFORMANCE_ESTIMATED
                 for dp in m.gauge.data_points}
    assert estimated and estimated <= set(seen)
    fast = ExportMetricsServiceRequest.FromString(encode_request(ev, Telemetry(start_ns=1), now_ns=5))
    for r in (fast, req):
        del r.resource_metrics[0].resource.attributes[:]
    assert fast == req
    # too few rows for an estimate: the reference line is there all the same; no performance section: none
    ev, _ = _evaluate(ref, 300, min_samples=500)
    assert ev.estimated == [] and _reference_points(build_request(ev, Telemetry())) == expected
    ev, _ = _evaluate(_reference(labels=False), 3_000)
    assert _reference_points(build_request(ev, Telemetry())) == {}


def test_holdout_reference_of_a_version_with_records_but_no_live_stream() -> None:
    """Prediction and outcome records only (no feature metrics): the version is named by the caller."""
    store = ReferenceStore(None)
    store.put(_reference())
    state = State(store, epoch_ns=0)
    evaluator = Evaluator(store, PolicyBook(), ("5m", "1h"))
    assert _reference_points(build_request(evaluator.evaluate(state), Telemetry())) == {}
    ev = evaluator.evaluate(state, also_live=[("fraud", "1"), ("fraud", "1"), ("unknown", "9")])
    assert ev.rows == 0
    seen = _reference_points(ExportMetricsServiceRequest.FromString(encode_request(ev, Telemetry())))
    assert {dict(k)[semconv.DRIFT_WINDOW] for k in seen} == {"5m", "1h"}
    assert {dict(k)[semconv.MODEL_NAME] for k in seen} == {"fraud"}
