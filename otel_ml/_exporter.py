"""OTLP metric exporters built from resolved settings, the way the OpenTelemetry exporters read them.

:func:`create_metric_exporter` builds an OTLP/HTTP or OTLP/gRPC exporter for an explicit protocol
(chosen by :mod:`otel_ml._config` as the specification says, never from the endpoint's port) and passes
every setting explicitly, so the exporter reads no ``OTEL_*`` variable of its own. :func:`quiet_sdk_logs`
keeps the exporters' per-retry log records of *our* exports off the application's logs (the export
loop writes one rate-limited line instead); the application's own exporters log as before. The exporter
packages are imported by :func:`import_exporter`, which the export loop calls at set-up time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from ._errors import ConfigurationError

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import AggregationTemporality, MetricExporter

PROTOCOL_GRPC = "grpc"
PROTOCOL_HTTP = "http/protobuf"
#: The specification's default transport (the Python SDK's own ``otlp`` exporter defaults to gRPC).
DEFAULT_PROTOCOL = PROTOCOL_HTTP
HTTP_METRICS_PATH = "/v1/metrics"
DEFAULT_ENDPOINTS = {PROTOCOL_HTTP: "http://localhost:4318" + HTTP_METRICS_PATH, PROTOCOL_GRPC: "http://localhost:4317"}
DEFAULT_TIMEOUT_S = 10.0
COMPRESSIONS = ("none", "gzip")

#: Loggers the OTLP exporters write their per-attempt warnings and errors to.
_SDK_EXPORT_LOGGERS = frozenset({
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http._common",
    "opentelemetry.exporter.otlp.common.http",
})
#: Loggers of the exporters' second opinion on variables :mod:`otel_ml._config` already warned about
#: (headers, temporality); the header parser's shows the values.
SDK_VARIABLE_LOGGERS = frozenset({"opentelemetry.exporter.otlp.common._aggregation", "opentelemetry.util.re"})


def parse_protocol(value: str) -> str | None:
    """``"grpc"`` or ``"http/protobuf"`` for a protocol name, None for an unknown one."""
    p = value.strip().lower()
    if p in ("http/protobuf", "http"):
        return PROTOCOL_HTTP
    if p == "grpc":
        return PROTOCOL_GRPC
    return None


def parse_headers(headers: Mapping[str, str] | str | None, *, strict: bool = True) -> tuple[dict[str, str], int]:
    """(headers as a lower-cased dict, number of malformed items) from a mapping or ``k1=v1,k2=v2``.

    ``strict`` raises :class:`ConfigurationError` on a malformed item (an argument); otherwise the item is
    skipped and counted (a variable, as the SDK does). The message never shows values: headers carry
    credentials.
    """
    if headers is None:
        return {}, 0
    if isinstance(headers, Mapping):
        return {str(k).strip().lower(): str(v).strip() for k, v in headers.items()}, 0
    out: dict[str, str] = {}
    bad = 0
    for item in str(headers).split(","):
        if not item.strip():
            continue
        k, sep, v = item.partition("=")
        if not sep or not unquote(k).strip():
            if strict:
                raise ConfigurationError("an OTLP header is not of the form key=value (value not shown)")
            bad += 1
            continue
        out[unquote(k).strip().lower()] = unquote(v).strip()
    return out, bad


def import_exporter(protocol: str) -> type[MetricExporter]:
    """Import and return the OTLP metric exporter class for ``protocol`` (slow: 30-150 ms cold)."""
    if protocol == PROTOCOL_HTTP:
        import netrc  # noqa: F401  (requests imports it at its first request: here instead)

        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
            OTLPMetricExporter as HTTPExporter,
        )

        return HTTPExporter
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
        OTLPMetricExporter as GRPCExporter,
    )

    return GRPCExporter


def create_metric_exporter(
    endpoint: str | None = None,
    *,
    protocol: str = DEFAULT_PROTOCOL,
    headers: Mapping[str, str] | None = None,
    insecure: bool | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    compression: str = "none",
    preferred_temporality: dict[type, AggregationTemporality] | None = None,
    max_export_batch_size: int | None = 2000,
) -> MetricExporter:
    """An OTLP metric exporter for ``protocol`` sending to ``endpoint`` (the protocol's default when None).

    For OTLP/HTTP ``endpoint`` is the full URL of the metrics endpoint, used as is (``http://`` is added
    to a bare ``host:port``); for OTLP/gRPC it is ``host:port`` or a URL whose scheme says whether TLS
    is used (a bare loopback ``host:port`` is plaintext). Raises :class:`ConfigurationError` for an
    unknown protocol or compression.
    """
    proto = parse_protocol(protocol)
    if proto is None:
        raise ConfigurationError(f"OTLP protocol {protocol!r} is not supported (use 'grpc' or 'http/protobuf')")
    if timeout_s <= 0:
        raise ConfigurationError(f"timeout_s must be positive, got {timeout_s}")
    if compression not in COMPRESSIONS:
        raise ConfigurationError(f"compression {compression!r} is not supported (use 'gzip' or 'none')")
    url = endpoint or DEFAULT_ENDPOINTS[proto]
    cls: Any = import_exporter(proto)
    gzip = compression == "gzip"
    common = {"headers": dict(headers or {}), "timeout": timeout_s, "preferred_temporality": preferred_temporality,
              "max_export_batch_size": max_export_batch_size}
    if proto == PROTOCOL_HTTP:
        from opentelemetry.exporter.otlp.proto.http import (
            Compression as HTTPCompression,
        )

        if "://" not in url:
            url = f"{'http' if insecure is not False else 'https'}://{url}"
        return cls(endpoint=url, compression=HTTPCompression.Gzip if gzip else HTTPCompression.NoCompression,
                   **common)
    from grpc import Compression as GRPCCompression

    if insecure is None and "://" not in url:
        insecure = is_loopback_target(url)
    return cls(endpoint=url, insecure=insecure,
               compression=GRPCCompression.Gzip if gzip else GRPCCompression.NoCompression, **common)


def is_loopback_target(target: str) -> bool:
    """Whether a bare gRPC ``host:port`` names this machine (plaintext by default, as the SDK does)."""
    return target.rsplit(":", 1)[0].strip("[]") in ("localhost", "127.0.0.1", "::1")


# --- the SDK exporters' own log records, for our exports only ------------------------------------------

_quiet = threading.local()


class _OwnExportFilter(logging.Filter):
    """Drops records of the loggers silenced on this thread (see :func:`quiet_sdk_logs`); keeps the first
    one's text (the cause: the exporters' later records say only that the retries are over)."""

    def filter(self, record: logging.LogRecord) -> bool:
        names = getattr(_quiet, "names", None)
        if not names or record.name not in names:
            return True
        if record.levelno >= logging.WARNING and not getattr(_quiet, "first", None):
            try:
                _quiet.first = record.getMessage()
            except Exception:
                pass
        return False


_FILTER = _OwnExportFilter()


def install_log_filter() -> None:
    """Attach the filter to the exporters' loggers (idempotent)."""
    for name in _SDK_EXPORT_LOGGERS | SDK_VARIABLE_LOGGERS:
        lg = logging.getLogger(name)
        if _FILTER not in lg.filters:
            lg.addFilter(_FILTER)


@contextmanager
def quiet_sdk_logs(names: frozenset[str] = _SDK_EXPORT_LOGGERS | SDK_VARIABLE_LOGGERS) -> Iterator[list[str]]:
    """While the body runs on this thread, records of the loggers ``names`` are dropped (other threads,
    the application's own exporters, log as before); yields a list that receives the first dropped message."""
    install_log_filter()
    out: list[str] = []
    _quiet.names = names
    _quiet.first = None
    try:
        yield out
    finally:
        _quiet.names = None
        if _quiet.first:
            out.append(_quiet.first)
