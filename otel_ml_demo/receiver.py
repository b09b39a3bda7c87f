"""The demo's tiny OTLP/gRPC metrics receiver: where the processor's drift and quality gauges land.

The demo points the processor's exporter here, so what the terminal shows has travelled the same
wire an ops team's collector would see: library -> OTLP -> processor -> OTLP -> this receiver.
Only the latest point of each stream is kept (that is all a status table needs).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc

from otel_ml import semconv


@dataclass(frozen=True)
class GaugePoint:
    """The latest value of one gauge stream, with the attributes that identify it."""

    metric: str
    attributes: Mapping[str, Any]
    value: float
    time_unix_nano: int

    @property
    def feature(self) -> str:
        return str(self.attributes.get(semconv.FEATURE_NAME, ""))

    @property
    def kind(self) -> str:
        return str(self.attributes.get(semconv.DRIFT_KIND, semconv.DRIFT_KIND_FEATURE))

    @property
    def method(self) -> str:
        return str(self.attributes.get(semconv.DRIFT_METHOD, ""))

    @property
    def window(self) -> str:
        return str(self.attributes.get(semconv.DRIFT_WINDOW, ""))


def _any_value(v: Any) -> Any:
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which in ("array_value", "kvlist_value"):
        return str(getattr(v, which))
    return getattr(v, which)


def _attributes(kvs: Any) -> dict[str, Any]:
    return {kv.key: _any_value(kv.value) for kv in kvs}


def _point_value(p: Any) -> float:
    return float(p.as_double) if p.WhichOneof("value") == "as_double" else float(p.as_int)


class GaugeStore:
    """Thread-safe latest-point store keyed by (metric, attributes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._points: dict[tuple[str, frozenset[tuple[str, Any]]], GaugePoint] = {}
        self._exports = 0
        self._changed = threading.Condition(self._lock)

    def add_request(self, request: metrics_service_pb2.ExportMetricsServiceRequest) -> int:
        """Record every gauge (and sum) point of an OTLP export request; returns how many."""
        new: list[GaugePoint] = []
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    data = m.WhichOneof("data")
                    if data not in ("gauge", "sum"):
                        continue
                    for p in getattr(m, data).data_points:
                        new.append(GaugePoint(m.name, _attributes(p.attributes), _point_value(p), p.time_unix_nano))
        with self._changed:
            for gp in new:
                key = (gp.metric, frozenset((k, v) for k, v in gp.attributes.items()))
                old = self._points.get(key)
                if old is None or gp.time_unix_nano >= old.time_unix_nano:
                    self._points[key] = gp
            self._exports += 1
            self._changed.notify_all()
        return len(new)

    @property
    def exports(self) -> int:
        with self._lock:
            return self._exports

    def snapshot(self) -> list[GaugePoint]:
        with self._lock:
            return list(self._points.values())

    def wait_for_exports(self, count: int, timeout: float) -> bool:
        """Block until at least ``count`` export requests have arrived (or ``timeout`` passes)."""
        with self._changed:
            return self._changed.wait_for(lambda: self._exports >= count, timeout)


class _Servicer(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, store: GaugeStore) -> None:
        self._store = store

    def Export(self, request: Any, context: Any) -> Any:
        self._store.add_request(request)
        return metrics_service_pb2.ExportMetricsServiceResponse()


class GaugeReceiver:
    """An OTLP/gRPC metrics endpoint on ``127.0.0.1`` and a free port, feeding a :class:`GaugeStore`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.store = GaugeStore()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="demo-receiver"))
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_Servicer(self.store), self._server)
        self.port = self._server.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise OSError(f"could not bind an OTLP receiver on {host}:{port}")
        self.host = host

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> GaugeReceiver:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=0.5).wait(2)

    def __enter__(self) -> GaugeReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
