"""The real components the demo's ``--pipeline`` mode runs, shared with the end-to-end tests: the
OpenTelemetry Collector built from this repository's manifest, and Prometheus.

``scripts/e2e-components.sh`` (run by ``make components`` and ``make test``) builds the collector into a
cache keyed by the hash of ``collector/builder/manifest.yaml`` and installs Prometheus; this module
finds them, starts them on free loopback ports with their logs in a work directory, and stops them.
The collector runs the user-facing configs of ``collector/config/`` as they are, so this needs a
checkout of the repository (an editable install); :func:`require_checkout` says so clearly.

A missing component raises :class:`ComponentMissing` with the command that fixes it.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import yaml

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "collector" / "builder" / "manifest.yaml"
CONFIG_DIR = REPO / "collector" / "config"
#: The user-facing configs, run as they are (so they cannot rot).
COLLECTOR_CONFIG = CONFIG_DIR / "otel-ml-collector.yaml"
LOADBALANCING_CONFIG = CONFIG_DIR / "otel-ml-loadbalancing.yaml"
SETUP_HINT = "run `scripts/e2e-components.sh` (or `make components`) first"

# Environment variables the configs in collector/config/ read (``${env:NAME:-default}``).
ENV_OTLP_GRPC = "OTELCOL_OTLP_GRPC_ENDPOINT"
ENV_OTLP_HTTP = "OTELCOL_OTLP_HTTP_ENDPOINT"
ENV_HEALTH = "OTELCOL_HEALTH_ENDPOINT"
ENV_PROCESSOR = "OTEL_ML_PROCESSOR_ENDPOINT"
ENV_REPLICA = "OTEL_ML_PROCESSOR_REPLICA_{}"  # .format(1), .format(2)
ENV_REMOTE_WRITE = "PROMETHEUS_REMOTE_WRITE_URL"

T = TypeVar("T")


class ComponentMissing(RuntimeError):
    """The collector or Prometheus is not installed or not built, or this is not a repository checkout."""


# --- Locating the binaries -----------------------------------------------------------------------


def cache_dir() -> Path:
    """Root of the component cache; the same rule as scripts/e2e-components.sh."""
    if os.environ.get("OTEL_ML_CACHE_DIR"):
        return Path(os.environ["OTEL_ML_CACHE_DIR"])
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "otel-ml"


def manifest_hash() -> str:
    """First 16 hex digits of the manifest's sha256: the collector's cache key."""
    return hashlib.sha256(MANIFEST.read_bytes()).hexdigest()[:16]


def require_checkout() -> None:
    """Raise :class:`ComponentMissing` unless this module runs from a checkout of the repository: the
    collector's manifest and the configs it runs live there, not in the installed package."""
    missing = [p for p in (MANIFEST, COLLECTOR_CONFIG) if not p.is_file()]
    if missing:
        raise ComponentMissing(
            f"{missing[0]} not found: the real collector and Prometheus run from a checkout of the otel-ml "
            "repository (an editable install: pip install -e .)"
        )


def otelcol_binary() -> Path:
    """The collector built from the current manifest (or ``$OTEL_ML_OTELCOL``)."""
    override = os.environ.get("OTEL_ML_OTELCOL")
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ComponentMissing(f"OTEL_ML_OTELCOL={override} is not an executable file")
        return path
    require_checkout()
    path = cache_dir() / f"otelcol-{manifest_hash()}" / "otelcol-ml"
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ComponentMissing(
            f"the OpenTelemetry Collector built from {MANIFEST.relative_to(REPO)} "
            f"is not at {path}: {SETUP_HINT}"
        )
    return path


def prometheus_binary(name: str = "prometheus") -> Path:
    """``prometheus`` or ``promtool`` from PATH (Debian's package)."""
    found = shutil.which(name)
    if not found:
        raise ComponentMissing(f"`{name}` is not on PATH: {SETUP_HINT}")
    return Path(found)


# --- Small helpers ---------------------------------------------------------------------------------

