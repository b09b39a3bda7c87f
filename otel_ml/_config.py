"""Immutable, validated configuration of the export pipeline, from arguments and ``OTEL_*`` variables.

Arguments given to :func:`otel_ml.configure` win over the environment; the environment wins over the
defaults. A bad argument raises :class:`ConfigurationError` naming it, at set-up time. A bad variable
does what the OpenTelemetry SDK does: one warning naming the variable and its value (header values are
never shown), and the variable is ignored, so the next one in precedence, or the default, applies.

======================================================  ================================================
Variable                                                Effect
======================================================  ================================================
``OTEL_SDK_DISABLED=true``                              monitoring off: decorated functions pass through
``OTEL_METRICS_EXPORTER``                               ``otlp`` (default), ``console``, ``none`` (spans only)
``OTEL_METRIC_EXPORT_INTERVAL``                         export period in ms (default 60000)
``OTEL_EXPORTER_OTLP_METRICS_PROTOCOL``                 ``http/protobuf`` (default) or ``grpc`` (else ..._PROTOCOL)
``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT``                 the metrics URL, used as is
``OTEL_EXPORTER_OTLP_ENDPOINT``                         base URL: HTTP appends ``/v1/metrics``
``OTEL_EXPORTER_OTLP_METRICS_HEADERS``                  ``k=v,k2=v2`` (else ``OTEL_EXPORTER_OTLP_HEADERS``)
``OTEL_EXPORTER_OTLP_METRICS_TIMEOUT``                  export timeout in ms (else ..._TIMEOUT; default 10000)
``OTEL_EXPORTER_OTLP_METRICS_COMPRESSION``              ``gzip`` or ``none`` (else ..._COMPRESSION)
``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE``   ``cumulative`` (default), ``delta``, ``lowmemory``
``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``     the resource, when no SDK provider has one
======================================================  ================================================

The protocol is chosen as the specification says (signal variable, generic variable, default), never
from the endpoint's port; the default is the specification's ``http/protobuf`` (to ``localhost:4318``).
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlparse

from ._errors import ConfigurationError
from ._exporter import (
    COMPRESSIONS,
    DEFAULT_ENDPOINTS,
    DEFAULT_PROTOCOL,
    DEFAULT_TIMEOUT_S,
    HTTP_METRICS_PATH,
    PROTOCOL_GRPC,
    PROTOCOL_HTTP,
    parse_headers,
    parse_protocol,
)

if TYPE_CHECKING:  # the SDK is imported when first needed, not with otel_ml
    from opentelemetry.sdk.metrics.export import MetricExporter
    from opentelemetry.sdk.resources import Resource

__all__ = ["PROTOCOL_GRPC", "PROTOCOL_HTTP", "Config", "load_config"]

DEFAULT_EXPORT_INTERVAL_S = 60.0
_MIN_INTERVAL_S = 0.01
_MAX_INTERVAL_S = 86400.0
_MAX_TIMEOUT_S = 600.0

EXPORTER_OTLP = "otlp"
EXPORTER_CONSOLE = "console"
EXPORTER_NONE = "none"
#: Valid for the OTel SDK but unusable for otel-ml's pre-aggregated points: metrics off, with a warning.
_SDK_ONLY_EXPORTERS = frozenset({"prometheus", "logging"})

TEMPORALITY_CUMULATIVE = "cumulative"
TEMPORALITY_DELTA = "delta"
_TEMPORALITIES = {"cumulative": TEMPORALITY_CUMULATIVE, "delta": TEMPORALITY_DELTA, "lowmemory": TEMPORALITY_DELTA}

#: Every variable :func:`load_config` reads (the resource variables are read by the SDK's Resource.create()).
VARIABLES = (
    "OTEL_SDK_DISABLED",
    "OTEL_METRICS_EXPORTER",
    "OTEL_METRIC_EXPORT_INTERVAL",
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
)
_SECRET_VARIABLES = frozenset({"OTEL_EXPORTER_OTLP_METRICS_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS",
                               "OTEL_EXPORTER_OTLP_LOGS_HEADERS"})

T = TypeVar("T")


@dataclass(frozen=True)
class Config:
    """Resolved settings of the export pipeline. Build with :func:`load_config`."""

    disabled: bool = False
    exporter_kind: str = EXPORTER_OTLP
    export_interval_s: float = DEFAULT_EXPORT_INTERVAL_S
    endpoint: str = DEFAULT_ENDPOINTS[DEFAULT_PROTOCOL]  # final: for HTTP the full metrics URL
    protocol: str = DEFAULT_PROTOCOL
    headers: tuple[tuple[str, str], ...] = ()
    timeout_s: float = DEFAULT_TIMEOUT_S
    compression: str = "none"
    temporality: str = TEMPORALITY_CUMULATIVE
    exporter: MetricExporter | None = None  # supplied by the user (tests, custom pipelines)
    resource: Resource | None = None  # None: the global SDK providers' resource, else Resource.create()

    @property
    def metrics_enabled(self) -> bool:
        return not self.disabled and (self.exporter is not None or self.exporter_kind != EXPORTER_NONE)

    @property
    def delta(self) -> bool:
        return self.temporality == TEMPORALITY_DELTA


def _warn_bad(name: str, raw: str, reason: str, fallback: str) -> None:
    from ._log import log_once

    shown = "<not shown: headers carry credentials>" if name in _SECRET_VARIABLES else repr(raw)
    log_once(f"config:{name}={raw}", "otel-ml: %s=%s is invalid (%s); %s", name, shown, reason, fallback,
             interval_s=math.inf)


def _from_env(env: Mapping[str, str], names: tuple[str, ...], parse: Callable[[str], T],
              default: str) -> tuple[str | None, T | None]:
    """(variable, parsed value) of the first variable among ``names`` that is set and valid.

    A set but invalid variable (``parse`` raises ValueError) warns once and is skipped, as the SDK does.
    """
    for i, name in enumerate(names):
        raw = env.get(name)
        if raw is None or not raw.strip():
            continue
        try:
            return name, parse(raw.strip())
        except ValueError as exc:
            nxt = next((n for n in names[i + 1:] if (env.get(n) or "").strip()), None)
            _warn_bad(name, raw, str(exc), f"ignored, {nxt or f'the default ({default})'} applies")
    return None, None


def _parse_disabled(v: str) -> bool:
    low = v.lower()
    if low not in ("true", "false"):
        raise ValueError("expected 'true' or 'false'")
    return low == "true"


def _parse_exporters(v: str) -> str:
    listed = {k.strip().lower() for k in v.split(",") if k.strip()}
    if EXPORTER_OTLP in listed:
        return EXPORTER_OTLP
    if EXPORTER_CONSOLE in listed:
        return EXPORTER_CONSOLE
    if listed and listed <= {EXPORTER_NONE, *_SDK_ONLY_EXPORTERS}:
        if listed - {EXPORTER_NONE}:
            from ._log import log_once

            log_once("config:metrics-exporter", "otel-ml: OTEL_METRICS_EXPORTER=%s has no exporter otel-ml "
                     "can use for pre-aggregated histograms ('otlp' or 'console'); its metrics are off, "
                     "spans stay on", v)
        return EXPORTER_NONE
    raise ValueError("otel-ml exports with 'otlp', 'console' or 'none'")


def _parse_millis(low: float, high: float) -> Callable[[str], float]:
    def parse(v: str) -> float:
        try:
            ms = float(v)
        except ValueError:
            raise ValueError("not a number of milliseconds") from None
        if not low <= ms / 1000.0 <= high:
            raise ValueError(f"must be between {low * 1000:g} and {high * 1000:g} ms")
        return ms / 1000.0

    return parse


def _parse_protocol(v: str) -> str:
    p = parse_protocol(v)
    if p is None:
        raise ValueError("expected 'grpc' or 'http/protobuf'")
    return p


def _parse_compression(v: str) -> str:
    if v.lower() not in COMPRESSIONS:
        raise ValueError("expected 'gzip' or 'none'")
    return v.lower()


def _parse_temporality(v: str) -> str:
    t = _TEMPORALITIES.get(v.lower())
    if t is None:
        raise ValueError("expected 'cumulative', 'delta' or 'lowmemory'")
    return t


def _check_endpoint(v: str) -> str:
    """``v`` when it is a usable ``http(s)://host[:port][/path]`` or ``host:port``, else ValueError."""
    parsed = urlparse(v if "://" in v else f"//{v}")
    if "://" in v and parsed.scheme not in ("http", "https"):
        raise ValueError("the scheme must be http or https")
    try:
        parsed.port  # noqa: B018  (raises for a port that is not a number in 0-65535)
    except ValueError:
        raise ValueError("invalid port") from None
    if not parsed.hostname:
        raise ValueError("no host")
    return v


