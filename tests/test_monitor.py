"""The decorator: spans, metrics, exception handling, methods/async, instrument(), the instrumentor."""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging

import numpy as np
import pytest
from opentelemetry import trace
from opentelemetry.trace import StatusCode

import otel_ml
from otel_ml import semconv
from otel_ml._aggregate import aggregates

from _otel_ml_support import SPANS, point, points, simple_reference, value

M = semconv


def expected_buckets(values, edges):
    counts = [0] * (len(edges) + 1)
    for v in values:
        counts[sum(1 for e in edges if v > e)] += 1
    return counts


def test_public_api_is_pinned():
    assert sorted(otel_ml.__all__) == [
        "ConfigurationError", "OtelMLError", "OtelMLInstrumentor", "Reference", "ReferenceProfileError",
        "build_reference", "configure", "flush", "instrument", "load_reference", "monitor", "record_outcomes",
    ]
    for name in otel_ml.__all__:
        assert getattr(otel_ml, name) is not None


def test_entry_point_resolves_to_the_instrumentor():
    eps = importlib.metadata.entry_points(group="opentelemetry_instrumentor")
    matching = [ep for ep in eps if ep.name == "otel_ml"]
    if not matching:
        pytest.skip("package not installed with its entry points")
    assert matching[0].load() is otel_ml.OtelMLInstrumentor


def test_span_metrics_and_exact_counts(exporter):
    ref = simple_reference()
    rng = np.random.default_rng(7)
    X = {"x": rng.normal(size=300) * 3, "y": rng.uniform(-5, 15, size=300),
         "c": ["a"] * 100 + ["b"] * 100 + ["zz"] * 100}
    out = np.column_stack([np.full(300, 0.25), np.full(300, 0.75)])

    @otel_ml.monitor(model="m", version="1", reference=ref)
    def predict(batch):
        return out

    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("request") as parent:
        result = predict(X)
    assert result is out
    assert otel_ml.flush(5.0)
    data = exporter.last

    spans = [s for s in SPANS.get_finished_spans() if s.name == "predict m"]
    assert len(spans) == 1
    span = spans[0]
    assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
    assert span.attributes[M.MODEL_NAME] == "m" and span.attributes[M.MODEL_VERSION] == "1"
    assert span.attributes[M.PREDICT_BATCH_SIZE] == 300
    assert not any(k.startswith(M.FEATURE_VALUE_ATTRIBUTE_PREFIX) for k in span.attributes)
    assert span.instrumentation_scope.name == M.INSTRUMENTATION_SCOPE

    assert value(data, M.PREDICT_ROWS) == 300
    for name in ("x", "y"):
        edges = list(ref.feature(name).edges)
        p = point(data, M.FEATURE_VALUE, **{M.FEATURE_NAME: name})
        assert list(p.explicit_bounds) == edges
        assert list(p.bucket_counts) == expected_buckets(X[name], edges)
        assert p.count == 300
        assert p.min == pytest.approx(X[name].min()) and p.max == pytest.approx(X[name].max())
        assert p.attributes[M.MODEL_NAME] == "m"
        prof = ref.feature(name)
        oor = int(((X[name] < prof.min) | (X[name] > prof.max)).sum())
        assert value(data, M.FEATURE_OUT_OF_RANGE, **{M.FEATURE_NAME: name}) == oor
    # x has negatives in the reference: no sum (OTel spec); y is non-negative: sum kept
    assert point(data, M.FEATURE_VALUE, **{M.FEATURE_NAME: "x"}).sum is None
    assert point(data, M.FEATURE_VALUE, **{M.FEATURE_NAME: "y"}).sum == pytest.approx(X["y"].sum())

    cats = {p.attributes[M.FEATURE_CATEGORY]: p.value for p in points(data, M.FEATURE_CATEGORY_COUNT)}
    assert cats == {"a": 100, "b": 100, "c": 0, M.OTHER_CATEGORY: 100}
    assert value(data, M.FEATURE_UNSEEN, **{M.FEATURE_NAME: "c"}) == 100

    for cls, v in (("0", 0.25), ("1", 0.75)):
        p = point(data, M.PREDICTION_VALUE, **{M.PREDICTION_NAME: f"proba:{cls}"})
        edges = list(ref.outputs[int(cls)].edges)
        assert list(p.bucket_counts) == expected_buckets([v] * 300, edges)

    d = point(data, M.PREDICT_DURATION)
    assert d.count == 1 and M.ERROR_TYPE not in d.attributes
    assert d.exemplars and d.exemplars[0].span_id == span.context.span_id
    assert d.exemplars[0].trace_id == span.context.trace_id
    assert value(data, M.INSTRUMENTATION_ERRORS) == 0


