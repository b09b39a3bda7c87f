"""Where prediction and outcome records go, and how they get there: OTLP logs over gRPC or HTTP/protobuf.

The endpoint is resolved as the OTel exporters resolve a signal's endpoint, with the helpers the
metrics exporter uses (:mod:`otel_ml._exporter`, :mod:`otel_ml._config`): the ``endpoint=`` given to
:func:`otel_ml.configure` (a ``/v1/metrics`` path becomes ``/v1/logs``), else
``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`` (used as is), else ``OTEL_EXPORTER_OTLP_ENDPOINT`` (plus ``/v1/logs``
for HTTP), else the default local collector. Likewise ``..._LOGS_PROTOCOL``/``_HEADERS``/``_COMPRESSION``/
``_INSECURE`` before the generic variables; the timeout is the metrics pipeline's. ``OTEL_LOGS_EXPORTER=none``
switches records off.

:class:`LogsSender` sends serialized ``ExportLogsServiceRequest``s (gRPC ``LogsService/Export`` or
``POST /v1/logs``) with a bounded retry on the errors the
OTLP spec calls retryable (gRPC UNAVAILABLE & co., HTTP 429/502/503/504, connection errors), honouring the
server's delay hint, and says how many records were rejected.
"""

from __future__ import annotations

import gzip
import os
import random
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from ._config import Config, _env
from ._errors import ConfigurationError
from ._exporter import PROTOCOL_HTTP, parse_headers, resolve_protocol

HTTP_LOGS_PATH = "/v1/logs"
_GRPC_EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
_DEFAULT_GRPC = "localhost:4317"
_DEFAULT_HTTP = "http://localhost:4318" + HTTP_LOGS_PATH
MAX_ATTEMPTS = 4
_BACKOFF_S = 0.25
_MAX_DELAY_S = 5.0
_RETRYABLE_HTTP = frozenset({429, 502, 503, 504})
_RETRYABLE_GRPC = frozenset({"CANCELLED", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED", "OUT_OF_RANGE",
                             "UNAVAILABLE", "DATA_LOSS"})


@dataclass(frozen=True)
class LogsTarget:
    """Resolved destination of the records. ``endpoint``: a URL for HTTP, ``host:port`` for gRPC."""

    enabled: bool
    endpoint: str
    protocol: str
    headers: tuple[tuple[str, str], ...] = ()
    timeout_s: float = 10.0
    gzip: bool = False
    insecure: bool = True


def logs_target(config: Config, *, endpoint: str | None = None, protocol: str | None = None,
                headers: Mapping[str, str] | str | None = None, env: Mapping[str, str] | None = None) -> LogsTarget:
    """The records' destination from ``configure()``'s arguments, the ``OTEL_*`` variables and ``config``."""
    env = os.environ if env is None else env
    _, kinds = _env(env, "OTEL_LOGS_EXPORTER")
    enabled = not config.disabled and (kinds is None or "otlp" in {k.strip().lower() for k in kinds.split(",")})

    generic = False
    if endpoint is None:
        _, endpoint = _env(env, "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")
        if endpoint is None:
            _, endpoint = _env(env, "OTEL_EXPORTER_OTLP_ENDPOINT")
            generic = endpoint is not None
        explicit = False
    else:
        explicit = True
    pname, protocol = (("protocol", protocol) if protocol is not None else
                       _env(env, "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"))
    path = urlparse(endpoint if endpoint and "://" in endpoint else f"//{endpoint or ''}").path.rstrip("/")
    try:
        proto = PROTOCOL_HTTP if (protocol is None and path.endswith(HTTP_LOGS_PATH)) else resolve_protocol(endpoint, protocol)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{pname or 'endpoint'}: {exc}") from None

    if endpoint is None:
        endpoint = _DEFAULT_HTTP if proto == PROTOCOL_HTTP else _DEFAULT_GRPC
    elif proto == PROTOCOL_HTTP:
        if "://" not in endpoint:
            endpoint = "http://" + endpoint
        if generic or not path:
            endpoint = endpoint.rstrip("/") + HTTP_LOGS_PATH
        elif explicit and path.endswith("/v1/metrics"):
            endpoint = endpoint.rstrip("/")[: -len("/v1/metrics")] + HTTP_LOGS_PATH

    hname, headers = (("headers", headers) if headers is not None else
                      _env(env, "OTEL_EXPORTER_OTLP_LOGS_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"))
    try:
        parsed = parse_headers(headers) or {}
    except ConfigurationError as exc:
        raise ConfigurationError(f"{hname}: {exc}") from None

    cname, compression = _env(env, "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION")
    if compression is not None and compression.lower() not in ("gzip", "none"):
        raise ConfigurationError(f"{cname}={compression!r}: expected 'gzip' or 'none'")
    _, insecure_env = _env(env, "OTEL_EXPORTER_OTLP_LOGS_INSECURE", "OTEL_EXPORTER_OTLP_INSECURE")
    if endpoint.startswith("https://"):
        insecure = False
    elif endpoint.startswith("http://") or (insecure_env or "").lower() == "true":
        insecure = True
    else:
        host = endpoint.rsplit(":", 1)[0].strip("[]")
        insecure = host in ("localhost", "127.0.0.1", "::1")
    return LogsTarget(enabled=enabled, endpoint=endpoint, protocol=proto, headers=tuple(sorted(parsed.items())),
                      timeout_s=config.timeout_s, gzip=(compression or "").lower() == "gzip", insecure=insecure)


