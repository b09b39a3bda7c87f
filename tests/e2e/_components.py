"""Real components for the end-to-end tests: the collector and Prometheus (from
``otel_ml_demo.components``, shared with ``otel-ml demo --pipeline``), plus what only the tests use:
the otel-ml processor as a subprocess, an OTLP sink, and a file tap on a collector pipeline.

The fixtures in ``conftest.py`` wrap it; use those in tests. A missing component is a test FAILURE
with the command that fixes it, never a skip: in CI a skip is a failure that nobody sees.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Iterable
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from otel_ml_demo.components import (  # noqa: F401 - re-exported for the tests
    COLLECTOR_CONFIG,
    CONFIG_DIR,
    ENV_HEALTH,
    ENV_OTLP_GRPC,
    ENV_OTLP_HTTP,
    ENV_PROCESSOR,
    ENV_REMOTE_WRITE,
    ENV_REPLICA,
    LOADBALANCING_CONFIG,
    MANIFEST,
    REPO,
    SETUP_HINT,
    Collector,
    ComponentMissing,
    Process,
    Prometheus,
    PromQLError,
    answers_ok,
    cache_dir,
    free_port,
    http_get,
    manifest_hash,
    otelcol_binary,
    port_open,
    prometheus_binary,
    start_collector,
    start_prometheus,
    tail,
    wait_until,
)

# --- A file tap on a collector pipeline ------------------------------------------------------------


def file_tap(config: Path | str, pipeline: str, path: Path, name: str = "file/e2e") -> dict[str, Any]:
    """An override for ``start_collector`` that ALSO writes ``pipeline``'s data (e.g. "traces",
    "metrics/otel-ml") to ``path`` as OTLP JSON lines, keeping the config's own exporters."""
    raw = yaml.safe_load(Path(config).read_text()) or {}
    exporters = list(raw["service"]["pipelines"][pipeline]["exporters"])
    return {
        "exporters": {name: {"path": str(path), "format": "json", "flush_interval": "100ms"}},
        "service": {"pipelines": {pipeline: {"exporters": [*exporters, name]}}},
    }


