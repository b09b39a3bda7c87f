"""Output drift and a burst of missing values confined to one segment value each, found, ranked first and
alerted on while the model's overall output drift and data quality stay quiet (issue 13): the library's
per-segment metrics through the real Collector into the real otel-ml processor, its segment gauges back
through the Collector into a real Prometheus.

The app is tests/e2e/_segment_drift_traffic.py: model ``seg-score`` monitored with
``segments=["region", "channel"]`` against a reference profiling the same segments; channel ``partner``
(10 % of the rows) gets outputs shifted by 0.45 SD, region ``west`` (10 %) gets ``x3`` missing in 15 % of
its rows. Prometheus ends with ``ml_segment_drift_detected`` 1 and ``ml_segment_drift_rank`` 1 for
``partner`` and 0 for every other value, ``ml_segment_quality_alarm`` 1 and ``ml_segment_quality_rank`` 1
for ``west`` and 0 for every other value (the values without rows, ``__other__``, without a verdict), the
overall ``ml_drift_detected`` of the output and ``ml_quality_alarm`` of ``x3`` 0; of the alert expressions
of dashboards/rules.py, MLSegmentDrift returns ``partner`` alone, MLSegmentDataQuality ``west`` alone, and
MLPredictionDriftDetected / MLDataQualityRatioHigh nothing. The second model of the app (``seg-class``:
labels, prediction ids and outcomes, nothing changed) feeds the rest of the Segments row, and every query
of dashboards/catalog.py tagged ``requires == catalog.SEGMENTS`` is checked on this Prometheus.
"""

from __future__ import annotations

from pathlib import Path

from dashboards import catalog, promql
from otel_ml import semconv
from otel_ml.stats import NO_VERDICT

from ._catalog_checks import problems
from ._scenario import WINDOW_LABEL, alert_expr, run_app, start_pipeline, wait_for_values

TRAFFIC = Path(__file__).with_name("_segment_drift_traffic.py")
MODEL, CLASSIFIER = "seg-score", "seg-class"
ROWS = 6000  # about 600 in channel partner and in region west: above the 500 rows a segment stream needs

NAMES = semconv.PROMETHEUS_NAMES
SEL = f'ml_drift_window="{WINDOW_LABEL}", ml_model_name="%s"'
SHIFTED, MISSING = ("channel", "partner"), ("region", "west")
VALUES = {("region", v) for v in ("north", "south", "east", "west")} | {("channel", v) for v in ("direct", "partner")}
OTHER = {(c, semconv.OTHER_CATEGORY) for c in ("region", "channel")}  # no rows: no verdict, visibly


def _segment(labels: dict[str, str]) -> tuple[str, str]:
    return labels["ml_segment_name"], labels["ml_segment_value"]


def _segments(result: list[dict]) -> set[tuple[str, str, str]]:
    return {(r["metric"]["ml_model_name"], *_segment(r["metric"])) for r in result}


