"""The processor's configuration: one frozen, validated object built from YAML, flags and defaults.

Precedence: command-line flags > the YAML file (``--config``) > environment (only the token,
``OTEL_ML_PROCESSOR_TOKEN``) > defaults. Every value is checked when the object is built; an unknown
key or a bad value raises :class:`otel_ml.ConfigurationError` with a message that names the key
(``export.endpiont: unknown key (did you mean 'endpoint'?)``). ``docs/processor.md`` documents each key;
``collector/processor.example.yaml`` shows them all.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from otel_ml._errors import ConfigurationError

TOKEN_ENV = "OTEL_ML_PROCESSOR_TOKEN"

DEFAULT_GRPC = "127.0.0.1:14317"
DEFAULT_HTTP = "127.0.0.1:14318"
DEFAULT_EXPORT = "http://127.0.0.1:4317"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


@dataclass(frozen=True)
class Config:
    """Everything the service needs, validated. Durations are seconds, sizes bytes."""

    # Receivers. ``None`` disables a listener.
    grpc_endpoint: str | None = DEFAULT_GRPC
    http_endpoint: str | None = DEFAULT_HTTP
    max_request_bytes: int = 16 * 1024 * 1024
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    # Bearer token (the secret itself; never printed).
    token: str | None = field(default=None, repr=False)
    require_token_for_ingest: bool = True
    # Reference store.
    references_dir: str | None = None
    reference_poll_interval: float = 5.0
    max_reference_bytes: int = 8 * 1024 * 1024
    # Windows and evaluation.
    windows: tuple[float, ...] = (300.0, 3600.0)
    slots_per_window: int = 10
    evaluation_interval: float = 30.0
    # State.
    state_dir: str | None = None
    series_ttl: float = 7200.0
    max_streams_per_model: int = 5000
    max_series_per_model: int = 100_000
    # Overload.
    max_points_per_second: float = 0.0
    max_loop_lag: float = 2.0
    retry_after: float = 1.0
    # Export.
    export_endpoint: str | None = DEFAULT_EXPORT
    export_protocol: str = "auto"
    export_headers: tuple[tuple[str, str], ...] = ()
    export_timeout: float = 10.0
    export_queue_size: int = 16
    # Drift policy (a PolicyBook mapping: defaults, ``features:``, ``models:``), deep-frozen.
    drift: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    log_level: str = "info"

    def __post_init__(self) -> None:
        for name in ("grpc_endpoint", "http_endpoint", "export_endpoint"):
            value = getattr(self, name)
            if isinstance(value, str) and value.strip().lower() in ("", "none", "off"):
                object.__setattr__(self, name, None)  # "none" disables (usable from flags)
        for name in ("grpc_endpoint", "http_endpoint"):
            value = getattr(self, name)
            if value is not None:
                parse_host_port(value, _KEY_OF[name])
        _positive_int(self.max_request_bytes, "receivers.max_request_bytes", low=1024)
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ConfigurationError("receivers.tls: cert_file and key_file must be given together")
        for name in ("tls_cert_file", "tls_key_file"):
            path = getattr(self, name)
            if path is not None and not os.path.isfile(path):
                raise ConfigurationError(f"{_KEY_OF[name]}: no such file {path!r}")
        if self.token is not None and (not self.token or any(c.isspace() for c in self.token)):
            raise ConfigurationError("auth.token: must be non-empty and contain no whitespace")
        if self.references_dir is not None and os.path.exists(self.references_dir) and not os.path.isdir(
            self.references_dir
        ):
            raise ConfigurationError(f"references.directory: {self.references_dir!r} is not a directory")
        _positive(self.reference_poll_interval, "references.poll_interval")
        _positive_int(self.max_reference_bytes, "references.max_upload_bytes", low=1024)
        if not self.windows:
            raise ConfigurationError("windows: at least one window is required")
        if len(self.windows) > 8:
            raise ConfigurationError("windows: at most 8 windows")
        if len({window_label(w) for w in self.windows}) != len(self.windows):
            raise ConfigurationError(f"windows: duplicate window {list(self.windows)}")
        for w in self.windows:
            _positive(w, "windows")
            if w < 1:
                raise ConfigurationError(f"windows: each window must be at least 1 second, got {w}")
        _positive_int(self.slots_per_window, "slots_per_window", low=2, high=120)
        _positive(self.evaluation_interval, "evaluation.interval")
        _positive(self.series_ttl, "state.series_ttl")
        _positive_int(self.max_streams_per_model, "state.max_streams_per_model")
        _positive_int(self.max_series_per_model, "state.max_series_per_model")
        if not _is_number(self.max_points_per_second) or self.max_points_per_second < 0:
            raise ConfigurationError("overload.max_points_per_second: must be a number >= 0 (0 = no limit)")
        _positive(self.max_loop_lag, "overload.max_loop_lag")
        _positive(self.retry_after, "overload.retry_after")
        if self.export_endpoint is not None:
            check_export_endpoint(self.export_endpoint)
        if self.export_protocol not in ("auto", "grpc", "http/protobuf"):
            raise ConfigurationError(
                f"export.protocol: must be 'auto', 'grpc' or 'http/protobuf', got {self.export_protocol!r}"
            )
        _positive(self.export_timeout, "export.timeout")
        _positive_int(self.export_queue_size, "export.queue_size", high=10_000)
        if self.log_level not in ("debug", "info", "warning", "error"):
            raise ConfigurationError(f"log_level: must be debug, info, warning or error, got {self.log_level!r}")
        self.policy_book()  # validates the drift mapping, naming the key

    # --- derived -----------------------------------------------------------------------------
    def policy_book(self) -> Any:
        """The :class:`otel_ml.stats.PolicyBook` of the ``drift:`` section."""
        from otel_ml.stats import PolicyBook

        return PolicyBook.from_mapping(_thaw(self.drift), source="drift")

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None

    @property
    def window_labels(self) -> tuple[str, ...]:
        return tuple(window_label(w) for w in self.windows)

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)


_KEY_OF = {
    "grpc_endpoint": "receivers.otlp_grpc",
    "http_endpoint": "receivers.otlp_http",
    "tls_cert_file": "receivers.tls.cert_file",
    "tls_key_file": "receivers.tls.key_file",
}


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


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_export_endpoint(value: str) -> None:
    if not isinstance(value, str) or not re.match(r"^(https?://)?[^\s/:]+(:\d+)?(/\S*)?$", value) or (
        "://" not in value and ":" not in value
    ):
        raise ConfigurationError(
            f"export.endpoint: must be a URL such as http://127.0.0.1:4317 or HOST:PORT, got {value!r}"
        )


def parse_duration(value: Any, key: str) -> float:
    """Seconds from a number or a string such as ``"30s"``, ``"5m"``, ``"1h"``."""
    if _is_number(value):
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2)]
    raise ConfigurationError(f"{key}: must be a duration in seconds or like '30s', '5m', '1h', got {value!r}")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and v not in (float("inf"), float("-inf"))


def _positive(v: Any, key: str) -> None:
    if not _is_number(v) or v <= 0:
        raise ConfigurationError(f"{key}: must be a positive number, got {v!r}")


def _positive_int(v: Any, key: str, *, low: int = 1, high: int | None = None) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < low or (high is not None and v > high):
        rng = f">= {low}" + (f" and <= {high}" if high is not None else "")
        raise ConfigurationError(f"{key}: must be an integer {rng}, got {v!r}")


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


# --- YAML schema ---------------------------------------------------------------------------------
# key path -> (Config field, converter). A ``None`` field marks a section (a nested mapping).
_SECTIONS = {"receivers", "receivers.tls", "auth", "references", "evaluation", "state", "overload", "export"}


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


def _bool(v: Any, key: str) -> bool:
    if not isinstance(v, bool):
        raise ConfigurationError(f"{key}: must be true or false, got {v!r}")
    return v


def _number(v: Any, key: str) -> float:
    if not _is_number(v):
        raise ConfigurationError(f"{key}: must be a number, got {v!r}")
    return float(v)


def _windows(v: Any, key: str) -> tuple[float, ...]:
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
    if v is None:
        return None
    return read_token_file(_str(v, key), key)


def _drift(v: Any, key: str) -> Mapping[str, Any]:
    if v is None:
        return MappingProxyType({})
    if not isinstance(v, Mapping):
        raise ConfigurationError(f"{key}: must be a mapping (policy fields, 'features:', 'models:')")
    return _freeze(v)


_FIELDS: dict[str, tuple[str, Any]] = {
    "receivers.otlp_grpc": ("grpc_endpoint", _opt_str),
    "receivers.otlp_http": ("http_endpoint", _opt_str),
    "receivers.max_request_bytes": ("max_request_bytes", _int),
    "receivers.tls.cert_file": ("tls_cert_file", _opt_str),
    "receivers.tls.key_file": ("tls_key_file", _opt_str),
    "auth.token_file": ("token", _token_file),
    "auth.require_for_ingest": ("require_token_for_ingest", _bool),
    "references.directory": ("references_dir", _opt_str),
    "references.poll_interval": ("reference_poll_interval", parse_duration),
    "references.max_upload_bytes": ("max_reference_bytes", _int),
    "windows": ("windows", _windows),
    "evaluation.interval": ("evaluation_interval", parse_duration),
    "evaluation.slots_per_window": ("slots_per_window", _int),
    "state.directory": ("state_dir", _opt_str),
    "state.series_ttl": ("series_ttl", parse_duration),
    "state.max_streams_per_model": ("max_streams_per_model", _int),
    "state.max_series_per_model": ("max_series_per_model", _int),
    "overload.max_points_per_second": ("max_points_per_second", _number),
    "overload.max_loop_lag": ("max_loop_lag", parse_duration),
    "overload.retry_after": ("retry_after", parse_duration),
    "export.endpoint": ("export_endpoint", _opt_str),
    "export.protocol": ("export_protocol", _str),
    "export.headers": ("export_headers", _headers),
    "export.timeout": ("export_timeout", parse_duration),
    "export.queue_size": ("export_queue_size", _int),
    "drift": ("drift", _drift),
    "log_level": ("log_level", _str),
}


def read_token_file(path: str, key: str = "--token-file") -> str:
    try:
        with open(path, encoding="utf-8") as f:
            token = f.read().strip()
    except OSError as exc:
        raise ConfigurationError(f"{key}: cannot read token file {path!r} ({exc.strerror})") from None
    if not token:
        raise ConfigurationError(f"{key}: token file {path!r} is empty")
    return token


def _walk(doc: Mapping[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for k, v in doc.items():
        if not isinstance(k, str):
            raise ConfigurationError(f"{prefix or 'config'}: keys must be strings, got {k!r}")
        path = f"{prefix}.{k}" if prefix else k
        if path in _SECTIONS:
            if v is None:
                continue
            if not isinstance(v, Mapping):
                raise ConfigurationError(f"{path}: must be a mapping")
            _walk(v, path, out)
        elif path in _FIELDS:
            out[path] = v
        else:
            siblings = [p.rsplit(".", 1)[-1] for p in (*_FIELDS, *_SECTIONS) if p.rpartition(".")[0] == prefix]
            hint = difflib.get_close_matches(k, siblings, n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else f" (known: {', '.join(sorted(set(siblings)))})"
            raise ConfigurationError(f"{path}: unknown key{extra}")


def from_mapping(doc: Mapping[str, Any] | None, *, overrides: Mapping[str, Any] | None = None,
                 env: Mapping[str, str] | None = None) -> Config:
    """Build a :class:`Config` from a parsed YAML document plus flag ``overrides`` (Config field names)."""
    if doc is None:
        doc = {}
    if not isinstance(doc, Mapping):
        raise ConfigurationError("config: the top level must be a mapping")
    flat: dict[str, Any] = {}
    _walk(doc, "", flat)
    values: dict[str, Any] = {}
    env = os.environ if env is None else env
    if env.get(TOKEN_ENV):
        values["token"] = env[TOKEN_ENV].strip()
    for path, raw in flat.items():
        name, conv = _FIELDS[path]
        values[name] = conv(raw, path)
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = value
    try:
        return Config(**values)
    except TypeError as exc:  # pragma: no cover - programming error in overrides
        raise ConfigurationError(str(exc)) from None


def load_config(path: str | None = None, *, overrides: Mapping[str, Any] | None = None,
                env: Mapping[str, str] | None = None) -> Config:
    """Read the YAML file at ``path`` (optional) and apply flag ``overrides``."""
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