_handed_out: set[int] = set()
_port_lock = threading.Lock()


def free_port() -> int:
    """A TCP port free on 127.0.0.1, never the same twice in one process."""
    with _port_lock:
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise RuntimeError("no free loopback port found")


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(
    predicate: Callable[[], T | None],
    *,
    timeout: float = 30.0,
    interval: float = 0.25,
    message: str | Callable[[], str] = "condition",
) -> T:
    """Call ``predicate`` until it returns something truthy; return that, or raise TimeoutError.

    Exceptions from the predicate count as "not yet"; the last one is chained to the TimeoutError.
    ``message`` (or a callable building it, e.g. with the last value seen) names what was awaited.
    """
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last_exc = None
        except Exception as exc:
            last_exc = exc
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {text}") from last_exc
        time.sleep(interval)


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def answers_ok(url: str) -> bool:
    """True when ``url`` answers 200 within a second (a health or readiness probe)."""
    try:
        status, _ = http_get(url, timeout=1)
    except OSError:
        return False
    return status == 200


def tail(path: Path, lines: int = 200) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log file)"
    return "\n".join(text.splitlines()[-lines:])


# --- Processes --------------------------------------------------------------------------------------

_live: weakref.WeakSet[Process] = weakref.WeakSet()


@atexit.register
def _kill_leftovers() -> None:
    """Safety net: no component outlives this process (its owner normally stops it)."""
    for proc in list(_live):
        proc.kill()


@dataclass(eq=False)
class Process:
    """A child process whose stdout+stderr go to ``log_path``."""

    name: str
    argv: list[str]
    log_path: Path
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _log: IO[bytes] | None = field(default=None, init=False, repr=False)

    def start(self) -> Process:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        log.write(f"$ {' '.join(self.argv)}\n".encode())
        log.flush()
        self._log = log
        self._proc = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(self.env) if self.env is not None else None,
            cwd=self.cwd,
            start_new_session=True,
        )
        _live.add(self)
        return self

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc else None

    def check_running(self) -> None:
        """Raise with the log's tail if the process has exited."""
        if not self.running:
            raise RuntimeError(
                f"{self.name} exited with code {self.returncode}; log {self.log_path}:\n"
                f"{tail(self.log_path, 60)}"
            )

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; idempotent."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """SIGKILL at once (a crash)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(5)


# --- The collector ---------------------------------------------------------------------------------


@dataclass
class Collector:
    """A running ``otelcol-ml`` with its endpoints.

    ``otlp_grpc`` / ``otlp_http`` are ``host:port`` of its OTLP receiver (``otlp_http_url`` adds the
    scheme), ``metrics_url`` its own Prometheus self-metrics (otelcol_exporter_sent_metric_points ...).
    """

    process: Process
    config_files: list[Path]
    env: dict[str, str]
    otlp_grpc: str
    otlp_http: str
    health: str
    metrics_url: str

    @property
    def otlp_http_url(self) -> str:
        return f"http://{self.otlp_http}"

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def healthy(self) -> bool:
        self.process.check_running()
        return answers_ok(f"http://{self.health}/")

    def wait_healthy(self, timeout: float = 60.0) -> Collector:
        wait_until(self.healthy, timeout=timeout, message=f"collector health at {self.health}")
        host, port = self.otlp_grpc.rsplit(":", 1)
        wait_until(lambda: port_open(host, int(port)), timeout=10, message="collector OTLP port")
        return self

    def self_metric(self, name: str) -> float:
        """Sum of one of the collector's own metrics over all label sets (0 if absent)."""
        _, body = http_get(self.metrics_url)
        total = 0.0
        for line in body.decode().splitlines():
            if line.startswith((name + " ", name + "{")):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self) -> None:
        self.process.stop()


