"""OTLP encoding: snapshots of a model's counters become SDK data points and MetricsData."""

from __future__ import annotations

from opentelemetry.sdk.resources import Resource

from otel_ml._otlp import build_metrics_data


def test_build_metrics_data_wraps_metrics():
    data = build_metrics_data(Resource({"service.name": "p"}), "scope", [], scope_version="1")
    rm = data.resource_metrics[0]
    assert rm.resource.attributes["service.name"] == "p"
    assert rm.scope_metrics[0].scope.name == "scope" and rm.scope_metrics[0].scope.version == "1"
