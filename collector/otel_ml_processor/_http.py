"""OTLP/HTTP receiver, health endpoints and the reference admin API (aiohttp).

OTLP: ``POST /v1/metrics`` with ``Content-Type: application/x-protobuf`` or ``application/json``,
optionally ``Content-Encoding: gzip``. Responses follow the OTLP/HTTP spec: 200 with an
``ExportMetricsServiceResponse`` in the request's encoding (``partial_success`` when points were
rejected); 400 with a ``google.rpc.Status`` body for a malformed payload; 413 when the body (or its
decompressed form) exceeds ``receivers.max_request_bytes``; 415 for another content type; 429
(rate limit) or 503 (busy, draining) with ``Retry-After``; 401 without the bearer token when one is
required.

Limits (:mod:`._connections`, :mod:`._limits`): a request head, and then every body chunk, must
arrive within ``receivers.http_read_timeout`` (else the connection is closed; 408 while a body is
read), idle keep-alive connections close after it too; beyond ``receivers.max_connections`` the
oldest connection not serving a request is closed; an OTLP request is charged its ``Content-Length``
to the in-flight byte budget before its body is read (503 with ``Retry-After`` when it does not fit).
A large body is decompressed and decoded in the ingestor's decode thread, and applied in arrival
order (:meth:`~._ingest.Ingestor.decode_body`).

Health: ``GET /healthz`` (the process serves), ``GET /readyz`` (receivers up, not draining).

Admin API (``/api/v1/references``), JSON only:

* ``GET /api/v1/references`` - list; ``GET /api/v1/references/{model}/{version}`` - the profile;
* ``PUT /api/v1/references/{model}/{version}`` or ``POST /api/v1/references`` - upload a profile
  (validated with :func:`otel_ml.reference.loads_reference`; 400 naming the bad field; 413 above
  ``references.max_upload_bytes``; 409 when the body's model/version differ from the path);
* ``DELETE /api/v1/references/{model}/{version}``.

When a token is configured, every admin request (reads included: the references hold every model's
training distributions) needs ``Authorization: Bearer <token>`` (scheme case-insensitive, RFC 6750);
only ``/healthz`` and ``/readyz`` stay open for probes. Without a token, changes are accepted from
loopback clients only. ``GET /api/v1/status`` reports the state's size.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse

from otel_ml import ReferenceProfileError
from otel_ml.reference import loads_reference

from ._auth import bearer_matches
from ._config import DEFAULT_HTTP_READ_TIMEOUT
from ._connections import BodyTimeout, ConnectionGuard, read_body
from ._decode import DecodeError, TooLargeError
from ._ingest import RATE, Ingestor, Overload
from ._outcomes import http_logs
from ._store import ReferenceStore

log = logging.getLogger("otel_ml_processor")

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HttpServer:
    def __init__(self, ingestor: Ingestor, store: ReferenceStore, *, endpoint: tuple[str, int],
                 max_request_bytes: int, max_reference_bytes: int, token: str | None = None,
                 require_token_for_ingest: bool = True, tls: tuple[str, str] | None = None,
                 status: Callable[[], dict[str, Any]] | None = None) -> None:
        self.ingestor = ingestor
        self.store = store
        self.host, self.port = endpoint
        self.max_request_bytes = max_request_bytes
        self.max_reference_bytes = max_reference_bytes
        self.token = token
        self.require_token_for_ingest = require_token_for_ingest
        self.tls = tls
        self.status = status or (dict)
        self.ready = False
        self.on_references_changed: Callable[[], None] = lambda: None
        self._runner: web.AppRunner | None = None
        self.read_timeout = DEFAULT_HTTP_READ_TIMEOUT
        self.connection_limit: Callable[[], int] = lambda: 1000
        self.guard: ConnectionGuard | None = None
        self._listener: asyncio.AbstractServer | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.outcomes: Any = None  # _outcomes.Outcomes: POST /v1/logs

    def app(self) -> web.Application:
        app = web.Application(client_max_size=max(self.max_request_bytes, self.max_reference_bytes) + 1)
        app.router.add_post("/v1/metrics", self.otlp)
        app.router.add_post("/v1/logs", self.otlp_logs)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/api/v1/status", self.get_status)
        app.router.add_get("/api/v1/references", self.list_refs)
        app.router.add_post("/api/v1/references", self.upload)
        app.router.add_get("/api/v1/references/{model}/{version}", self.get_ref)
        app.router.add_put("/api/v1/references/{model}/{version}", self.upload)
        app.router.add_post("/api/v1/references/{model}/{version}", self.upload)
        app.router.add_delete("/api/v1/references/{model}/{version}", self.delete_ref)
        return app

    async def start(self) -> int:
        guard = self.guard = ConnectionGuard(self.read_timeout, self.connection_limit)
        app = self.app()
        app.middlewares.append(guard.middleware)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, auto_decompress=False,
                                     keepalive_timeout=self.read_timeout)
        await self._runner.setup()
        ctx = None
        if self.tls:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(self.tls[0], self.tls[1])
        assert self._runner.server is not None
        loop = asyncio.get_running_loop()
        self._listener = await loop.create_server(guard.protocol_factory(self._runner.server), self.host, self.port,
                                                  ssl=ctx, backlog=128, reuse_address=True,
                                                  ssl_handshake_timeout=self.read_timeout if ctx else None)
        if self._listener.sockets:
            self.port = self._listener.sockets[0].getsockname()[1]
        self._sweeper = asyncio.create_task(guard.run())
        return self.port

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._listener is not None:
            self._listener.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _read_body(self, request: web.Request, limit: int) -> bytes:
        """The body within the per-chunk read timeout (:class:`BodyTimeout`) and ``limit``."""
        return await read_body(request, limit, self.read_timeout)

    # --- auth -----------------------------------------------------------------------------------
    def _authorized(self, request: web.Request) -> bool:
        if self.token is None:
            return True
        return bearer_matches(request.headers.get("Authorization"), self.token)

    def _may_read(self, request: web.Request) -> web.Response | None:
        """The 401 for an admin read without the token (when one is configured), else None."""
        if self.token is not None and not self._authorized(request):
            return _json_error(401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"})
        return None

    def _may_change(self, request: web.Request) -> web.Response | None:
        if self.token is not None:
            if not self._authorized(request):
                return _json_error(401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"})
            return None
        remote = request.remote or ""
        try:
            loopback = ipaddress.ip_address(remote).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            return _json_error(403, "no token is configured: reference changes are accepted from loopback only")
        return None

    # --- OTLP -----------------------------------------------------------------------------------
    def _refuse_otlp(self, request: web.Request) -> tuple[bool, web.Response | None]:
        """(whether the body is OTLP/JSON, the answer refusing the request or None) for ``/v1/metrics`` and
        ``/v1/logs``: 415 for a Content-Type OTLP/HTTP does not define, 401 without a token ingest requires."""
        ctype = (request.content_type or "").lower()
        as_json = ctype == JSON
        if ctype not in (PROTOBUF, JSON):
            return as_json, _status(415, code_pb2.INVALID_ARGUMENT,
                                    f"unsupported Content-Type {ctype!r}; use {PROTOBUF} or {JSON}", as_json=True)
        if self.require_token_for_ingest and not self._authorized(request):
            return as_json, _status(401, code_pb2.UNAUTHENTICATED, "missing or invalid bearer token", as_json,
                                    headers={"WWW-Authenticate": "Bearer"})
        return as_json, None

    def _refuse_declared_size(self, request: web.Request, as_json: bool) -> web.Response | None:
        """The 413 for a request whose declared body exceeds the limit, else None."""
        if request.content_length is not None and request.content_length > self.max_request_bytes:
            return _status(413, code_pb2.RESOURCE_EXHAUSTED,
                           f"request body of {request.content_length} bytes exceeds the limit of "
                           f"{self.max_request_bytes} bytes", as_json)
        return None

    async def otlp(self, request: web.Request) -> web.StreamResponse:
        as_json, refused = self._refuse_otlp(request)
        if refused is not None:
            return refused
        ov = self.ingestor.busy()
        if ov is not None:
            return self._overload(ov, as_json)
        return await self.admit(request, as_json, lambda body: self._otlp_body(request, body, as_json))

    async def admit(self, request: web.Request, as_json: bool,
                    handle: Callable[[bytes], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        """Read an OTLP request's body within the limits, then answer with ``handle(body)``.

        The declared size is checked first, the in-flight byte budget is charged for the whole request
        (refused retryably when full), and the body must arrive within the read timeout (408 otherwise).
        """
        refused = self._refuse_declared_size(request, as_json)
        if refused is not None:
            return refused
        charged = request.content_length if request.content_length is not None else self.max_request_bytes
        ov = self.ingestor.charge(charged)
        if ov is not None:
            return _closing(self._overload(ov, as_json))
        try:
            try:
                body = await self._read_body(request, self.max_request_bytes)
            except web.HTTPRequestEntityTooLarge:
                return _closing(_status(413, code_pb2.RESOURCE_EXHAUSTED,
                                        f"request body exceeds the limit of {self.max_request_bytes} bytes", as_json))
            except BodyTimeout:
                return await _answer_and_close(request, _status(
                    408, code_pb2.DEADLINE_EXCEEDED, f"request body not received within {self.read_timeout:g}s",
                    as_json))
            return await handle(body)
        finally:
            self.ingestor.release(charged)

    async def _otlp_body(self, request: web.Request, body: bytes, as_json: bool) -> web.StreamResponse:
        turn = self.ingestor.order.turn()
        try:
            try:
                decoded = await self.ingestor.decode_body(
                    self.ingestor.decode_metrics(as_json), body, json=as_json,
                    encoding=request.headers.get("Content-Encoding", ""), limit=self.max_request_bytes)
            except TooLargeError as exc:
                return _status(413, code_pb2.RESOURCE_EXHAUSTED, str(exc), as_json)
            except DecodeError as exc:
                return _status(400, code_pb2.INVALID_ARGUMENT, str(exc), as_json)
            ov = self.ingestor.take(decoded.points)
            if ov is not None:
                return self._overload(ov, as_json)
            await turn.wait()
            try:
                res = self.ingestor.apply(decoded)
            except Exception as exc:  # never crash on input
                log.exception("internal error while ingesting an HTTP request")
                return _status(500, code_pb2.INTERNAL, f"internal error: {type(exc).__name__}", as_json)
        finally:
            turn.done()
        resp = ExportMetricsServiceResponse()
        if res.rejected_total:
            resp.partial_success.rejected_data_points = res.rejected_total
            resp.partial_success.error_message = res.message()
        return otlp_response(resp, as_json)

    async def otlp_logs(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/logs``: prediction and outcome records (:func:`._outcomes.http_logs`)."""
        return await http_logs(self, request)

    def _overload(self, ov: Overload, as_json: bool) -> web.Response:
        self.ingestor.refused += 1
        return _status(429 if ov.reason == RATE else 503, code_pb2.UNAVAILABLE, ov.message, as_json,
                       headers={"Retry-After": str(max(1, round(ov.retry_after)))})

    # --- health ---------------------------------------------------------------------------------
    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        ready = self.ready and not self.ingestor.draining
        return web.json_response({"status": "ready" if ready else "not ready", "references": len(self.store)},
                                 status=200 if ready else 503)

    async def get_status(self, request: web.Request) -> web.Response:
        denied = self._may_read(request)
        if denied is not None:
            return denied
        return web.json_response(self.status())

    # --- admin ----------------------------------------------------------------------------------
    async def list_refs(self, request: web.Request) -> web.Response:
        denied = self._may_read(request)
        if denied is not None:
            return denied
        return web.json_response({"references": self.store.list(), "errors": self.store.errors})

    async def get_ref(self, request: web.Request) -> web.Response:
        denied = self._may_read(request)
        if denied is not None:
            return denied
        c = self.store.get(request.match_info["model"], request.match_info["version"])
        if c is None:
            return _json_error(404, "no such reference")
        return web.json_response(c.reference.to_dict())

    async def upload(self, request: web.Request) -> web.Response:
        denied = self._may_change(request)
        if denied is not None:
            return denied
        if request.content_length is not None and request.content_length > self.max_reference_bytes:
            return _json_error(413, f"reference exceeds the limit of {self.max_reference_bytes} bytes")
        try:
            body = await self._read_body(request, self.max_reference_bytes)
        except web.HTTPRequestEntityTooLarge:
            return _json_error(413, f"reference exceeds the limit of {self.max_reference_bytes} bytes")
        except BodyTimeout:
            return await _answer_and_close(
                request, _json_error(408, f"request body not received within {self.read_timeout:g}s"))
        if len(body) > self.max_reference_bytes:
            return _json_error(413, f"reference exceeds the limit of {self.max_reference_bytes} bytes")
        try:
            ref = loads_reference(body, source="uploaded reference")
        except ReferenceProfileError as exc:
            return _json_error(400, str(exc))
        except Exception as exc:  # e.g. JSON nested too deeply: still the client's fault, never fatal
            return _json_error(400, f"uploaded reference: not a valid reference profile ({type(exc).__name__})")
        model = request.match_info.get("model")
        version = request.match_info.get("version")
        if model is not None and (model, version) != (ref.model_name, ref.model_version):
            return _json_error(409, f"the body is for {ref.model_name}@{ref.model_version}, "
                                    f"the path for {model}@{version}")
        existed = self.store.get(ref.model_name, ref.model_version) is not None
        try:
            where = self.store.put(ref)
        except ReferenceProfileError as exc:  # valid JSON that cannot be compiled: nothing was stored
            return _json_error(400, str(exc))
        except OSError as exc:
            return _json_error(500, f"cannot store the reference: {exc.strerror}")
        self.on_references_changed()
        log.info("reference %s@%s %s (%s)", ref.model_name, ref.model_version,
                 "replaced" if existed else "added", where)
        return web.json_response({"model": ref.model_name, "version": ref.model_version, "stored": where,
                                  "replaced": existed}, status=200 if existed else 201)

    async def delete_ref(self, request: web.Request) -> web.Response:
        denied = self._may_change(request)
        if denied is not None:
            return denied
        model, version = request.match_info["model"], request.match_info["version"]
        try:
            found = self.store.delete(model, version)
        except OSError as exc:
            return _json_error(500, f"cannot delete the reference: {exc.strerror}")
        if not found:
            return _json_error(404, "no such reference")
        self.on_references_changed()
        return web.json_response({"deleted": True, "model": model, "version": version})


