"""Exporter construction: OTLP/HTTP or OTLP/gRPC as configured (never from the port), every setting explicit."""

from __future__ import annotations

import logging

import pytest

import otel_ml
from otel_ml._exporter import (
    PROTOCOL_GRPC,
    PROTOCOL_HTTP,
    create_metric_exporter,
    install_log_filter,
    parse_headers,
    parse_protocol,
    quiet_sdk_logs,
)


def test_protocol_names():
    assert parse_protocol("http/protobuf") == PROTOCOL_HTTP
    assert parse_protocol(" GRPC ") == PROTOCOL_GRPC
    assert parse_protocol("http/json") is None


def test_the_port_does_not_choose_the_protocol():
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
        OTLPMetricExporter as G,
    )
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter as H,
    )

    h = create_metric_exporter("http://127.0.0.1:4317/v1/metrics")  # default: http/protobuf, whatever the port
    assert isinstance(h, H) and h._endpoint == "http://127.0.0.1:4317/v1/metrics"
    g = create_metric_exporter("127.0.0.1:4318", protocol="grpc", timeout_s=1.0)
    assert isinstance(g, G)
    custom = create_metric_exporter("https://gw.example/otlp/custom", headers={"a": "b"})
    assert custom._endpoint == "https://gw.example/otlp/custom"  # a full URL is used as is
    for e in (h, g, custom):
        e.shutdown()
    with pytest.raises(otel_ml.ConfigurationError):
        create_metric_exporter("h:4317", protocol="smoke")
    with pytest.raises(otel_ml.ConfigurationError):
        create_metric_exporter("h:4317", compression="brotli")


def test_headers_never_show_values_in_errors():
    assert parse_headers("a=b,bad, c = d%20e", strict=False) == ({"a": "b", "c": "d e"}, 1)
    with pytest.raises(otel_ml.ConfigurationError) as err:
        parse_headers("token-s3cret", strict=True)
    assert "s3cret" not in str(err.value)


def test_exporter_log_records_are_dropped_only_inside_our_export(caplog):
    install_log_filter()
    sdk = logging.getLogger("opentelemetry.exporter.otlp.proto.grpc.exporter")
    with caplog.at_level(logging.WARNING):
        with quiet_sdk_logs() as reason:
            sdk.error("Failed to export metrics to x, error code: %s", "UNAVAILABLE")
        sdk.error("the application's own exporter failed")
    assert reason == ["Failed to export metrics to x, error code: UNAVAILABLE"]  # the first: the cause
    assert [r.getMessage() for r in caplog.records] == ["the application's own exporter failed"]
