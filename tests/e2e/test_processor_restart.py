"""The collector keeps retrying while the otel-ml processor restarts, and no window data is lost.

Real pipeline: a monitored app (tests/e2e/_lb_traffic.py, one model) -> the collector with the user
config collector/config/otel-ml-collector.yaml -> the processor (state dir for checkpoints) -> back
through the collector -> Prometheus. Mid-stream the processor is stopped (SIGTERM: it drains and
checkpoints; or SIGKILL: a crash, only its periodic checkpoint survives) for a few seconds and
started again on the same address and state dir. At the end, the processor's 10-minute window (longer
than the test) must have counted every row the app predicted: ``ml.drift.sample_count`` for feature x1
equals the library's own ``ml.predict.rows`` counter, which reaches Prometheus without passing through the processor.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from otel_ml import semconv

from ._components import COLLECTOR_CONFIG, ENV_PROCESSOR, ENV_REMOTE_WRITE, free_port, wait_until

TRAFFIC = Path(__file__).with_name("_lb_traffic.py")
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("crash", [False, True], ids=["sigterm", "sigkill"])
def test_no_window_data_lost_across_a_processor_restart(
    crash, otelcol, prometheus, otel_ml_processor, spawn, tmp_path
):
    processor_grpc = f"127.0.0.1:{free_port()}"
    col = otelcol(COLLECTOR_CONFIG, env={ENV_PROCESSOR: processor_grpc,
                                         ENV_REMOTE_WRITE: prometheus.remote_write_url})
    references = tmp_path / "references"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    argv = [sys.executable, TRAFFIC, "--endpoint", col.otlp_grpc, "--references", references,
            "--instance", "pod-a", "--models", 1]
    # The references first (the processor loads them at start), then the processor, then traffic: so
    # the processor sees every stream from its first point.
    writer = spawn("references", [*argv, "--write-references", "--seconds", 0], env=env)
    wait_until(lambda: not writer.running, timeout=120, message="reference profiles from the app")
    assert writer.returncode == 0
    processor = otel_ml_processor(references=references, export_to=col.otlp_grpc,
                                  otlp_grpc=processor_grpc, windows=(600,))
    app = spawn("app", [*argv, "--seconds", 25], env=env)

    count = semconv.prometheus_name(semconv.DRIFT_SAMPLE_COUNT)
    rows = semconv.prometheus_name(semconv.PREDICT_ROWS)
    selector = '{ml_model_name="model-00", ml_feature_name="x1", ml_drift_window="10m"}'
    prometheus.wait_for(f"{count}{selector} > 0", timeout=60)

    # Away for 5 s while the app keeps sending: the collector queues and retries meanwhile.
    processor.restart(crash=crash, down_for=5)
    wait_until(lambda: "sent" in app.log_path.read_text() and not app.running, timeout=90,
               message="the app to finish sending")

    def counts() -> tuple[float, float]:
        sample = prometheus.promql(f"max({count}{selector})")
        sent = prometheus.promql(f'sum({rows}{{ml_model_name="model-00"}})')
        return (float(sample[0]["value"][1]) if sample else -1.0,
                float(sent[0]["value"][1]) if sent else -2.0)

    last = (0.0, 0.0)

    def converged() -> bool:
        nonlocal last
        last = counts()
        return last[0] == last[1] > 0

    time.sleep(2)
    wait_until(converged, timeout=60,
               message=lambda: f"window sample count == rows sent; (sample_count, rows) = {last}")
