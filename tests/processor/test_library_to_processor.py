"""Data emitted by the real otel_ml library, over OTLP gRPC and HTTP, judged by the processor subprocess."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from otel_ml import semconv

from .conftest import Sink, wait_for

CLIENT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import otel_ml

    endpoint, protocol, ref_path, pod = sys.argv[1:5]
    otel_ml.configure(endpoint=endpoint, protocol=protocol, export_interval_s=3600,
                      resource=__import__("opentelemetry.sdk.resources", fromlist=["Resource"]).Resource.create(
                          {"service.name": "churn-api", "service.instance.id": pod}))
    ref = otel_ml.load_reference(ref_path)

    @otel_ml.monitor(model="churn", version="1", reference=ref)
    def predict(X):
        return np.full(len(X["f0"]), 0.5)

    rng = np.random.default_rng(int(pod[-1]))
    n = 2000
    f1 = ref.feature("f1")
    for _ in range(4):
        predict({
            "f0": rng.normal(0.0, 1.0, n // 4),
            "f1": rng.normal(f1.mean + 0.5 * f1.std, f1.std, n // 4),   # shifted by half a std
            "f2": rng.normal(0.0, 1.0, n // 4),
            "plan": list(rng.choice(["basic", "pro", "team"], size=n // 4, p=[0.6, 0.3, 0.1])),
        })
    assert otel_ml.flush(10), "flush failed"
    """
)


def test_library_emitted_shift_of_half_a_std_is_flagged(sink: Sink, start_processor: Any, ref_dir: Path,
                                                         tmp_path: Path) -> None:
    proc = start_processor("--references", str(ref_dir), "--export-endpoint", sink.endpoint,
                           "--evaluation-interval", "0.5")
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    for endpoint, protocol, pod in ((f"http://{proc.grpc}", "grpc", "pod-1"),
                                    (f"http://{proc.http}/v1/metrics", "http/protobuf", "pod-2")):
        out = subprocess.run([sys.executable, str(script), endpoint, protocol, str(ref_dir / "churn.json"), pod],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr

    def verdicts() -> dict[str, float] | None:
        d = {a[semconv.FEATURE_NAME]: v for a, v, _ in sink.points(semconv.DRIFT_DETECTED)
             if a[semconv.DRIFT_WINDOW] == "5m" and a[semconv.DRIFT_KIND] == "feature"}
        counts = {a[semconv.FEATURE_NAME]: v for a, v, _ in sink.points(semconv.DRIFT_SAMPLE_COUNT)
                  if a[semconv.DRIFT_WINDOW] == "5m"}
        return d if counts.get("f0") == 4000 and len(d) == 4 else None

    result = wait_for(verdicts, timeout=20)
    assert result == {"f0": 0, "f1": 1, "f2": 0, "plan": 0}
    # The model's output is judged too: a constant 0.5 against a uniform reference is drift.
    outputs = {a[semconv.FEATURE_NAME]: v for a, v, _ in sink.points(semconv.DRIFT_DETECTED)
               if a[semconv.DRIFT_KIND] == "prediction" and a[semconv.DRIFT_WINDOW] == "5m"}
    assert outputs == {"value": 1}
    status = proc.stop()
    assert status == 0
    rejected = [v for a, v, _ in sink.points(semconv.PROCESSOR_POINTS_REJECTED) if v]
    assert not rejected, proc.log


SHADOW_CLIENT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import otel_ml

    endpoint, live_path, shadow_path = sys.argv[1:4]
    otel_ml.configure(endpoint=endpoint, protocol="grpc", export_interval_s=3600)
    live_ref, shadow_ref = otel_ml.load_reference(live_path), otel_ml.load_reference(shadow_path)

    @otel_ml.monitor(model="churn", version="1", reference=live_ref, role="live")
    def predict_live(X):
        return np.random.default_rng(1).uniform(0, 1, len(X["f0"]))  # as the reference's outputs

    @otel_ml.monitor(model="churn", version="2", reference=shadow_ref, role="shadow")
    def predict_shadow(X):
        return np.random.default_rng(2).uniform(0.3, 1, len(X["f0"]))  # scores higher: differs

    def predict(X):  # the documented shadow pattern: one request, both models on the same input
        answer = predict_live(X)
        predict_shadow(X)
        return answer

    rng = np.random.default_rng(0)
    for _ in range(4):
        predict({"f0": rng.normal(0, 1, 1000), "f1": rng.normal(0, 1, 1000), "f2": rng.normal(0, 1, 1000),
                 "plan": list(rng.choice(["basic", "pro", "team"], size=1000, p=[0.6, 0.3, 0.1]))})
    assert otel_ml.flush(10), "flush failed"
    """
)


def test_shadow_model_with_other_outputs_is_flagged_against_the_live_version(
        sink: Sink, start_processor: Any, ref_dir: Path, tmp_path: Path) -> None:
    import dataclasses

    import otel_ml

    live = otel_ml.load_reference(ref_dir / "churn.json")
    dataclasses.replace(live, model_version="2").save(ref_dir / "churn-2.json")  # same training data, same bins
    proc = start_processor("--references", str(ref_dir), "--export-endpoint", sink.endpoint,
                           "--evaluation-interval", "0.5")
    script = tmp_path / "shadow_client.py"
    script.write_text(SHADOW_CLIENT)
    out = subprocess.run([sys.executable, str(script), f"http://{proc.grpc}", str(ref_dir / "churn.json"),
                          str(ref_dir / "churn-2.json")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr

    def verdicts() -> dict[tuple[str, str, str, str], float] | None:
        d = {(a[semconv.MODEL_VERSION], a[semconv.MODEL_BASELINE_VERSION], a[semconv.DRIFT_KIND],
              a[semconv.FEATURE_NAME]): v
             for a, v, _ in sink.points(semconv.VERSION_DRIFT_DETECTED) if a[semconv.DRIFT_WINDOW] == "5m"}
        return d if len(d) == len(features) + 1 else None

    # The reference's features, plus its multivariate stream (reconstruction error) when it has one.
    features = [p.name for p in live.features] + ([semconv.RECONSTRUCTION_ERROR_FEATURE]
                                                  if getattr(live, "multivariate", None) is not None else [])
    result = wait_for(verdicts, timeout=20)
    # The same requests: the feature mix is identical; the shadow's outputs differ from the live version's.
    assert result == {("2", "1", "feature", f): 0 for f in features} | {("2", "1", "prediction", "value"): 1}
    assert proc.stop() == 0
