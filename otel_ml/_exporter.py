"""OTLP metric exporters built from an endpoint, the way the OpenTelemetry exporters read one.

:func:`create_metric_exporter` chooses OTLP/HTTP or OTLP/gRPC (:func:`resolve_protocol`: port 4318,
a ``/v1/metrics`` path or ``protocol="http/protobuf"`` mean HTTP; everything else gRPC). Used by the
library's export loop (:mod:`otel_ml._export`) and by configuration (:mod:`otel_ml._config`) to
validate ``OTEL_EXPORTER_OTLP_*`` at set-up time. The exporter packages are imported only when an
exporter is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from ._errors import ConfigurationError

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import AggregationTemporality, MetricExporter

PROTOCOL_GRPC = "grpc"
PROTOCOL_HTTP = "http/protobuf"
_HTTP_METRICS_PATH = "/v1/metrics"
DEFAULT_TIMEOUT_S = 10.0


def resolve_protocol(endpoint: str | None, protocol: str | None = None) -> str:
    """``"http/protobuf"`` or ``"grpc"`` for an endpoint, as the OTel exporters decide.

    An explicit ``protocol`` wins; otherwise an endpoint whose port is 4318 or whose path ends in
    ``/v1/metrics`` is OTLP/HTTP, and anything else OTLP/gRPC.
    """
    if protocol:
        p = protocol.strip().lower()
        if p in ("http/protobuf", "http"):
            return PROTOCOL_HTTP
        if p == "grpc":
            return PROTOCOL_GRPC
        raise ConfigurationError(f"OTLP protocol {protocol!r} is not supported (use 'grpc' or 'http/protobuf')")
    if endpoint:
        parsed = urlparse(endpoint if "://" in endpoint else f"//{endpoint}")
        try:
            port = parsed.port
        except ValueError:
            raise ConfigurationError(f"OTLP endpoint {endpoint!r} has an invalid port") from None
        if port == 4318 or parsed.path.rstrip("/").endswith(_HTTP_METRICS_PATH):
            return PROTOCOL_HTTP
    return PROTOCOL_GRPC


def parse_headers(headers: Mapping[str, str] | str | None) -> dict[str, str] | None:
    """Headers as a lower-cased dict, from a mapping or the ``k1=v1,k2=v2`` form of ``OTEL_EXPORTER_OTLP_HEADERS``."""
    if headers is None:
        return None
    if isinstance(headers, Mapping):
        return {str(k).strip().lower(): str(v).strip() for k, v in headers.items()}
    out: dict[str, str] = {}
    for item in str(headers).split(","):
        if not item.strip():
            continue
        if "=" not in item:
            raise ConfigurationError(f"OTLP header {item.strip()!r} is not of the form key=value")
        k, v = item.split("=", 1)
        out[unquote(k).strip().lower()] = unquote(v).strip()
    return out


def create_metric_exporter(
    endpoint: str | None = None,
    *,
    protocol: str | None = None,
    headers: Mapping[str, str] | str | None = None,
    insecure: bool | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    preferred_temporality: dict[type, AggregationTemporality] | None = None,
    max_export_batch_size: int | None = 2000,
) -> MetricExporter:
    """An OTLP metric exporter for ``endpoint`` (OTLP/HTTP or OTLP/gRPC, see :func:`resolve_protocol`).

    ``endpoint`` may be ``host:port``, ``http://host:port`` or, for HTTP, a full URL such as
    ``https://host/otlp/v1/metrics`` (kept as is; ``/v1/metrics`` is added only to a URL without a path). With ``endpoint=None`` the exporter reads the standard
    ``OTEL_EXPORTER_OTLP_(METRICS_)ENDPOINT`` variables itself. ``headers`` is a mapping or the
    ``k1=v1,k2=v2`` form of ``OTEL_EXPORTER_OTLP_HEADERS``. Raises :class:`ConfigurationError` for a bad
    protocol, port or header.
    """
    if timeout_s <= 0:
        raise ConfigurationError(f"timeout_s must be positive, got {timeout_s}")
    proto = resolve_protocol(endpoint, protocol)
    hdrs = parse_headers(headers)
    if proto == PROTOCOL_HTTP:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HTTPExporter

        url = endpoint
        if url is not None:
            if "://" not in url:
                url = f"{'http' if insecure is not False else 'https'}://{url}"
            if not urlparse(url).path.strip("/"):  # a bare host:port gets the signal path; a full URL is kept
                url = url.rstrip("/") + _HTTP_METRICS_PATH
        return HTTPExporter(
            endpoint=url,
            headers=hdrs,
            timeout=timeout_s,
            preferred_temporality=preferred_temporality,
            max_export_batch_size=max_export_batch_size,
        )
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GRPCExporter

    if insecure is None and endpoint is not None and "://" not in endpoint:
        host = endpoint.rsplit(":", 1)[0].strip("[]")
        insecure = host in ("localhost", "127.0.0.1", "::1")
    return GRPCExporter(
        endpoint=endpoint,
        insecure=insecure,
        headers=hdrs,
        timeout=timeout_s,
        preferred_temporality=preferred_temporality,
        max_export_batch_size=max_export_batch_size,
    )
