"""Export pipeline: configuration from OTEL_* variables, temporality, failures that never block predict."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
from opentelemetry.sdk.metrics.export import AggregationTemporality
from opentelemetry.sdk.resources import Resource

import otel_ml
from otel_ml import semconv as M
from otel_ml._export import PIPELINE

from _otel_ml_support import MemoryExporter, metrics_of, point, reset_library, value

REF = otel_ml.build_reference({"a": np.linspace(-1, 1, 100)}, model="e", version="1")


def predictor():
    @otel_ml.monitor(model="e", version="1", reference=REF)
    def predict(X):
        return X

    return predict


# --- temporality and resource ----------------------------------------------------------------------

def test_cumulative_by_default_and_resource_from_environment(exporter, monkeypatch):
    monkeypatch.setenv("OTEL_SERVICE_NAME", "svc-under-test")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
    PIPELINE._resource = None
    predict = predictor()
    predict(np.array([[0.1]]))
    assert otel_ml.flush(5.0)
    predict(np.array([[0.2], [0.3]]))
    assert otel_ml.flush(5.0)
    data = exporter.last
    assert value(data, M.PREDICT_ROWS) == 3
    assert metrics_of(data)[M.PREDICT_ROWS].data.aggregation_temporality == AggregationTemporality.CUMULATIVE
    assert metrics_of(data)[M.PREDICT_ROWS].data.is_monotonic
    attrs = data.resource_metrics[0].resource.attributes
    assert attrs["service.name"] == "svc-under-test"
    assert attrs["deployment.environment"] == "test"
    assert "service.instance.id" in attrs
    assert metrics_of(data)[M.PREDICT_DURATION].unit == "s"
    first, second = exporter.exported[-2:]
    p1 = point(first, M.PREDICT_ROWS)
    p2 = point(second, M.PREDICT_ROWS)
    assert p1.start_time_unix_nano == p2.start_time_unix_nano < p2.time_unix_nano


def test_delta_temporality(exporter):
    mem = MemoryExporter()
    otel_ml.configure(exporter=mem, export_interval_s=3600, temporality="delta")
    predict = predictor()
    predict(np.array([[0.1], [0.9]]))
    assert otel_ml.flush(5.0)
    predict(np.array([[-0.5]]))
    assert otel_ml.flush(5.0)
    first, second = mem.exported[-2:]
    assert metrics_of(second)[M.PREDICT_ROWS].data.aggregation_temporality == AggregationTemporality.DELTA
    assert value(first, M.PREDICT_ROWS) == 2 and value(second, M.PREDICT_ROWS) == 1
    h = point(second, M.FEATURE_VALUE)
    assert h.count == 1 and h.min == h.max == -0.5
    assert h.start_time_unix_nano == point(first, M.FEATURE_VALUE).time_unix_nano


def test_reconfiguring_keeps_the_delta_base(exporter):
    mem = MemoryExporter()
    otel_ml.configure(exporter=mem, export_interval_s=3600, temporality="delta")
    predict = predictor()
    predict(np.array([[0.1], [0.2]]))
    assert otel_ml.flush(5.0)
    otel_ml.configure(exporter=mem, export_interval_s=3600, temporality="delta")
    predict(np.array([[0.3]]))
    assert otel_ml.flush(5.0)
    assert value(mem.last, M.PREDICT_ROWS) == 1


def test_delta_after_failed_export_loses_nothing(exporter):
    mem = MemoryExporter()
    otel_ml.configure(exporter=mem, export_interval_s=3600, temporality="delta")
    predict = predictor()
    predict(np.array([[0.1]]))
    mem.fail = True
    assert not otel_ml.flush(5.0)
    mem.fail = False
    predict(np.array([[0.2]]))
    assert otel_ml.flush(5.0)
    assert value(mem.last, M.PREDICT_ROWS) == 2


def test_global_sdk_meter_provider_resource_wins(exporter, monkeypatch):
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider

    mp = MeterProvider(resource=Resource({"service.name": "from-provider"}))
    monkeypatch.setattr(metrics, "get_meter_provider", lambda: mp)
    PIPELINE._resource = None
    predict = predictor()
    predict(np.array([[0.1]]))
    assert otel_ml.flush(5.0)
    assert exporter.last.resource_metrics[0].resource.attributes["service.name"] == "from-provider"


# --- failure never blocks predict ------------------------------------------------------------------

def test_hanging_exporter_never_blocks_predict(exporter):
    exporter.block = threading.Event()
    predict = predictor()
    predict(np.array([[0.1]]))
    t0 = time.monotonic()
    assert otel_ml.flush(0.2) is False  # bounded by its timeout
    assert time.monotonic() - t0 < 2.0
    t0 = time.monotonic()
    for _ in range(200):
        predict(np.array([[0.3]]))
    assert time.monotonic() - t0 < 2.0
    exporter.block.set()
    assert otel_ml.flush(5.0)
    assert value(exporter.last, M.PREDICT_ROWS) == 201


def test_periodic_export_runs_on_the_interval(exporter):
    mem = MemoryExporter()
    got = threading.Event()
    orig = mem.export

    def export(data, timeout_millis=10_000, **kw):
        r = orig(data, timeout_millis)
        got.set()
        return r

    mem.export = export  # type: ignore[method-assign]
    otel_ml.configure(exporter=mem, export_interval_s=0.05)
    predictor()(np.array([[0.1]]))
    assert got.wait(5.0)


def test_unreachable_collector_is_bounded(exporter):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    otel_ml.configure(endpoint=f"127.0.0.1:{port}", timeout_s=0.5, export_interval_s=3600)
    predict = predictor()
    t0 = time.monotonic()
    assert otel_ml.flush(3.0) is False
    assert time.monotonic() - t0 < 3.5
    t0 = time.monotonic()
    for _ in range(100):
        predict(np.array([[0.1]]))
    assert time.monotonic() - t0 < 2.0
    reset_library()


def test_flush_without_models_is_true(exporter):
    assert otel_ml.flush(0.1) is True
