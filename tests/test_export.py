"""Export pipeline: configuration from OTEL_* variables, temporality, failures that never block predict."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest
from opentelemetry.sdk.metrics.export import AggregationTemporality
from opentelemetry.sdk.resources import Resource

import otel_ml
from otel_ml import semconv as M
from otel_ml._config import load_config
from otel_ml._export import (
    PIPELINE,
    PROTOCOL_GRPC,
    PROTOCOL_HTTP,
    build_metrics_data,
    create_metric_exporter,
    resolve_protocol,
)

from _otel_ml_support import MemoryExporter, exporter, metrics_of, point, reset_library, value  # noqa: F401

REF = otel_ml.build_reference({"a": np.linspace(-1, 1, 100)}, model="e", version="1")


def predictor():
    @otel_ml.monitor(model="e", version="1", reference=REF)
    def predict(X):
        return X

    return predict


# --- configuration -------------------------------------------------------------------------------

def test_defaults():
    c = load_config(env={})
    assert (c.disabled, c.exporter_kind, c.export_interval_s, c.protocol, c.temporality) == (
        False, "otlp", 60.0, PROTOCOL_GRPC, "cumulative")


def test_environment_variables():
    c = load_config(env={
        "OTEL_METRIC_EXPORT_INTERVAL": "1500",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
        "OTEL_EXPORTER_OTLP_HEADERS": "api-key=abc,x-team=ml%20ops",
        "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "Delta",
        "OTEL_METRICS_EXPORTER": "otlp,prometheus",
    })
    assert c.export_interval_s == 1.5
    assert c.protocol == PROTOCOL_HTTP and c.endpoint == "http://collector:4318/v1/metrics"
    assert dict(c.headers) == {"api-key": "abc", "x-team": "ml ops"}
    assert c.delta
    c = load_config(env={"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://c:4317",
                         "OTEL_EXPORTER_OTLP_ENDPOINT": "http://ignored:4318"})
    assert c.endpoint == "http://c:4317" and c.protocol == PROTOCOL_GRPC
    assert load_config(env={"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "lowmemory"}).delta
    assert load_config(env={"OTEL_SDK_DISABLED": "TRUE"}).disabled
    assert not load_config(env={"OTEL_METRICS_EXPORTER": "none"}).metrics_enabled
    assert load_config(env={"OTEL_METRICS_EXPORTER": "none"}, exporter=MemoryExporter()).metrics_enabled


def test_sdk_only_metric_exporters_turn_library_metrics_off():
    c = load_config(env={"OTEL_METRICS_EXPORTER": "prometheus"})
    assert not c.metrics_enabled and not c.disabled


def test_arguments_win_over_environment():
    c = load_config(export_interval_s=2.0, endpoint="127.0.0.1:9999", temporality="cumulative",
                    env={"OTEL_METRIC_EXPORT_INTERVAL": "5", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318",
                         "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "delta"})
    assert (c.export_interval_s, c.endpoint, c.temporality) == (2.0, "127.0.0.1:9999", "cumulative")


@pytest.mark.parametrize("env, name", [
    ({"OTEL_METRIC_EXPORT_INTERVAL": "soon"}, "OTEL_METRIC_EXPORT_INTERVAL"),
    ({"OTEL_METRIC_EXPORT_INTERVAL": "0"}, "OTEL_METRIC_EXPORT_INTERVAL"),
    ({"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "sideways"}, "TEMPORALITY_PREFERENCE"),
    ({"OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon"}, "OTEL_EXPORTER_OTLP_PROTOCOL"),
    ({"OTEL_EXPORTER_OTLP_HEADERS": "novalue"}, "OTEL_EXPORTER_OTLP_HEADERS"),
    ({"OTEL_METRICS_EXPORTER": "carrier-pigeon"}, "OTEL_METRICS_EXPORTER"),
])
def test_bad_environment_fails_fast_naming_the_variable(env, name):
    with pytest.raises(otel_ml.ConfigurationError, match=name):
        load_config(env=env)


def test_bad_arguments_fail_fast():
    with pytest.raises(otel_ml.ConfigurationError, match="exporter"):
        load_config(exporter="nope", env={})
    with pytest.raises(otel_ml.ConfigurationError, match="export_interval_s"):
        otel_ml.configure(export_interval_s=-1)


# --- the shared exporter helper --------------------------------------------------------------------

def test_protocol_resolution_like_the_otel_exporters():
    assert resolve_protocol("http://h:4318") == PROTOCOL_HTTP
    assert resolve_protocol("https://h/otlp/v1/metrics") == PROTOCOL_HTTP
    assert resolve_protocol("h:4317") == PROTOCOL_GRPC
    assert resolve_protocol("http://h:14317") == PROTOCOL_GRPC
    assert resolve_protocol("http://h:4317", "http/protobuf") == PROTOCOL_HTTP
    assert resolve_protocol(None) == PROTOCOL_GRPC


def test_create_metric_exporter_builds_both_kinds():
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as G
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as H

    h = create_metric_exporter("127.0.0.1:4318", headers="a=b")
    assert isinstance(h, H) and h._endpoint == "http://127.0.0.1:4318/v1/metrics"
    custom = create_metric_exporter("https://gw.example/otlp/custom", protocol="http/protobuf")
    assert custom._endpoint == "https://gw.example/otlp/custom"
    custom.shutdown()
    g = create_metric_exporter("127.0.0.1:14317", timeout_s=1.0)
    assert isinstance(g, G)
    h.shutdown()
    g.shutdown()
    with pytest.raises(otel_ml.ConfigurationError):
        create_metric_exporter("h:4317", protocol="smoke")


def test_build_metrics_data_wraps_metrics():
    data = build_metrics_data(Resource({"service.name": "p"}), "scope", [], scope_version="1")
    rm = data.resource_metrics[0]
    assert rm.resource.attributes["service.name"] == "p"
    assert rm.scope_metrics[0].scope.name == "scope" and rm.scope_metrics[0].scope.version == "1"


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
