"""Where prediction and outcome records go, and how they get there: OTLP logs over gRPC or HTTP/protobuf.

The destination is resolved as the metrics' is, by the same resolver
(:func:`otel_ml._config.resolve_destination`), per the specification: the protocol from ``protocol=``,
``OTEL_EXPORTER_OTLP_LOGS_PROTOCOL``, ``OTEL_EXPORTER_OTLP_PROTOCOL``, else ``http/protobuf``; the endpoint
from the ``endpoint=`` given to :func:`otel_ml.configure` (a ``/v1/metrics`` path becomes ``/v1/logs``),
else ``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`` (used as is), else ``OTEL_EXPORTER_OTLP_ENDPOINT`` (plus
``/v1/logs`` for HTTP), else the local collector. Likewise ``..._LOGS_HEADERS``/``_TIMEOUT``/``_COMPRESSION``/
``_INSECURE`` before the generic variables (the timeout otherwise the metrics'). ``OTEL_LOGS_EXPORTER=none``
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

from ._config import EXPORTER_OTLP, Config, _from_env, _parse_disabled, resolve_destination
from ._exporter import DEFAULT_TIMEOUT_S, PROTOCOL_HTTP, is_loopback_target

_GRPC_EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
MAX_ATTEMPTS = 4
_BACKOFF_S = 0.25
_MAX_DELAY_S = 5.0
_RETRYABLE_HTTP = frozenset({429, 502, 503, 504})
_RETRYABLE_GRPC = frozenset({"CANCELLED", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED", "OUT_OF_RANGE",
                             "UNAVAILABLE", "DATA_LOSS"})


@dataclass(frozen=True)
class LogsTarget:
    """Resolved destination of the records. ``endpoint``: the full URL for HTTP, the target for gRPC."""

    enabled: bool
    endpoint: str
    protocol: str
    headers: tuple[tuple[str, str], ...] = ()
    timeout_s: float = DEFAULT_TIMEOUT_S
    gzip: bool = False
    insecure: bool = True


def logs_target(config: Config, *, endpoint: str | None = None, protocol: str | None = None,
                headers: Mapping[str, str] | str | None = None, env: Mapping[str, str] | None = None) -> LogsTarget:
    """The records' destination from ``configure()``'s arguments, the ``OTEL_*`` variables and ``config``.

    As for metrics (:func:`otel_ml._config.load_config`): a bad argument raises
    :class:`ConfigurationError`; a bad variable warns once and is ignored.
    """
    env = os.environ if env is None else env
    kinds = {k.strip().lower() for k in (env.get("OTEL_LOGS_EXPORTER") or "").split(",") if k.strip()}
    enabled = not config.disabled and (not kinds or EXPORTER_OTLP in kinds)

    dest = resolve_destination("logs", env, endpoint=endpoint, protocol=protocol, headers=headers,
                               inherited_timeout_s=config.timeout_s)
    url = dest.endpoint
    _, insecure_env = _from_env(env, ("OTEL_EXPORTER_OTLP_LOGS_INSECURE", "OTEL_EXPORTER_OTLP_INSECURE"),
                                _parse_disabled, "false")
    if url.startswith("https://"):
        insecure = False
    elif url.startswith("http://") or insecure_env:
        insecure = True
    else:
        insecure = is_loopback_target(url)
    return LogsTarget(enabled=enabled, endpoint=url, protocol=dest.protocol, headers=dest.headers,
                      timeout_s=dest.timeout_s, gzip=dest.compression == "gzip", insecure=insecure)


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
        """Send a serialized ``ExportLogsServiceRequest``: at most :data:`MAX_ATTEMPTS` tries on retryable
        errors, never past ``deadline`` (monotonic)."""
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
