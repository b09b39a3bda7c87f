"""Configuration of the export pipeline: arguments, OTEL_* variables, defaults; errors name the key."""

from __future__ import annotations

import logging

import pytest
from _otel_ml_support import MemoryExporter, reset_library

import otel_ml
from otel_ml import _log
from otel_ml._config import VARIABLES, load_config
from otel_ml._exporter import PROTOCOL_GRPC, PROTOCOL_HTTP

# --- configuration -------------------------------------------------------------------------------

def test_defaults():
    c = load_config(env={})
    assert (c.disabled, c.exporter_kind, c.export_interval_s, c.protocol, c.temporality, c.timeout_s) == (
        False, "otlp", 60.0, PROTOCOL_HTTP, "cumulative", 10.0)
    assert c.endpoint == "http://localhost:4318/v1/metrics" and c.compression == "none"
    assert load_config(env={"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}).endpoint == "http://localhost:4317"


def test_environment_variables():
    c = load_config(env={
        "OTEL_METRIC_EXPORT_INTERVAL": "1500",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
        "OTEL_EXPORTER_OTLP_HEADERS": "api-key=abc,x-team=ml%20ops",
        "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "Delta",
        "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
        "OTEL_METRICS_EXPORTER": "otlp,prometheus",
    })
    assert c.export_interval_s == 1.5
    assert c.protocol == PROTOCOL_HTTP and c.endpoint == "http://collector:4318/v1/metrics"
    assert dict(c.headers) == {"api-key": "abc", "x-team": "ml ops"}
    assert c.delta and c.compression == "gzip"
    assert load_config(env={"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "lowmemory"}).delta
    assert load_config(env={"OTEL_SDK_DISABLED": "TRUE"}).disabled
    assert not load_config(env={"OTEL_METRICS_EXPORTER": "none"}).metrics_enabled
    assert load_config(env={"OTEL_METRICS_EXPORTER": "none"}, exporter=MemoryExporter()).metrics_enabled


@pytest.mark.parametrize("env, protocol, endpoint", [
    # the protocol comes from the variables, never from the port
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}, PROTOCOL_HTTP, "http://c:4317/v1/metrics"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, PROTOCOL_GRPC,
     "http://c:4318"),
    ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf"},
     PROTOCOL_HTTP, "http://localhost:4318/v1/metrics"),
    # the generic endpoint is a base URL (HTTP appends /v1/metrics to its path); the signal one is used as is
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "https://gw/otlp/"}, PROTOCOL_HTTP, "https://gw/otlp/v1/metrics"),
    ({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "https://gw/custom/path",
      "OTEL_EXPORTER_OTLP_ENDPOINT": "http://ignored:4318"}, PROTOCOL_HTTP, "https://gw/custom/path"),
    ({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "grpc"},
     PROTOCOL_GRPC, "http://c:4317"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317/base", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
     PROTOCOL_GRPC, "http://c:4317/base"),
])
def test_protocol_and_endpoint_as_the_specification_says(env, protocol, endpoint):
    c = load_config(env=env)
    assert (c.protocol, c.endpoint) == (protocol, endpoint)


def test_configure_endpoint_argument():
    assert load_config(endpoint="127.0.0.1:9999", env={}).endpoint == "http://127.0.0.1:9999/v1/metrics"
    assert load_config(endpoint="http://h:1/p", env={}).endpoint == "http://h:1/p"
    assert load_config(endpoint="127.0.0.1:9999", protocol="grpc", env={}).endpoint == "127.0.0.1:9999"


