"""Unit tests of the bounds against hostile clients (issue 10 items 2-4): size caps, digest keys, the
cache byte budget, the in-flight byte budget, the connection guard and the gRPC give-up check.
The black-box versions are in ``tests/hostile``."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from otel_ml_processor._connections import ConnectionGuard
from otel_ml_processor._decode import SizeLimits, decode_protobuf
from otel_ml_processor._grpc import GrpcReceiver
from otel_ml_processor._ingest import Ingestor
from otel_ml_processor._limits import DIGEST_BYTES, CacheBudget, InflightBudget
from otel_ml_processor._series import R_TOO_LARGE, R_UNKNOWN_REFERENCE
from otel_ml_processor._state import State
from otel_ml_processor._store import ReferenceStore
from otel_ml_processor._telemetry import Telemetry

from .payloads import Emitter, kv, make_reference


def _request(pod: str = "pod-0", *, resource_bytes: int = 0, attribute_bytes: int = 0, model: str | None = None,
             tag: str = "") -> ExportMetricsServiceRequest:
    e = Emitter(make_reference(), pod)
    e.observe(50)
    req = e.request()
    for rm in req.resource_metrics:
        if resource_bytes:
            rm.resource.attributes.append(kv("blob", (tag + "r" * resource_bytes)[:resource_bytes]))
        for m in rm.scope_metrics[0].metrics:
            points = m.histogram.data_points if m.HasField("histogram") else m.sum.data_points
            for dp in points:
                for a in dp.attributes:
                    if model is not None and a.key == "ml.model.name":
                        a.value.string_value = model
                if attribute_bytes:
                    dp.attributes.append(kv("blob", (tag + "a" * attribute_bytes)[:attribute_bytes]))
    return req


def _points(req: ExportMetricsServiceRequest) -> int:
    d = decode_protobuf(req.SerializeToString())
    return d.points


@pytest.mark.parametrize("where", ["resource", "attribute"])
def test_limits_oversized_resource_or_attribute_points_are_dropped_and_counted(where: str) -> None:
    limits = SizeLimits(max_attribute_bytes=256, max_resource_bytes=512)
    n = _points(_request())
    big = _request(**({"resource_bytes": 1000} if where == "resource" else {"attribute_bytes": 300}))
    d = decode_protobuf(big.SerializeToString(), limits=limits)
    assert d.too_large == n and d.points == 0
    ok = decode_protobuf(_request(resource_bytes=400, attribute_bytes=200).SerializeToString(), limits=limits)
    assert ok.too_large == 0 and ok.points == n


def test_limits_group_resource_is_a_digest_not_the_raw_bytes() -> None:
    d = decode_protobuf(_request(resource_bytes=2000).SerializeToString())
    assert {len(g.resource) for g in d.histograms + d.sums} == {DIGEST_BYTES}


def test_limits_state_counts_too_large_points_as_rejected() -> None:
    store = ReferenceStore(None)
    store.put(make_reference())
    ingestor = Ingestor(State(store), Telemetry(), size_limits=SizeLimits(256, 512))
    req = _request(attribute_bytes=1000)
    res = ingestor.apply(ingestor.decode(req.SerializeToString()))
    assert res.rejected == {R_TOO_LARGE: _points(_request())}
    assert ingestor.telemetry.rejected[R_TOO_LARGE] == _points(_request())


def test_limits_caches_stay_within_their_byte_budget_and_hold_digests() -> None:
    store = ReferenceStore(None)
    store.put(make_reference())
    budget = CacheBudget(64 * 1024)
    state = State(store, cache_budget=budget)
    ingestor = Ingestor(state, Telemetry(), cache_budget=budget)
    sent = 0
    for i in range(200):  # unique rejected series: the negative cache
        data = _request(f"pod-{i}", attribute_bytes=1000, model="nope", tag=f"{i}-").SerializeToString()
        sent += len(data)
        res = ingestor.apply(ingestor.decode(data))
        assert set(res.rejected) == {R_UNKNOWN_REFERENCE}
        assert budget.bytes <= budget.limit
    assert state.series.cache_bytes() > 0
    assert budget.bytes < sent / 20
    # Every key is a digest: no raw attribute bytes kept by the state's lookups either.
    for key in state.series._negative:
        assert len(key[1]) == DIGEST_BYTES and len(key[2]) == DIGEST_BYTES


def test_limits_inflight_budget_refuses_what_does_not_fit_and_tracks_the_peak() -> None:
    b = InflightBudget(100)
    assert b.try_acquire(60) and not b.try_acquire(50) and b.try_acquire(40)
    b.release(60)
    b.release(40)
    assert b.status() == {"bytes": 0, "peak_bytes": 100, "limit_bytes": 100}
    assert b.retry_after(1.0) >= 1.0


class _Transport:
    def __init__(self) -> None:
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True


def test_limits_connection_guard_closes_slow_and_surplus_connections() -> None:
    guard = ConnectionGuard(read_timeout=5.0, limit=lambda: 3)
    ts = [_Transport() for _ in range(3)]
    for t in ts:
        guard.opened(t)  # type: ignore[arg-type]
    guard._conns[ts[0]].busy = 1  # serving a request: never the one evicted, never timed out
    new = _Transport()
    guard.opened(new)  # type: ignore[arg-type]
    assert [t.aborted for t in ts] == [False, True, False] and not new.aborted  # oldest idle one made room
    assert guard.closed_over_limit == 1
    now = guard._conns[new].since
    assert guard.sweep(now + 4.0) == 0
    assert guard.sweep(now + 6.0) == 2  # ts[2] and new: idle past the read timeout; ts[0] is busy
    assert not ts[0].aborted and ts[2].aborted and new.aborted


class _GaveUpContext:
    """A gRPC context whose client's deadline has passed."""

    def __init__(self) -> None:
        self.aborted: tuple[Any, str] | None = None

    def cancelled(self) -> bool:
        return False

    def done(self) -> bool:
        return False

    def time_remaining(self) -> float:
        return -0.5

    async def abort(self, code: Any, details: str, trailing_metadata: Any = ()) -> None:
        self.aborted = (code, details)
        raise asyncio.CancelledError  # like grpc.aio: abort does not return


