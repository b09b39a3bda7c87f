"""Multivariate drift and out-of-distribution rows end to end: the library's reconstruction-error stream
through the real Collector (collector/config/otel-ml-collector.yaml) into the real otel-ml processor, its
verdicts back through the Collector into a real Prometheus.

The app is tests/e2e/_mv_traffic.py (the world of benchmarks/multivariate_calibration.py). Prometheus ends
with: for ``mv-swap`` (a correlation flipped, every marginal unchanged) ``ml_drift_detected`` 1 for the
multivariate stream ``__reconstruction_error__`` and 0 for each of the ten features; for ``mv-burst``
(1 % of rows out of distribution) the outlier alarm (``ml_quality_alarm`` of that stream) 1 with an
outlier share near 1 %; for ``mv-none`` every verdict and alarm 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from otel_ml import semconv

from ._components import COLLECTOR_CONFIG, ENV_PROCESSOR, ENV_REMOTE_WRITE, free_port
from ._scenario import WINDOW, run_app

TRAFFIC = Path(__file__).with_name("_mv_traffic.py")
ROWS = 3000
RESERVED = semconv.RECONSTRUCTION_ERROR_FEATURE
DRIFT = semconv.prometheus_name(semconv.DRIFT_DETECTED)
SAMPLES = semconv.prometheus_name(semconv.DRIFT_SAMPLE_COUNT)
ALARM = semconv.prometheus_name(semconv.QUALITY_ALARM)
OUTLIER_SHARE = semconv.prometheus_name(semconv.QUALITY_RATIOS["out_of_range"])


def _run(spawn: Any, name: str, *args: Any) -> None:
    run_app(spawn, name, TRAFFIC, *args, timeout=180)


def test_correlation_swap_flags_only_the_multivariate_stream_and_a_burst_raises_the_outlier_alarm(
    otelcol, prometheus, otel_ml_processor, spawn, tmp_path
):
    processor_grpc = f"127.0.0.1:{free_port()}"
    col = otelcol(COLLECTOR_CONFIG, env={ENV_PROCESSOR: processor_grpc, ENV_REMOTE_WRITE: prometheus.remote_write_url})
    references = tmp_path / "references"
    _run(spawn, "references", "--references", references, "--write-references")
    otel_ml_processor(references=references, export_to=col.otlp_grpc, otlp_grpc=processor_grpc, windows=(WINDOW,))
    _run(spawn, "app", "--endpoint", col.otlp_grpc, "--references", references, "--rows", ROWS)

    def sel(model: str, feature: str = RESERVED) -> str:
        return f'{{ml_drift_window="2m", ml_model_name="{model}", ml_feature_name="{feature}"}}'

    for model in ("mv-none", "mv-swap", "mv-burst"):
        prometheus.wait_for(f"{SAMPLES}{sel(model)} == {ROWS}", timeout=60)
    prometheus.wait_for(f"{DRIFT}{sel('mv-swap')} == 1", timeout=30)
    prometheus.wait_for(f"{ALARM}{sel('mv-burst')} == 1", timeout=30)

    features = [f"x{i}" for i in range(10)]
    drift = prometheus.values(f'{DRIFT}{{ml_drift_window="2m", ml_model_name=~"mv-.*"}}')
    verdicts = {(dict(k)["ml_model_name"], dict(k)["ml_feature_name"]): v for k, v in drift.items()}
    print("verdicts:", sorted(verdicts.items()))
    for f in features:  # every feature judged, none drifted: the marginals did not change
        assert verdicts[("mv-swap", f)] == 0.0 and verdicts[("mv-none", f)] == 0.0, f
    assert verdicts[("mv-swap", RESERVED)] == 1.0 and verdicts[("mv-none", RESERVED)] == 0.0

    alarms = prometheus.values(f'{ALARM}{{ml_drift_window="2m", ml_model_name="mv-none"}}')
    assert alarms and set(alarms.values()) == {0.0}, alarms
    share = prometheus.values(f"{OUTLIER_SHARE}{sel('mv-burst')}")
    (burst_share,) = share.values()
    none_share = prometheus.values(f"{OUTLIER_SHARE}{sel('mv-none')}")
    print(f"outlier share: burst {burst_share:.4f}, no change {list(none_share.values())}")
    assert 0.008 <= burst_share <= 0.02, burst_share
