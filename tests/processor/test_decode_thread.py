"""Large requests are decoded in the ingestor's decode thread; the state changes on the loop, in arrival order.

The decoders are wrapped with a slow one (a unit test's stand-in for a request that takes seconds to
decode) so that the timing is deterministic: decoding on the loop would hold ``/healthz`` for the
whole sleep. ``tests/hostile/test_item10_decode_off_loop.py`` checks the same with a real slow payload.
"""

from __future__ import annotations

import gzip
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from otel_ml_processor import _outcomes, from_mapping, run_in_thread
from otel_ml_processor._ingest import OFFLOAD_BYTES
from otel_ml_processor._service import Service
from otel_ml_processor._template import TemplateCache

from .payloads import Emitter, classifier_reference, hashed_id, logs_request, make_reference, prediction

EXPORT = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
LOGS_EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
SLOW_S = 2.0
HEALTH_BOUND_S = 1.0  # generous: far above a health check, far below the slow decode


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    refs = tmp_path / "refs"
    refs.mkdir()
    make_reference().save(refs / "churn.json")
    classifier_reference().save(refs / "fraud.json")
    cfg = from_mapping({"receivers": {"otlp_grpc": "127.0.0.1:0", "otlp_http": "127.0.0.1:0"},
                        "references": {"directory": str(refs)}, "export": {"endpoint": None},
                        "state": {"directory": str(tmp_path / "state")},
                        "evaluation": {"interval": 600.0}}, env={})
    with run_in_thread(cfg) as svc:
        yield svc


def _slow(decode: Callable[..., Any], started: threading.Event) -> Callable[..., Any]:
    def slow(data: bytes, *args: Any, **kwargs: Any) -> Any:
        if len(data) >= OFFLOAD_BYTES:
            started.set()
            time.sleep(SLOW_S)
        return decode(data, *args, **kwargs)

    return slow


def _health_latency(svc: Service) -> float:
    t0 = time.monotonic()
    with urllib.request.urlopen(f"http://{svc.http_endpoint}/healthz", timeout=30) as r:
        assert r.status == 200
    return time.monotonic() - t0


def _pods(*pods: str, padding: int = 0) -> bytes:
    req = ExportMetricsServiceRequest()
    for pod in pods:
        e = Emitter(make_reference(), pod)
        e.observe(50)
        req.resource_metrics.extend(e.request().resource_metrics)
    if padding:  # an unrelated gauge the decoder skips
        m = req.resource_metrics.add().scope_metrics.add().metrics.add(name="app.queue.depth")
        for i in range(padding // 20):
            m.gauge.data_points.add(time_unix_nano=1_700_000_000_000_000_000 + i, as_double=float(i))
    return req.SerializeToString()


def _in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(fn())
        except BaseException as exc:
            out.append(exc)

    t = threading.Thread(target=run)
    t.start()
    return t, out


def test_grpc_large_request_decodes_off_the_loop_and_applies_in_arrival_order(service: Service) -> None:
    svc = service
    started = threading.Event()
    svc.ingestor.decode = _slow(svc.ingestor.decode, started)  # type: ignore[method-assign]
    applied: list[int] = []
    apply = svc.ingestor.apply

    def record(decoded: Any) -> Any:
        applied.append(len({g.resource for g in decoded.histograms}))  # pods in the request
        return apply(decoded)

    svc.ingestor.apply = record  # type: ignore[method-assign]
    big, small = _pods("pod-a", "pod-b", padding=OFFLOAD_BYTES), _pods("pod-c")
    assert svc.grpc_endpoint
    with grpc.insecure_channel(svc.grpc_endpoint) as ch:
        call = ch.unary_unary(EXPORT, request_serializer=None,
                              response_deserializer=ExportMetricsServiceResponse.FromString)
        sender, result = _in_thread(lambda: call(big, timeout=60))
        assert started.wait(30)
        assert _health_latency(svc) < HEALTH_BOUND_S  # the loop is free while the big request decodes
        # Arrived later, decoded inline at once, applied after the big one all the same.
        assert call(small, timeout=60).partial_success.rejected_data_points == 0
        sender.join(60)
    assert isinstance(result[0], ExportMetricsServiceResponse), result
    assert result[0].partial_success.rejected_data_points == 0
    assert applied == [2, 1]
    assert svc.ingestor.offloaded == 1 and svc.ingestor.inflight.bytes == 0


@pytest.mark.parametrize("over", ["grpc", "http+gzip"])
def test_large_record_requests_decode_off_the_loop(service: Service, monkeypatch: pytest.MonkeyPatch,
                                                   over: str) -> None:
    svc = service
    started = threading.Event()
    monkeypatch.setattr(_outcomes, "decode_logs", _slow(_outcomes.decode_logs, started))
    t0 = time.time_ns()
    proba = [0.3, 0.7]
    data = logs_request([prediction("fraud", "1", hashed_id(i), t0, proba=proba) for i in range(5000)])
    assert len(data) >= OFFLOAD_BYTES
    if over == "grpc":
        assert svc.grpc_endpoint

        def send() -> ExportLogsServiceResponse:
            with grpc.insecure_channel(svc.grpc_endpoint or "") as ch:
                call = ch.unary_unary(LOGS_EXPORT, request_serializer=None,
                                      response_deserializer=ExportLogsServiceResponse.FromString)
                return call(data, timeout=60)
    else:
        body = gzip.compress(data)

        def send() -> ExportLogsServiceResponse:
            req = urllib.request.Request(f"http://{svc.http_endpoint}/v1/logs", data=body, method="POST",
                                         headers={"Content-Type": "application/x-protobuf",
                                                  "Content-Encoding": "gzip"})
            with urllib.request.urlopen(req, timeout=60) as r:
                return ExportLogsServiceResponse.FromString(r.read())

    sender, result = _in_thread(send)
    assert started.wait(30)
    assert _health_latency(svc) < HEALTH_BOUND_S
    sender.join(60)
    assert isinstance(result[0], ExportLogsServiceResponse), result
    assert result[0].partial_success.rejected_log_records == 0
    assert svc.outcomes.joins.pending_predictions == 5000
    assert svc.ingestor.offloaded == 1 and svc.ingestor.inflight.bytes == 0


def test_structure_cache_is_safe_to_share_between_threads() -> None:
    # The decode thread and the loop look up and learn templates at once; ids must stay unique (the
    # series registry keys by them) and the bookkeeping consistent. Races are likelier with fast thread
    # switches and several rounds; without the cache's lock, most runs of this test fail.
    payloads = []
    for i in range(200):
        e = Emitter(make_reference(), f"pod-{i}", seed=i)
        e.observe(20)
        m = e.request().resource_metrics[0].scope_metrics[0].metrics[0]
        payloads.append((m.name, i.to_bytes(16, "little"), m.histogram.SerializeToString()))
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(8):
            cache = TemplateCache(max_entries=1024)
            errors: list[BaseException] = []

            def work(cache: TemplateCache = cache, errors: list[BaseException] = errors) -> None:
                try:
                    for _ in range(3):  # all threads see, learn, then hit the same payloads at about the same time
                        for name, resource, raw in payloads:
                            cache.lookup(name, resource, raw)
                except BaseException as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=work) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            assert not errors, errors
            ids = {t.id for t in cache._entries.values()}
            assert len(ids) == len(cache._entries) == len(payloads)  # one template per payload, distinct ids
            assert cache.bytes == sum(3 * k[2] for k in cache._entries)
            assert cache.hits + cache.misses == 4 * 3 * len(payloads)
    finally:
        sys.setswitchinterval(old)