def _signal_url(url: str, signal: str, *, base: bool) -> str:
    """The OTLP/HTTP URL of ``signal``: a base URL (generic variable) gets ``/v1/<signal>`` appended to its
    path, as does any URL without a path; a signal URL with a path is kept as is, except that for another
    signal the metrics URL given to ``configure(endpoint=...)`` has its ``/v1/metrics`` replaced."""
    signal_path = f"/v1/{signal}"
    full = url if "://" in url else f"http://{url}"
    path = urlparse(full).path.rstrip("/")
    if base or not path:
        return full.rstrip("/") + signal_path
    if signal_path != HTTP_METRICS_PATH and path.endswith(HTTP_METRICS_PATH):
        return full.rstrip("/")[: -len(HTTP_METRICS_PATH)] + signal_path
    return full


@dataclass(frozen=True)
class OtlpDestination:
    """Where and how one signal is sent over OTLP. ``endpoint``: for HTTP the full ``/v1/<signal>`` URL."""

    protocol: str
    endpoint: str
    headers: tuple[tuple[str, str], ...]
    timeout_s: float
    compression: str


def resolve_destination(
    signal: str,
    env: Mapping[str, str],
    *,
    endpoint: str | None = None,
    protocol: str | None = None,
    headers: Mapping[str, str] | str | None = None,
    timeout_s: float | None = None,
    inherited_timeout_s: float | None = None,
) -> OtlpDestination:
    """The OTLP destination of ``signal`` (``metrics``, ``logs``) as the specification resolves it.

    Each setting comes from its argument (a bad one raises :class:`ConfigurationError`), else from
    ``OTEL_EXPORTER_OTLP_<SIGNAL>_*``, else from the generic ``OTEL_EXPORTER_OTLP_*`` (a bad variable warns
    once and is ignored), else from the default. With ``inherited_timeout_s`` (logs: the metrics' timeout)
    the timeout falls back on it instead of on the generic variable and the default.
    """
    sig = f"OTEL_EXPORTER_OTLP_{signal.upper()}_"

    if protocol is not None:
        resolved_protocol = parse_protocol(protocol) if isinstance(protocol, str) else None
        if resolved_protocol is None:
            raise ConfigurationError(f"protocol={protocol!r} is not supported (use 'grpc' or 'http/protobuf')")
    else:
        _, resolved_protocol = _from_env(env, (f"{sig}PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"),
                                         _parse_protocol, DEFAULT_PROTOCOL)
    protocol = resolved_protocol or DEFAULT_PROTOCOL
    http = protocol == PROTOCOL_HTTP
    default_url = DEFAULT_ENDPOINTS[protocol].replace(HTTP_METRICS_PATH, f"/v1/{signal}")

    if endpoint is not None:
        try:
            url = _check_endpoint(str(endpoint).strip())
        except ValueError as exc:
            raise ConfigurationError(f"endpoint={endpoint!r}: {exc}") from None
        if http:
            url = _signal_url(url, signal, base=False)
    else:
        name, env_url = _from_env(env, (f"{sig}ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"), _check_endpoint,
                                  default_url)
        if env_url is None:
            url = default_url
        elif http and name == "OTEL_EXPORTER_OTLP_ENDPOINT":
            url = _signal_url(env_url, signal, base=True)  # a base URL: the signal path is appended (OTel spec)
        elif http and "://" not in env_url:
            url = f"http://{env_url}"
        else:
            url = env_url

    if headers is not None:
        try:
            parsed_headers, _ = parse_headers(headers, strict=True)
        except ConfigurationError as exc:
            raise ConfigurationError(f"headers: {exc}") from None
    else:
        parsed_headers = {}
        for name in (f"{sig}HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"):
            raw = env.get(name)
            if raw is None or not raw.strip():
                continue
            parsed_headers, bad = parse_headers(raw, strict=False)
            if bad:
                _warn_bad(name, raw, f"{bad} item(s) not of the form key=value", "those items are ignored")
            break

    if timeout_s is None:
        if inherited_timeout_s is None:
            names: tuple[str, ...] = (f"{sig}TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
            fallback_s = DEFAULT_TIMEOUT_S
        else:
            names, fallback_s = (f"{sig}TIMEOUT",), inherited_timeout_s
        _, timeout_s = _from_env(env, names, _parse_millis(0.001, _MAX_TIMEOUT_S), f"{fallback_s * 1000:g} ms")
        timeout_s = fallback_s if timeout_s is None else timeout_s
    elif isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not 0 < timeout_s <= _MAX_TIMEOUT_S:
        raise ConfigurationError(f"timeout_s must be in (0, 600] seconds, got {timeout_s!r}")

    _, compression = _from_env(env, (f"{sig}COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION"),
                               _parse_compression, "none")
    return OtlpDestination(protocol=protocol, endpoint=url, headers=tuple(sorted(parsed_headers.items())),
                           timeout_s=float(timeout_s), compression=compression or "none")


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
    """Validate arguments (ConfigurationError), fill the rest from ``env`` (default ``os.environ``;
    bad variables warn and are ignored) and the defaults; return a frozen Config."""
    env = os.environ if env is None else env

    if disabled is None:
        _, disabled = _from_env(env, ("OTEL_SDK_DISABLED",), _parse_disabled, "false")

    _, exporter_kind = _from_env(env, ("OTEL_METRICS_EXPORTER",), _parse_exporters, EXPORTER_OTLP)

    if export_interval_s is None:
        _, export_interval_s = _from_env(env, ("OTEL_METRIC_EXPORT_INTERVAL",),
                                         _parse_millis(_MIN_INTERVAL_S, _MAX_INTERVAL_S), "60000 ms")
    elif not isinstance(export_interval_s, (int, float)) or not _MIN_INTERVAL_S <= export_interval_s <= _MAX_INTERVAL_S:
        raise ConfigurationError(f"export_interval_s={export_interval_s!r}: the export interval must be "
                                 "between 10 ms and 1 day")

    destination = resolve_destination("metrics", env, endpoint=endpoint, protocol=protocol, headers=headers,
                                      timeout_s=timeout_s)

    if temporality is not None:
        t = _TEMPORALITIES.get(temporality.strip().lower()) if isinstance(temporality, str) else None
        if t is None:
            raise ConfigurationError(f"temporality={temporality!r}: expected 'cumulative', 'delta' or 'lowmemory'")
        temporality = t
    else:
        _, temporality = _from_env(env, ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",), _parse_temporality,
                                   TEMPORALITY_CUMULATIVE)

    if exporter is not None:
        from opentelemetry.sdk.metrics.export import MetricExporter

        if not isinstance(exporter, MetricExporter):
            raise ConfigurationError(
                f"exporter must be an opentelemetry.sdk.metrics.export.MetricExporter, got {type(exporter).__name__}"
            )
    if resource is not None and not _is_resource(resource):
        raise ConfigurationError(
            f"resource must be an opentelemetry.sdk.resources.Resource, got {type(resource).__name__}")

    return Config(
        disabled=bool(disabled),
        exporter_kind=exporter_kind or EXPORTER_OTLP,
        export_interval_s=float(export_interval_s if export_interval_s is not None else DEFAULT_EXPORT_INTERVAL_S),
        endpoint=destination.endpoint,
        protocol=destination.protocol,
        headers=destination.headers,
        timeout_s=destination.timeout_s,
        compression=destination.compression,
        temporality=temporality or TEMPORALITY_CUMULATIVE,
        exporter=exporter,
        resource=resource,
    )


def _is_resource(resource: Any) -> bool:
    from opentelemetry.sdk.resources import Resource

    return isinstance(resource, Resource)


def global_sdk_resource() -> Resource | None:
    """The resource of the application's OpenTelemetry SDK, else None.

    The global SDK ``MeterProvider``'s resource when one is installed, else the global SDK
    ``TracerProvider``'s when it names the service (so otel-ml's metrics carry the ``service.name`` of
    the application's spans).
    Imports nothing: an SDK package that was never imported cannot have a provider installed.
    """
    sdk_metrics = sys.modules.get("opentelemetry.sdk.metrics")
    if sdk_metrics is not None:
        try:
            from opentelemetry import metrics as _metrics

            mp = _metrics.get_meter_provider()
            if isinstance(mp, sdk_metrics.MeterProvider):
                return mp._sdk_config.resource  # the SDK keeps it there; no public accessor
        except Exception:
            pass
    sdk_trace = sys.modules.get("opentelemetry.sdk.trace")
    if sdk_trace is not None:
        try:
            from opentelemetry import trace as _trace

            tp = _trace.get_tracer_provider()
            if isinstance(tp, sdk_trace.TracerProvider):
                name = tp.resource.attributes.get("service.name")
                if isinstance(name, str) and not name.startswith("unknown_service"):
                    return tp.resource  # the application named its service in code: the spans' identity
        except Exception:
            pass
    return None


_drawn_ids: set[str] = set()  # service.instance.id values drawn by with_instance_id


def with_instance_id(resource: Resource, *, redraw: bool = False) -> Resource:
    """``resource`` plus a fresh ``service.instance.id`` when it has none.

    Pre-fork workers exporting cumulative counts must form distinct streams, so the id is per process:
    with ``redraw`` (in a fork child) an id that was drawn at random for the parent, by this function or
    by the SDK's default detector, is replaced; an id the user set is kept.
    """
    current = resource.attributes.get("service.instance.id")
    if current is not None:
        sdk = sys.modules.get("opentelemetry.sdk.resources")
        drawn = current in _drawn_ids or current == getattr(sdk, "_service_instance_id", None)
        if not (redraw and drawn):
            return resource
    import uuid

    from opentelemetry.sdk.resources import Resource

    new_id = str(uuid.uuid4())
    if len(_drawn_ids) < 1024:
        _drawn_ids.add(new_id)
    return resource.merge(Resource({"service.instance.id": new_id}))


def resolve_resource(config: Config, *, use_global: bool = True) -> Resource:
    """The resource to export with: the configured one, the SDK providers' (:func:`global_sdk_resource`), or
    ``Resource.create()`` (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``); see :func:`with_instance_id`."""
    resource = config.resource
    if resource is None and use_global:
        resource = global_sdk_resource()
    if resource is None:
        from opentelemetry.sdk.resources import Resource

        resource = Resource.create()
    return resource
