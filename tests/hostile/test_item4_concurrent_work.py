"""Issue 10 item 4: concurrent large requests must not take unbounded memory or stall health checks.

The fix bounds the bytes of requests in flight (received and not yet answered), over gRPC and HTTP
together: ``--max-inflight-bytes N`` (``receivers.max_inflight_bytes``, default 64 MiB, at least
``receivers.max_request_bytes``). Beyond it a request is refused with a retryable error: gRPC
``UNAVAILABLE`` with ``google.rpc.RetryInfo``, HTTP 503 with ``Retry-After``. A refused request is
never applied. The accounting is observable in ``GET /api/v1/status``:

    "inflight": {"bytes": <now>, "peak_bytes": <highest since start>, "limit_bytes": <the bound>}
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

from .conftest import MIB, Proc, grpc_export, healthz, http, large_requests, status


def _retry_info(err: grpc.RpcError) -> error_details_pb2.RetryInfo | None:
    details = dict(err.trailing_metadata() or ()).get("grpc-status-details-bin")
    if details is None:
        return None
    for a in status_pb2.Status.FromString(details).details:
        info = error_details_pb2.RetryInfo()
        if a.Unpack(info):
            return info
    return None


def test_item4_inflight_bytes_are_bounded_with_retryable_refusals(start_processor: Any, ref_dir: Path) -> None:
    limit = 6 * MIB
    proc: Proc = start_processor("--references", str(ref_dir), "--export-endpoint", "none",
                                 "--max-inflight-bytes", str(limit))
    bodies, per_request = large_requests(12, 3 * MIB)
    start = threading.Barrier(len(bodies))
    outcomes: list[str] = []
    lock = threading.Lock()

    def send(i: int, body: bytes) -> None:
        start.wait(30)
        if i % 2:
            code, headers, _ = http("POST", f"http://{proc.http}/v1/metrics", body,
                                    {"Content-Type": "application/x-protobuf"}, timeout=60)
            got = "ok" if code == 200 else f"http {code} retry-after={headers.get('Retry-After')}"
            if code == 503 and int(headers.get("Retry-After", "0")) >= 1:
                got = "refused"
        else:
            try:
                grpc_export(proc.grpc, body, timeout=60)
                got = "ok"
            except grpc.RpcError as err:
                got = f"grpc {err.code()}"
                if err.code() == grpc.StatusCode.UNAVAILABLE and _retry_info(err) is not None:
                    got = "refused"
        with lock:
            outcomes.append(got)

    threads = [threading.Thread(target=send, args=(i, b)) for i, b in enumerate(bodies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(set(outcomes)) <= ["ok", "refused"], outcomes
    st = status(proc)
    inflight = st["inflight"]
    assert inflight["limit_bytes"] == limit
    assert 0 < inflight["peak_bytes"] <= limit, inflight
    assert inflight["bytes"] == 0, inflight
    assert st["refused_requests"] == outcomes.count("refused")
    # Refused requests were not applied.
    assert st["points_received"] == per_request * outcomes.count("ok"), (st, outcomes)


def test_item4_health_answers_during_concurrent_large_grpc_requests(start_processor: Any, ref_dir: Path) -> None:
    proc: Proc = start_processor("--references", str(ref_dir), "--export-endpoint", "none")
    bodies, _ = large_requests(8, 3 * MIB)
    errors: list[BaseException] = []

    def send(body: bytes) -> None:
        try:
            grpc_export(proc.grpc, body, timeout=120)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    answers = []
    while any(t.is_alive() for t in threads):
        answers.append(healthz(proc, timeout=30))  # a generous liveness bound, not a latency assertion
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert answers and all(a == 200 for a in answers), answers