class ModelBoom(Exception):
    pass


def test_model_exception_propagates_unchanged_and_is_recorded(exporter):
    ref = simple_reference()
    boom = ModelBoom("nope")

    @otel_ml.monitor(model="m", version="1", reference=ref)
    def predict(batch):
        raise boom

    with pytest.raises(ModelBoom) as info:
        predict({"x": 1.0, "y": 2.0, "c": "a"})
    assert info.value is boom
    span = [s for s in SPANS.get_finished_spans() if s.name == "predict m"][-1]
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[M.ERROR_TYPE] == ModelBoom.__qualname__
    assert any(e.name == "exception" for e in span.events)
    assert otel_ml.flush(5.0)
    d = point(exporter.last, M.PREDICT_DURATION, **{M.ERROR_TYPE: ModelBoom.__qualname__})
    assert d.count == 1
    assert value(exporter.last, M.PREDICT_ROWS) == 1  # the input was seen


def test_methods_classmethods_keyword_and_input_arg(exporter):
    ref = simple_reference()

    class Service:
        @otel_ml.monitor(model="m", version="1", reference=ref)
        def predict(self, features):
            return np.zeros((len(features["x"]), 2))

        @classmethod
        @otel_ml.monitor(model="m", version="1", reference=ref)
        def cpredict(cls, features):
            return np.zeros((1, 2))

        @otel_ml.monitor(model="m", version="1", reference=ref, input_arg="rows")
        def other(self, threshold, rows):
            return np.zeros((1, 2))

    s = Service()
    s.predict({"x": [1.0, 2.0], "y": [1.0, 1.0], "c": ["a", "a"]})
    s.predict(features={"x": [1.0], "y": [1.0], "c": ["a"]})
    Service.predict(s, {"x": [1.0], "y": [1.0], "c": ["a"]})
    Service.cpredict({"x": 1.0, "y": 1.0, "c": "b"})
    s.other(0.5, {"x": 1.0, "y": 1.0, "c": "b"})
    s.other(0.5, rows={"x": 1.0, "y": 1.0, "c": "b"})
    assert otel_ml.flush(5.0)
    assert value(exporter.last, M.PREDICT_ROWS) == 7
    cats = {p.attributes[M.FEATURE_CATEGORY]: p.value for p in points(exporter.last, M.FEATURE_CATEGORY_COUNT)}
    assert cats["a"] == 4 and cats["b"] == 3
    assert value(exporter.last, M.SCHEMA_VIOLATIONS, **{M.SCHEMA_VIOLATION: M.SCHEMA_UNSUPPORTED_INPUT}) == 0


def test_input_arg_must_name_a_parameter():
    with pytest.raises(otel_ml.ConfigurationError, match="nope"):
        @otel_ml.monitor(model="m", version="1", input_arg="nope")
        def predict(X):
            return X


def test_async_functions(exporter):
    ref = simple_reference()

    @otel_ml.monitor(model="m", version="1", reference=ref)
    async def predict(batch):
        await asyncio.sleep(0)
        return np.zeros((len(batch), 2))

    X = np.array([[0.5, 1.0, 0.0]], dtype=object)
    X[0, 2] = "a"
    out = asyncio.run(predict(X))
    assert out.shape == (1, 2)
    assert otel_ml.flush(5.0)
    assert value(exporter.last, M.PREDICT_ROWS) == 1
    assert [s for s in SPANS.get_finished_spans() if s.name == "predict m"]


def test_record_feature_values_is_opt_in_and_bounded(exporter):
    names = [f"f{i}" for i in range(50)]
    data = np.random.default_rng(1).normal(size=(100, 50))
    ref = otel_ml.build_reference(data, feature_names=names, model="w", version="1")

    @otel_ml.monitor(model="w", version="1", reference=ref, record_feature_values=True)
    def predict(X):
        return None

    predict(data[:3])
    span = [s for s in SPANS.get_finished_spans() if s.name == "predict w"][-1]
    recorded = {k: v for k, v in span.attributes.items() if k.startswith(M.FEATURE_VALUE_ATTRIBUTE_PREFIX)}
    assert 0 < len(recorded) <= 32
    assert recorded[M.FEATURE_VALUE_ATTRIBUTE_PREFIX + "f0"] == pytest.approx(data[0, 0])


