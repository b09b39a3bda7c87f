"""Immutable, validated configuration of the export pipeline, from arguments and ``OTEL_*`` variables.

Arguments given to :func:`otel_ml.configure` win over the environment; the environment wins over the
defaults. Every invalid value raises :class:`ConfigurationError` naming the argument or variable, at
set-up time (never on a predict call).

==================================================  =============================================
Variable                                            Effect
==================================================  =============================================
``OTEL_SDK_DISABLED=true``                          monitoring off: decorated functions pass through
``OTEL_METRICS_EXPORTER``                           ``otlp`` (default), ``console``, ``none`` (spans only)
``OTEL_METRIC_EXPORT_INTERVAL``                     export period in ms (default 60000)
``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT``             OTLP endpoint (else ``OTEL_EXPORTER_OTLP_ENDPOINT``)
``OTEL_EXPORTER_OTLP_METRICS_PROTOCOL``             ``grpc`` or ``http/protobuf`` (else ..._PROTOCOL)
``OTEL_EXPORTER_OTLP_METRICS_HEADERS``              ``k=v,k2=v2`` (else ``OTEL_EXPORTER_OTLP_HEADERS``)
``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE``  ``cumulative`` (default), ``delta``, ``lowmemory``
``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``    the resource (unless the global SDK MeterProvider has one)
==================================================  =============================================
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._errors import ConfigurationError
from ._exporter import DEFAULT_TIMEOUT_S, PROTOCOL_GRPC, PROTOCOL_HTTP, parse_headers, resolve_protocol

if TYPE_CHECKING:  # the SDK is imported when first needed, not with otel_ml
    from opentelemetry.sdk.metrics.export import MetricExporter
    from opentelemetry.sdk.resources import Resource

DEFAULT_EXPORT_INTERVAL_S = 60.0
_MIN_INTERVAL_S = 0.01
_MAX_INTERVAL_S = 86400.0

EXPORTER_OTLP = "otlp"
EXPORTER_CONSOLE = "console"
EXPORTER_NONE = "none"
#: Valid for the OTel SDK but unusable for otel-ml's pre-aggregated points: metrics off, with a warning.
_SDK_ONLY_EXPORTERS = frozenset({"prometheus", "logging"})

TEMPORALITY_CUMULATIVE = "cumulative"
TEMPORALITY_DELTA = "delta"
_TEMPORALITIES = {"cumulative": TEMPORALITY_CUMULATIVE, "delta": TEMPORALITY_DELTA, "lowmemory": TEMPORALITY_DELTA}


@dataclass(frozen=True)
class Config:
    """Resolved settings of the export pipeline. Build with :func:`load_config`."""

    disabled: bool = False
    exporter_kind: str = EXPORTER_OTLP
    export_interval_s: float = DEFAULT_EXPORT_INTERVAL_S
    endpoint: str | None = None
    protocol: str = PROTOCOL_GRPC
    headers: tuple[tuple[str, str], ...] = ()
    timeout_s: float = DEFAULT_TIMEOUT_S
    temporality: str = TEMPORALITY_CUMULATIVE
    exporter: MetricExporter | None = None  # supplied by the user (tests, custom pipelines)
    resource: Resource | None = None  # None: resolved at first export (global MeterProvider or env)

    @property
    def metrics_enabled(self) -> bool:
        return not self.disabled and (self.exporter is not None or self.exporter_kind != EXPORTER_NONE)

    @property
    def delta(self) -> bool:
        return self.temporality == TEMPORALITY_DELTA


def _env(env: Mapping[str, str], *names: str) -> tuple[str | None, str | None]:
    """First non-empty variable among ``names``: (name, stripped value)."""
    for n in names:
        v = env.get(n)
        if v is not None and v.strip():
            return n, v.strip()
    return None, None


def _arg_or_env(value: Any, arg: str, env: Mapping[str, str], *names: str) -> tuple[str | None, Any]:
    """(where it came from, value): the argument ``arg`` when given, else the first set variable of ``names``."""
    if value is not None:
        return arg, value
    return _env(env, *names)


def load_config(
    *,
    exporter: MetricExporter | None = None,
    export_interval_s: float | None = None,
    endpoint: str | None = None,
    protocol: str | None = None,
    headers: Mapping[str, str] | str | None = None,
    timeout_s: float | None = None,
    temporality: str | None = None,
    resource: Resource | None = None,
    disabled: bool | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Validate arguments, fill the rest from ``env`` (default ``os.environ``), return a frozen Config."""
    env = os.environ if env is None else env

    if disabled is None:
        _, v = _env(env, "OTEL_SDK_DISABLED")
        disabled = (v or "").lower() == "true"

    _, kinds = _env(env, "OTEL_METRICS_EXPORTER")
    exporter_kind = EXPORTER_OTLP
    if kinds is not None:
        listed = {k.strip().lower() for k in kinds.split(",") if k.strip()}
        if EXPORTER_OTLP in listed:
            exporter_kind = EXPORTER_OTLP
        elif EXPORTER_CONSOLE in listed:
            exporter_kind = EXPORTER_CONSOLE
        elif listed <= {EXPORTER_NONE, *_SDK_ONLY_EXPORTERS}:
            exporter_kind = EXPORTER_NONE
            if listed - {EXPORTER_NONE}:
                from ._log import log_once

                log_once("config:metrics-exporter", "otel-ml: OTEL_METRICS_EXPORTER=%s has no exporter otel-ml "
                         "can use for pre-aggregated histograms ('otlp' or 'console'); its metrics are off, "
                         "spans stay on", kinds)
        else:
            raise ConfigurationError(
                f"OTEL_METRICS_EXPORTER={kinds!r}: otel-ml exports with 'otlp', 'console' or 'none'"
            )

    if export_interval_s is None:
        name, v = _env(env, "OTEL_METRIC_EXPORT_INTERVAL")
        if v is None:
            export_interval_s = DEFAULT_EXPORT_INTERVAL_S
        else:
            try:
                export_interval_s = float(v) / 1000.0
            except ValueError:
                raise ConfigurationError(f"{name}={v!r} is not a number of milliseconds") from None
            _check_interval(export_interval_s, f"{name}={v!r}")
    else:
        _check_interval(export_interval_s, f"export_interval_s={export_interval_s!r}")

    if endpoint is None:
        _, endpoint = _env(env, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
        generic = endpoint is not None and env.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "").strip() == ""
    else:
        generic = False
    pname, protocol = _arg_or_env(protocol, "protocol", env, "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
                                  "OTEL_EXPORTER_OTLP_PROTOCOL")
    try:
        resolved_protocol = resolve_protocol(endpoint, protocol)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{pname or 'endpoint'}: {exc}") from None
    if generic and endpoint is not None and resolved_protocol == PROTOCOL_HTTP:
        # OTEL_EXPORTER_OTLP_ENDPOINT is a base URL: the signal path is appended (OTel spec).
        endpoint = endpoint.rstrip("/") + "/v1/metrics"

    hname, headers = _arg_or_env(headers, "headers", env, "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
                                 "OTEL_EXPORTER_OTLP_HEADERS")
    try:
        parsed_headers = parse_headers(headers) or {}
    except ConfigurationError as exc:
        raise ConfigurationError(f"{hname}: {exc}") from None

    if timeout_s is None:
        timeout_s = DEFAULT_TIMEOUT_S
    if not isinstance(timeout_s, (int, float)) or not 0 < timeout_s <= 600:
        raise ConfigurationError(f"timeout_s must be in (0, 600] seconds, got {timeout_s!r}")

    tname, temporality = _arg_or_env(temporality, "temporality", env,
                                     "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE")
    resolved_temporality = TEMPORALITY_CUMULATIVE
    if temporality is not None:
        t = _TEMPORALITIES.get(temporality.strip().lower())
        if t is None:
            raise ConfigurationError(
                f"{tname}={temporality!r}: expected 'cumulative', 'delta' or 'lowmemory'"
            )
        resolved_temporality = t

    if exporter is not None:
        from opentelemetry.sdk.metrics.export import MetricExporter

        if not isinstance(exporter, MetricExporter):
            raise ConfigurationError(
                f"exporter must be an opentelemetry.sdk.metrics.export.MetricExporter, got {type(exporter).__name__}"
            )
    if resource is not None and not _is_resource(resource):
        raise ConfigurationError(f"resource must be an opentelemetry.sdk.resources.Resource, got {type(resource).__name__}")

    return Config(
        disabled=bool(disabled),
        exporter_kind=exporter_kind,
        export_interval_s=float(export_interval_s),
        endpoint=endpoint,
        protocol=resolved_protocol,
        headers=tuple(sorted(parsed_headers.items())),
        timeout_s=float(timeout_s),
        temporality=resolved_temporality,
        exporter=exporter,
        resource=resource,
    )


