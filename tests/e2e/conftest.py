"""Fixtures for the end-to-end tests: a real OpenTelemetry Collector, a real Prometheus, an OTLP sink.

    def test_drift_reaches_prometheus(otelcol, prometheus, otlp_sink):
        col = otelcol(COLLECTOR_CONFIG, env={
            "OTEL_ML_PROCESSOR_ENDPOINT": otlp_sink.endpoint,        # or a real processor's
            "PROMETHEUS_REMOTE_WRITE_URL": prometheus.remote_write_url,
        })
        ...send OTLP to col.otlp_grpc (host:port) or col.otlp_http_url...
        prometheus.wait_for('ml_drift_detected{ml_feature_name="age"} == 1')
        assert prometheus.promql("sum(ml_predict_rows_total)")[0]["value"][1] == "100"

Fixtures: ``otelcol`` (factory), ``prometheus`` (one per test; ``prometheus_factory`` for more or for
rule files), ``otel_ml_processor`` (factory: the real processor as a subprocess), ``otlp_sink`` (a stub
OTLP/gRPC receiver), ``spawn`` (any other process, e.g. a traffic app), ``otelcol_binary``,
``prometheus_binary``, ``promtool_binary``. Module-scoped scenarios can call ``_components`` directly
(the collector and Prometheus launchers there come from ``otel_ml_demo.components``).

Every component writes its log under the test's tmp dir; when a test fails, the tails of all of them are
added to its report. A component that is not installed fails the test (never skips) with the command
that installs it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from . import _components as c
from ._components import (  # noqa: F401 - re-exported for tests
    COLLECTOR_CONFIG,
    LOADBALANCING_CONFIG,
    Collector,
    OtlpSink,
    Processor,
    Prometheus,
    wait_until,
)

_LOGS_KEY = pytest.StashKey[list[tuple[str, Path]]]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]):
    outcome = yield
    report = outcome.get_result()
    if report.failed and report.when in ("setup", "call"):
        for name, path in item.stash.get(_LOGS_KEY, []):
            report.sections.append((f"{name} log ({path})", c.tail(path, 150)))


def _register_log(request: pytest.FixtureRequest, name: str, path: Path) -> None:
    request.node.stash.setdefault(_LOGS_KEY, []).append((name, path))


def _require(get: Callable[[], Path]) -> Path:
    try:
        return get()
    except c.ComponentMissing as exc:
        message = str(exc)
    pytest.fail(message, pytrace=False)


def _component_factory(
    request: pytest.FixtureRequest, tmp_path: Path, prefix: str, starter: Callable[..., Any]
) -> tuple[Callable[..., Any], Callable[[], None]]:
    """A start function naming each component ``prefix``, ``prefix-1``, ... with its log kept for the
    report, and the matching stop-all function (last started, first stopped)."""
    started: list[Any] = []

    def start(*args: Any, **kwargs: Any) -> Any:
        name = kwargs.setdefault("name", f"{prefix}-{len(started)}" if started else prefix)
        _register_log(request, name, tmp_path / f"{name}.log")
        component = starter(*args, **kwargs)
        started.append(component)
        return component

    def stop_all() -> None:
        for component in reversed(started):
            component.stop()

    return start, stop_all


@pytest.fixture(scope="session")
def otelcol_binary() -> Path:
    """Path of the collector built from collector/builder/manifest.yaml (fails if not built)."""
    return _require(c.otelcol_binary)


@pytest.fixture(scope="session")
def prometheus_binary() -> Path:
    return _require(c.prometheus_binary)


@pytest.fixture(scope="session")
def promtool_binary() -> Path:
    return _require(lambda: c.prometheus_binary("promtool"))


@pytest.fixture
def otelcol(
    request: pytest.FixtureRequest, tmp_path: Path, otelcol_binary: Path
) -> Iterator[Callable[..., Collector]]:
    """Factory: ``otelcol(config_path, env={...}, overrides=[{...}], name="otelcol")`` -> Collector.

    Starts the collector from the config file as it is (``${env:...}`` placeholders filled from
    ``env`` plus free ports for its own OTLP/health endpoints), waits for its health check, and stops
    it after the test. See ``otel_ml_demo.components.start_collector`` for the details.
    """
    start, stop_all = _component_factory(
        request, tmp_path, "otelcol", lambda config, **kw: c.start_collector(config, tmp_path, **kw)
    )
    yield start
    stop_all()


@pytest.fixture
def prometheus_factory(
    request: pytest.FixtureRequest, tmp_path: Path, prometheus_binary: Path
) -> Iterator[Callable[..., Prometheus]]:
    """Factory: ``prometheus_factory(rule_files=[...], name="prometheus")`` -> Prometheus."""
    start, stop_all = _component_factory(
        request, tmp_path, "prometheus", lambda **kw: c.start_prometheus(tmp_path, **kw)
    )
    yield start
    stop_all()


@pytest.fixture
def prometheus(prometheus_factory: Callable[..., Prometheus]) -> Prometheus:
    """A fresh Prometheus for this test: ``.remote_write_url``, ``.promql(q)``, ``.wait_for(q)``,
    ``.metric_names()``, ``.series(match)``, ``.exemplars(q, start, end)``."""
    return prometheus_factory()


@pytest.fixture
def otel_ml_processor(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., c.Processor]]:
    """Factory: ``otel_ml_processor(references=dir, export_to=collector.otlp_grpc, otlp_grpc=None,
    windows=(30, 60), evaluation_interval=1, name=...)`` -> Processor (``.otlp_grpc``, ``.http``,
    ``.restart(crash=False, down_for=0)``); waits for /readyz, stops it after the test."""
    start, stop_all = _component_factory(
        request, tmp_path, "otel-ml-processor", lambda **kw: c.start_processor(tmp_path, **kw)
    )
    yield start
    stop_all()


@pytest.fixture
def spawn(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., c.Process]]:
    """Factory: ``spawn(name, argv, env=None)`` -> a started Process (an app, a traffic generator)
    with its log under tmp_path (shown on failure); stopped after the test."""
    started: list[c.Process] = []

    def start(name: str, argv: list[str], env: dict[str, str] | None = None) -> c.Process:
        log = tmp_path / f"{name}.log"
        _register_log(request, name, log)
        proc = c.Process(name, [str(a) for a in argv], log, env=env, cwd=tmp_path).start()
        started.append(proc)
        return proc

    yield start
    for proc in reversed(started):
        proc.stop()


@pytest.fixture
def otlp_sink() -> Iterator[OtlpSink]:
    """An OTLP/gRPC metrics receiver that records what it gets (stands in for the processor)."""
    sink = OtlpSink()
    yield sink
    sink.stop()
