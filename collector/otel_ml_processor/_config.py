"""The processor's configuration: frozen sections that each validate themselves, like a Collector
component's ``config.go`` with its ``Validate()``.

:class:`Config` is made of one section per concern -- :class:`ReceiversConfig` (with its
:class:`TLSConfig` and :class:`OverloadConfig`), :class:`AuthConfig`, :class:`ReferencesConfig`,
:class:`WindowsConfig`, :class:`EvaluationConfig`, :class:`StateConfig`, :class:`ExportConfig` --
and the YAML file has the same shape: a section's keys are its field names. Each section checks its
own values when it is built and names the offending key (``export.timeout: must be a positive
number``); an unknown key is rejected with a suggestion (``export.endpiont: unknown key (did you
mean 'endpoint'?)``).

Precedence: command-line flags > the YAML file (``--config``) > environment (only the token,
``OTEL_ML_PROCESSOR_TOKEN``) > defaults. ``docs/processor.md`` documents each key;
``collector/processor.example.yaml`` shows them all with their defaults.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar
from urllib.parse import urlparse

from otel_ml import ConfigurationError

from ._segment_streams import DEFAULT_MAX_SEGMENT_SERIES

TOKEN_ENV = "OTEL_ML_PROCESSOR_TOKEN"

DEFAULT_GRPC = "127.0.0.1:14317"
DEFAULT_HTTP = "127.0.0.1:14318"
DEFAULT_EXPORT = "http://127.0.0.1:4317"

PROTOCOL_GRPC = "grpc"
PROTOCOL_HTTP = "http/protobuf"
_OTLP_HTTP_PORT = 4318
_OTLP_HTTP_METRICS_PATH = "/v1/metrics"

DEFAULT_HTTP_READ_TIMEOUT = 10.0

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


# --- value checks (each names its key) ----------------------------------------------------------
def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and v not in (float("inf"), float("-inf"))


def _positive(v: Any, key: str) -> None:
    if not _is_number(v) or v <= 0:
        raise ConfigurationError(f"{key}: must be a positive number, got {v!r}")


def _positive_int(v: Any, key: str, *, low: int = 1, high: int | None = None) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < low or (high is not None and v > high):
        rng = f">= {low}" + (f" and <= {high}" if high is not None else "")
        raise ConfigurationError(f"{key}: must be an integer {rng}, got {v!r}")


def _disabled(value: str | None) -> str | None:
    """``None`` for ``"none"``, ``"off"`` or ``""`` (so flags can disable a listener or the export)."""
    if isinstance(value, str) and value.strip().lower() in ("", "none", "off"):
        return None
    return value


def window_label(seconds: float) -> str:
    """``300`` -> ``"5m"``, ``3600`` -> ``"1h"``, ``90`` -> ``"90s"``: the ``ml.drift.window`` value."""
    s = float(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size and s % size == 0:
            return f"{int(s // size)}{unit}"
    return f"{int(s)}s" if s.is_integer() else f"{s:g}s"


def parse_host_port(value: str, key: str) -> tuple[str, int]:
    """``HOST:PORT`` (IPv6 as ``[::1]:PORT``) or raise naming ``key``."""
    if not isinstance(value, str):
        raise ConfigurationError(f"{key}: must be HOST:PORT, got {value!r}")
    m = re.match(r"^\[?([^\[\]]*?)\]?:(\d+)$", value.strip())
    if not m or not m.group(1):
        raise ConfigurationError(f"{key}: must be HOST:PORT, got {value!r}")
    port = int(m.group(2))
    if not 0 <= port <= 65535:
        raise ConfigurationError(f"{key}: port must be between 0 and 65535, got {port}")
    return m.group(1), port


def parse_duration(value: Any, key: str) -> float:
    """Seconds from a number or a string such as ``"30s"``, ``"5m"``, ``"1h"``."""
    if _is_number(value):
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2)]
    raise ConfigurationError(f"{key}: must be a duration in seconds or like '30s', '5m', '1h', got {value!r}")


def read_token_file(path: str, key: str = "--token-file") -> str:
    try:
        with open(path, encoding="utf-8") as f:
            token = f.read().strip()
    except OSError as exc:
        raise ConfigurationError(f"{key}: cannot read token file {path!r} ({exc.strerror})") from None
    if not token:
        raise ConfigurationError(f"{key}: token file {path!r} is empty")
    return token


#: Open files kept free beyond the HTTP connections: gRPC, checkpoints, reference files, logs.
FD_RESERVE = 64
#: The fewest gRPC connections the default of ``receivers.grpc_max_connections`` allows.
MIN_GRPC_CONNECTIONS = 16


def effective_connection_limit(max_connections: int) -> int:
    """``max_connections``, never more than the soft open-file limit minus :data:`FD_RESERVE` (at least 1)."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return max_connections
    if soft == getattr(resource, "RLIM_INFINITY", -1) or soft < 0:
        return max_connections
    return max(1, min(max_connections, soft - FD_RESERVE))