def _is_resource(resource: Any) -> bool:
    from opentelemetry.sdk.resources import Resource

    return isinstance(resource, Resource)


def _check_interval(seconds: Any, what: str) -> None:
    if not isinstance(seconds, (int, float)) or not _MIN_INTERVAL_S <= seconds <= _MAX_INTERVAL_S:
        raise ConfigurationError(f"{what}: the export interval must be between 10 ms and 1 day")


def global_sdk_resource() -> Resource | None:
    """The resource of the global MeterProvider when the user installed an SDK one, else None."""
    sdk_metrics = sys.modules.get("opentelemetry.sdk.metrics")
    if sdk_metrics is None:  # never imported: no SDK MeterProvider can exist (and importing it is slow)
        return None
    try:
        from opentelemetry import metrics as _metrics

        mp = _metrics.get_meter_provider()
        if isinstance(mp, sdk_metrics.MeterProvider):
            return mp._sdk_config.resource  # the SDK keeps it there; no public accessor
    except Exception:
        pass
    return None


def with_instance_id(resource: Resource) -> Resource:
    """``resource`` plus a fresh ``service.instance.id`` when it has none.

    Pre-fork workers exporting cumulative counts must form distinct streams, so the id is per process
    (a fork child draws a new one).
    """
    if "service.instance.id" in resource.attributes:
        return resource
    import uuid

    from opentelemetry.sdk.resources import Resource

    return resource.merge(Resource({"service.instance.id": str(uuid.uuid4())}))


def resolve_resource(config: Config, *, use_global: bool = True) -> Resource:
    """The resource to export with: the configured one, the global SDK MeterProvider's, or Resource.create()."""
    resource = config.resource
    if resource is None and use_global:
        resource = global_sdk_resource()
    if resource is None:
        from opentelemetry.sdk.resources import Resource

        resource = Resource.create()
    return with_instance_id(resource)
