"""Exporter construction: OTLP/HTTP or OTLP/gRPC chosen the way the OpenTelemetry exporters choose."""

from __future__ import annotations

import pytest

import otel_ml
from otel_ml._exporter import PROTOCOL_GRPC, PROTOCOL_HTTP, create_metric_exporter, resolve_protocol


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

