"""A segment's degradation found and ranked first while the model's overall performance alarm stays quiet
(issue 13, "done means"): predictions with segments and their outcomes as OTLP logs through the real
Collector into the real otel-ml processor, its segment and performance gauges back through the Collector
into a real Prometheus.

The app is tests/e2e/_gt_traffic.py with ``--segments region channel --segment-drift gt-00``: in channel
``partner`` (about 10 % of the rows) the accuracy falls from about 0.88 to about 0.75; the model's overall
accuracy moves by less than the 0.02 tolerance of the degradation verdict. Prometheus ends with
``partner`` ranked 1 and degraded, the three other slices (``direct``, ``x1-high``, ``x1-low``) not
degraded, ``ml_performance_degraded`` 0 for every primary metric of the model, and of the alert expressions
of dashboards/rules.py, MLSegmentUnderperforming returning exactly that slice and
MLModelPerformanceDegraded nothing.
"""

from __future__ import annotations

from pathlib import Path

from otel_ml import semconv

from ._scenario import WINDOW_LABEL, alert_expr, run_app, start_pipeline, value, wait_for_values

TRAFFIC = Path(__file__).with_name("_gt_traffic.py")
MODEL = "gt-00"
ROWS = 6000  # about 600 in channel "partner": above the 500 outcomes a slice needs for a verdict

SAMPLE_COUNT = semconv.PROMETHEUS_NAMES[semconv.PERFORMANCE_SAMPLE_COUNT]
DEGRADED = semconv.PROMETHEUS_NAMES[semconv.PERFORMANCE_DEGRADED]
PERF_VALUE = semconv.PROMETHEUS_NAMES[semconv.PERFORMANCE_VALUE]
PERF_REFERENCE = semconv.PROMETHEUS_NAMES[semconv.PERFORMANCE_REFERENCE]
SEG_SAMPLES = semconv.PROMETHEUS_NAMES[semconv.SEGMENT_SAMPLE_COUNT]
SEG_DEGRADED = semconv.PROMETHEUS_NAMES[semconv.SEGMENT_PERFORMANCE_DEGRADED]
SEG_VALUE = semconv.PROMETHEUS_NAMES[semconv.SEGMENT_PERFORMANCE_VALUE]
SEG_GAP = semconv.PROMETHEUS_NAMES[semconv.SEGMENT_PERFORMANCE_GAP]
SEG_RANK = semconv.PROMETHEUS_NAMES[semconv.SEGMENT_PERFORMANCE_RANK]

SEL = f'ml_drift_window="{WINDOW_LABEL}", ml_model_name="{MODEL}"'
ACCURACY = f'{SEL}, ml_performance_metric="accuracy"'
PARTNER = ("channel", "partner")
SLICES = {PARTNER, ("channel", "direct"), ("region", "x1-high"), ("region", "x1-low")}


def _slice(name: str, value_: str) -> str:
    return f'{ACCURACY}, ml_segment_name="{name}", ml_segment_value="{value_}"'


def _slice_key(labels: dict[str, str]) -> tuple[str, str]:
    return labels["ml_segment_name"], labels["ml_segment_value"]


def test_one_segment_degrades_ranked_first_while_the_overall_alarm_stays_quiet(
    otelcol, prometheus, otel_ml_processor, spawn, tmp_path
):
    references = tmp_path / "references"
    run_app(spawn, "references", TRAFFIC, "--references", references, "--write-references", "--models", 1,
            expect="references written")
    col, _ = start_pipeline(otelcol, otel_ml_processor, prometheus, references)
    run_app(spawn, "app", TRAFFIC, "--endpoint", col.otlp_grpc, "--references", references, "--models", 1,
            "--predict", "--outcomes", "--rows", ROWS, "--segments", "region", "channel",
            "--segment-drift", MODEL, expect="sent")

    # Judge only once every outcome is joined and every slice was evaluated on all of them.
    prometheus.wait_for(f"{SAMPLE_COUNT}{{{SEL}}} == {ROWS}", timeout=90)
    for name in ("channel", "region"):
        prometheus.wait_for(f'sum({SEG_SAMPLES}{{{ACCURACY}, ml_segment_name="{name}"}}) == {ROWS}', timeout=30)

    expected = {s: float(s == PARTNER) for s in SLICES}
    degraded = wait_for_values(prometheus, f"{SEG_DEGRADED}{{{ACCURACY}}}", _slice_key, expected)
    ranks = wait_for_values(prometheus, f"{SEG_RANK}{{{ACCURACY}}}", _slice_key, {PARTNER: 1.0})
    print("segment verdicts:", sorted(degraded.items()), "ranks:", sorted(ranks.items()))
    assert degraded == expected, degraded
    assert ranks[PARTNER] == 1.0 and set(ranks) == SLICES and sorted(ranks.values()) == [1.0, 2.0, 3.0, 4.0], ranks

    # The overall alarm is quiet: both primary metrics judged, neither degraded.
    quiet = {"accuracy": 0.0, "roc_auc": 0.0}
    overall = wait_for_values(prometheus, f"{DEGRADED}{{{SEL}}}", lambda m: m["ml_performance_metric"], quiet)
    assert overall == quiet, overall

    partner = value(prometheus, f"{SEG_VALUE}{{{_slice(*PARTNER)}}}")
    gap = value(prometheus, f"{SEG_GAP}{{{_slice(*PARTNER)}}}")
    realized = value(prometheus, f"{PERF_VALUE}{{{ACCURACY}, ml_prediction_class=\"\"}}")
    reference = value(prometheus, f"{PERF_REFERENCE}{{{ACCURACY}, ml_prediction_class=\"\"}}")
    print(f"accuracy: segment partner {partner:.3f} (gap to the rest {gap:+.3f}); "
          f"overall {realized:.3f} against the reference's {reference:.3f}")
    assert 0.70 < partner < 0.80 and gap < -0.1, (partner, gap)
    assert abs(reference - realized) < 0.02, (reference, realized)

    # The alert expressions as dashboards/rules.py writes them, on this Prometheus.
    firing = prometheus.promql(alert_expr("MLSegmentUnderperforming"))
    assert [(r["metric"]["ml_model_name"], r["metric"]["ml_segment_name"], r["metric"]["ml_segment_value"])
            for r in firing] == [(MODEL, "channel", "partner")], firing
    assert prometheus.promql(alert_expr("MLModelPerformanceDegraded")) == []
