"""Scale-out on the collector's own machinery: two otel-ml processor replicas behind the load-balancing
exporter of collector/config/otel-ml-loadbalancing.yaml (routing_key: attributes on
ml.model.name), fed by two app instances serving the same 16 model versions.

Shows, in Prometheus: every model version gets drift metrics, each from exactly ONE replica (the
replicas' service.instance.id becomes the ``instance`` label), and both replicas carry some models.
"""

from __future__ import annotations

import sys
from pathlib import Path

from otel_ml import semconv

from ._components import ENV_REMOTE_WRITE, ENV_REPLICA, LOADBALANCING_CONFIG, free_port, wait_until

TRAFFIC = Path(__file__).with_name("_lb_traffic.py")
REPO = Path(__file__).resolve().parents[2]
MODELS = 16


def test_two_replicas_each_model_version_on_exactly_one(
    otelcol, prometheus, otel_ml_processor, spawn, tmp_path
):
    replicas = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    col = otelcol(
        LOADBALANCING_CONFIG,
        env={
            ENV_REPLICA.format(1): replicas[0],
            ENV_REPLICA.format(2): replicas[1],
            ENV_REMOTE_WRITE: prometheus.remote_write_url,
        },
    )
    references = tmp_path / "references"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    apps = []
    for i, instance in enumerate(("pod-a", "pod-b")):
        argv = [sys.executable, TRAFFIC, "--endpoint", col.otlp_grpc, "--references", references,
                "--instance", instance, "--models", MODELS, "--seconds", 240]
        apps.append(spawn(f"app-{instance}", argv + (["--write-references"] if i == 0 else []), env=env))
    wait_until(lambda: apps[0].check_running() or "references written" in apps[0].log_path.read_text(),
               timeout=120, message="reference profiles from the app")
    for i, endpoint in enumerate(replicas, start=1):
        otel_ml_processor(references=references, export_to=col.otlp_grpc, otlp_grpc=endpoint,
                          windows=(20,), name=f"replica-{i}")

    score = semconv.prometheus_name(semconv.DRIFT_SCORE)
    per_model = ("count by (ml_model_name, ml_model_version) "
                 f"(count by (ml_model_name, ml_model_version, instance) ({score}))")
    prometheus.wait_for(per_model, lambda r: len(r) == MODELS, timeout=150)
    for app in apps:
        app.check_running()

    replicas_per_model = {r["metric"]["ml_model_name"]: float(r["value"][1]) for r in prometheus.promql(per_model)}
    assert replicas_per_model == {f"model-{i:02d}": 1.0 for i in range(MODELS)}, replicas_per_model
    models_per_replica = {
        r["metric"]["instance"]: float(r["value"][1])
        for r in prometheus.promql(f"count by (instance) (count by (instance, ml_model_name) ({score}))")
    }
    assert len(models_per_replica) == 2 and sum(models_per_replica.values()) == MODELS, models_per_replica
