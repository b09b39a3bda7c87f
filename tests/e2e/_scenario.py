"""Shared steps of the scenario tests: the user-facing pipeline (the real Collector running
collector/config/otel-ml-collector.yaml, the otel-ml processor, Prometheus), a traffic app of tests/e2e/
run to its end, one value read from Prometheus, and an alert's expression from dashboards/rules.py.

    references = tmp_path / "references"
    run_app(spawn, "references", TRAFFIC, "--references", references, "--write-references")
    col, processor = start_pipeline(otelcol, otel_ml_processor, prometheus, references)
    run_app(spawn, "app", TRAFFIC, "--endpoint", col.otlp_grpc, "--references", references, expect="sent")
    prometheus.wait_for(...)  # poll until the verdict series exist, then judge
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ._components import (
    COLLECTOR_CONFIG,
    ENV_PROCESSOR,
    ENV_REMOTE_WRITE,
    Collector,
    Processor,
    Prometheus,
    file_tap,
    free_port,
    wait_until,
)

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from dashboards import rules  # noqa: E402

#: The environment of a traffic app: the repository importable, nothing of the test's OTEL_* variables.
APP_ENV = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
#: Seconds: longer than a scenario, so the processor's one window ("2m") holds all of its traffic.
WINDOW = 120
WINDOW_LABEL = "2m"


def run_app(spawn: Callable[..., Any], name: str, script: Path, *args: Any, timeout: float = 120.0,
            expect: str | None = None) -> str:
    """Run ``python script *args`` to its end (``spawn`` keeps its log for the report); fail with the log
    unless it exits 0 and, with ``expect``, printed that. Returns the log."""
    app = spawn(name, [sys.executable, script, *args], env=APP_ENV)
    wait_until(lambda: not app.running, timeout=timeout, message=f"{name} to finish")
    log: str = app.log_path.read_text()
    assert app.returncode == 0 and (expect is None or expect in log), log
    return log


def start_pipeline(otelcol: Callable[..., Collector], otel_ml_processor: Callable[..., Processor],
                   prometheus: Prometheus, references: Path, *, taps: Mapping[str, Path] | None = None,
                   **processor_args: Any) -> tuple[Collector, Processor]:
    """The Collector (remote-writing to ``prometheus``; ``taps``: pipeline -> file that also receives its
    data as OTLP JSON lines) and the processor judging against ``references`` (one window of
    :data:`WINDOW` unless ``processor_args`` say otherwise), each exporting to the other."""
    processor_grpc = f"127.0.0.1:{free_port()}"
    overrides = [file_tap(COLLECTOR_CONFIG, pipeline, path, name=f"file/{pipeline.replace('/', '-')}")
                 for pipeline, path in (taps or {}).items()]
    col = otelcol(COLLECTOR_CONFIG, env={ENV_PROCESSOR: processor_grpc, ENV_REMOTE_WRITE: prometheus.remote_write_url},
                  overrides=overrides)
    processor_args.setdefault("windows", (WINDOW,))
    processor = otel_ml_processor(references=references, export_to=col.otlp_grpc, otlp_grpc=processor_grpc,
                                  **processor_args)
    return col, processor


def value(prometheus: Prometheus, query: str) -> float:
    """The value of ``query``, which must return exactly one series."""
    result = prometheus.promql(query)
    assert len(result) == 1, (query, result)
    return float(result[0]["value"][1])


def wait_for_values(prometheus: Prometheus, query: str, key: Callable[[dict[str, str]], Any],
                    expected: Mapping[Any, float], timeout: float = 30.0) -> dict[Any, float]:
    """Poll ``query`` until its series, as ``{key(labels): value}``, hold ``expected`` (other keys may come
    too); return them all. Verdicts settle over a few evaluations as the window fills, and a scrape can see
    one gauge of an evaluation before another: judge the state that holds, never the first one seen."""
    got: dict[Any, float] = {}

    def holds(result: list[dict[str, Any]]) -> bool:
        nonlocal got
        got = {key(r["metric"]): float(r["value"][1]) for r in result}
        return {k: got.get(k) for k in expected} == dict(expected)

    try:
        prometheus.wait_for(query, holds, timeout=timeout)
    except TimeoutError:
        pass  # the caller's assertion shows what was there
    return got


def alert_expr(name: str) -> str:
    """The expression of alert ``name`` exactly as dashboards/rules.py defines it (and the rules file holds)."""
    found = [a.expr for a in rules.ALERTS if a.name == name]
    assert found, f"no alert {name!r} in dashboards/rules.py"
    return found[0]
