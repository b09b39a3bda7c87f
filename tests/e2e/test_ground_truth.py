"""Ground truth end to end: predictions and outcomes as OTLP logs through the real Collector's logs pipeline
(collector/config/otel-ml-collector.yaml, otel-ml-loadbalancing.yaml) into the real otel-ml processor,
its performance metrics back through the Collector into a real Prometheus.

The app is tests/e2e/_gt_traffic.py: a scikit-learn logistic regression (accuracy about 0.88 on its
labelled holdout, stored in the reference by ``build_reference(..., labels=y)``), monitored with
``prediction_id``; its outcomes are sent with ``otel_ml.record_outcomes``.

* Concept drift: for one model the true class flips where ``x1 > 0.5`` while the inputs keep their
  distribution. Prometheus ends with ``ml_drift_detected`` 0 for every feature and
  ``ml_performance_degraded`` 1 for it; a second model served beside it, whose world did not change,
  ends with 0. The records never reach the Collector's ordinary logs pipeline. Every dashboard panel,
  variable and alert query of the ground-truth metrics (dashboards/catalog.py, ``requires == OUTCOMES``)
  returns data; the degradation alert's expression fires, the outcomes-stopped one does not.
* Restart: predictions are sent while the processor is stopped (SIGTERM) or killed (SIGKILL) and
  started again on its state dir; outcomes sent afterwards join every one of them, none twice.
* Scale-out: two processor replicas behind the load-balancing exporter; each model's predictions and
  outcomes meet on one replica (all joined, nothing left waiting anywhere), and both replicas are used.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from otel_ml import semconv

from ._catalog_checks import catalog, problems
from ._components import (
    COLLECTOR_CONFIG,
    ENV_PROCESSOR,
    ENV_REMOTE_WRITE,
    ENV_REPLICA,
    LOADBALANCING_CONFIG,
    file_tap,
    free_port,
    http_get,
    read_file_tap,
    wait_until,
)
from ._scenario import APP_ENV, WINDOW, run_app, value

TRAFFIC = Path(__file__).with_name("_gt_traffic.py")

DEGRADED = semconv.prometheus_name(semconv.PERFORMANCE_DEGRADED)
PERF_VALUE = semconv.prometheus_name(semconv.PERFORMANCE_VALUE)
PERF_REFERENCE = semconv.prometheus_name(semconv.PERFORMANCE_REFERENCE)
SAMPLE_COUNT = semconv.prometheus_name(semconv.PERFORMANCE_SAMPLE_COUNT)
DRIFT = semconv.prometheus_name(semconv.DRIFT_DETECTED)
JOINED = semconv.prometheus_name(semconv.OUTCOMES_JOINED)


def _write_references(spawn: Any, references: Path, models: int) -> None:
    run_app(spawn, "references", TRAFFIC, "--references", references, "--write-references", "--models", models,
            expect="references written")


def _send(spawn: Any, name: str, endpoint: str, references: Path, *args: Any, timeout: float = 120) -> None:
    run_app(spawn, name, TRAFFIC, "--endpoint", endpoint, "--references", references, *args, timeout=timeout,
            expect="sent")


def _outcomes_status(processor: Any) -> dict[str, Any]:
    status, body = http_get(f"http://{processor.http}/api/v1/status")
    assert status == 200, body
    outcomes: dict[str, Any] = json.loads(body)["outcomes"]
    return outcomes


def test_concept_drift_raises_the_performance_alarm_while_no_feature_drifts(
    otelcol, prometheus, otel_ml_processor, spawn, tmp_path
):
    processor_grpc = f"127.0.0.1:{free_port()}"
    user_logs = tmp_path / "user-logs.jsonl"
    col = otelcol(COLLECTOR_CONFIG, env={ENV_PROCESSOR: processor_grpc, ENV_REMOTE_WRITE: prometheus.remote_write_url},
                  overrides=[file_tap(COLLECTOR_CONFIG, "logs", user_logs)])
    references = tmp_path / "references"
    _write_references(spawn, references, models=2)
    otel_ml_processor(references=references, export_to=col.otlp_grpc, otlp_grpc=processor_grpc, windows=(WINDOW,))

    _send(spawn, "app", col.otlp_grpc, references, "--models", 2, "--predict", "--outcomes", "--rows", 3000,
          "--concept-drift", "gt-00")

    window = '{ml_drift_window="2m", ml_model_name="%s"}'
    accuracy = '{ml_drift_window="2m", ml_model_name="%s", ml_performance_metric="accuracy"}'
    for model in ("gt-00", "gt-01"):
        prometheus.wait_for(f"{SAMPLE_COUNT}{window % model} == 3000", timeout=60)
    prometheus.wait_for(f"{DEGRADED}{accuracy % 'gt-00'} == 1", timeout=30)
    assert value(prometheus, f"{DEGRADED}{accuracy % 'gt-01'}") == 0.0

    # The inputs did not change: every feature of both models was judged, and none drifted. (The drift
    # verdicts come from the metrics path, which can trail the records path on a loaded machine.)
    prometheus.wait_for(f'count({DRIFT}{{ml_drift_window="2m", ml_feature_name=~"x1|x2", '
                        f'ml_model_name=~"gt-0[01]"}}) == 4', timeout=90)
    drift = prometheus.values(f"{DRIFT}{{ml_drift_window=\"2m\", ml_feature_name=~\"x1|x2\"}}")
    assert {(dict(k)["ml_model_name"], dict(k)["ml_feature_name"]) for k in drift} == {
        (m, f) for m in ("gt-00", "gt-01") for f in ("x1", "x2")}, drift
    assert set(drift.values()) == {0.0}, drift

    # The numbers behind the verdict: the reference's accuracy (holdout) against the realized one.
    reference = value(prometheus, f"{PERF_REFERENCE}{accuracy % 'gt-00'}")
    drifted = value(prometheus, f"{PERF_VALUE}{accuracy % 'gt-00'}")
    unchanged = value(prometheus, f"{PERF_VALUE}{accuracy % 'gt-01'}")
    print(f"accuracy: reference {reference:.3f}, concept drift {drifted:.3f}, unchanged world {unchanged:.3f}")
    assert reference - drifted > 0.15 and abs(reference - unchanged) < 0.05, (reference, drifted, unchanged)

    # Segments: the concept drift is confined to region x1-high, found and ranked worst; gt-01 has none.
    seg = '{ml_drift_window="2m", ml_model_name="%s", ml_segment_name="region", ml_segment_value="%s"}'
    seg_rank = semconv.prometheus_name(semconv.SEGMENT_PERFORMANCE_RANK)
    seg_degraded = semconv.prometheus_name(semconv.SEGMENT_PERFORMANCE_DEGRADED)
    prometheus.wait_for(f"{seg_rank}{seg % ('gt-00', 'x1-high')} == 1", timeout=60)
    assert value(prometheus, f"{seg_degraded}{seg % ('gt-00', 'x1-high')}") == 1.0
    assert value(prometheus, f"{seg_degraded}{seg % ('gt-00', 'x1-low')}") == 0.0
    prometheus.wait_for(f"count({seg_degraded}{{ml_model_name=\"gt-01\"}} == 0) == 2", timeout=30)

    # Every record went to the processor, none to the ordinary logs pipeline.
    assert value(prometheus, f'sum({JOINED}{{ml_model_name=~"gt-0[01]"}})') == 6000
    leaked = [r for req in read_file_tap(user_logs) for rl in req.get("resourceLogs", [])
              for sl in rl.get("scopeLogs", []) for r in sl.get("logRecords", [])]
    assert leaked == [], leaked[:3]

    # The dashboards and alerts of the ground-truth metrics, on this scenario. Their rate() and increase()
    # queries need two samples of the processor's counters inside the range: wait for the second export.
    for counter in (JOINED, semconv.prometheus_name(semconv.LABEL_DELAY) + "_count"):
        prometheus.wait_for(f'count_over_time({counter}{{ml_model_name="gt-00"}}[1m]) >= 2', timeout=90)
    from dashboards import promql

    found = problems(prometheus, catalog.OUTCOMES,
                     default_values={promql.V_METRIC: "accuracy"},
                     provoked={"MLModelPerformanceDegraded", "MLSegmentUnderperforming"},
                     quiet={"MLOutcomesStopped"},
                     variable_must_list={promql.V_METRIC: "accuracy"})
    assert not found, "\n".join(found)


@pytest.mark.parametrize("crash", [False, True], ids=["sigterm", "sigkill"])
def test_waiting_predictions_survive_a_processor_restart(
    crash, otelcol, prometheus, otel_ml_processor, spawn, tmp_path
):
    processor_grpc = f"127.0.0.1:{free_port()}"
    col = otelcol(COLLECTOR_CONFIG, env={ENV_PROCESSOR: processor_grpc, ENV_REMOTE_WRITE: prometheus.remote_write_url})
    references = tmp_path / "references"
    _write_references(spawn, references, models=1)
    processor = otel_ml_processor(references=references, export_to=col.otlp_grpc, otlp_grpc=processor_grpc,
                                  windows=(WINDOW,))

    # 2,000 predictions over about 4 s; the processor goes away (2 s) while they are arriving.
    argv = [sys.executable, TRAFFIC, "--endpoint", col.otlp_grpc, "--references", references, "--predict",
            "--rows", 2000, "--pace", 0.5]
    app = spawn("predictions", argv, env=APP_ENV)
    wait_until(lambda: _outcomes_status(processor)["pending_predictions"] > 0, timeout=60,
               message="the first predictions in the join store")
    processor.restart(crash=crash, down_for=2)
    wait_until(lambda: not app.running, timeout=60, message="the app to finish sending")
    assert app.returncode == 0

    last: dict[str, Any] = {}

    def pending(n: int) -> bool:
        nonlocal last
        last = _outcomes_status(processor)
        return last["pending_predictions"] == n

    wait_until(lambda: pending(2000), timeout=60, message=lambda: f"2000 waiting predictions; status {last}")
    # A second restart with nothing in flight: what waits is on disk.
    processor.restart(crash=crash)
    assert _outcomes_status(processor)["pending_predictions"] == 2000

    _send(spawn, "outcomes", col.otlp_grpc, references, "--outcomes", "--rows", 2000)
    wait_until(lambda: (s := _outcomes_status(processor))["joined"] == 2000 and s["pending_predictions"] == 0
               and s["pending_outcomes"] == 0, timeout=60,
               message=lambda: f"all 2000 joined; status {_outcomes_status(processor)}")
    print(f"after the restarts: {_outcomes_status(processor)}")


MODELS = 12
ROWS = 300


def test_two_replicas_each_model_joined_on_one(otelcol, prometheus, otel_ml_processor, spawn, tmp_path):
    replicas = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    col = otelcol(LOADBALANCING_CONFIG, env={ENV_REPLICA.format(1): replicas[0], ENV_REPLICA.format(2): replicas[1],
                                             ENV_REMOTE_WRITE: prometheus.remote_write_url})
    references = tmp_path / "references"
    _write_references(spawn, references, models=MODELS)
    processors = [otel_ml_processor(references=references, export_to=col.otlp_grpc, otlp_grpc=endpoint,
                                    windows=(WINDOW,), name=f"replica-{i}")
                  for i, endpoint in enumerate(replicas, start=1)]

    # Predictions and outcomes of every model from one app, in separate processes (as a batch job would).
    _send(spawn, "predictions", col.otlp_grpc, references, "--models", MODELS, "--predict", "--rows", ROWS)
    _send(spawn, "outcomes", col.otlp_grpc, references, "--models", MODELS, "--outcomes", "--rows", ROWS)

    statuses: list[dict[str, Any]] = []

    def all_joined() -> bool:
        nonlocal statuses
        statuses = [_outcomes_status(p) for p in processors]
        return sum(s["joined"] for s in statuses) == MODELS * ROWS

    wait_until(all_joined, timeout=60, message=lambda: f"{MODELS * ROWS} joined; replicas {statuses}")
    assert all(s["pending_predictions"] == 0 and s["pending_outcomes"] == 0 for s in statuses), statuses
    assert all(s["joined"] > 0 for s in statuses), statuses  # both replicas used
    print("joined per replica:", [s["joined"] for s in statuses])

    per_model = f"count by (ml_model_name) ({JOINED})"
    prometheus.wait_for(per_model, lambda r: len(r) == MODELS, timeout=60)
    assert {r["metric"]["ml_model_name"]: r["value"][1] for r in prometheus.promql(per_model)} == {
        f"gt-{i:02d}": "1" for i in range(MODELS)}  # each model's joins counted by exactly one replica
    joined = prometheus.values(f"sum by (ml_model_name) ({JOINED})")
    assert set(joined.values()) == {float(ROWS)}, joined
