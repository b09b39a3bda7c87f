"""Configuration of the export pipeline: arguments, OTEL_* variables, defaults; errors name the key."""

from __future__ import annotations

import pytest

import otel_ml
from otel_ml._config import load_config
from otel_ml._exporter import PROTOCOL_GRPC, PROTOCOL_HTTP

from _otel_ml_support import MemoryExporter

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
