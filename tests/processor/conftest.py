"""Fixtures for the processor tests: an OTLP sink, a processor subprocess, references."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from .payloads import make_reference

ROOT = Path(__file__).resolve().parents[2]
READY = re.compile(r"otel-ml processor ready grpc=(\S+) http=(\S+)")


class Sink:
    """An OTLP/gRPC metrics receiver that keeps every request (what the processor exports)."""

    def __init__(self) -> None:
        self.requests: list[ExportMetricsServiceRequest] = []
        self.lock = threading.Lock()
        self.fail_next = 0
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))

        def export(request: bytes, context: grpc.ServicerContext) -> bytes:
            if self.fail_next > 0:
                self.fail_next -= 1
                context.abort(grpc.StatusCode.UNAVAILABLE, "sink says retry")
            with self.lock:
                self.requests.append(ExportMetricsServiceRequest.FromString(request))
            return ExportMetricsServiceResponse().SerializeToString()

        handler = grpc.method_handlers_generic_handler(
            "opentelemetry.proto.collector.metrics.v1.MetricsService",
            {"Export": grpc.unary_unary_rpc_method_handler(export)},
        )
        self.server.add_generic_rpc_handlers((handler,))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def points(self, name: str, since: int = 0) -> list[tuple[dict[str, str], float, int]]:
        """(attributes, value, request index) of every data point of metric ``name``."""
        out = []
        with self.lock:
            reqs = list(enumerate(self.requests))[since:]
        for i, req in reqs:
            for rm in req.resource_metrics:
                for sm in rm.scope_metrics:
                    for m in sm.metrics:
                        if m.name != name:
                            continue
                        data = m.gauge.data_points if m.HasField("gauge") else m.sum.data_points
                        for dp in data:
                            attrs = {kv.key: kv.value.string_value for kv in dp.attributes}
                            v = dp.as_double if dp.WhichOneof("value") == "as_double" else dp.as_int
                            out.append((attrs, v, i))
        return out

    def latest(self, name: str, **match: str) -> dict[tuple[str, ...], float]:
        """The last value per attribute set (as a sorted tuple of items) of ``name`` matching ``match``."""
        out: dict[tuple[str, ...], float] = {}
        for attrs, v, _ in self.points(name):
            if all(attrs.get(k.replace("_", ".")) == val for k, val in match.items()):
                out[tuple(sorted(attrs.items()))] = v  # type: ignore[arg-type]
        return out

    def resources(self) -> list[dict[str, str]]:
        with self.lock:
            return [{kv.key: kv.value.string_value for kv in rm.resource.attributes}
                    for req in self.requests for rm in req.resource_metrics]

    def stop(self) -> None:
        self.server.stop(0)


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.stop()


class Proc:
    """A processor subprocess on free loopback ports."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        cmd = [sys.executable, "-m", "otel_ml_processor", "--otlp-grpc", "127.0.0.1:0", "--otlp-http",
               "127.0.0.1:0", *args]
        full_env = {**os.environ, **(env or {})}
        self.p = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=full_env,
                                  cwd=cwd)
        self.lines: list[str] = []
        self.grpc = self.http = ""
        ready = threading.Event()

        def reader() -> None:
            assert self.p.stderr is not None
            for line in self.p.stderr:
                self.lines.append(line)
                m = READY.search(line)
                if m:
                    self.grpc, self.http = m.group(1), m.group(2)
                    ready.set()
            ready.set()

        threading.Thread(target=reader, daemon=True).start()
        if not ready.wait(20) or not self.grpc:
            self.p.kill()
            raise RuntimeError("processor did not start:\n" + "".join(self.lines))

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def stop(self, timeout: float = 20) -> int:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            raise

    def alive(self) -> bool:
        return self.p.poll() is None


@pytest.fixture
def start_processor() -> Iterator[Any]:
    procs: list[Proc] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Proc:
        p = Proc(list(args), env=env)
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.alive():
            p.p.kill()
        p.p.wait()
        if p.p.stderr is not None:
            p.p.stderr.close()


@pytest.fixture
def ref_dir(tmp_path: Path) -> Path:
    d = tmp_path / "refs"
    d.mkdir()
    make_reference().save(d / "churn.json")
    return d


def wait_for(predicate: Any, timeout: float = 15.0, interval: float = 0.1) -> Any:
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {getattr(predicate, '__name__', predicate)}")
        time.sleep(interval)