def start_collector(
    config: Path | str,
    workdir: Path,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Iterable[Mapping[str, Any]] = (),
    name: str = "otelcol",
    wait: bool = True,
) -> Collector:
    """Start the collector from ``config`` (a file in collector/config/ or any YAML path), as it is.

    Ports: free loopback ports are put into ``OTELCOL_OTLP_GRPC_ENDPOINT``, ``OTELCOL_OTLP_HTTP_ENDPOINT``
    and ``OTELCOL_HEALTH_ENDPOINT`` unless ``env`` sets them; pass the others the config reads
    (``OTEL_ML_PROCESSOR_ENDPOINT``, ``PROMETHEUS_REMOTE_WRITE_URL``...) in ``env``.

    ``overrides``: extra config maps the collector merges over the file (it takes several --config;
    maps merge, lists replace), e.g. ``{"exporters": {"file/e2e": {...}}, "service": {"pipelines":
    {"traces": {"exporters": ["debug", "file/e2e"]}}}}``. This function itself adds one that moves the
    collector's self-metrics to a free port and, if the config has no health_check, adds one.
    """
    binary = otelcol_binary()
    config_path = Path(config)
    workdir.mkdir(parents=True, exist_ok=True)
    raw = yaml.safe_load(config_path.read_text()) or {}

    grpc_port, http_port, health_port, metrics_port = (free_port() for _ in range(4))
    full_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "OTELCOL_", "PROMETHEUS_"))
    }
    full_env.update(
        {
            ENV_OTLP_GRPC: f"127.0.0.1:{grpc_port}",
            ENV_OTLP_HTTP: f"127.0.0.1:{http_port}",
            ENV_HEALTH: f"127.0.0.1:{health_port}",
        }
    )
    full_env.update(env or {})

    # Our own overlay: self-metrics on a free port (two collectors must not fight over :8888), and
    # a health_check extension if the config has none.
    service = raw.get("service") or {}
    extensions = list(service.get("extensions") or [])
    overlay: dict[str, Any] = {
        "service": {
            "telemetry": {
                "logs": {"level": "info"},
                "metrics": {
                    "readers": [
                        {
                            "pull": {
                                "exporter": {
                                    "prometheus": {"host": "127.0.0.1", "port": metrics_port}
                                }
                            }
                        }
                    ]
                },
            }
        }
    }
    if not any(e == "health_check" or str(e).startswith("health_check/") for e in extensions):
        overlay["extensions"] = {"health_check/e2e": {"endpoint": f"${{env:{ENV_HEALTH}}}"}}
        overlay["service"]["extensions"] = [*extensions, "health_check/e2e"]

    files = [config_path]
    for i, extra in enumerate([overlay, *overrides]):
        path = workdir / f"{name}.override-{i}.yaml"
        path.write_text(yaml.safe_dump(extra, sort_keys=False))
        files.append(path)

    argv = [str(binary)]
    for f in files:
        argv += ["--config", str(f)]
    process = Process(name, argv, workdir / f"{name}.log", env=full_env, cwd=workdir).start()
    collector = Collector(
        process=process,
        config_files=files,
        env=full_env,
        otlp_grpc=full_env[ENV_OTLP_GRPC],
        otlp_http=full_env[ENV_OTLP_HTTP],
        health=full_env[ENV_HEALTH],
        metrics_url=f"http://127.0.0.1:{metrics_port}/metrics",
    )
    if wait:
        try:
            collector.wait_healthy()
        except BaseException:
            collector.stop()
            raise
    return collector


# --- Prometheus ------------------------------------------------------------------------------------


class PromQLError(RuntimeError):
    pass


