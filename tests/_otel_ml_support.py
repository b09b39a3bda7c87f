"""Shared test helpers for the otel_ml library tests (in-memory exporters, a pipeline fixture)."""

from __future__ import annotations

import contextlib
import http.server
import sys
import threading
from collections.abc import Callable, Iterator
from email.message import Message
from typing import Any

import numpy as np
import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_ml
from otel_ml import _aggregate, _log, _monitor, _patch, _records
from otel_ml._export import PIPELINE

SPANS = InMemorySpanExporter()
_provider_lock = threading.Lock()


def tracer_provider() -> TracerProvider:
    """The session's global SDK TracerProvider (set once; OTel allows one global provider)."""
    with _provider_lock:
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            if not getattr(current, "_otel_ml_test", False):
                current.add_span_processor(SimpleSpanProcessor(SPANS))
                current._otel_ml_test = True  # type: ignore[attr-defined]
            return current
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(SPANS))
        provider._otel_ml_test = True  # type: ignore[attr-defined]
        trace.set_tracer_provider(provider)
        return provider


class MemoryExporter(MetricExporter):
    """Keeps every exported MetricsData; ``fail``/``block`` simulate a broken or hanging collector."""

    def __init__(self) -> None:
        super().__init__(preferred_temporality={}, preferred_aggregation={})
        self.exported: list[MetricsData] = []
        self.fail = False
        self.block: threading.Event | None = None
        self.calls = 0

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        self.calls += 1
        if self.block is not None:
            self.block.wait(30)
        if self.fail:
            return MetricExportResult.FAILURE
        self.exported.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass

    @property
    def last(self) -> MetricsData:
        assert self.exported, "nothing exported"
        return self.exported[-1]


def metrics_of(data: MetricsData) -> dict[str, Any]:
    out = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                out[m.name] = m
    return out


def points(data: MetricsData, name: str, **attrs: Any) -> list[Any]:
    """Data points of metric ``name`` whose attributes include ``attrs``."""
    m = metrics_of(data).get(name)
    if m is None:
        return []
    return [p for p in m.data.data_points if all(p.attributes.get(k) == v for k, v in attrs.items())]


def point(data: MetricsData, name: str, **attrs: Any) -> Any:
    found = points(data, name, **attrs)
    assert len(found) == 1, f"{name} {attrs}: {len(found)} points"
    return found[0]


def value(data: MetricsData, name: str, **attrs: Any) -> int:
    return point(data, name, **attrs).value


def reset_library() -> None:
    PIPELINE.shutdown(timeout_s=2.0, flush=False)
    PIPELINE._config = None
    _records._reset()
    _aggregate._clear()
    _log._reset()
    _monitor._enabled = True
    _monitor._disabled = False
    instrumentor = sys.modules.get("otel_ml._instrumentor")
    if instrumentor is not None and instrumentor.OtelMLInstrumentor().is_instrumented_by_opentelemetry:
        instrumentor.OtelMLInstrumentor().uninstrument()  # restores patched classes
    _patch.detach_all()
    _patch.unpatch_classes()
    _monitor._enabled = True


@pytest.fixture
def exporter() -> Iterator[MemoryExporter]:
    """A fresh library state exporting to a MemoryExporter (no periodic export during the test)."""
    tracer_provider()
    SPANS.clear()
    reset_library()
    mem = MemoryExporter()
    otel_ml.configure(exporter=mem, export_interval_s=3600)
    yield mem
    if mem.block is not None:
        mem.block.set()
    reset_library()


def simple_reference(model: str = "m", version: str = "1", *, seed: int = 0, n: int = 2000) -> otel_ml.Reference:
    """Two numeric features (one with negatives), one categorical, a probability output for 2 classes."""
    rng = np.random.default_rng(seed)
    data = {
        "x": rng.normal(size=n),
        "y": rng.uniform(0, 10, size=n),
        "c": rng.choice(["a", "b", "c"], size=n).astype(object),
    }
    proba = rng.uniform(size=n)
    return otel_ml.build_reference(
        data, model=model, version=version, categorical=["c"],
        predictions=np.column_stack([1 - proba, proba]), class_names=[0, 1],
    )


@contextlib.contextmanager
def otlp_http_server(on_post: Callable[[str, Message, bytes], None]) -> Iterator[int]:
    """A real OTLP/HTTP receiver on loopback (yields its port): ``on_post(path, headers, body)`` sees each
    request; every one is answered 200 with the empty export response of its signal."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            on_post(self.path, self.headers, body)
            response = (logs_service_pb2.ExportLogsServiceResponse() if self.path == "/v1/logs"
                        else metrics_service_pb2.ExportMetricsServiceResponse())
            payload = response.SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()


def log_records(requests: list[Any], event: str | None = None) -> list[Any]:
    """The log records of ``ExportLogsServiceRequest``s, in order; only ``event``'s when given."""
    return [r for req in requests for rl in req.resource_logs for sl in rl.scope_logs for r in sl.log_records
            if event is None or r.event_name == event]


def log_attrs(record: Any) -> dict[str, Any]:
    """A log record's attributes as a dict (array values as lists of doubles)."""
    out = {}
    for kv in record.attributes:
        v = kv.value
        kind = v.WhichOneof("value")
        out[kv.key] = [x.double_value for x in v.array_value.values] if kind == "array_value" else getattr(v, kind)
    return out
