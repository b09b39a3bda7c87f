"""OTLP/gRPC receiver: ``opentelemetry.proto.collector.metrics.v1.MetricsService/Export`` on grpc.aio.

* Requests arrive as raw bytes (no generated-class deserialisation) and go through the lean decoder.
* Malformed protobuf: ``INVALID_ARGUMENT``. Larger than ``receivers.max_request_bytes``:
  ``RESOURCE_EXHAUSTED`` (gRPC's own message-size check). gzip is handled by gRPC.
* Overload: ``UNAVAILABLE`` with a ``google.rpc.Status`` carrying ``google.rpc.RetryInfo`` in the
  ``grpc-status-details-bin`` trailer (what ``grpcio-status`` would produce; encoded here directly).
* Points rejected by the state (bounds that differ from the reference, unknown model, ...): success
  with ``partial_success.rejected_data_points`` and an ``error_message`` naming the reasons.
* Bounds: every request is charged to the shared in-flight byte budget before it is decoded (over
  it: the overload answer above); at most :data:`MAX_CONCURRENT_RPCS` calls run at once; a request
  whose client gave up (cancelled, or its deadline passed while it waited) is answered
  ``DEADLINE_EXCEEDED`` and never applied; idle connections are closed after
  :data:`MAX_CONNECTION_IDLE_MS`, and at most :data:`MAX_CONCURRENT_STREAMS` calls share a connection.
* Bearer token: when configured, ``authorization: Bearer <token>`` is required (``UNAUTHENTICATED``).
* TLS when a certificate and key are configured.
"""

from __future__ import annotations

import hmac
import logging

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse

from ._decode import DecodeError
from ._ingest import Ingestor, Overload

log = logging.getLogger("otel_ml_processor")

SERVICE = "opentelemetry.proto.collector.metrics.v1.MetricsService"
_OK = ExportMetricsServiceResponse().SerializeToString()

#: Calls handled at once (beyond: gRPC's own RESOURCE_EXHAUSTED before the request is read). Bounds
#: the request bytes gRPC holds before the in-flight budget sees them: this many x the request limit.
MAX_CONCURRENT_RPCS = 16
MAX_CONCURRENT_STREAMS = 16
MAX_CONNECTION_IDLE_MS = 5 * 60 * 1000


def _gave_up(context: grpc.aio.ServicerContext) -> bool:
    """True when the client cancelled the call or its deadline has passed."""
    try:
        if context.cancelled() or context.done():
            return True
        remaining = context.time_remaining()
    except Exception:  # noqa: BLE001 - an unusual context: treat as still wanted
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
        self._expected = f"Bearer {token}".encode()

        async def deny(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")
            return b""  # pragma: no cover

        self._deny = grpc.unary_unary_rpc_method_handler(deny)

    async def intercept_service(self, continuation, handler_call_details):  # type: ignore[no-untyped-def]
        for key, value in handler_call_details.invocation_metadata or ():
            if key == "authorization":
                got = value.encode() if isinstance(value, str) else bytes(value)
                if hmac.compare_digest(got, self._expected):
                    return await continuation(handler_call_details)
        return self._deny


class GrpcReceiver:
    def __init__(self, ingestor: Ingestor, *, endpoint: str, max_request_bytes: int, token: str | None = None,
                 tls: tuple[str, str] | None = None) -> None:
        self.ingestor = ingestor
        self.endpoint = endpoint
        self.max_request_bytes = max_request_bytes
        self.token = token
        self.tls = tls
        self.server: grpc.aio.Server | None = None
        self.port = 0

    async def start(self) -> int:
        interceptors = [_TokenInterceptor(self.token)] if self.token else []
        self.server = grpc.aio.server(
            interceptors=interceptors,
            maximum_concurrent_rpcs=MAX_CONCURRENT_RPCS,
            options=[
                ("grpc.max_receive_message_length", self.max_request_bytes),
                ("grpc.so_reuseport", 0),
                ("grpc.max_concurrent_streams", MAX_CONCURRENT_STREAMS),
                ("grpc.max_connection_idle_ms", MAX_CONNECTION_IDLE_MS),
            ],
        )
        handler = grpc.method_handlers_generic_handler(
            SERVICE, {"Export": grpc.unary_unary_rpc_method_handler(self._export)}
        )
        self.server.add_generic_rpc_handlers((handler,))
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
        try:
            try:
                decoded = self.ingestor.decode(request)
            except DecodeError as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            ov = self.ingestor.take(decoded.points)
            if ov is not None:
                await self._abort_overload(context, ov)
            if _gave_up(context):
                await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "the client gave up; not applied")
            try:
                res = self.ingestor.apply(decoded)
            except Exception as exc:  # never crash on input: report and keep serving
                log.exception("internal error while ingesting a gRPC request")
                await context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}")
        finally:
            self.ingestor.release(size)
        if res.rejected_total:
            resp = ExportMetricsServiceResponse()
            resp.partial_success.rejected_data_points = res.rejected_total
            resp.partial_success.error_message = res.message()
            return resp.SerializeToString()
        return _OK
