"""Fixtures for the hostile-input regression suite (issue 10).

Black-box on purpose, so the suite survives the processor's restructure: the processor runs as a
subprocess started with flags only (the ``start_processor`` factory of ``tests/processor``), and the
tests talk to it over loopback with real OTLP payloads, or use the library's public API and CLIs.
"""

from __future__ import annotations

import json
import resource
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from processor.conftest import Proc, Sink, ref_dir, sink, start_processor, wait_for  # noqa: F401
from processor.payloads import Emitter, kv, make_reference

MIB = 1 << 20
EXPORT = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
TOKEN = "s3cret-token"


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None,
         timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request; (status, headers, body) for errors too."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def http_json(method: str, url: str, doc: Any = None, headers: dict[str, str] | None = None,
              timeout: float = 10) -> tuple[int, Any]:
    body = None if doc is None else (doc if isinstance(doc, bytes) else json.dumps(doc).encode())
    status, _, raw = http(method, url, body, {"Content-Type": "application/json", **(headers or {})}, timeout)
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def grpc_export(endpoint: str, req: ExportMetricsServiceRequest | bytes, *, timeout: float = 10,
                metadata: Any = None) -> ExportMetricsServiceResponse:
    options = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
    with grpc.insecure_channel(endpoint, options=options) as ch:
        call = ch.unary_unary(EXPORT, request_serializer=None,
                              response_deserializer=ExportMetricsServiceResponse.FromString)
        data = req if isinstance(req, bytes) else req.SerializeToString()
        return call(data, timeout=timeout, metadata=metadata)


def ml_points(req: ExportMetricsServiceRequest) -> int:
    """The number of ``ml.*`` data points in a request."""
    n = 0
    for rm in req.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name.startswith("ml."):
                    n += len(m.histogram.data_points if m.HasField("histogram") else m.sum.data_points)
    return n


def attacker_request(pod: str, *, resource_bytes: int = 0, attribute_bytes: int = 0, model: str = "churn",
             tag: str = "") -> ExportMetricsServiceRequest:
    """A real request of the library's shape; ``tag`` makes the attacker bytes unique per request."""
    e = Emitter(make_reference(), pod)
    e.observe(50)
    req = e.request()
    for rm in req.resource_metrics:
        if resource_bytes:
            rm.resource.attributes.append(kv("attacker.blob", (tag + "r" * resource_bytes)[:resource_bytes]))
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                points = (m.histogram.data_points if m.HasField("histogram")
                          else m.sum.data_points if m.HasField("sum") else ())
                for dp in points:
                    for a in dp.attributes:
                        if a.key == "ml.model.name":
                            a.value.string_value = model
                    if attribute_bytes:
                        dp.attributes.append(kv("attacker.blob", (tag + "a" * attribute_bytes)[:attribute_bytes]))
    return req


def _padding(n_bytes: int) -> bytes:
    """An unrelated gauge metric of about ``n_bytes`` (the processor must read and ignore it)."""
    req = ExportMetricsServiceRequest()
    m = req.resource_metrics.add().scope_metrics.add().metrics.add(name="app.queue.depth")
    for i in range(n_bytes // 20):  # about 20 bytes per point
        m.gauge.data_points.add(time_unix_nano=1_700_000_000_000_000_000 + i, as_double=float(i))
    return req.SerializeToString()


def large_requests(n: int, size: int) -> tuple[list[bytes], int]:
    """``n`` requests of about ``size`` bytes, and the number of ml points in each."""
    pad = _padding(size)
    out = []
    for i in range(n):
        e = Emitter(make_reference(), f"pod-{i}", seed=i)
        e.observe(100)
        req = e.request()
        out.append(req.SerializeToString() + pad)  # concatenated messages merge
    return out, ml_points(req)


def status(proc: Proc, headers: dict[str, str] | None = None) -> dict[str, Any]:
    code, doc = http_json("GET", f"http://{proc.http}/api/v1/status", headers=headers)
    assert code == 200, (code, doc)
    return doc


def healthz(proc: Proc, timeout: float = 10) -> int:
    try:
        return http("GET", f"http://{proc.http}/healthz", timeout=timeout)[0]
    except OSError:
        return 0


def host_port(endpoint: str) -> tuple[str, int]:
    host, port = endpoint.rsplit(":", 1)
    return host, int(port)


def set_limit(proc: Proc, which: int, soft: int) -> None:
    """Lower a running processor's soft resource limit (e.g. ``resource.RLIMIT_NOFILE``)."""
    _, hard = resource.prlimit(proc.p.pid, which)
    resource.prlimit(proc.p.pid, which, (soft, hard))


@contextmanager
def sockets() -> Iterator[list[socket.socket]]:
    """A list of client sockets, all closed on exit."""
    socks: list[socket.socket] = []
    try:
        yield socks
    finally:
        for s in socks:
            s.close()


@pytest.fixture
def token_file(tmp_path: Any) -> Any:
    p = tmp_path / "token"
    p.write_text(TOKEN + "\n")
    return p
