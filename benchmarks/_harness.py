"""What the predict-path benchmarks share: an always-on tracer whose spans go nowhere, and otel-ml
exporting to an in-memory sink that keeps the last export (so counts can be checked at the end)."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

import otel_ml


class NoopSpanExporter(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS


class LastMetrics(MetricExporter):
    """Keeps the last export's data; sends nothing."""

    def __init__(self):
        super().__init__(preferred_temporality={}, preferred_aggregation={})
        self.last = None

    def export(self, metrics_data, timeout_millis=10_000, **kwargs):
        self.last = metrics_data
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis=0):
        return True

    def shutdown(self, timeout_millis=0, **kwargs):
        pass


def install_sdk() -> LastMetrics:
    """Always-on tracing to nowhere, otel-ml exporting (hourly, or on flush) to the returned sink."""
    provider = TracerProvider(sampler=ALWAYS_ON)
    provider.add_span_processor(SimpleSpanProcessor(NoopSpanExporter()))
    trace.set_tracer_provider(provider)
    sink = LastMetrics()
    otel_ml.configure(exporter=sink, export_interval_s=3600)
    return sink


def us(s: float) -> str:
    return f"{s * 1e6:9.1f} µs"
