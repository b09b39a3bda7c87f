"""A canary with shifted outputs flagged against its baseline (issue 13, "done means"): three versions of one
model through the real Collector into the real otel-ml processor, its version comparisons back through the
Collector into a real Prometheus.

The app is tests/e2e/_canary_traffic.py: model ``canary``, version ``v1`` live, ``v2`` a canary whose
probabilities are shifted (log-odds + 1), ``v3`` a canary of the unchanged classifier; each serves a third
of the traffic; the rows' outcomes come afterwards, from another process (as labels come later than
predictions; the processor learns the ``live`` role from the metrics, and before it has seen them would pair
the versions by the traffic rule, docs/processor.md). Prometheus ends with ``ml_version_drift_detected`` 1 for
``v2``'s outputs against baseline ``v1`` and 0 for its features (the traffic mix is the same), 0 for every
stream of ``v3``; ``ml_version_performance_degraded`` 1 for ``v2``'s accuracy and 0 for ``v3``'s; and the
expression of MLCanaryWorseThanBaseline (dashboards/rules.py) returns the pair ``v2``/``v1`` alone; and every
query of dashboards/catalog.py tagged ``requires == catalog.VERSION_OUTCOMES`` returns data on this Prometheus.
"""

from __future__ import annotations

from pathlib import Path

from dashboards import catalog, promql
from otel_ml import semconv

from ._catalog_checks import problems
from ._scenario import WINDOW_LABEL, alert_expr, run_app, start_pipeline, value, wait_for_values

TRAFFIC = Path(__file__).with_name("_canary_traffic.py")
MODEL = "canary"
ROWS = 6000
PER_VERSION = ROWS // 3

DRIFT_SAMPLES = semconv.PROMETHEUS_NAMES[semconv.DRIFT_SAMPLE_COUNT]
PERF_SAMPLES = semconv.PROMETHEUS_NAMES[semconv.PERFORMANCE_SAMPLE_COUNT]
VERSION_DETECTED = semconv.PROMETHEUS_NAMES[semconv.VERSION_DRIFT_DETECTED]
VERSION_DEGRADED = semconv.PROMETHEUS_NAMES[semconv.VERSION_PERFORMANCE_DEGRADED]
VERSION_GAP = semconv.PROMETHEUS_NAMES[semconv.VERSION_PERFORMANCE_GAP]

SEL = f'ml_drift_window="{WINDOW_LABEL}", ml_model_name="{MODEL}"'
OUTPUTS = ("proba:0", "proba:1")
FEATURES = ("x1", "x2")
#: Per (candidate, baseline, stream): the version-drift verdict this scenario must end with (the live role
#: makes v1 the baseline of both canaries).
EXPECTED_DRIFT = {
    **{("v2", "v1", s): float(s in OUTPUTS) for s in OUTPUTS + FEATURES},
    **{("v3", "v1", s): 0.0 for s in OUTPUTS + FEATURES},
}


def _pair(labels: dict[str, str]) -> tuple[str, str, str]:
    """(candidate, baseline, stream or performance metric) of a ``ml_version_*`` series."""
    return (labels["ml_model_version"], labels["ml_model_baseline_version"],
            labels.get("ml_feature_name") or labels["ml_performance_metric"])


def test_canary_with_shifted_outputs_is_flagged_against_its_live_baseline(
    otelcol, prometheus, otel_ml_processor, spawn, tmp_path
):
    references = tmp_path / "references"
    run_app(spawn, "references", TRAFFIC, "--references", references, "--write-references",
            expect="references written")
    col, _ = start_pipeline(otelcol, otel_ml_processor, prometheus, references)
    run_app(spawn, "predictions", TRAFFIC, "--endpoint", col.otlp_grpc, "--references", references, "--predict",
            "--rows", ROWS, expect="sent")

    # Every row of every version is in the window; then the comparisons settle on all of it (the first
    # evaluations saw part of the traffic).
    prometheus.wait_for(f'count({DRIFT_SAMPLES}{{{SEL}, ml_feature_name="x1"}} == {PER_VERSION}) == 3', timeout=60)
    drift = wait_for_values(prometheus, f"{VERSION_DETECTED}{{{SEL}}}", _pair, EXPECTED_DRIFT)
    print("version drift:", sorted(drift.items()))
    assert drift == EXPECTED_DRIFT

    run_app(spawn, "outcomes", TRAFFIC, "--endpoint", col.otlp_grpc, "--references", references, "--outcomes",
            "--rows", ROWS, expect="sent")
    prometheus.wait_for(f'count({PERF_SAMPLES}{{{SEL}}} == {PER_VERSION}) == 3', timeout=90)
    expected = {("v2", "v1", "accuracy"): 1.0, ("v3", "v1", "accuracy"): 0.0, ("v3", "v1", "roc_auc"): 0.0}
    degraded = wait_for_values(prometheus, f"{VERSION_DEGRADED}{{{SEL}}}", _pair, expected)
    gap = value(prometheus, f'{VERSION_GAP}{{{SEL}, ml_model_version="v2", ml_performance_metric="accuracy"}}')
    print(f"realized performance: verdicts {sorted(degraded.items())}; v2 accuracy gap {gap:+.3f}")
    # v2's roc_auc is v1's (a shift of the log-odds keeps the order of the scores): 0 too.
    assert degraded == {**expected, ("v2", "v1", "roc_auc"): 0.0} and gap < -0.1, (degraded, gap)

    firing = prometheus.promql(alert_expr("MLCanaryWorseThanBaseline"))
    pairs = {(r["metric"]["ml_model_name"], r["metric"]["ml_model_version"], r["metric"]["ml_model_baseline_version"]):
             float(r["value"][1]) for r in firing}
    # v2's two outputs differ and its accuracy is worse: three findings, for that pair alone.
    assert pairs == {(MODEL, "v2", "v1"): 3.0}, firing

    # The dashboards' version comparison of realized performance, on this scenario.
    found = problems(prometheus, catalog.VERSION_OUTCOMES, default_values={promql.V_METRIC: "accuracy"},
                     provoked=(), quiet=())
    assert not found, "\n".join(found)
