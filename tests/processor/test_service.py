"""The processor as a subprocess, spoken to over real OTLP gRPC and HTTP."""

from __future__ import annotations

import gzip
import http.client as http_client
import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from otel_ml import semconv
from otel_ml_processor._store import file_name

from .conftest import Sink, wait_for
from .payloads import Emitter, make_reference

EXPORT = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"


def grpc_export(endpoint: str, req: ExportMetricsServiceRequest | bytes, *, metadata: Any = None,
                credentials: grpc.ChannelCredentials | None = None, gzip: bool = False) -> ExportMetricsServiceResponse:
    with (grpc.secure_channel(endpoint, credentials) if credentials else grpc.insecure_channel(endpoint)) as ch:
        call = ch.unary_unary(EXPORT, request_serializer=None, response_deserializer=ExportMetricsServiceResponse.FromString)
        data = req if isinstance(req, bytes) else req.SerializeToString()
        return call(data, timeout=10, metadata=metadata,
                    compression=grpc.Compression.Gzip if gzip else grpc.Compression.NoCompression)


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None,
         context: Any = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10, context=context) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def detected(sink: Sink, window: str) -> dict[str, float]:
    out = {}
    for attrs, v, _ in sink.points(semconv.DRIFT_DETECTED):
        if attrs[semconv.DRIFT_WINDOW] == window and attrs[semconv.DRIFT_KIND] == "feature":
            out[attrs[semconv.FEATURE_NAME]] = v
    return out