def test_without_reference_only_span_duration_rows(exporter):
    @otel_ml.monitor(model="bare", version="2")
    def predict(X):
        return [1, 2]

    assert predict([[1, 2], [3, 4]]) == [1, 2]
    assert otel_ml.flush(5.0)
    names = {m.name for rm in exporter.last.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert names == {M.PREDICT_DURATION, M.PREDICT_ROWS}
    assert value(exporter.last, M.PREDICT_ROWS) == 2


def test_reference_loaded_at_decoration_time(tmp_path):
    with pytest.raises(otel_ml.ReferenceProfileError, match=r"missing\.json"):
        otel_ml.monitor(model="m", version="1", reference=tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(otel_ml.ReferenceProfileError, match=r"bad\.json"):
        otel_ml.monitor(model="m", version="1", reference=str(bad))
    ref = simple_reference()
    path = tmp_path / "ref.json"
    ref.save(path)
    with pytest.raises(otel_ml.ReferenceProfileError, match="version"):
        otel_ml.monitor(model="m", version="2", reference=path)
    with pytest.raises(otel_ml.ConfigurationError):
        otel_ml.monitor(model="", version="1")
    with pytest.raises(otel_ml.ConfigurationError):
        otel_ml.monitor(model="m", version="1", reference=42)


def test_same_model_version_with_another_reference_fails_fast(exporter):
    otel_ml.monitor(model="m", version="1", reference=simple_reference(seed=1))(lambda X: X)
    with pytest.raises(otel_ml.ConfigurationError, match="different"):
        otel_ml.monitor(model="m", version="1", reference=simple_reference(seed=2))(lambda X: X)
    # the same profile rebuilt later (another created_at) is the same layout: shared counters
    import dataclasses

    again = dataclasses.replace(simple_reference(seed=1), created_at="2000-01-01T00:00:00+00:00")
    otel_ml.monitor(model="m", version="1", reference=again)(lambda X: X)
    assert len(aggregates()) == 1


def test_internal_failure_is_counted_logged_once_and_never_raised(exporter, monkeypatch, caplog):
    ref = simple_reference()

    @otel_ml.monitor(model="m", version="1", reference=ref)
    def predict(X):
        return X

    agg = aggregates()[0]
    from otel_ml import _monitor

    def broken(self, x):
        raise RuntimeError("adapter bug")

    monkeypatch.setattr(_monitor._Monitor, "prepare", broken)
    payload = {"x": 1.0, "y": 1.0, "c": "a"}
    with caplog.at_level(logging.WARNING, logger="otel_ml"):
        for _ in range(5):
            assert predict(payload) is payload
    assert agg.errors == 5
    assert sum("adapter bug" in r.getMessage() for r in caplog.records) == 1
    assert otel_ml.flush(5.0)
    assert value(exporter.last, M.INSTRUMENTATION_ERRORS) == 5


def test_instrument_estimator_and_uninstrument(exporter):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    clf = LogisticRegression().fit(X, y)
    ref = otel_ml.build_reference(X, model="clf", version="1", predictions=clf.predict(X))
    original_predict = clf.predict(X[:5])

    assert otel_ml.instrument(clf, model="clf", version="1", reference=ref) is clf
    otel_ml.instrument(clf, model="clf", version="1", reference=ref)  # idempotent
    assert np.array_equal(clf.predict(X[:5]), original_predict)
    proba = clf.predict_proba(X[:5])
    assert proba.shape == (5, 2)
    assert otel_ml.flush(5.0)
    assert value(exporter.last, M.PREDICT_ROWS) == 10
    labels = {p.attributes[M.PREDICTION_CLASS]: p.value for p in points(exporter.last, M.PREDICTION_CLASS_COUNT)}
    assert sum(labels.values()) == 5
    assert labels == {str(k): int((original_predict == k).sum()) for k in (0, 1)} | {M.OTHER_CATEGORY: 0}
    # the reference describes predict's labels only: predict_proba's output is not recorded, not a violation
    assert value(exporter.last, M.SCHEMA_VIOLATIONS, **{M.SCHEMA_VIOLATION: M.SCHEMA_UNSUPPORTED_INPUT}) == 0

    inst = otel_ml.OtelMLInstrumentor()
    assert inst is otel_ml.OtelMLInstrumentor()
    inst.instrument()
    inst.instrument()
    inst.uninstrument()
    inst.uninstrument()
    assert "predict" not in clf.__dict__ and "predict_proba" not in clf.__dict__
    n_spans = len(SPANS.get_finished_spans())

    @otel_ml.monitor(model="other", version="1")
    def f(X):
        return 1

    assert f([1]) == 1
    assert len(SPANS.get_finished_spans()) == n_spans  # pass-through while uninstrumented
    inst.instrument()
    f([1])
    assert len(SPANS.get_finished_spans()) == n_spans + 1


def test_sdk_disabled_passes_through(exporter, monkeypatch):
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    from otel_ml._export import PIPELINE

    PIPELINE._config = None

    @otel_ml.monitor(model="off", version="1")
    def f(X):
        return X

    n = len(SPANS.get_finished_spans())
    assert f(3) == 3
    assert len(SPANS.get_finished_spans()) == n
    assert otel_ml.flush(1.0)
    otel_ml.configure(disabled=False, exporter=exporter)
    f(3)
    assert len(SPANS.get_finished_spans()) == n + 1
    otel_ml.configure(disabled=True)
    f(3)
    assert len(SPANS.get_finished_spans()) == n + 1


def test_nested_call_of_the_same_model_is_counted_once(exporter):
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)  # predict calls predict_proba
    ref = otel_ml.build_reference(X, model="rf", version="1", predictions=forest.predict(X))
    otel_ml.instrument(forest, model="rf", version="1", reference=ref)
    SPANS.clear()
    forest.predict(X[:7])
    assert otel_ml.flush(5.0)
    assert value(exporter.last, M.PREDICT_ROWS) == 7
    assert point(exporter.last, M.FEATURE_VALUE, **{M.FEATURE_NAME: "x0"}).count == 7
    assert len([s for s in SPANS.get_finished_spans() if s.name == "predict rf"]) == 1
    assert value(exporter.last, M.SCHEMA_VIOLATIONS, **{M.SCHEMA_VIOLATION: M.SCHEMA_UNSUPPORTED_INPUT}) == 0
    forest.predict_proba(X[:2])  # called directly it is monitored as usual
    assert otel_ml.flush(5.0)
    assert value(exporter.last, M.PREDICT_ROWS) == 9


def test_different_models_nest_normally(exporter):
    @otel_ml.monitor(model="inner", version="1")
    def inner(X):
        return X

    @otel_ml.monitor(model="outer", version="1")
    def outer(X):
        return inner(X)

    SPANS.clear()
    outer([[1.0]])
    spans = {s.name: s for s in SPANS.get_finished_spans()}
    assert spans["predict inner"].parent.span_id == spans["predict outer"].context.span_id


def test_instrumentor_passes_configuration(exporter):
    from _otel_ml_support import MemoryExporter

    mem = MemoryExporter()
    inst = otel_ml.OtelMLInstrumentor()
    inst.instrument(exporter=mem, export_interval_s=3600, skip_dep_check=True)
    assert inst.is_instrumented_by_opentelemetry
    assert "scikit-learn >= 1.0" in inst.instrumentation_dependencies()

    @otel_ml.monitor(model="cfg", version="1")
    def f(X):
        return X

    f([[1.0]])
    assert otel_ml.flush(5.0)
    assert value(mem.last, M.PREDICT_ROWS) == 1
    inst.uninstrument()
    assert not inst.is_instrumented_by_opentelemetry


def test_prediction_histograms_carry_an_exemplar_of_the_sampled_span(exporter):
    ref = simple_reference()

    @otel_ml.monitor(model="m", version="1", reference=ref)
    def predict(batch):
        return np.array([[0.2, 0.8]] * len(batch["x"]))

    for n in (1, 50):  # the buffered and the direct path
        SPANS.clear()
        predict({"x": [0.0] * n, "y": [1.0] * n, "c": ["a"] * n})
        assert otel_ml.flush(5.0)
        span = [s for s in SPANS.get_finished_spans() if s.name == "predict m"][-1]
        p = point(exporter.last, M.PREDICTION_VALUE, **{M.PREDICTION_NAME: "proba:1"})
        assert len(p.exemplars) == 1
        ex = p.exemplars[0]
        assert ex.value == 0.8 and ex.span_id == span.context.span_id and ex.trace_id == span.context.trace_id
    assert not point(exporter.last, M.FEATURE_VALUE, **{M.FEATURE_NAME: "x"}).exemplars  # no raw feature values