# --- YAML value converters: (raw value, key) -> field value -----------------------------------------
def _opt_str(v: Any, key: str) -> str | None:
    if v is None:
        return None
    if not isinstance(v, (str, int)) or isinstance(v, bool):
        raise ConfigurationError(f"{key}: must be a string, got {v!r}")
    return str(v)


def _str(v: Any, key: str) -> str:
    if not isinstance(v, str):
        raise ConfigurationError(f"{key}: must be a string, got {v!r}")
    return v


def _int(v: Any, key: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigurationError(f"{key}: must be an integer, got {v!r}")
    return v


def _opt_int(v: Any, key: str) -> int | None:
    return None if v is None else _int(v, key)


def _bool(v: Any, key: str) -> bool:
    if not isinstance(v, bool):
        raise ConfigurationError(f"{key}: must be true or false, got {v!r}")
    return v


def _number(v: Any, key: str) -> float:
    if not _is_number(v):
        raise ConfigurationError(f"{key}: must be a number, got {v!r}")
    return float(v)


def _durations(v: Any, key: str) -> tuple[float, ...]:
    if not isinstance(v, list):
        v = [v]
    return tuple(parse_duration(x, key) for x in v)


def _headers(v: Any, key: str) -> tuple[tuple[str, str], ...]:
    if v is None:
        return ()
    if not isinstance(v, Mapping) or not all(isinstance(k, str) and isinstance(x, str) for k, x in v.items()):
        raise ConfigurationError(f"{key}: must be a mapping of header name to string value")
    return tuple((k.lower(), x) for k, x in v.items())


def _token_file(v: Any, key: str) -> str | None:
    return None if v is None else read_token_file(_str(v, key), key)


def _freeze(v: Any) -> Any:
    if isinstance(v, Mapping):
        return MappingProxyType({str(k): _freeze(x) for k, x in v.items()})
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    return v


def _thaw(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {k: _thaw(x) for k, x in v.items()}
    if isinstance(v, tuple):
        return [_thaw(x) for x in v]
    return v


def _policy_mapping(v: Any, key: str) -> Mapping[str, Any]:
    if v is None:
        return MappingProxyType({})
    if not isinstance(v, Mapping):
        raise ConfigurationError(f"{key}: must be a mapping (policy fields, 'features:', 'models:')")
    return _freeze(v)


def _yaml(parse: Callable[[Any, str], Any], key: str | None = None) -> dict[str, Any]:
    """Field metadata: how the YAML value is converted, and its YAML key when it differs from the field's."""
    return {"parse": parse, "yaml": key}


# --- sections -------------------------------------------------------------------------------------
class _Section:
    """A frozen dataclass whose fields are YAML keys; ``validate()`` checks them, naming ``KEY.field``."""

    KEY: ClassVar[str]

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        raise NotImplementedError

    def _k(self, name: str) -> str:
        return f"{self.KEY}.{name}"


@dataclass(frozen=True)
class TLSConfig(_Section):
    """TLS of both receivers: both files or neither."""

    KEY: ClassVar[str] = "receivers.tls"
    cert_file: str | None = field(default=None, metadata=_yaml(_opt_str))
    key_file: str | None = field(default=None, metadata=_yaml(_opt_str))

    def validate(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise ConfigurationError(f"{self.KEY}: cert_file and key_file must be given together")
        for name in ("cert_file", "key_file"):
            path = getattr(self, name)
            if path is not None and not os.path.isfile(path):
                raise ConfigurationError(f"{self._k(name)}: no such file {path!r}")

    @property
    def files(self) -> tuple[str, str] | None:
        """``(cert_file, key_file)``, or ``None`` without TLS."""
        if self.cert_file is None or self.key_file is None:
            return None
        return self.cert_file, self.key_file


@dataclass(frozen=True)
class OverloadConfig(_Section):
    """When the receivers refuse data with a retry delay (rate limit, event-loop lag)."""

    KEY: ClassVar[str] = "receivers.overload"
    max_points_per_second: float = field(default=0.0, metadata=_yaml(_number))
    max_loop_lag: float = field(default=2.0, metadata=_yaml(parse_duration))
    retry_after: float = field(default=1.0, metadata=_yaml(parse_duration))

    def validate(self) -> None:
        if not _is_number(self.max_points_per_second) or self.max_points_per_second < 0:
            raise ConfigurationError(f"{self._k('max_points_per_second')}: must be a number >= 0 (0 = no limit)")
        _positive(self.max_loop_lag, self._k("max_loop_lag"))
        _positive(self.retry_after, self._k("retry_after"))


@dataclass(frozen=True)
class ReceiversConfig(_Section):
    """The OTLP listeners. ``None`` (YAML ``null``, flag ``none``) disables one."""

    KEY: ClassVar[str] = "receivers"
    otlp_grpc: str | None = field(default=DEFAULT_GRPC, metadata=_yaml(_opt_str))
    otlp_http: str | None = field(default=DEFAULT_HTTP, metadata=_yaml(_opt_str))
    max_request_bytes: int = field(default=16 * 1024 * 1024, metadata=_yaml(_int))
    # Limits against hostile or broken clients (docs/processor.md "Security and limits").
    http_read_timeout: float = field(default=DEFAULT_HTTP_READ_TIMEOUT, metadata=_yaml(parse_duration))
    max_connections: int = field(default=1000, metadata=_yaml(_int))
    #: gRPC connections; ``None``: a quarter of the HTTP limit, at least 16 (:meth:`grpc_connection_limit`).
    grpc_max_connections: int | None = field(default=None, metadata=_yaml(_opt_int))
    max_inflight_bytes: int = field(default=64 * 1024 * 1024, metadata=_yaml(_int))
    max_attribute_bytes: int = field(default=4096, metadata=_yaml(_int))
    max_resource_bytes: int = field(default=16384, metadata=_yaml(_int))
    tls: TLSConfig = field(default_factory=TLSConfig)
    overload: OverloadConfig = field(default_factory=OverloadConfig)

    def validate(self) -> None:
        for name in ("otlp_grpc", "otlp_http"):
            value = _disabled(getattr(self, name))
            object.__setattr__(self, name, value)
            if value is not None:
                parse_host_port(value, self._k(name))
        _positive_int(self.max_request_bytes, self._k("max_request_bytes"), low=1024)
        self._validate_limits()

    def _validate_limits(self) -> None:
        _positive(self.http_read_timeout, self._k("http_read_timeout"))
        _positive_int(self.max_connections, self._k("max_connections"))
        if self.grpc_max_connections is not None:
            _positive_int(self.grpc_max_connections, self._k("grpc_max_connections"))
        _positive_int(self.max_inflight_bytes, self._k("max_inflight_bytes"), low=1024)
        _positive_int(self.max_attribute_bytes, self._k("max_attribute_bytes"), low=64)
        _positive_int(self.max_resource_bytes, self._k("max_resource_bytes"), low=64)

    @property
    def request_limit(self) -> int:
        """The largest request accepted: ``max_request_bytes``, or ``max_inflight_bytes`` when that is
        lower (a larger request could never be admitted, so it is refused as too large, not as busy)."""
        return min(self.max_request_bytes, self.max_inflight_bytes)

    def connection_limit(self) -> int:
        """``max_connections``, capped at the open-file limit minus :data:`FD_RESERVE` (read now: the
        limit can change while the process runs)."""
        return effective_connection_limit(self.max_connections)

    def grpc_connection_limit(self) -> int:
        """``grpc_max_connections`` (default: a quarter of :meth:`connection_limit`, at least
        :data:`MIN_GRPC_CONNECTIONS`), capped at the open-file limit minus :data:`FD_RESERVE` like it."""
        if self.grpc_max_connections is None:
            return max(MIN_GRPC_CONNECTIONS, self.connection_limit() // 4)
        return effective_connection_limit(self.grpc_max_connections)

    def grpc_address(self) -> tuple[str, int] | None:
        return None if self.otlp_grpc is None else parse_host_port(self.otlp_grpc, self._k("otlp_grpc"))

    def http_address(self) -> tuple[str, int] | None:
        return None if self.otlp_http is None else parse_host_port(self.otlp_http, self._k("otlp_http"))


@dataclass(frozen=True)
class AuthConfig(_Section):
    """The bearer token (the secret itself, never printed): required for reference changes and, with
    ``require_for_ingest``, for OTLP ingest. Without one, reference changes come from loopback only."""

    KEY: ClassVar[str] = "auth"
    token: str | None = field(default=None, repr=False, metadata=_yaml(_token_file, "token_file"))
    require_for_ingest: bool = field(default=True, metadata=_yaml(_bool))

    def validate(self) -> None:
        if self.token is not None and (not self.token or any(c.isspace() for c in self.token)):
            raise ConfigurationError(f"{self._k('token')}: must be non-empty and contain no whitespace")

    @property
    def ingest_token(self) -> str | None:
        return self.token if self.require_for_ingest else None


@dataclass(frozen=True)
class ReferencesConfig(_Section):
    """The reference store: a directory of JSON profiles (or memory) and the admin API's upload limit."""

    KEY: ClassVar[str] = "references"
    directory: str | None = field(default=None, metadata=_yaml(_opt_str))
    poll_interval: float = field(default=5.0, metadata=_yaml(parse_duration))
    max_upload_bytes: int = field(default=8 * 1024 * 1024, metadata=_yaml(_int))

    def validate(self) -> None:
        d = self.directory
        if d is not None and os.path.exists(d) and not os.path.isdir(d):
            raise ConfigurationError(f"{self._k('directory')}: {d!r} is not a directory")
        _positive(self.poll_interval, self._k("poll_interval"))
        _positive_int(self.max_upload_bytes, self._k("max_upload_bytes"), low=1024)


@dataclass(frozen=True)
class WindowsConfig(_Section):
    """The sliding windows, each judged separately, and the ring slots each is kept in."""

    KEY: ClassVar[str] = "windows"
    MAX_WINDOWS: ClassVar[int] = 8
    sizes: tuple[float, ...] = field(default=(300.0, 3600.0), metadata=_yaml(_durations))
    slots: int = field(default=10, metadata=_yaml(_int))

    def validate(self) -> None:
        key = self._k("sizes")
        if not self.sizes:
            raise ConfigurationError(f"{key}: at least one window is required")
        if len(self.sizes) > self.MAX_WINDOWS:
            raise ConfigurationError(f"{key}: at most {self.MAX_WINDOWS} windows")
        for w in self.sizes:
            _positive(w, key)
            if w < 1:
                raise ConfigurationError(f"{key}: each window must be at least 1 second, got {w}")
        if len(set(self.labels)) != len(self.sizes):
            raise ConfigurationError(f"{key}: duplicate window {list(self.sizes)}")
        object.__setattr__(self, "sizes", tuple(float(w) for w in self.sizes))
        _positive_int(self.slots, self._k("slots"), low=2, high=120)

    @property
    def labels(self) -> tuple[str, ...]:
        """The ``ml.drift.window`` value of each window (``5m``, ``1h``)."""
        return tuple(window_label(w) for w in self.sizes)


@dataclass(frozen=True)
class EvaluationConfig(_Section):
    """How often windows are judged, and the drift policy (an :class:`otel_ml.stats.PolicyBook` mapping:
    :class:`otel_ml.stats.DriftPolicy` fields, ``features:``, ``models:``), deep-frozen."""

    KEY: ClassVar[str] = "evaluation"
    interval: float = field(default=30.0, metadata=_yaml(parse_duration))
    drift: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), metadata=_yaml(_policy_mapping))

    def validate(self) -> None:
        _positive(self.interval, self._k("interval"))
        object.__setattr__(self, "drift", _policy_mapping(_thaw(self.drift), self._k("drift")))  # deep-frozen
        self.policy_book()  # validates the policy, naming its key

    def policy_book(self) -> Any:
        """The :class:`otel_ml.stats.PolicyBook` of ``drift:``."""
        from otel_ml.stats import PolicyBook

        return PolicyBook.from_mapping(_thaw(self.drift), source=self._k("drift"))


@dataclass(frozen=True)
class StateConfig(_Section):
    """Checkpoints, and the bounds of the series and streams kept in memory. ``max_segment_series`` is the
    budget of exported segment series per model (drift, quality, mix and performance per segment value;
    formula in :mod:`._segment_streams`): segment streams beyond it are refused, performance slices beyond
    it left unjudged, both counted in ``ml.segment.overflow``."""

    KEY: ClassVar[str] = "state"
    directory: str | None = field(default=None, metadata=_yaml(_opt_str))
    series_ttl: float = field(default=7200.0, metadata=_yaml(parse_duration))
    max_streams_per_model: int = field(default=5000, metadata=_yaml(_int))
    max_series_per_model: int = field(default=100_000, metadata=_yaml(_int))
    max_cache_bytes: int = field(default=32 * 1024 * 1024, metadata=_yaml(_int))
    max_segment_series: int = field(default=DEFAULT_MAX_SEGMENT_SERIES, metadata=_yaml(_int))

    def validate(self) -> None:
        _positive(self.series_ttl, self._k("series_ttl"))
        _positive_int(self.max_segment_series, self._k("max_segment_series"), high=1_000_000)
        _positive_int(self.max_streams_per_model, self._k("max_streams_per_model"))
        _positive_int(self.max_series_per_model, self._k("max_series_per_model"))
        _positive_int(self.max_cache_bytes, self._k("max_cache_bytes"), low=1024 * 1024)


@dataclass(frozen=True)
class ExportConfig(_Section):
    """Where the drift and quality gauges go (OTLP). ``endpoint`` ``None`` disables the export."""

    KEY: ClassVar[str] = "export"
    PROTOCOLS: ClassVar[tuple[str, ...]] = ("auto", PROTOCOL_GRPC, PROTOCOL_HTTP)
    endpoint: str | None = field(default=DEFAULT_EXPORT, metadata=_yaml(_opt_str))
    protocol: str = field(default="auto", metadata=_yaml(_str))
    headers: tuple[tuple[str, str], ...] = field(default=(), metadata=_yaml(_headers))
    timeout: float = field(default=10.0, metadata=_yaml(parse_duration))
    queue_size: int = field(default=16, metadata=_yaml(_int))

    def validate(self) -> None:
        object.__setattr__(self, "endpoint", _disabled(self.endpoint))
        if self.endpoint is not None:
            self._check_endpoint(self.endpoint)
        if self.protocol not in self.PROTOCOLS:
            allowed = ", ".join(repr(p) for p in self.PROTOCOLS)
            raise ConfigurationError(f"{self._k('protocol')}: must be one of {allowed}, got {self.protocol!r}")
        _positive(self.timeout, self._k("timeout"))
        _positive_int(self.queue_size, self._k("queue_size"), high=10_000)

    def _check_endpoint(self, value: str) -> None:
        if not isinstance(value, str) or not re.match(r"^(https?://)?[^\s/:]+(:\d+)?(/\S*)?$", value) or (
            "://" not in value and ":" not in value
        ):
            raise ConfigurationError(
                f"{self._k('endpoint')}: must be a URL such as http://127.0.0.1:4317 or HOST:PORT, got {value!r}"
            )

    @property
    def resolved_protocol(self) -> str:
        """``grpc`` or ``http/protobuf``, decided as the OTel exporters do when ``protocol`` is ``auto``:
        port 4318 or a ``/v1/metrics`` path is OTLP/HTTP, anything else OTLP/gRPC."""
        if self.protocol != "auto":
            return self.protocol
        if self.endpoint:
            parsed = urlparse(self.endpoint if "://" in self.endpoint else f"//{self.endpoint}")
            if parsed.port == _OTLP_HTTP_PORT or parsed.path.rstrip("/").endswith(_OTLP_HTTP_METRICS_PATH):
                return PROTOCOL_HTTP
        return PROTOCOL_GRPC


@dataclass(frozen=True)
class OutcomesConfig(_Section):
    """The ground-truth path: how long predictions and outcomes wait for each other in the join store
    (``joins.sqlite`` under ``state.directory``), how many may wait, how many joined pairs per model
    version the performance windows hold (segment slices are judged within ``state.max_segment_series``),
    and the degradation policy
    (:class:`otel_ml.stats.performance.PerformancePolicy` fields: ``min_samples``, ``alpha``,
    ``tolerances``; unset ones keep the policy's defaults)."""

    KEY: ClassVar[str] = "outcomes"
    SYNCHRONOUS: ClassVar[tuple[str, ...]] = ("normal", "full")
    ttl: float = field(default=30 * 86400.0, metadata=_yaml(parse_duration))
    max_pending: int = field(default=10_000_000, metadata=_yaml(_int))
    max_window_pairs: int = field(default=100_000, metadata=_yaml(_int))
    synchronous: str = field(default="normal", metadata=_yaml(_str))
    min_samples: int | None = field(default=None, metadata=_yaml(lambda v, k: None if v is None else _int(v, k)))
    alpha: float | None = field(default=None, metadata=_yaml(lambda v, k: None if v is None else _number(v, k)))
    tolerances: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}),
                                            metadata=_yaml(lambda v, k: _tolerances(v, k)))

    def validate(self) -> None:
        _positive(self.ttl, self._k("ttl"))
        _positive_int(self.max_pending, self._k("max_pending"))
        _positive_int(self.max_window_pairs, self._k("max_window_pairs"), low=10, high=10_000_000)
        if self.synchronous not in self.SYNCHRONOUS:
            raise ConfigurationError(f"{self._k('synchronous')}: must be 'normal' or 'full', got {self.synchronous!r}")
        if self.min_samples is not None:
            _positive_int(self.min_samples, self._k("min_samples"))
        if self.alpha is not None and not (_is_number(self.alpha) and 0 < self.alpha < 1):
            raise ConfigurationError(f"{self._k('alpha')}: must be a number between 0 and 1, got {self.alpha!r}")
        object.__setattr__(self, "tolerances", _tolerances(dict(self.tolerances), self._k("tolerances")))
        try:
            self.policy()  # the policy's own checks (known metric names, ...), named under this section
        except ConfigurationError as exc:
            raise ConfigurationError(f"{self.KEY}: {exc}") from None

    def policy(self) -> Any:
        """The :class:`otel_ml.stats.performance.PerformancePolicy`: its defaults with this section's values."""
        from otel_ml.stats.performance import PerformancePolicy

        kwargs: dict[str, Any] = {}
        if self.min_samples is not None:
            kwargs["min_samples"] = self.min_samples
        if self.alpha is not None:
            kwargs["alpha"] = self.alpha
        if self.tolerances:
            kwargs["tolerances"] = {**PerformancePolicy().tolerances, **self.tolerances}
        return PerformancePolicy(**kwargs)


