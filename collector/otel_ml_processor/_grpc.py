"""OTLP/gRPC receiver: ``opentelemetry.proto.collector.metrics.v1.MetricsService/Export`` on grpc.aio.

* Requests arrive as raw bytes (no generated-class deserialisation) and go through the lean decoder.
* Malformed protobuf: ``INVALID_ARGUMENT``. Larger than ``receivers.max_request_bytes``:
  ``RESOURCE_EXHAUSTED`` (gRPC's own message-size check). gzip is handled by gRPC.
* Overload: ``UNAVAILABLE`` with a ``google.rpc.Status`` carrying ``google.rpc.RetryInfo`` in the
  ``grpc-status-details-bin`` trailer (what ``grpcio-status`` would produce; encoded here directly).
* Points rejected by the state (bounds that differ from the reference, unknown model, ...): success
  with ``partial_success.rejected_data_points`` and an ``error_message`` naming the reasons.
* Large requests are decoded in the ingestor's decode thread and applied in arrival order
  (:meth:`~._ingest.Ingestor.decode_body`).
* Bounds: every request is charged to the shared in-flight byte budget before it is decoded (over
  it: the overload answer above). gRPC reads a request whole before the handler sees its size, so
  the calls in progress are bounded too (:class:`_Admission`: ``max(4, 2 x max_inflight_bytes /
  request limit)``; beyond, the same overload answer, given before the request is read): gRPC holds
  at most about ``2 x max_inflight_bytes`` of requests not yet charged. A request
  whose client gave up (cancelled, or its deadline passed while it waited) is answered
  ``DEADLINE_EXCEEDED`` and never applied; idle connections are closed after
  :data:`MAX_CONNECTION_IDLE_MS`, at most :data:`MAX_CONCURRENT_STREAMS` calls share a connection,
  and at most ``max_connections`` connections are accepted (``receivers.grpc_max_connections``; a
  quarter of the HTTP limit by default: upstream Collectors need few, and the open files must leave
  room for the HTTP listener).
* Bearer token: when configured, ``authorization: Bearer <token>`` is required (``UNAUTHENTICATED``).
* TLS when a certificate and key are configured.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse

from ._auth import bearer_matches
from ._decode import DecodeError
from ._ingest import BUSY, Ingestor, Overload
from ._outcomes import grpc_logs_handler

log = logging.getLogger("otel_ml_processor")

SERVICE = "opentelemetry.proto.collector.metrics.v1.MetricsService"
_OK = ExportMetricsServiceResponse().SerializeToString()

MAX_CONCURRENT_STREAMS = 16
#: A call whose request has not arrived within this stops counting against the admission limit.
_ADMISSION_LEASE = 60.0
MAX_CONNECTION_IDLE_MS = 5 * 60 * 1000


def _gave_up(context: grpc.aio.ServicerContext) -> bool:
    """True when the client cancelled the call or its deadline has passed."""
    try:
        if context.cancelled() or context.done():
            return True
        remaining = context.time_remaining()
    except Exception:
        return False
    return remaining is not None and remaining <= 0


def status_details(code: int, message: str, retry_after: float | None = None) -> bytes:
    """A serialized ``google.rpc.Status``, with ``RetryInfo`` when ``retry_after`` is given."""
    st = status_pb2.Status(code=code, message=message)
    if retry_after is not None:
        info = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(
            seconds=int(retry_after), nanos=int((retry_after % 1) * 1e9)))
        a = any_pb2.Any()
        a.Pack(info)
        st.details.append(a)
    return st.SerializeToString()


class _TokenInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, token: str) -> None:
        self._token = token

        async def deny(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")
            return b""  # pragma: no cover

        self._deny = grpc.unary_unary_rpc_method_handler(deny)

    async def intercept_service(self, continuation, handler_call_details):
        for key, value in handler_call_details.invocation_metadata or ():
            if key == "authorization" and bearer_matches(value, self._token):
                return await continuation(handler_call_details)
        return self._deny


class _Admission(grpc.aio.ServerInterceptor):
    """At most ``limit`` Export calls between their start and their answer; beyond, the overload
    answer before the request is read (the refusal handler is request-streaming and never reads)."""

    def __init__(self, limit: int, refuse: Callable[[grpc.aio.ServicerContext], Awaitable[None]]) -> None:
        self.limit = limit
        self._started: dict[int, float] = {}  # call number -> start (a lease: a call may never arrive)
        self._next = 0

        async def deny(requests: Any, context: grpc.aio.ServicerContext) -> bytes:
            await refuse(context)
            return b""  # pragma: no cover

        self._deny = grpc.stream_unary_rpc_method_handler(deny)

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        now = time.monotonic()
        if len(self._started) >= self.limit:
            for k in [k for k, t in self._started.items() if now - t > _ADMISSION_LEASE]:
                del self._started[k]
            if len(self._started) >= self.limit:
                return self._deny
        call = self._next
        self._next += 1
        self._started[call] = now
        inner = handler.unary_unary

        async def behaviour(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            try:
                result: bytes = await inner(request, context)
                return result
            finally:
                self._started.pop(call, None)

        return grpc.unary_unary_rpc_method_handler(behaviour, request_deserializer=handler.request_deserializer,
                                                   response_serializer=handler.response_serializer)


class GrpcReceiver:
    def __init__(self, ingestor: Ingestor, *, endpoint: str, max_request_bytes: int, token: str | None = None,
                 tls: tuple[str, str] | None = None, max_connections: int = 250) -> None:
        self.max_connections = max_connections
        self.ingestor = ingestor
        self.endpoint = endpoint
        self.max_request_bytes = max_request_bytes
        self.token = token
        self.tls = tls
        self.server: grpc.aio.Server | None = None
        self.outcomes: Any = None  # _outcomes.Outcomes: LogsService/Export
        self.port = 0

    async def start(self) -> int:
        interceptors: list[grpc.aio.ServerInterceptor] = [_TokenInterceptor(self.token)] if self.token else []
        interceptors.append(_Admission(self.max_concurrent_calls, self._refuse_busy))
        self.server = grpc.aio.server(
            interceptors=interceptors,
            options=[
                ("grpc.max_receive_message_length", self.max_request_bytes),
                ("grpc.so_reuseport", 0),
                ("grpc.max_concurrent_streams", MAX_CONCURRENT_STREAMS),
                ("grpc.max_connection_idle_ms", MAX_CONNECTION_IDLE_MS),
                ("grpc.max_allowed_incoming_connections", self.max_connections),
            ],
        )
        handler = grpc.method_handlers_generic_handler(
            SERVICE, {"Export": grpc.unary_unary_rpc_method_handler(self._export)}
        )
        self.server.add_generic_rpc_handlers((handler,))
        self.server.add_generic_rpc_handlers((grpc_logs_handler(self),))
        if self.tls:
            with open(self.tls[0], "rb") as f:
                cert = f.read()
            with open(self.tls[1], "rb") as f:
                key = f.read()
            creds = grpc.ssl_server_credentials([(key, cert)])
            self.port = self.server.add_secure_port(self.endpoint, creds)
        else:
            self.port = self.server.add_insecure_port(self.endpoint)
        if not self.port:
            raise OSError(f"receivers.otlp_grpc: cannot listen on {self.endpoint}")
        await self.server.start()
        return self.port

    async def stop(self, grace: float = 1.0) -> None:
        if self.server is not None:
            await self.server.stop(grace)

    @property
    def max_concurrent_calls(self) -> int:
        """Export calls admitted at once (see :class:`_Admission`)."""
        return max(4, 2 * self.ingestor.inflight.limit // max(self.max_request_bytes, 1))

    async def _refuse_busy(self, context: grpc.aio.ServicerContext) -> None:
        await self._abort_overload(context, Overload(BUSY, self.ingestor.retry_after,
                                                     "too many requests in progress; retry"))

    async def _abort_overload(self, context: grpc.aio.ServicerContext, ov: Overload) -> None:
        self.ingestor.refused += 1
        await context.abort(
            grpc.StatusCode.UNAVAILABLE, ov.message,
            trailing_metadata=(("grpc-status-details-bin",
                                status_details(code_pb2.UNAVAILABLE, ov.message, ov.retry_after)),),
        )

    async def _export(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        ov = self.ingestor.busy()
        if ov is not None:
            await self._abort_overload(context, ov)
        size = len(request)
        ov = self.ingestor.charge(size)
        if ov is not None:
            await self._abort_overload(context, ov)
        turn = self.ingestor.order.turn()
        try:
            try:
                decoded = await self.ingestor.decode_body(self.ingestor.decode_metrics(), request)
            except DecodeError as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            ov = self.ingestor.take(decoded.points)
            if ov is not None:
                await self._abort_overload(context, ov)
            await turn.wait()
            if _gave_up(context):
                await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "the client gave up; not applied")
            try:
                res = self.ingestor.apply(decoded)
            except Exception as exc:  # never crash on input: report and keep serving
                log.exception("internal error while ingesting a gRPC request")
                await context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}")
        finally:
            turn.done()
            self.ingestor.release(size)
        if res.rejected_total:
            resp = ExportMetricsServiceResponse()
            resp.partial_success.rejected_data_points = res.rejected_total
            resp.partial_success.error_message = res.message()
            return resp.SerializeToString()
        return _OK
