"""OTLP export of pre-aggregated metrics: exporter construction, MetricsData building, the export thread.

Two reusable helpers (the processor imports them too):

* :func:`create_metric_exporter` builds an OTLP metric exporter for an endpoint, choosing OTLP/HTTP or
  OTLP/gRPC the way the OpenTelemetry exporters do (port 4318, a ``/v1/metrics`` path or
  ``protocol="http/protobuf"`` mean HTTP; everything else gRPC).
* :func:`build_metrics_data` wraps a list of :class:`~opentelemetry.sdk.metrics.export.Metric` into the
  :class:`~opentelemetry.sdk.metrics.export.MetricsData` an exporter's ``export()`` takes.

The rest of the module is the library's own periodic exporter (:class:`ExportPipeline`): a daemon thread
that, every ``OTEL_METRIC_EXPORT_INTERVAL``, turns the in-memory counts of every monitored model into OTLP
histogram and sum data points and exports them. Predict calls never wait for it.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.metrics.export import Metric as Metric  # re-exported for the processor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from . import semconv
from ._errors import ConfigurationError

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


def _parse_headers(headers: Mapping[str, str] | str | None) -> dict[str, str] | None:
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
        from urllib.parse import unquote

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

    ``endpoint`` may be ``host:port``, ``http://host:port`` or, for HTTP, a full ``.../v1/metrics`` URL
    (the path is added when missing). With ``endpoint=None`` the exporter reads the standard
    ``OTEL_EXPORTER_OTLP_(METRICS_)ENDPOINT`` variables itself. ``headers`` is a mapping or the
    ``k1=v1,k2=v2`` form of ``OTEL_EXPORTER_OTLP_HEADERS``. Raises :class:`ConfigurationError` for a bad
    protocol, port or header.
    """
    if timeout_s <= 0:
        raise ConfigurationError(f"timeout_s must be positive, got {timeout_s}")
    proto = resolve_protocol(endpoint, protocol)
    hdrs = _parse_headers(headers)
    if proto == PROTOCOL_HTTP:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HTTPExporter

        url = endpoint
        if url is not None:
            if "://" not in url:
                url = f"{'http' if insecure is not False else 'https'}://{url}"
            if not urlparse(url).path.rstrip("/").endswith(_HTTP_METRICS_PATH):
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


def build_metrics_data(
    resource: Resource,
    scope: InstrumentationScope | str,
    metrics: Sequence[Metric],
    *,
    scope_version: str | None = None,
    schema_url: str = "",
) -> MetricsData:
    """One ResourceMetrics holding one ScopeMetrics with ``metrics``: what ``MetricExporter.export`` takes."""
    if isinstance(scope, str):
        scope = InstrumentationScope(scope, scope_version)
    return MetricsData(
        resource_metrics=[
            ResourceMetrics(
                resource=resource,
                scope_metrics=[ScopeMetrics(scope=scope, metrics=list(metrics), schema_url=schema_url)],
                schema_url=schema_url,
            )
        ]
    )
