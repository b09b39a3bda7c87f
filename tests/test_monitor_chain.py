"""Model chains: one model's output is the next model's input feature (docs/library.md, "Model chains")."""

from __future__ import annotations

import numpy as np
from opentelemetry import trace

import otel_ml
from otel_ml import semconv as M
from otel_ml._binning import bucket_counts

from _otel_ml_support import SPANS, point


def test_chained_models_spans_share_the_request_and_upstream_output_is_downstream_input(exporter):
    rng = np.random.default_rng(0)
    train = rng.normal(size=3000)
    up_ref = otel_ml.build_reference({"x": train}, model="embedder", version="1", predictions=2 * train)
    # The downstream reference is built on the upstream model's outputs, as it is fed in production.
    down_ref = otel_ml.build_reference({"score": 2 * train}, model="ranker", version="1",
                                       predictions=train > 0)

    @otel_ml.monitor(model="embedder", version="1", reference=up_ref)
    def embed(X):
        return 2 * np.asarray(X["x"]) + 1.0  # the upstream model has drifted: its outputs moved by 1

    @otel_ml.monitor(model="ranker", version="1", reference=down_ref)
    def rank(X):
        return np.asarray(X["score"]) > 0

    def handle(X):
        return rank({"score": embed(X)})

    x = rng.normal(size=500)
    with trace.get_tracer("test").start_as_current_span("request") as request:
        handle({"x": x})
    assert otel_ml.flush(5.0)
    spans = {s.name: s for s in SPANS.get_finished_spans()}
    for name in ("predict embedder", "predict ranker"):
        assert spans[name].parent is not None and spans[name].parent.span_id == request.get_span_context().span_id
        assert spans[name].context.trace_id == request.get_span_context().trace_id
    # What the upstream emitted as its output is exactly what the downstream counted as its input feature.
    data = exporter.last
    up_out = point(data, M.PREDICTION_VALUE, **{M.MODEL_NAME: "embedder"})
    down_in = point(data, M.FEATURE_VALUE, **{M.MODEL_NAME: "ranker", M.FEATURE_NAME: "score"})
    assert list(down_in.bucket_counts) == list(bucket_counts(2 * x + 1.0, np.asarray(down_ref.feature("score").edges)))
    assert up_out.count == down_in.count == 500
