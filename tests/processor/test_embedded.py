"""The service embedded with run_in_thread (as the demo uses it): busy answers, evaluation on demand."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse

from otel_ml_processor import from_mapping, run_in_thread

from .payloads import Emitter, make_reference

EXPORT = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"


def test_embedded_service_answers_busy_with_retry_delays_and_evaluates(ref_dir: Path) -> None:
    cfg = from_mapping({"receivers": {"otlp_grpc": "127.0.0.1:0", "otlp_http": "127.0.0.1:0",
                                      "overload": {"retry_after": 3.0}},
                        "references": {"directory": str(ref_dir)}, "export": {"endpoint": None},
                        "evaluation": {"interval": 60.0}}, env={})
    with run_in_thread(cfg) as svc:
        e = Emitter(make_reference(), "pod-a")  # started after the processor: its first point counts
        e.observe(500)
        body = e.request().SerializeToString()
        assert svc.grpc_endpoint and svc.http_endpoint
        with grpc.insecure_channel(svc.grpc_endpoint) as ch:
            call = ch.unary_unary(EXPORT, request_serializer=None,
                                  response_deserializer=ExportMetricsServiceResponse.FromString)
            call(body, timeout=5)
            svc.ingestor.draining = True  # what SIGTERM does first
            with pytest.raises(grpc.RpcError) as info:
                call(body, timeout=5)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            st = status_pb2.Status.FromString(dict(info.value.trailing_metadata())["grpc-status-details-bin"])
            retry = error_details_pb2.RetryInfo()
            st.details[0].Unpack(retry)
            assert retry.retry_delay.seconds == 3
        req = urllib.request.Request(f"http://{svc.http_endpoint}/v1/metrics", data=body, method="POST",
                                     headers={"Content-Type": "application/x-protobuf"})
        with pytest.raises(urllib.error.HTTPError) as http_info:
            urllib.request.urlopen(req, timeout=5)
        assert http_info.value.code == 503 and http_info.value.headers["Retry-After"] == "3"
        with pytest.raises(urllib.error.HTTPError) as ready:
            urllib.request.urlopen(f"http://{svc.http_endpoint}/readyz", timeout=5)
        assert ready.value.code == 503
        svc.ingestor.draining = False
        fut = asyncio.run_coroutine_threadsafe(svc.evaluate_once(), svc._loop)  # type: ignore[arg-type]
        ev = fut.result(30)
        assert ev.rows == 8 and set(ev.sample_count.tolist()) == {500.0}