def read_file_tap(path: Path) -> list[dict[str, Any]]:
    """The OTLP JSON objects (ExportXServiceRequest shape) the file exporter wrote so far."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line:
            try:
                out.append(json.loads(line))
            except ValueError:  # a line being written right now
                continue
    return out


def tapped_spans(path: Path) -> list[dict[str, Any]]:
    """Every span (OTLP JSON: ``name``, ``traceId``, ``spanId``, ``parentSpanId`` ...) a file tap on the
    traces pipeline wrote so far."""
    return [span for req in read_file_tap(path) for rs in req.get("resourceSpans", [])
            for ss in rs.get("scopeSpans", []) for span in ss.get("spans", [])]


# --- The otel-ml processor -------------------------------------------------------------------------


@dataclass
class Processor:
    """A running otel-ml processor (``python -m otel_ml_processor``) on fixed loopback ports.

    ``otlp_grpc`` is what a collector's exporter points at; ``http`` serves /healthz, /readyz and the
    admin API. ``restart()`` stops it (SIGTERM, or SIGKILL with ``crash=True``) and starts it again on
    the same ports with the same state dir.
    """

    process: Process
    otlp_grpc: str
    http: str
    argv: list[str]
    env: dict[str, str]
    workdir: Path

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    def ready(self) -> bool:
        self.process.check_running()
        return answers_ok(f"http://{self.http}/readyz")

    def wait_ready(self, timeout: float = 60.0) -> Processor:
        wait_until(self.ready, timeout=timeout, message=f"otel-ml processor /readyz on {self.http}")
        return self

    def restart(self, *, crash: bool = False, down_for: float = 0.0) -> Processor:
        if crash:
            self.process.kill()
        self.process.stop()
        time.sleep(down_for)
        self.process = Process(self.process.name, self.argv, self.process.log_path, env=self.env,
                               cwd=self.workdir).start()
        return self.wait_ready()

    def stop(self) -> None:
        self.process.stop()


def start_processor(
    workdir: Path,
    *,
    references: Path,
    export_to: str,
    otlp_grpc: str | None = None,
    http: str | None = None,
    windows: Iterable[int | str] = (30, 60),
    evaluation_interval: float = 1.0,
    state_dir: Path | None = None,
    extra_args: Iterable[str] = (),
    name: str = "otel-ml-processor",
    wait: bool = True,
) -> Processor:
    """Start the otel-ml processor as a subprocess with its log in ``workdir``.

    ``export_to``: the collector's OTLP/gRPC ``host:port`` (``Collector.otlp_grpc``), where the drift
    gauges go. ``otlp_grpc``/``http``: listen addresses (default: free loopback ports; reserve one
    with ``free_port()`` when the collector must know it before the processor starts).
    """
    otlp_grpc = otlp_grpc or f"127.0.0.1:{free_port()}"
    http = http or f"127.0.0.1:{free_port()}"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO / "collector"), str(REPO), env.get("PYTHONPATH")])
    )
    argv = [
        sys.executable, "-m", "otel_ml_processor",
        "--otlp-grpc", otlp_grpc,
        "--otlp-http", http,
        "--references", str(references),
        "--export-endpoint", export_to if "://" in export_to else f"http://{export_to}",
        "--evaluation-interval", str(evaluation_interval),
        "--state-dir", str(state_dir or workdir / f"{name}-state"),
    ]
    for w in windows:
        argv += ["--window", str(w)]
    argv += list(extra_args)
    process = Process(name, argv, workdir / f"{name}.log", env=env, cwd=workdir).start()
    proc = Processor(process=process, otlp_grpc=otlp_grpc, http=http, argv=argv, env=env,
                     workdir=workdir)
    if wait:
        try:
            proc.wait_ready()
        except BaseException:
            proc.stop()
            raise
    return proc


# --- An OTLP/gRPC sink (stands in for the otel-ml processor) ---------------------------------------


class OtlpSink:
    """A small OTLP/gRPC server on a free loopback port that records every metrics export.

    ``endpoint`` is ``127.0.0.1:<port>``; ``requests`` the ExportMetricsServiceRequest messages seen.
    """

    def __init__(self, port: int | None = None) -> None:
        """``port``: listen there (e.g. the port of a stopped sink, to "restart" it); default: free."""
        import grpc
        from opentelemetry.proto.collector.metrics.v1 import (
            metrics_service_pb2,
            metrics_service_pb2_grpc,
        )

        sink = self
        self.requests: list[Any] = []
        self._lock = threading.Lock()

        class _Servicer(metrics_service_pb2_grpc.MetricsServiceServicer):
            def Export(self, request, context):
                with sink._lock:
                    sink.requests.append(request)
                return metrics_service_pb2.ExportMetricsServiceResponse()

        self.port = port or free_port()
        self.endpoint = f"127.0.0.1:{self.port}"
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_Servicer(), self._server)
        self._server.add_insecure_port(self.endpoint)
        self._server.start()

    def points(self) -> list[tuple[str, dict[str, Any]]]:
        """Every data point received, as (metric name, data point attributes)."""
        out: list[tuple[str, dict[str, Any]]] = []
        with self._lock:
            requests = list(self.requests)
        for req in requests:
            for rm in req.resource_metrics:
                for sm in rm.scope_metrics:
                    for m in sm.metrics:
                        kind = m.WhichOneof("data")
                        for dp in getattr(m, kind).data_points if kind else []:
                            attrs = {a.key: _any_value(a.value) for a in dp.attributes}
                            out.append((m.name, attrs))
        return out

    def metric_names(self) -> set[str]:
        return {name for name, _ in self.points()}

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def stop(self) -> None:
        self._server.stop(grace=0)


def _any_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None