@dataclass(frozen=True)
class SendResult:
    """Outcome of one request: ``ok`` (accepted, maybe partly), ``rejected`` records, ``error`` when not ok."""

    ok: bool
    rejected: int = 0
    error: str | None = None


class LogsSender:
    """Sends serialized ``ExportLogsServiceRequest``s to one :class:`LogsTarget` (one thread uses it)."""

    def __init__(self, target: LogsTarget) -> None:
        self.target = target
        self._stub: Any = None
        self._channel: Any = None

    def send(self, body: bytes, deadline: float | None = None) -> SendResult:
        """Send a serialized ``ExportLogsServiceRequest`` with at most :data:`MAX_ATTEMPTS` tries on retryable errors, never past ``deadline`` (monotonic)."""
        t = self.target
        deadline = time.monotonic() + t.timeout_s * MAX_ATTEMPTS if deadline is None else deadline
        attempt = 0
        while True:
            attempt += 1
            timeout = max(0.05, min(t.timeout_s, deadline - time.monotonic()))
            if t.protocol == PROTOCOL_HTTP:
                result, retry, delay = self._post(body, timeout)
            else:
                result, retry, delay = self._grpc(body, timeout)
            if result.ok or not retry or attempt >= MAX_ATTEMPTS:
                return result
            if delay is None:
                delay = _BACKOFF_S * (2 ** (attempt - 1)) * (0.5 + random.random())
            delay = min(delay, _MAX_DELAY_S)
            if time.monotonic() + delay >= deadline:
                return result
            time.sleep(delay)

    # --- HTTP/protobuf ----------------------------------------------------------------------------
    def _post(self, body: bytes, timeout: float) -> tuple[SendResult, bool, float | None]:
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
            ExportLogsServiceResponse,
        )

        t = self.target
        headers = {"Content-Type": "application/x-protobuf", **dict(t.headers)}
        if t.gzip:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        req = urllib.request.Request(t.endpoint, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                payload = resp.read()
        except urllib.error.HTTPError as exc:
            delay = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            return SendResult(False, error=f"http_{exc.code}"), exc.code in _RETRYABLE_HTTP, delay
        except (urllib.error.URLError, OSError) as exc:
            return SendResult(False, error=type(getattr(exc, "reason", exc)).__name__), True, None
        rejected = 0
        if payload:
            try:
                rejected = ExportLogsServiceResponse.FromString(payload).partial_success.rejected_log_records
            except Exception:
                pass
        return SendResult(True, rejected=rejected), False, None

    # --- gRPC ---------------------------------------------------------------------------------------
    def _grpc(self, body: bytes, timeout: float) -> tuple[SendResult, bool, float | None]:
        import grpc

        if self._stub is None:
            t = self.target
            addr = t.endpoint.split("://", 1)[-1].rstrip("/")
            if t.insecure:
                self._channel = grpc.insecure_channel(addr)
            else:
                self._channel = grpc.secure_channel(addr, grpc.ssl_channel_credentials())
            from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
                ExportLogsServiceResponse,
            )

            # LogsService/Export, as the generated LogsServiceStub declares it, but taking the request
            # already serialized (the records are encoded as bytes, see otel_ml._otlp_logs).
            self._stub = self._channel.unary_unary(
                _GRPC_EXPORT, request_serializer=None, response_deserializer=ExportLogsServiceResponse.FromString)
        t = self.target
        try:
            response = self._stub(body, timeout=timeout, metadata=list(t.headers) or None,
                                  compression=grpc.Compression.Gzip if t.gzip else None)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            name = code.name if code is not None else "UNKNOWN"
            return SendResult(False, error=f"grpc_{name.lower()}"), name in _RETRYABLE_GRPC, _grpc_delay(exc)
        return SendResult(True, rejected=response.partial_success.rejected_log_records), False, None

    def close(self) -> None:
        if self._channel is not None:
            try:
                self._channel.close()
            except Exception:
                pass
        self._channel = self._stub = None


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _grpc_delay(exc: Any) -> float | None:
    """The server's RetryInfo delay, when it sent one."""
    try:
        for key, value in exc.trailing_metadata() or ():
            if key == "grpc-status-details-bin":
                from google.rpc import error_details_pb2, status_pb2

                status = status_pb2.Status.FromString(value)
                for detail in status.details:
                    if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                        info = error_details_pb2.RetryInfo()
                        detail.Unpack(info)
                        return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    except Exception:
        pass
    return None