def test_limits_grpc_request_whose_client_gave_up_is_not_applied() -> None:
    store = ReferenceStore(None)
    store.put(make_reference())
    ingestor = Ingestor(State(store), Telemetry())
    receiver = GrpcReceiver(ingestor, endpoint="127.0.0.1:0", max_request_bytes=1 << 20)
    ctx = _GaveUpContext()
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(receiver._export(_request().SerializeToString(), ctx))  # type: ignore[arg-type]
    assert ctx.aborted is not None and ctx.aborted[0] == grpc.StatusCode.DEADLINE_EXCEEDED
    assert ingestor.state.series_count == 0 and ingestor.telemetry.received == 0
    assert ingestor.inflight.bytes == 0  # released


def test_limits_grpc_calls_beyond_the_admission_limit_are_refused_retryably_before_reading() -> None:
    from otel_ml_processor._grpc import _Admission

    refused: list[Any] = []

    async def refuse(context: Any) -> None:
        refused.append(context)

    async def export(request: bytes, context: Any) -> bytes:
        return b"ok"

    async def continuation(details: Any) -> Any:
        return grpc.unary_unary_rpc_method_handler(export)

    async def scenario() -> None:
        adm = _Admission(2, refuse)
        first = await adm.intercept_service(continuation, None)
        second = await adm.intercept_service(continuation, None)
        third = await adm.intercept_service(continuation, None)
        assert first.unary_unary is not None and second.unary_unary is not None
        assert third.unary_unary is None and third.stream_unary is not None  # never reads the request
        await third.stream_unary(iter(()), "ctx")
        assert refused == ["ctx"]
        assert await first.unary_unary(b"", None) == b"ok"  # answered: its place is free again
        fourth = await adm.intercept_service(continuation, None)
        assert fourth.unary_unary is not None

    asyncio.run(scenario())


def test_limits_request_larger_than_the_inflight_budget_is_too_large(start_processor: Any, ref_dir: Any) -> None:
    """A request that could never fit in the in-flight budget is refused as too large (no retry
    advice: retrying cannot help), not as busy; nothing is applied."""
    from google.rpc import error_details_pb2, status_pb2

    from hostile.conftest import grpc_export, large_requests, status

    proc = start_processor("--references", str(ref_dir), "--export-endpoint", "none",
                           "--max-inflight-bytes", str(2 << 20))
    bodies, _ = large_requests(1, 3 << 20)  # larger than the whole budget: too large, never retryable
    with pytest.raises(grpc.RpcError) as err:
        grpc_export(proc.grpc, bodies[0])
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = dict(err.value.trailing_metadata() or ()).get("grpc-status-details-bin")
    assert details is None or not any(a.Is(error_details_pb2.RetryInfo.DESCRIPTOR)
                                      for a in status_pb2.Status.FromString(details).details)
    assert status(proc)["points_received"] == 0


def test_limits_a_restored_state_keeps_its_cache_budget() -> None:
    store = ReferenceStore(None)
    store.put(make_reference())
    first = State(store)
    ingestor = Ingestor(first, Telemetry())
    ingestor.apply(ingestor.decode(_request().SerializeToString()))
    budget = CacheBudget(64 * 1024)
    restored = State(store, cache_budget=budget)
    assert restored.restore(*first.snapshot())
    assert restored.series.budget is budget
    # The budget measures the live registry, not the staging one that restore() filled and dropped.
    ingestor = Ingestor(restored, Telemetry(), cache_budget=budget)
    for i in range(50):
        ingestor.apply(ingestor.decode(_request(f"pod-{i}", model="nope", tag=f"{i}-").SerializeToString()))
    assert restored.series.cache_bytes() > 0
    assert budget.bytes >= restored.series.cache_bytes()