def _version_pairs(v: Any, key: str) -> tuple[tuple[str, str, str], ...]:
    if v is None:
        return ()
    if not isinstance(v, (list, tuple)):
        raise ConfigurationError(f"{key}: must be a list of {{model, candidate, baseline}} mappings")
    out = []
    for i, item in enumerate(v):
        if isinstance(item, tuple) and len(item) == 3:
            item = dict(zip(("model", "candidate", "baseline"), item))
        k = f"{key}[{i}]"
        if not isinstance(item, Mapping) or set(item) != {"model", "candidate", "baseline"}:
            raise ConfigurationError(f"{k}: must be a mapping with exactly the keys model, candidate, baseline")
        # YAML reads `candidate: 2` as a number; versions are strings on the wire.
        pair = tuple(_str(str(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else x, f"{k}.{f}")
                     for f, x in ((f, item[f]) for f in ("model", "candidate", "baseline")))
        if not all(pair):
            raise ConfigurationError(f"{k}: model, candidate and baseline must be non-empty")
        if pair[1] == pair[2]:
            raise ConfigurationError(f"{k}: candidate and baseline are the same version {pair[1]!r}")
        if pair in out:
            raise ConfigurationError(f"{k}: duplicate pair {list(pair)}")
        out.append(pair)
    return tuple(out)  # type: ignore[arg-type]


@dataclass(frozen=True)
class VersionsConfig(_Section):
    """Versions side by side: explicit ``compare`` pairs (``{model, candidate, baseline}``; a model named
    there is compared only as listed) and, with ``automatic``, every other model with two or more live
    versions: a ``role=live`` version is the baseline of the others, else each version's baseline is the
    one with the most rows in the longest window when it first appeared (:mod:`._registry`)."""

    KEY: ClassVar[str] = "versions"
    compare: tuple[tuple[str, str, str], ...] = field(default=(), metadata=_yaml(_version_pairs))
    automatic: bool = field(default=True, metadata=_yaml(_bool))

    def validate(self) -> None:
        object.__setattr__(self, "compare", _version_pairs(self.compare, self._k("compare")))
        if not isinstance(self.automatic, bool):
            raise ConfigurationError(f"{self._k('automatic')}: must be true or false, got {self.automatic!r}")


def _tolerances(v: Any, key: str) -> Mapping[str, float]:
    if v is None:
        return MappingProxyType({})
    if not isinstance(v, Mapping) or not all(isinstance(k, str) and _is_number(x) and x >= 0 for k, x in v.items()):
        raise ConfigurationError(f"{key}: must be a mapping of metric name to a number >= 0")
    return MappingProxyType({k: float(x) for k, x in v.items()})


LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class Config:
    """Everything the service needs, one validated section per concern. Durations are seconds, sizes bytes."""

    receivers: ReceiversConfig = field(default_factory=ReceiversConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    references: ReferencesConfig = field(default_factory=ReferencesConfig)
    windows: WindowsConfig = field(default_factory=WindowsConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    state: StateConfig = field(default_factory=StateConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    outcomes: OutcomesConfig = field(default_factory=OutcomesConfig)
    versions: VersionsConfig = field(default_factory=VersionsConfig)
    log_level: str = field(default="info", metadata=_yaml(_str))

    def __post_init__(self) -> None:
        if self.log_level not in LOG_LEVELS:
            raise ConfigurationError(f"log_level: must be {', '.join(LOG_LEVELS[:-1])} or {LOG_LEVELS[-1]}, "
                                     f"got {self.log_level!r}")

    @property
    def references_directory(self) -> str | None:
        """Where references are kept: ``references.directory``, else ``<state.directory>/references``."""
        if self.references.directory is None and self.state.directory is not None:
            return os.path.join(self.state.directory, "references")
        return self.references.directory

    def replace(self, changes: Mapping[str, Any]) -> Config:
        """A copy with the values at dotted keys replaced (``{"export.endpoint": None}``), validated again."""
        result: Config = _replace(self, changes)
        return result


# --- building -------------------------------------------------------------------------------------
#: Keys of earlier versions and what replaced them (named in the error).
_REPLACED = {"outcomes.max_segments": "state.max_segment_series (exported segment series per model)"}

def _replace(obj: Any, changes: Mapping[str, Any], prefix: str = "") -> Any:
    direct: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    names = {f.name for f in dataclasses.fields(obj)}
    for path, value in changes.items():
        head, _, rest = path.partition(".")
        if head not in names:
            raise ConfigurationError(f"{prefix}{path}: unknown key")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            direct[head] = value
    for head, sub in nested.items():
        direct[head] = _replace(direct.get(head, getattr(obj, head)), sub, f"{prefix}{head}.")
    return dataclasses.replace(obj, **direct) if direct else obj


def _section_from_mapping(cls: type, doc: Any, key: str) -> Any:
    """Build section ``cls`` from its YAML mapping (``None``: defaults), naming keys as ``key.field``."""
    if doc is None:
        return cls()
    if not isinstance(doc, Mapping):
        raise ConfigurationError(f"{key or 'config'}: must be a mapping")
    by_yaml = {f.metadata.get("yaml") or f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for k, raw in doc.items():
        if not isinstance(k, str):
            raise ConfigurationError(f"{key or 'config'}: keys must be strings, got {k!r}")
        path = f"{key}.{k}" if key else k
        f = by_yaml.get(k)
        if f is None and path in _REPLACED:
            raise ConfigurationError(f"{path}: replaced by {_REPLACED[path]}")
        if f is None:
            hint = difflib.get_close_matches(k, list(by_yaml), n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else f" (known: {', '.join(sorted(by_yaml))})"
            raise ConfigurationError(f"{path}: unknown key{extra}")
        parse = f.metadata.get("parse")
        if parse is not None:
            values[f.name] = parse(raw, path)
        else:  # a nested section
            values[f.name] = _section_from_mapping(_section_type(cls, f), raw, path)
    return cls(**values)


def _section_type(cls: type, f: dataclasses.Field[Any]) -> type:
    factory = f.default_factory
    assert factory is not dataclasses.MISSING and isinstance(factory, type), f"{cls.__name__}.{f.name}"
    return factory


def from_mapping(doc: Mapping[str, Any] | None, *, overrides: Mapping[str, Any] | None = None,
                 env: Mapping[str, str] | None = None) -> Config:
    """A :class:`Config` from a parsed YAML document, then ``overrides`` (dotted keys such as
    ``"receivers.otlp_grpc"``; ``None`` values are skipped: flags not given)."""
    env = os.environ if env is None else env
    if doc is None:
        doc = {}
    if not isinstance(doc, Mapping):
        raise ConfigurationError("config: the top level must be a mapping")
    config: Config = _section_from_mapping(Config, doc, "")
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    token = env.get(TOKEN_ENV, "").strip()
    if token and config.auth.token is None:  # the file's token_file wins over the environment
        given.setdefault("auth.token", token)
    return config.replace(given) if given else config


def load_config(path: str | None = None, *, overrides: Mapping[str, Any] | None = None,
                env: Mapping[str, str] | None = None) -> Config:
    """Read the YAML file at ``path`` (optional) and apply flag ``overrides`` (see :func:`from_mapping`)."""
    doc: Any = None
    if path is not None:
        import yaml

        try:
            with open(path, encoding="utf-8") as f:
                doc = yaml.safe_load(f)
        except OSError as exc:
            raise ConfigurationError(f"--config: cannot read {path!r} ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            raise ConfigurationError(f"--config: {path!r} is not valid YAML ({exc})") from None
    return from_mapping(doc, overrides=overrides, env=env)
