"""The export thread follows OpenTelemetry's conventions (issue 8) and never makes predict wait (issue 10.9).

- Our exports run with instrumentation suppressed: an application with requests instrumentation on
  sees no HTTP-client span of otel-ml's own exports (a real ``opentelemetry-instrumentation-requests``).
- Without a collector, stderr gets one otel-ml line, not the OTLP exporters' per-retry messages, and
  the failures are counted in ``ml.instrumentation.errors``.
- Everything the export needs is imported at set-up: the first export imports no module.
- The resource: the application's SDK MeterProvider's, else its TracerProvider's named service.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from opentelemetry import context as otel_context
from opentelemetry.sdk.metrics.export import MetricExportResult

import otel_ml
from otel_ml import semconv as M

from _otel_ml_support import (
    SPANS,
    MemoryExporter,
    otlp_http_server,
    reset_library,
    tracer_provider,
    value,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def otlp_http() -> Iterator[tuple[int, list[str]]]:
    """A real OTLP/HTTP metrics receiver on loopback: (port, paths of the requests it answered)."""
    paths: list[str] = []
    with otlp_http_server(lambda path, headers, body: paths.append(path)) as port:
        yield port, paths


def _predict():
    ref = otel_ml.build_reference({"a": np.linspace(-3, 3, 60)}, model="conv", version="1", bins=3)

    @otel_ml.monitor(model="conv", version="1", reference=ref)
    def predict(X):
        return None

    return predict


class _ContextProbe(MemoryExporter):
    def export(self, metrics_data, timeout_millis=10_000, **kwargs):
        self.suppressed = otel_context.get_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY)
        return MetricExportResult.SUCCESS


def test_export_runs_with_instrumentation_suppressed():
    reset_library()
    probe = _ContextProbe()
    try:
        otel_ml.configure(exporter=probe, export_interval_s=3600)
        _predict()(np.array([[0.0]]))
        assert otel_ml.flush(5.0)
        assert probe.suppressed is True
        assert otel_context.get_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY) is None  # detached again
    finally:
        reset_library()


def test_no_http_client_span_of_our_own_export_with_requests_instrumented(otlp_http):
    import requests
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    port, paths = otlp_http
    provider = tracer_provider()
    reset_library()
    instrumentor = RequestsInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        otel_ml.configure(endpoint=f"http://127.0.0.1:{port}", protocol="http/protobuf", export_interval_s=3600)
        _predict()(np.array([[0.0]]))
        SPANS.clear()
        assert otel_ml.flush(10.0)
        assert paths == ["/v1/metrics"]  # the export really went over HTTP, through requests
        assert [s.name for s in SPANS.get_finished_spans()] == []
        requests.post(f"http://127.0.0.1:{port}/v1/metrics", data=b"", timeout=5)  # the application's own call
        assert [s.name for s in SPANS.get_finished_spans()] == ["POST"]  # the instrumentation is live
    finally:
        instrumentor.uninstrument()
        reset_library()
        SPANS.clear()


QUIET_CHILD = textwrap.dedent('''
    import sys, time
    import numpy as np
    import otel_ml

    otel_ml.configure(endpoint=sys.argv[1], protocol=sys.argv[2], export_interval_s=0.2, timeout_s=0.5)
    ref = otel_ml.build_reference({"a": np.linspace(-3, 3, 60)}, model="q", version="1", bins=3)

    @otel_ml.monitor(model="q", version="1", reference=ref)
    def predict(X):
        return X

    for _ in range(25):  # about 2.5 s: several failed exports, each with the exporter's own retries
        predict(np.array([[0.5]]))
        time.sleep(0.1)
    from otel_ml._export import PIPELINE
    failures = PIPELINE.failures
    sys.stdout.write(f"RESULT {failures}\\n")
    from _otel_ml_support import MemoryExporter, value
    mem = MemoryExporter()
    otel_ml.configure(exporter=mem, export_interval_s=3600)
    assert otel_ml.flush(5)
    sys.stdout.write(f"ERRORS {value(mem.last, 'ml.instrumentation.errors')}\\n")
    sys.stdout.flush()
''')


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there any more
    return port


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_without_a_collector_stderr_gets_one_line_and_failures_are_counted(protocol):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONPATH"] = str(ROOT / "tests")
    proc = subprocess.run([sys.executable, "-c", QUIET_CHILD, f"http://127.0.0.1:{_closed_port()}", protocol],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    failures = int(proc.stdout.split("RESULT ")[1].split()[0])
    errors = int(proc.stdout.split("ERRORS ")[1].split()[0])
    assert failures >= 2  # several exports failed ...
    assert errors >= failures  # ... each counted in ml.instrumentation.errors
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr  # ... and stderr got one line for all of them
    assert lines[0].startswith("otel-ml: metrics export to http://127.0.0.1:") and protocol in lines[0]
    if protocol == "grpc":  # with the cause (the HTTP exporter logs none when its first retry is past the timeout)
        assert "UNAVAILABLE" in lines[0]


FIRST_EXPORT_CHILD = textwrap.dedent('''
    import json, sys
    import numpy as np
    import otel_ml

    otel_ml.configure(endpoint=sys.argv[1], protocol=sys.argv[2], export_interval_s=3600, timeout_s=0.5)
    ref = otel_ml.build_reference({"a": np.linspace(-3, 3, 60)}, model="i", version="1", bins=3)

    @otel_ml.monitor(model="i", version="1", reference=ref)
    def predict(X):
        return X

    before = set(sys.modules)
    predict(np.array([[0.5]]))
    during_predict = sorted(set(sys.modules) - before)
    otel_ml.flush(5)  # fails (nothing listens): the whole failure path runs too
    during_export = sorted(set(sys.modules) - before - set(during_predict))
    print("RESULT " + json.dumps({"predict": during_predict, "export": during_export}), flush=True)
''')


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_set_up_imports_everything_the_first_export_needs(protocol):
    """Issue 10 item 9: importing the exporter on the first export starved predict calls (GIL, import lock)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    proc = subprocess.run([sys.executable, "-c", FIRST_EXPORT_CHILD, f"http://127.0.0.1:{_closed_port()}",
                           protocol], capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    result = json.loads(lines[-1].removeprefix("RESULT "))
    assert result == {"predict": [], "export": []}, result


RESOURCE_CHILD = textwrap.dedent('''
    import sys
    import numpy as np
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    import otel_ml
    from _otel_ml_support import MemoryExporter

    mem = MemoryExporter()
    otel_ml.configure(exporter=mem, export_interval_s=3600)
    ref = otel_ml.build_reference({"a": np.linspace(-3, 3, 60)}, model="r", version="1", bins=3)

    @otel_ml.monitor(model="r", version="1", reference=ref)
    def predict(X):
        return X

    # the application sets its providers up in code, after the model was decorated
    if sys.argv[1] in ("both", "tracer"):
        trace.set_tracer_provider(TracerProvider(resource=Resource.create({"service.name": "shop-traces"})))
    if sys.argv[1] == "both":
        metrics.set_meter_provider(MeterProvider(resource=Resource.create({"service.name": "shop"})))
    predict(np.array([[0.5]]))
    assert otel_ml.flush(5)
    print("RESULT", mem.last.resource_metrics[0].resource.attributes["service.name"], flush=True)
''')


@pytest.mark.parametrize("setup, service", [("both", "shop"), ("tracer", "shop-traces"), ("none", "from-env")])
def test_resource_follows_the_applications_own_providers(setup, service):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(PYTHONPATH=str(ROOT / "tests"), OTEL_SERVICE_NAME="from-env")
    proc = subprocess.run([sys.executable, "-c", RESOURCE_CHILD, setup], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split("RESULT ")[1].strip() == service


def test_failed_exports_count_instrumentation_errors_per_model():
    class Failing(MemoryExporter):
        def export(self, metrics_data, timeout_millis=10_000, **kwargs):
            return MetricExportResult.FAILURE

    reset_library()
    try:
        otel_ml.configure(exporter=Failing(), export_interval_s=3600)
        predict = _predict()
        predict(np.array([[0.0]]))
        assert not otel_ml.flush(5.0)
        assert not otel_ml.flush(5.0)
        mem = MemoryExporter()
        otel_ml.configure(exporter=mem, export_interval_s=3600)
        assert otel_ml.flush(5.0)
        assert value(mem.last, M.INSTRUMENTATION_ERRORS) == 2
        assert value(mem.last, M.PREDICT_ROWS) == 1  # nothing lost
    finally:
        reset_library()


def test_a_bad_header_variable_is_reported_once_and_never_shown(monkeypatch, caplog):
    import logging

    from otel_ml import _log

    reset_library()
    _log._reset()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "api-key=abc,s3cret-token")
    try:
        with caplog.at_level(logging.WARNING):
            otel_ml.configure(endpoint=f"http://127.0.0.1:{_closed_port()}", export_interval_s=3600)
            _predict()  # builds the exporter, which parses the variable again
        messages = [r.getMessage() for r in caplog.records]
        assert len(messages) == 1 and "OTEL_EXPORTER_OTLP_HEADERS" in messages[0], messages
        assert not any("s3cret" in m for m in messages)
    finally:
        reset_library()


def test_the_failure_line_hints_at_the_protocol_when_the_port_is_the_other_ones(caplog):
    import logging

    from otel_ml import _log
    from otel_ml._export import ExportPipeline

    _log._reset()
    pipeline = ExportPipeline()
    pipeline._config = otel_ml._config.load_config(endpoint="http://collector:4317", env={})  # no connection made
    with caplog.at_level(logging.WARNING, logger="otel_ml"):
        pipeline._log_failure("Connection refused")
    (message,) = [r.getMessage() for r in caplog.records]
    assert "http://collector:4317/v1/metrics over http/protobuf failed (Connection refused)" in message
    assert "OTEL_EXPORTER_OTLP_PROTOCOL=grpc" in message