def test_one_segment_drifts_another_loses_values_both_ranked_first_overall_quiet(
    otelcol, prometheus, otel_ml_processor, spawn, tmp_path
):
    references = tmp_path / "references"
    run_app(spawn, "references", TRAFFIC, "--references", references, "--write-references",
            expect="references written")
    col, _ = start_pipeline(otelcol, otel_ml_processor, prometheus, references)
    run_app(spawn, "app", TRAFFIC, "--endpoint", col.otlp_grpc, "--references", references, "--rows", ROWS,
            expect="sent")

    # Judge once the processor's window holds every row of both models (and every outcome of the classifier).
    score, classifier = SEL % MODEL, SEL % CLASSIFIER
    prometheus.wait_for(f'{NAMES[semconv.DRIFT_SAMPLE_COUNT]}{{{score}, ml_feature_name="value"}} == {ROWS}',
                        timeout=60)
    prometheus.wait_for(f"{NAMES[semconv.PERFORMANCE_SAMPLE_COUNT]}{{{classifier}}} == {ROWS}", timeout=60)

    expected = {s: float(s == SHIFTED) for s in VALUES} | {s: float(NO_VERDICT) for s in OTHER}
    drift = wait_for_values(prometheus, f'{NAMES[semconv.SEGMENT_DRIFT_DETECTED]}{{{score}}}', _segment, expected)
    drift_rank = wait_for_values(prometheus, f'{NAMES[semconv.SEGMENT_DRIFT_RANK]}{{{score}}}', _segment,
                                 {SHIFTED: 1.0})
    expected_alarm = {s: float(s == MISSING) for s in VALUES} | {s: float(NO_VERDICT) for s in OTHER}
    alarm = wait_for_values(prometheus, f'{NAMES[semconv.SEGMENT_QUALITY_ALARM]}{{{score}}}', _segment,
                            expected_alarm)
    quality_rank = wait_for_values(prometheus, f'{NAMES[semconv.SEGMENT_QUALITY_RANK]}{{{score}}}', _segment,
                                   {MISSING: 1.0})
    scores = prometheus.values(f'{NAMES[semconv.SEGMENT_DRIFT_SCORE]}{{{score}}}')
    print("segment drift:", sorted(drift.items()), "ranks:", sorted(drift_rank.items()))
    print("drift scores:", sorted((dict(k)["ml_segment_value"], round(v, 3)) for k, v in scores.items()))
    print("segment quality alarms:", sorted(alarm.items()), "ranks:", sorted(quality_rank.items()))
    assert drift == expected, drift
    assert drift_rank[SHIFTED] == 1.0 and set(drift_rank) == VALUES, drift_rank
    assert alarm == expected_alarm, alarm
    assert quality_rank[MISSING] == 1.0 and set(quality_rank) == VALUES, quality_rank
    missing = prometheus.values(f'{NAMES[semconv.SEGMENT_QUALITY_RATIO]}{{{score}, ml_segment_value="west", '
                                f'{promql.QUALITY_KIND}="missing"}}')
    assert [round(v, 2) for v in missing.values()] == [0.05], missing  # 15 % of x3 over 3 features

    # Overall, the same traffic is quiet: the output stream not drifted, x3's missing share not alarmed.
    overall = wait_for_values(prometheus, f'{NAMES[semconv.DRIFT_DETECTED]}{{{score}}}',
                              lambda m: m["ml_feature_name"], {"value": 0.0, "x3": 0.0})
    quality = wait_for_values(prometheus, f'{NAMES[semconv.QUALITY_ALARM]}{{{score}}}',
                              lambda m: m["ml_feature_name"], {"x3": 0.0})
    print("overall drift:", sorted(overall.items()), "quality alarms:", sorted(quality.items()))
    assert overall["value"] == 0.0 and quality["x3"] == 0.0, (overall, quality)

    # The alert expressions as dashboards/rules.py writes them, on this Prometheus: exactly those segments
    # (the classifier, unchanged, raises none), and the overall alerts nothing.
    assert _segments(prometheus.promql(alert_expr("MLSegmentDrift"))) == {(MODEL, *SHIFTED)}
    assert _segments(prometheus.promql(alert_expr("MLSegmentDataQuality"))) == {(MODEL, *MISSING)}
    assert prometheus.promql(alert_expr("MLPredictionDriftDetected")) == []
    assert prometheus.promql(alert_expr("MLDataQualityRatioHigh")) == []

    # Every dashboard and alert query of the segment metrics returns data on this scenario. The worst-segments
    # table reads the classifier's performance ranks too: wait until its slices are judged.
    prometheus.wait_for(f'{NAMES[semconv.SEGMENT_PERFORMANCE_RANK]}{{{classifier}}}', timeout=30)
    found = problems(prometheus, catalog.SEGMENTS, default_values={promql.V_METRIC: "accuracy"},
                     provoked={"MLSegmentDrift", "MLSegmentDataQuality"}, quiet=())
    assert not found, "\n".join(found)