@dataclass
class Prometheus:
    """A running Prometheus (remote-write receiver and exemplar storage on) and its HTTP API."""

    process: Process
    port: int
    data_dir: Path
    config_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def remote_write_url(self) -> str:
        """What the collector's prometheus_remote_write exporter posts to."""
        return f"{self.url}/api/v1/write"

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    def api(self, path: str, **params: Any) -> Any:
        """GET ``/api/v1/<path>`` and return its ``data``; raise PromQLError on an API error."""
        query = urllib.parse.urlencode(
            [(k, v) for k, vs in params.items() if vs is not None
             for v in (vs if isinstance(vs, (list, tuple)) else [vs])]
        )
        status, body = http_get(f"{self.url}/api/v1/{path}?{query}", timeout=10)
        try:
            payload = json.loads(body)
        except ValueError:
            raise PromQLError(f"{path}: HTTP {status}: {body[:300]!r}") from None
        if payload.get("status") != "success":
            raise PromQLError(f"{path} {params}: {payload.get('errorType')}: {payload.get('error')}")
        return payload["data"]

    def promql(self, query: str, time: float | None = None) -> list[dict[str, Any]]:
        """Instant query; returns ``data.result`` (for a vector: [{"metric": {...}, "value": [t, "v"]}])."""
        data = self.api("query", query=query, time=time)
        return data["result"] if data["resultType"] in ("vector", "matrix") else [data["result"]]

    def values(self, query: str) -> dict[tuple[tuple[str, str], ...], float]:
        """Instant vector query as {sorted label items: float value}."""
        return {
            tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in self.promql(query)
        }

    def metric_names(self) -> list[str]:
        """Every metric name Prometheus stores (``/api/v1/label/__name__/values``)."""
        return list(self.api("label/__name__/values"))

    def series(self, match: str) -> list[dict[str, str]]:
        return list(self.api("series", **{"match[]": match}))

    def exemplars(self, query: str, start: float, end: float) -> list[dict[str, Any]]:
        return list(self.api("query_exemplars", query=query, start=start, end=end))

    def wait_for(
        self,
        query: str,
        predicate: Callable[[list[dict[str, Any]]], bool] = bool,
        timeout: float = 60.0,
    ) -> list[dict[str, Any]]:
        """Re-run ``query`` until ``predicate(result)`` holds (default: non-empty); return the result."""
        last: list[Any] = []

        def check() -> list[dict[str, Any]] | None:
            nonlocal last
            last = self.promql(query)
            return last if predicate(last) else None

        return wait_until(
            check, timeout=timeout, interval=0.5, message=lambda: f"PromQL {query!r}; last: {last}"
        )

    def wait_for_names(self, names: Iterable[str], timeout: float = 60.0) -> list[str]:
        wanted = set(names)
        seen: list[str] = []

        def check() -> bool:
            nonlocal seen
            seen = self.metric_names()
            return wanted <= set(seen)

        wait_until(
            check,
            timeout=timeout,
            interval=0.5,
            message=lambda: f"metric names {sorted(wanted - set(seen))}; stored: {sorted(seen)}",
        )
        return seen

    def stop(self) -> None:
        self.process.stop()


def start_prometheus(
    workdir: Path,
    *,
    rule_files: Iterable[Path] = (),
    evaluation_interval: str = "1s",
    name: str = "prometheus",
) -> Prometheus:
    """Start Prometheus on a free loopback port with a fresh data dir under ``workdir``."""
    binary = prometheus_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = {
        "global": {"scrape_interval": "15s", "evaluation_interval": evaluation_interval},
        "rule_files": [str(Path(p).resolve()) for p in rule_files],
        "scrape_configs": [],
    }
    config_path = workdir / f"{name}.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    data_dir = workdir / f"{name}-data"
    argv = [
        str(binary),
        f"--config.file={config_path}",
        f"--storage.tsdb.path={data_dir}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-remote-write-receiver",
        "--enable-feature=exemplar-storage",
        "--storage.tsdb.retention.time=1d",
        "--log.level=info",
    ]
    process = Process(name, argv, workdir / f"{name}.log", cwd=workdir).start()
    prom = Prometheus(process=process, port=port, data_dir=data_dir, config_path=config_path)

    def ready() -> bool:
        process.check_running()
        status, _ = http_get(f"{prom.url}/-/ready", timeout=1)
        return status == 200

    try:
        wait_until(ready, timeout=60, message=f"prometheus ready on {prom.url}")
    except BaseException:
        prom.stop()
        raise
    return prom
