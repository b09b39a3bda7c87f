"""OTLP encoding: snapshots of a model's counters become SDK data points and MetricsData."""

from __future__ import annotations

import numpy as np
from opentelemetry.sdk.resources import Resource

import otel_ml
from otel_ml import semconv as M
from otel_ml._aggregate import ModelAggregate, SampledCall
from otel_ml._otlp import build_metrics_data, model_points


def test_build_metrics_data_wraps_metrics():
    data = build_metrics_data(Resource({"service.name": "p"}), "scope", [], scope_version="1")
    rm = data.resource_metrics[0]
    assert rm.resource.attributes["service.name"] == "p"
    assert rm.scope_metrics[0].scope.name == "scope" and rm.scope_metrics[0].scope.version == "1"


def _model() -> ModelAggregate:
    ref = otel_ml.build_reference({"a": np.linspace(0, 1, 100)}, model="o", version="1",
                                  predictions=np.linspace(0, 1, 100))
    return ModelAggregate("o", "1", ref)


def test_points_carry_the_sampled_call_as_exemplars():
    agg = _model()
    call = SampledCall(trace_id=7, span_id=9, time_ns=agg.start_ns + 5, duration_s=0.02, error_type=None,
                       first_output=[0.25])
    agg.commit(1, [[0.5]], None, None, [[0.25]], None, 0.02, None, call)
    pts = model_points(agg, agg.snapshot(), None, delta=False)
    (dur,) = pts[M.PREDICT_DURATION]
    assert [(e.value, e.trace_id, e.span_id) for e in dur.exemplars] == [(0.02, 7, 9)]
    (pred,) = pts[M.PREDICTION_VALUE]
    assert [(e.value, e.time_unix_nano) for e in pred.exemplars] == [(0.25, call.time_ns)]
    assert not pts[M.FEATURE_VALUE][0].exemplars  # never a raw feature value


def test_delta_points_use_the_interval_min_max_and_subtract_the_base():
    agg = _model()
    agg.commit(2, [[0.1], [0.9]], None, None, None, None, None, None, None)
    first = agg.snapshot()
    agg.commit(1, [[0.4]], None, None, None, None, None, None, None)
    second = agg.snapshot()
    (cum,) = model_points(agg, second, first, delta=False)[M.FEATURE_VALUE]
    (inc,) = model_points(agg, second, first, delta=True)[M.FEATURE_VALUE]
    assert (cum.count, cum.min, cum.max) == (3, 0.1, 0.9)
    assert (inc.count, inc.min, inc.max, inc.start_time_unix_nano) == (1, 0.4, 0.4, first.time_ns)