def otlp_response(message: Message, as_json: bool) -> web.Response:
    """An OTLP export response in the request's encoding (OTLP/JSON or protobuf)."""
    if as_json:
        return web.Response(body=json_format.MessageToJson(message, indent=None).encode(), content_type=JSON)
    return web.Response(body=message.SerializeToString(), content_type=PROTOBUF)


def _closing(resp: web.Response) -> web.Response:
    """``resp``, with the connection closed after it (the rest of the body was not read)."""
    resp.force_close()
    return resp


async def _answer_and_close(request: web.Request, resp: web.Response) -> web.Response:
    """Send ``resp`` and close the connection now: the client stalled, so reading the rest of its body
    (aiohttp's lingering close) would only keep the connection longer."""
    resp.force_close()
    await resp.prepare(request)
    await resp.write_eof()
    if request.transport is not None:
        request.transport.close()
    return resp


def _json_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def _status(http: int, code: int, message: str, as_json: bool, headers: dict[str, str] | None = None) -> web.Response:
    st = status_pb2.Status(code=code, message=message)
    if as_json:
        body = json.dumps({"code": code, "message": message}).encode()
        return web.Response(status=http, body=body, content_type=JSON, headers=headers)
    return web.Response(status=http, body=st.SerializeToString(), content_type=PROTOBUF, headers=headers)