def test_service_flags_shifted_feature_over_grpc_and_http(sink: Sink, start_processor: Any, ref_dir: Path) -> None:
    proc = start_processor("--references", str(ref_dir), "--export-endpoint", sink.endpoint,
                           "--evaluation-interval", "0.5", "--window", "60", "--window", "1h")
    ref = make_reference()
    pods = [Emitter(ref, "pod-a", seed=1), Emitter(ref, "pod-b", seed=2)]
    for e in pods:
        e.observe(1500, shift={"f1": 0.5})
    # pod-a over gRPC with gzip, pod-b over HTTP protobuf with gzip (the Collector exporters' default).
    resp = grpc_export(proc.grpc, pods[0].request(), gzip=True)
    assert resp.partial_success.rejected_data_points == 0
    status, _, body = http("POST", f"http://{proc.http}/v1/metrics", gzip.compress(pods[1].request().SerializeToString()),
                           {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"})
    assert status == 200
    assert ExportMetricsServiceResponse.FromString(body).partial_success.rejected_data_points == 0
    result = wait_for(lambda: (d := detected(sink, "1m")) and len(d) == 4 and d)
    assert result == {"f0": 0, "f1": 1, "f2": 0, "plan": 0}
    assert detected(sink, "1h")["f1"] == 1
    # Merged fleet traffic: both pods' rows count.
    counts = {a[semconv.FEATURE_NAME]: v for a, v, _ in sink.points(semconv.DRIFT_SAMPLE_COUNT)
              if a[semconv.DRIFT_WINDOW] == "1m"}
    assert counts["f0"] == 3000
    methods = {a[semconv.DRIFT_METHOD] for a, _, _ in sink.points(semconv.DRIFT_SCORE)}
    assert methods == {"psi", "jensen_shannon", "ks", "wasserstein", "chi_square"}
    assert sink.points(semconv.DRIFT_P_VALUE) and sink.points(semconv.QUALITY_MISSING_RATIO)
    assert {r["service.name"] for r in sink.resources()} == {"otel-ml-processor"}
    for name in (semconv.PROCESSOR_POINTS_RECEIVED, semconv.PROCESSOR_STREAMS, semconv.PROCESSOR_STATE_BYTES,
                 semconv.PROCESSOR_EVALUATION_DURATION):
        assert any(m.name == name for r in sink.requests for rm in r.resource_metrics for sm in rm.scope_metrics
                   for m in sm.metrics), name
    # JSON encoding works too and the same (duplicate) point is ignored, not double counted.
    from google.protobuf import json_format

    status, _, body = http("POST", f"http://{proc.http}/v1/metrics",
                           json_format.MessageToJson(pods[1].request(time_ns=pods[1].time_ns)).encode(),
                           {"Content-Type": "application/json"})
    assert status == 200, body
    assert json.loads(body) == {}
    assert proc.stop() == 0
    assert "final evaluation" in proc.log


def test_service_rejects_bounds_that_differ_from_reference(start_processor: Any, ref_dir: Path) -> None:
    proc = start_processor("--references", str(ref_dir), "--export-endpoint", "none")
    e = Emitter(make_reference(), "pod-a")
    e.observe(100)
    req = e.request(bounds_override=[0.0, 1.0, 2.0])  # 3 bounds but the reference has more buckets
    resp = grpc_export(proc.grpc, req)
    assert resp.partial_success.rejected_data_points == 3
    assert "bounds_mismatch" in resp.partial_success.error_message
    status, _, body = http("GET", f"http://{proc.http}/api/v1/status")
    assert json.loads(body)["points_rejected"] == {"bounds_mismatch": 3}


def test_service_restart_keeps_the_windows(sink: Sink, start_processor: Any, ref_dir: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    args = ("--references", str(ref_dir), "--export-endpoint", sink.endpoint, "--evaluation-interval", "0.5",
            "--state-dir", str(state))
    proc = start_processor(*args)
    e = Emitter(make_reference(), "pod-a")
    e.observe(1000)
    grpc_export(proc.grpc, e.request())
    wait_for(lambda: any(v == 1000 for _, v, _ in sink.points(semconv.DRIFT_SAMPLE_COUNT)))
    assert proc.stop() == 0
    assert (state / "state.json").exists()
    n_before = len(sink.requests)
    proc2 = start_processor(*args)
    assert "restored checkpoint" in proc2.log
    # Without new data the windows still hold the 1000 rows; the next cumulative point adds only its increment.
    wait_for(lambda: any(v == 1000 for _, v, i in sink.points(semconv.DRIFT_SAMPLE_COUNT, since=n_before)))
    e.observe(500)
    grpc_export(proc2.grpc, e.request())
    wait_for(lambda: any(v == 1500 for _, v, _ in sink.points(semconv.DRIFT_SAMPLE_COUNT, since=n_before)))
    assert not any(v > 1500 for _, v, _ in sink.points(semconv.DRIFT_SAMPLE_COUNT, since=n_before))
    assert proc2.stop() == 0


def test_service_overload_yields_retryable_errors(start_processor: Any, ref_dir: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("receivers:\n  overload:\n    max_points_per_second: 20\n    retry_after: 2s\nexport:\n  endpoint: null\n")
    proc = start_processor("--config", str(cfg), "--references", str(ref_dir))
    e = Emitter(make_reference(), "pod-a")
    e.observe(10)
    req = e.request()  # 11 ml points
    grpc_export(proc.grpc, req)
    with pytest.raises(grpc.RpcError) as info:
        grpc_export(proc.grpc, req)
    err = info.value
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    details = dict(err.trailing_metadata())["grpc-status-details-bin"]
    st = status_pb2.Status.FromString(details)
    retry = error_details_pb2.RetryInfo()
    assert st.details[0].Unpack(retry)
    assert retry.retry_delay.seconds >= 1
    status, headers, body = http("POST", f"http://{proc.http}/v1/metrics", req.SerializeToString(),
                                 {"Content-Type": "application/x-protobuf"})
    assert status == 429
    assert int(headers["Retry-After"]) >= 1
    assert status_pb2.Status.FromString(body).message.startswith("rate limit")


def test_service_bad_payloads_get_clear_errors(start_processor: Any, ref_dir: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("receivers:\n  max_request_bytes: 4096\nexport:\n  endpoint: null\n")
    proc = start_processor("--config", str(cfg), "--references", str(ref_dir))
    url = f"http://{proc.http}/v1/metrics"
    pb = {"Content-Type": "application/x-protobuf"}
    garbage = b"\x0a\xff\xff\xff\xff\x0f garbage"
    status, _, body = http("POST", url, garbage, pb)
    assert status == 400
    assert "not a valid OTLP" in status_pb2.Status.FromString(body).message
    with pytest.raises(grpc.RpcError) as info:
        grpc_export(proc.grpc, garbage)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status, _, body = http("POST", url, b'{"resourceMetrics": 5}', {"Content-Type": "application/json"})
    assert status == 400 and json.loads(body)["code"] == 3
    big = b"\x00" * 10_000
    status, _, _ = http("POST", url, big, pb)
    assert status == 413
    status, _, _ = http("POST", url, gzip.compress(b"\x00" * 1_000_000), {**pb, "Content-Encoding": "gzip"})
    assert status == 413  # decompressed size counts
    status, _, _ = http("POST", url, b"not gzip", {**pb, "Content-Encoding": "gzip"})
    assert status == 400
    status, _, _ = http("POST", url, b"x", {"Content-Type": "text/plain"})
    assert status == 415
    with pytest.raises(grpc.RpcError) as info:
        grpc_export(proc.grpc, big)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # Wrong types in the attributes and unknown models are counted, never fatal.
    e = Emitter(make_reference(model="other"), "pod-a")
    e.observe(5)
    assert grpc_export(proc.grpc, e.request()).partial_success.rejected_data_points > 0
    status, _, body = http("GET", f"http://{proc.http}/healthz")
    assert status == 200 and proc.alive()


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=IP:127.0.0.1,DNS:localhost"], check=True, capture_output=True)
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI to make a test certificate")
def test_service_tls_and_bearer_token(start_processor: Any, ref_dir: Path, tmp_path: Path) -> None:
    import ssl

    cert, key = _self_signed(tmp_path)
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    proc = start_processor("--references", str(ref_dir), "--tls-cert", str(cert), "--tls-key", str(key),
                           "--token-file", str(token_file), "--export-endpoint", "none")
    creds = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
    e = Emitter(make_reference(), "pod-a")
    e.observe(10)
    with pytest.raises(grpc.RpcError) as info:
        grpc_export(proc.grpc, e.request(), credentials=creds)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    ok = grpc_export(proc.grpc, e.request(), credentials=creds, metadata=(("authorization", "Bearer s3cret-token"),))
    assert ok.partial_success.rejected_data_points == 0
    ctx = ssl.create_default_context(cafile=str(cert))
    url = f"https://{proc.http}"
    body = e.request().SerializeToString()
    pb = {"Content-Type": "application/x-protobuf"}
    assert http("POST", f"{url}/v1/metrics", body, pb, context=ctx)[0] == 401
    assert http("POST", f"{url}/v1/metrics", body, {**pb, "Authorization": "Bearer s3cret-token"}, context=ctx)[0] == 200
    # Plain HTTP is refused on a TLS listener: the server closes the connection without an answer.
    with pytest.raises(http_client.RemoteDisconnected, match="closed connection without response"):
        urllib.request.urlopen(f"http://{proc.http}/healthz", timeout=5)
    # Admin API: reads and changes need the token (issue 10 item 8); health probes do not.
    assert http("GET", f"{url}/api/v1/references", context=ctx)[0] == 401
    assert http("GET", f"{url}/api/v1/references", headers={"Authorization": "Bearer s3cret-token"},
                context=ctx)[0] == 200
    assert http("GET", f"{url}/healthz", context=ctx)[0] == 200
    ref2 = make_reference(version="2").to_json().encode()
    js = {"Content-Type": "application/json"}
    assert http("PUT", f"{url}/api/v1/references/churn/2", ref2, js, context=ctx)[0] == 401
    assert http("PUT", f"{url}/api/v1/references/churn/2", ref2, {**js, "Authorization": "Bearer s3cret-token"},
                context=ctx)[0] == 201
    assert http("DELETE", f"{url}/api/v1/references/churn/2", context=ctx)[0] == 401
    assert http("DELETE", f"{url}/api/v1/references/churn/2", headers={"Authorization": "Bearer s3cret-token"},
                context=ctx)[0] == 200
    # `otel-ml reference push` with the token.
    ref_file = tmp_path / "ref3.json"
    make_reference(version="3").save(ref_file)
    out = subprocess.run([str(Path(sys.executable).parent / "otel-ml"), "reference", "push", str(ref_file), "--url", url,
                          "--cacert", str(cert)], capture_output=True, text=True,
                         env={**__import__("os").environ, "OTEL_ML_PROCESSOR_TOKEN": "s3cret-token"})
    assert out.returncode == 0, out.stderr
    assert "churn@3 added" in out.stdout
    assert proc.stop() == 0


def test_service_admin_api_without_token(start_processor: Any, ref_dir: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("references:\n  poll_interval: 0.2\n")
    proc = start_processor("--config", str(cfg), "--references", str(ref_dir), "--export-endpoint", "none")
    base = f"http://{proc.http}/api/v1/references"
    js = {"Content-Type": "application/json"}
    status, _, body = http("GET", base)
    assert status == 200 and [r["model"] for r in json.loads(body)["references"]] == ["churn"]
    status, _, body = http("GET", f"{base}/churn/1")
    assert status == 200 and json.loads(body)["model"] == {"name": "churn", "version": "1"}
    assert http("GET", f"{base}/churn/9")[0] == 404
    new = make_reference(version="2").to_json().encode()
    assert http("POST", base, new, js)[0] == 201
    assert http("PUT", f"{base}/churn/2", new, js)[0] == 200  # replaced
    assert (ref_dir / file_name("churn", "2")).exists()
    assert http("PUT", f"{base}/churn/3", new, js)[0] == 409
    bad = json.loads(new)
    bad["features"][0]["edges"] = [3, 2, 1]
    status, _, body = http("POST", base, json.dumps(bad).encode(), js)
    assert status == 400 and "edges" in json.loads(body)["error"]
    assert http("POST", base, b"{not json", js)[0] == 400
    assert http("POST", base, b" " * (9 * 1024 * 1024), js)[0] == 413
    assert http("DELETE", f"{base}/churn/2")[0] == 200
    assert not (ref_dir / file_name("churn", "2")).exists()
    assert http("DELETE", f"{base}/churn/2")[0] == 404
    assert http("GET", f"http://{proc.http}/readyz")[0] == 200
    # A file dropped in the directory is picked up by the poll.
    make_reference(model="fraud").save(ref_dir / "fraud.json")
    wait_for(lambda: "fraud" in http("GET", base)[2].decode(), timeout=10)


def test_service_sigterm_drains_evaluates_and_exports(sink: Sink, start_processor: Any, ref_dir: Path,
                                                      tmp_path: Path) -> None:
    proc = start_processor("--references", str(ref_dir), "--export-endpoint", sink.endpoint,
                           "--evaluation-interval", "3600", "--state-dir", str(tmp_path / "state"))
    e = Emitter(make_reference(), "pod-a")
    e.observe(700)
    grpc_export(proc.grpc, e.request())
    assert not sink.requests  # no evaluation yet
    assert proc.stop() == 0
    assert any(v == 700 for _, v, _ in sink.points(semconv.DRIFT_SAMPLE_COUNT))
    assert (tmp_path / "state" / "state.json").exists()