@pytest.mark.parametrize("env, timeout_s", [
    ({"OTEL_EXPORTER_OTLP_TIMEOUT": "2500"}, 2.5),  # milliseconds, per the specification
    ({"OTEL_EXPORTER_OTLP_TIMEOUT": "2500", "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "750"}, 0.75),
    ({"OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "30000"}, 30.0),
])
def test_timeout_variables(env, timeout_s):
    assert load_config(env=env).timeout_s == timeout_s
    assert load_config(env=env, timeout_s=1.0).timeout_s == 1.0


def test_sdk_only_metric_exporters_turn_library_metrics_off():
    c = load_config(env={"OTEL_METRICS_EXPORTER": "prometheus"})
    assert not c.metrics_enabled and not c.disabled


def test_arguments_win_over_environment():
    c = load_config(export_interval_s=2.0, endpoint="http://127.0.0.1:9999/x", temporality="cumulative",
                    protocol="grpc", env={"OTEL_METRIC_EXPORT_INTERVAL": "5", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318",
                                          "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "delta",
                                          "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"})
    assert (c.export_interval_s, c.endpoint, c.temporality, c.protocol) == (
        2.0, "http://127.0.0.1:9999/x", "cumulative", "grpc")


#: Every variable the library reads, a bad value for it, and what applies instead.
BAD_VARIABLES = [
    ("OTEL_SDK_DISABLED", "yes", lambda c: c.disabled is False),
    ("OTEL_METRICS_EXPORTER", "carrier-pigeon", lambda c: c.exporter_kind == "otlp"),
    ("OTEL_METRIC_EXPORT_INTERVAL", "soon", lambda c: c.export_interval_s == 60.0),
    ("OTEL_METRIC_EXPORT_INTERVAL", "0", lambda c: c.export_interval_s == 60.0),
    ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "carrier-pigeon", lambda c: c.protocol == PROTOCOL_HTTP),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", lambda c: c.protocol == PROTOCOL_HTTP),
    ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://h:99999",
     lambda c: c.endpoint == "http://localhost:4318/v1/metrics"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://h:21", lambda c: c.endpoint == "http://localhost:4318/v1/metrics"),
    ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "a=b,novalue", lambda c: dict(c.headers) == {"a": "b"}),
    ("OTEL_EXPORTER_OTLP_HEADERS", "novalue", lambda c: c.headers == ()),
    ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "ten", lambda c: c.timeout_s == 10.0),
    ("OTEL_EXPORTER_OTLP_TIMEOUT", "-5", lambda c: c.timeout_s == 10.0),
    ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "brotli", lambda c: c.compression == "none"),
    ("OTEL_EXPORTER_OTLP_COMPRESSION", "zip", lambda c: c.compression == "none"),
    ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "sideways", lambda c: c.temporality == "cumulative"),
]


def test_every_variable_read_has_a_bad_value_case():
    assert {name for name, _, _ in BAD_VARIABLES} == set(VARIABLES)


@pytest.mark.parametrize("name, value, fallback", BAD_VARIABLES, ids=[f"{n}={v}" for n, v, _ in BAD_VARIABLES])
def test_bad_variable_warns_once_and_falls_back_to_the_default(name, value, fallback, caplog):
    _log._reset()
    with caplog.at_level(logging.WARNING, logger="otel_ml"):
        c = load_config(env={name: value})
        load_config(env={name: value})
    assert fallback(c)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and name in lines[0], lines
    if "HEADERS" in name:
        assert "novalue" not in lines[0]  # headers carry credentials: never logged
    else:
        assert repr(value) in lines[0]


def test_bad_signal_variable_falls_back_to_the_generic_one(caplog):
    _log._reset()
    with caplog.at_level(logging.WARNING, logger="otel_ml"):
        c = load_config(env={"OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "x", "OTEL_EXPORTER_OTLP_TIMEOUT": "2000",
                             "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "x", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    assert (c.timeout_s, c.protocol) == (2.0, PROTOCOL_GRPC)
    assert all("OTEL_EXPORTER_OTLP_TIMEOUT applies" in m or "OTEL_EXPORTER_OTLP_PROTOCOL applies" in m
               for m in (r.getMessage() for r in caplog.records))


def test_bad_variable_never_raises_from_configure(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "soon")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "carrier-pigeon")
    try:
        otel_ml.configure(exporter=MemoryExporter(), export_interval_s=3600)
    finally:
        reset_library()


@pytest.mark.parametrize("kwargs, name", [
    ({"exporter": "nope"}, "exporter"),
    ({"export_interval_s": -1}, "export_interval_s"),
    ({"protocol": "carrier-pigeon"}, "protocol"),
    ({"endpoint": "http://h:99999"}, "endpoint"),
    ({"headers": "novalue"}, "headers"),
    ({"timeout_s": 0}, "timeout_s"),
    ({"temporality": "sideways"}, "temporality"),
])
def test_bad_arguments_fail_fast_naming_the_argument(kwargs, name):
    with pytest.raises(otel_ml.ConfigurationError, match=name):
        load_config(env={}, **kwargs)
    with pytest.raises(otel_ml.ConfigurationError, match=name):
        otel_ml.configure(**kwargs)
