"""A shadow model beside the live one: one call, both versions' spans and metrics, the live answer returned."""

from __future__ import annotations

import numpy as np
import pytest
from opentelemetry import trace

import otel_ml
from otel_ml import semconv as M
from otel_ml._errors import ConfigurationError

from _otel_ml_support import SPANS, point, simple_reference, value


def test_shadow_pattern_records_both_versions_from_one_call(exporter):
    ref_live, ref_shadow = simple_reference(version="1"), simple_reference(version="2")
    rng = np.random.default_rng(3)
    X = {"x": rng.normal(size=200), "y": rng.uniform(0, 10, size=200), "c": ["a"] * 200}
    live_out = np.column_stack([np.full(200, 0.2), np.full(200, 0.8)])
    shadow_out = np.column_stack([np.full(200, 0.7), np.full(200, 0.3)])
    calls = []

    @otel_ml.monitor(model="m", version="1", reference=ref_live, role="live")
    def predict_live(batch):
        calls.append("live")
        return live_out

    @otel_ml.monitor(model="m", version="2", reference=ref_shadow, role="shadow")
    def predict_shadow(batch):
        calls.append("shadow")
        return shadow_out

    def predict(batch):
        answer = predict_live(batch)
        predict_shadow(batch)
        return answer

    with trace.get_tracer("test").start_as_current_span("request") as request:
        result = predict(X)
    assert result is live_out and calls == ["live", "shadow"]
    assert otel_ml.flush(5.0)
    data = exporter.last

    spans = {s.attributes[M.MODEL_VERSION]: s for s in SPANS.get_finished_spans() if s.name == "predict m"}
    assert set(spans) == {"1", "2"}
    for version, role in (("1", "live"), ("2", "shadow")):
        span = spans[version]
        assert span.attributes[M.MODEL_ROLE] == role
        assert span.parent is not None and span.parent.span_id == request.get_span_context().span_id
        assert value(data, M.PREDICT_ROWS, **{M.MODEL_VERSION: version}) == 200
        hist = point(data, M.FEATURE_VALUE, **{M.MODEL_VERSION: version, M.FEATURE_NAME: "x"})
        assert hist.count == 200  # the same input counted under each version
        assert hist.attributes[M.MODEL_ROLE] == role  # on the metric points too: the processor pins the baseline
    # Each version's own outputs: the shadow's probabilities, not the live answer.
    for version, p1 in (("1", 0.8), ("2", 0.3)):
        p = point(data, M.PREDICTION_VALUE, **{M.MODEL_VERSION: version, M.PREDICTION_NAME: "proba:1"})
        edges = np.asarray(p.explicit_bounds)
        assert list(p.bucket_counts)[int(np.searchsorted(edges, p1, side="left"))] == 200


def test_role_is_checked_at_decoration_time():
    with pytest.raises(ConfigurationError, match="role must be one of live, canary, shadow"):
        otel_ml.monitor(model="m", version="1", role="blue")


def test_without_role_the_span_has_no_role_attribute(exporter):
    @otel_ml.monitor(model="m", version="1")
    def predict(batch):
        return [0] * len(batch)

    predict([[1.0], [2.0]])
    span = next(s for s in SPANS.get_finished_spans() if s.name == "predict m")
    assert M.MODEL_ROLE not in span.attributes
    assert otel_ml.flush(5.0)
    assert M.MODEL_ROLE not in point(exporter.last, M.PREDICT_ROWS).attributes


def test_instrument_takes_a_role_too(exporter):
    class Model:
        def predict(self, X):
            return np.zeros(len(X))

    est = otel_ml.instrument(Model(), model="m", version="2", role="canary", methods=("predict",))
    est.predict(np.ones((3, 1)))
    span = next(s for s in SPANS.get_finished_spans() if s.name == "predict m")
    assert span.attributes[M.MODEL_ROLE] == "canary"
    assert otel_ml.flush(5.0)
    assert point(exporter.last, M.PREDICT_ROWS).attributes[M.MODEL_ROLE] == "canary"
    with pytest.raises(ConfigurationError, match="role must be one of"):
        otel_ml.instrument(Model(), model="m", version="3", role="blue")
