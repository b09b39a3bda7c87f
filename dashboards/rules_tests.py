"""promtool unit tests of the alert rules: input series and the alerts expected from them, by hand.

``python -m dashboards.generate`` writes them to ``dashboards/alerts/tests/otel-ml.test.yml``, with each
expected alert's annotations rendered from the rule's templates (promtool compares annotations too), and
``promtool test rules`` runs them. Every alert is shown firing and, on a neighbouring series or at an
earlier time, not firing.
"""

from __future__ import annotations

import re
from typing import Any

from dashboards import rules
from dashboards.promql import (
    BASELINE,
    BUCKET_LE,
    ERROR_TYPE,
    FEATURE,
    INSTANCE,
    JOB,
    KIND,
    MODEL,
    PERF_METRIC,
    PRED_CLASS,
    PRED_NAME,
    QUALITY_KIND,
    SEG_NAME,
    SEG_VALUE,
    VERSION,
    WINDOW,
    metric,
)
from otel_ml import semconv as sc

RULES_FILE = "../otel-ml.rules.yml"
ALERTS = {a.name: a for a in rules.ALERTS}

PROC = {JOB: "otel-ml-processor", INSTANCE: "processor-0"}
APP = {JOB: "shop", INSTANCE: "pod-1"}


def series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    body = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{metric(name)}{{{body}}}", "values": values}


def drift(feature: str, values: str, *, kind: str = sc.DRIFT_KIND_FEATURE, window: str = "5m",
          version: str = "v1") -> dict[str, str]:
    return series(sc.DRIFT_DETECTED, {**PROC, MODEL: "churn", VERSION: version, KIND: kind,
                                      FEATURE: feature, WINDOW: window}, values)


def rows(values: str, *, job: str = "shop", model: str = "churn", version: str = "v1",
         instance: str = "pod-1") -> dict[str, str]:
    return series(sc.PREDICT_ROWS, {JOB: job, INSTANCE: instance, MODEL: model, VERSION: version}, values)


def quality(name: str, feature: str, values: str, *, window: str = "5m") -> dict[str, str]:
    """A processor quality gauge (a ratio or ml.quality.alarm) of one feature of churn v1."""
    return series(name, {**PROC, MODEL: "churn", VERSION: "v1", FEATURE: feature, WINDOW: window}, values)


def samples(values: str, *, version: str = "v1", feature: str = "age") -> dict[str, str]:
    return series(sc.DRIFT_SAMPLE_COUNT, {**PROC, MODEL: "churn", VERSION: version, KIND: "feature",
                                          FEATURE: feature, WINDOW: "5m"}, values)


def _humanize_percentage(v: float) -> str:
    return f"{v * 100:.4g}%"


def _format_value(stage: str, v: float) -> str:
    """What a Go template stage (``humanizePercentage``, ``printf "%.4g"``) makes of the alert's value."""
    if stage == "humanizePercentage":
        return _humanize_percentage(v)
    m = re.fullmatch(r'printf "(%\.\d+[gf])"', stage)
    if m is None:
        raise ValueError(f"no renderer for template stage {stage!r}")
    return m.group(1) % v


def render(template: str, labels: dict[str, str], value: float | None) -> str:
    out = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m.group(1), ""), template)
    if value is not None:
        out = re.sub(r"\{\{ \$value \| (.+?) \}\}", lambda m: _format_value(m.group(1), value), out)
    return out


def expect(alert: str, labels: dict[str, str], value: float | None = None) -> dict[str, Any]:
    a = ALERTS[alert]
    all_labels = {"severity": a.severity, **a.labels, **labels}
    annotations = rules.prometheus_rules()["groups"][0]["rules"]
    ann = next(r for r in annotations if r["alert"] == alert)["annotations"]
    return {"exp_labels": all_labels,
            "exp_annotations": {k: render(v, all_labels, value) for k, v in ann.items()}}


def check(alert: str, at: str, *expected: dict[str, Any]) -> dict[str, Any]:
    return {"eval_time": at, "alertname": alert, "exp_alerts": list(expected)}


CHURN_V1 = {MODEL: "churn", VERSION: "v1"}


def seg(name: str, values: str, value: str, *, segment: str = "country", window: str = "5m") -> dict[str, str]:
    """A processor segment gauge (ml.segment.*) of churn v1, accuracy."""
    return series(name, {**PROC, **CHURN_V1, WINDOW: window, PERF_METRIC: "accuracy", SEG_NAME: segment,
                         SEG_VALUE: value}, values)


def segdrift(name: str, values: str, value: str, *, output: str | None = "value", window: str = "5m",
             **extra: str) -> dict[str, str]:
    """A processor segment drift/quality gauge (ml.segment.drift.* / quality.*) of churn v1 (``output`` None:
    per segment value, as the quality gauges are)."""
    labels = {**PROC, **CHURN_V1, WINDOW: window, SEG_NAME: "country", SEG_VALUE: value, **extra}
    if output is not None:
        labels[PRED_NAME] = output
    return series(name, labels, values)


def perf(name: str, values: str, *, metric_: str = "accuracy", window: str = "5m", version: str = "v1",
         **extra: str) -> dict[str, str]:
    """A processor realized-performance gauge (ml.performance.*) of churn."""
    return series(name, {**PROC, MODEL: "churn", VERSION: version, WINDOW: window, PERF_METRIC: metric_,
                         **extra}, values)


def versus(feature: str, values: str, *, kind: str = sc.DRIFT_KIND_PREDICTION, window: str = "5m",
           version: str = "v2", baseline: str = "v1", name: str = sc.VERSION_DRIFT_DETECTED,
           **extra: str) -> dict[str, str]:
    """A candidate-vs-baseline gauge of the processor (ml.version.drift.*) for churn."""
    return series(name, {**PROC, MODEL: "churn", VERSION: version, BASELINE: baseline, KIND: kind,
                         FEATURE: feature, WINDOW: window, **extra}, values)


def joined(values: str, *, version: str = "v1") -> dict[str, str]:
    return series(sc.OUTCOMES_JOINED, {**PROC, MODEL: "churn", VERSION: version}, values)


def records(values: str, *, version: str = "v1") -> dict[str, str]:
    return series(sc.PREDICTION_RECORDS, {**APP, MODEL: "churn", VERSION: version}, values)


def _hours(h: float) -> str:
    return f"{int(h * 60)}m"

TESTS: list[dict[str, Any]] = [
    {
        "name": "feature drift fires after 15m, only for the drifted feature, in any window",
        "interval": "1m",
        "input_series": [
            drift("age", "0x4 1x40"),
            drift("age", "0x45", window="1h"),
            drift("income", "0x45"),
            drift("label", "0x45", kind=sc.DRIFT_KIND_PREDICTION),
        ],
        "alert_rule_test": [
            check("MLFeatureDriftDetected", "4m"),
            check("MLFeatureDriftDetected", "15m"),  # pending: drifted for 10m only
            check("MLFeatureDriftDetected", "25m",
                  expect("MLFeatureDriftDetected", {**CHURN_V1, KIND: "feature", FEATURE: "age"})),
            check("MLPredictionDriftDetected", "25m"),
        ],
    },
    {
        "name": "a verdict that flaps back to 0 resets the drift alert",
        "interval": "1m",
        "input_series": [drift("age", "1x10 0 1x30")],
        "alert_rule_test": [
            check("MLFeatureDriftDetected", "20m"),
            check("MLFeatureDriftDetected", "30m",
                  expect("MLFeatureDriftDetected", {**CHURN_V1, KIND: "feature", FEATURE: "age"})),
        ],
    },
    {
        "name": "prediction drift fires for outputs, not for features",
        "interval": "1m",
        "input_series": [
            drift("label", "1x30", kind=sc.DRIFT_KIND_PREDICTION),
            drift("age", "1x30"),
            drift("label", "0x30", kind=sc.DRIFT_KIND_PREDICTION, version="v2"),
        ],
        "alert_rule_test": [
            check("MLPredictionDriftDetected", "10m"),
            check("MLPredictionDriftDetected", "20m",
                  expect("MLPredictionDriftDetected", {**CHURN_V1, KIND: "prediction", FEATURE: "label"})),
        ],
    },
    {
        "name": "data quality fires on the processor's alarm, valued at the feature's worst ratio, after 10m",
        "interval": "1m",
        "input_series": [
            # income: the alarm from 4m on; its missing share is the worst of its four ratios.
            quality(sc.QUALITY_ALARM, "income", "0x4 1x30"),
            quality(sc.QUALITY_MISSING_RATIO, "income", "0.01x4 0.2x30"),
            quality(sc.QUALITY_OUT_OF_RANGE_RATIO, "income", "0.03x34"),
            quality(sc.QUALITY_ALARM, "income", "0x6 1x28", window="1h"),  # the 1h window agrees later
            # age: a 2% missing share the processor alarms on (its reference had none): below any fixed 5%.
            quality(sc.QUALITY_ALARM, "age", "1x34"),
            quality(sc.QUALITY_MISSING_RATIO, "age", "0.02x34"),
        ],
        "alert_rule_test": [
            check("MLDataQualityRatioHigh", "5m"),  # pending
            check("MLDataQualityRatioHigh", "12m",  # age for 12m fires; income for 8m still pending
                  expect("MLDataQualityRatioHigh", {**CHURN_V1, FEATURE: "age"}, 0.02)),
            check("MLDataQualityRatioHigh", "20m",
                  expect("MLDataQualityRatioHigh", {**CHURN_V1, FEATURE: "age"}, 0.02),
                  expect("MLDataQualityRatioHigh", {**CHURN_V1, FEATURE: "income"}, 0.2)),
        ],
    },
    {
        "name": "data quality stays quiet on a high ratio the processor does not alarm on",
        "interval": "1m",
        "input_series": [
            # city: half its values unseen, as in its reference (alarm 0): the old fixed 5% would fire.
            quality(sc.QUALITY_ALARM, "city", "0x35"),
            quality(sc.QUALITY_UNSEEN_RATIO, "city", "0.5x35"),
            # plan: a high ratio but too few rows for a verdict (no alarm point at all).
            quality(sc.QUALITY_MISSING_RATIO, "plan", "0.3x35"),
            # age: the alarm flaps off every 8 minutes, never holding for 10m.
            quality(sc.QUALITY_ALARM, "age", "1x7 0 1x7 0 1x7 0 1x7 0"),
            quality(sc.QUALITY_MISSING_RATIO, "age", "0.1x35"),
        ],
        "alert_rule_test": [
            check("MLDataQualityRatioHigh", "20m"),
            check("MLDataQualityRatioHigh", "34m"),
        ],
    },
    {
        "name": "processor absent: drift metrics stop while models serve traffic",
        "interval": "1m",
        "input_series": [rows("0+100x40"), samples("500x10")],
        "alert_rule_test": [
            check("MLDriftProcessorAbsent", "15m"),
            check("MLDriftProcessorAbsent", "30m", expect("MLDriftProcessorAbsent", {})),
        ],
    },
    {
        "name": "processor absent does not fire without traffic",
        "interval": "1m",
        "input_series": [rows("100x40")],
        "alert_rule_test": [check("MLDriftProcessorAbsent", "30m")],
    },
    {
        "name": "evaluation stale: a canary version with traffic but no drift evaluations",
        "interval": "1m",
        "input_series": [
            rows("0+100x40"),
            rows("0+10x40", version="v2", instance="pod-2"),
            samples("500x40"),
        ],
        "alert_rule_test": [
            check("MLDriftEvaluationStale", "5m"),
            check("MLDriftEvaluationStale", "20m",
                  expect("MLDriftEvaluationStale", {MODEL: "churn", VERSION: "v2"})),
        ],
    },
    {
        "name": "no predictions: a flat counter or a vanished series fires, a busy model does not",
        "interval": "1m",
        "input_series": [
            rows("0+10x10 100x40"),  # shop/churn: flat from 10m
            rows("0+10x50", job="search", model="ranker"),
            rows("0+10x10", job="api", model="fraud"),  # stops reporting at 10m
        ],
        "alert_rule_test": [
            check("MLNoPredictions", "20m"),
            check("MLNoPredictions", "40m",
                  expect("MLNoPredictions", {JOB: "shop", MODEL: "churn"}),
                  expect("MLNoPredictions", {JOB: "api", MODEL: "fraud"})),
        ],
    },
    {
        "name": "performance degraded fires on the verdict after 10m, valued at the realized metric",
        "interval": "1m",
        "input_series": [
            perf(sc.PERFORMANCE_DEGRADED, "0x4 1x30"),
            perf(sc.PERFORMANCE_VALUE, "0.9x4 0.85x30"),
            perf(sc.PERFORMANCE_VALUE, "0.2x34", metric_="recall", **{PRED_CLASS: "1"}),  # per class: no verdict
            perf(sc.PERFORMANCE_DEGRADED, "-1x34", window="1h"),  # NO_VERDICT: too few outcomes
            perf(sc.PERFORMANCE_VALUE, "0.8x34", window="1h"),
            perf(sc.PERFORMANCE_DEGRADED, "0x34", version="v2"),
            perf(sc.PERFORMANCE_VALUE, "0.91x34", version="v2"),
        ],
        "alert_rule_test": [
            check("MLModelPerformanceDegraded", "10m"),  # pending: degraded for 6m
            check("MLModelPerformanceDegraded", "20m",
                  expect("MLModelPerformanceDegraded", {**CHURN_V1, PERF_METRIC: "accuracy", WINDOW: "5m"}, 0.85)),
        ],
    },
    {
        "name": "performance: no verdict and a verdict that flaps never fire",
        "interval": "1m",
        "input_series": [
            perf(sc.PERFORMANCE_DEGRADED, "1x8 0 1x8 0 1x8 0 1x8"),  # never 10m in a row
            perf(sc.PERFORMANCE_VALUE, "0.85x40"),
            perf(sc.PERFORMANCE_DEGRADED, "-1x40", metric_="roc_auc"),
            perf(sc.PERFORMANCE_VALUE, "0.6x40", metric_="roc_auc"),
        ],
        "alert_rule_test": [
            check("MLModelPerformanceDegraded", "20m"),
            check("MLModelPerformanceDegraded", "36m"),
        ],
    },
    {
        "name": "segment underperforming fires on the slice's verdict after 10m, valued at its gap",
        "interval": "1m",
        "input_series": [
            seg(sc.SEGMENT_PERFORMANCE_DEGRADED, "0x4 1x30", "DE"),
            seg(sc.SEGMENT_PERFORMANCE_GAP, "-0.01x4 -0.15x30", "DE"),
            seg(sc.SEGMENT_PERFORMANCE_DEGRADED, "0x34", "FR"),
            seg(sc.SEGMENT_PERFORMANCE_GAP, "0.02x34", "FR"),
            seg(sc.SEGMENT_PERFORMANCE_DEGRADED, "-1x34", "LU"),  # too few outcomes: no verdict
            seg(sc.SEGMENT_PERFORMANCE_GAP, "-0.3x34", "LU"),
            perf(sc.PERFORMANCE_DEGRADED, "0x34"),  # the model overall is fine
        ],
        "alert_rule_test": [
            check("MLSegmentUnderperforming", "10m"),  # pending: degraded for 6m
            check("MLSegmentUnderperforming", "20m",
                  expect("MLSegmentUnderperforming", {**CHURN_V1, PERF_METRIC: "accuracy", WINDOW: "5m",
                                                      SEG_NAME: "country", SEG_VALUE: "DE"}, -0.15)),
            check("MLModelPerformanceDegraded", "20m"),
        ],
    },
    {
        "name": "segment underperforming: no verdict and a flapping verdict never fire",
        "interval": "1m",
        "input_series": [
            seg(sc.SEGMENT_PERFORMANCE_DEGRADED, "1x8 0 1x8 0 1x8 0 1x8", "DE"),
            seg(sc.SEGMENT_PERFORMANCE_GAP, "-0.15x40", "DE"),
            seg(sc.SEGMENT_PERFORMANCE_DEGRADED, "-1x40", "LU"),
            seg(sc.SEGMENT_PERFORMANCE_GAP, "-0.3x40", "LU"),
        ],
        "alert_rule_test": [
            check("MLSegmentUnderperforming", "20m"),
            check("MLSegmentUnderperforming", "36m"),
        ],
    },
    {
        "name": "segment drift fires after 15m on one segment's output, valued at its drift score",
        "interval": "1m",
        "input_series": [
            segdrift(sc.SEGMENT_DRIFT_DETECTED, "0x4 1x30", "DE"),
            segdrift(sc.SEGMENT_DRIFT_SCORE, "0.05x4 0.4x30", "DE"),
            segdrift(sc.SEGMENT_DRIFT_DETECTED, "0x34", "FR"),
            segdrift(sc.SEGMENT_DRIFT_SCORE, "0.02x34", "FR"),
            segdrift(sc.SEGMENT_DRIFT_DETECTED, "-1x34", "LU"),  # no verdict: never fires
            segdrift(sc.SEGMENT_DRIFT_SCORE, "0.9x34", "LU"),
            drift("value", "0x34", kind=sc.DRIFT_KIND_PREDICTION),  # the output overall is fine
        ],
        "alert_rule_test": [
            check("MLSegmentDrift", "10m"),  # pending
            check("MLSegmentDrift", "20m",
                  expect("MLSegmentDrift", {**CHURN_V1, WINDOW: "5m", PRED_NAME: "value", SEG_NAME: "country",
                                            SEG_VALUE: "DE"}, 0.4)),
            check("MLPredictionDriftDetected", "20m"),
        ],
    },
    {
        "name": "segment data quality fires after 10m on the alarmed segment, valued at its highest ratio",
        "interval": "1m",
        "input_series": [
            segdrift(sc.SEGMENT_QUALITY_ALARM, "0x4 1x30", "DE", output=None),
            segdrift(sc.SEGMENT_QUALITY_RATIO, "0.01x4 0.12x30", "DE", output=None, **{QUALITY_KIND: "missing"}),
            segdrift(sc.SEGMENT_QUALITY_RATIO, "0x34", "DE", output=None, **{QUALITY_KIND: "invalid"}),
            segdrift(sc.SEGMENT_QUALITY_ALARM, "1 0 1 0 1 0 1 0 1 0 1 0 1 0 1 0 1 0 1 0 1 0", "FR", output=None),
            segdrift(sc.SEGMENT_QUALITY_RATIO, "0.2x34", "FR", output=None, **{QUALITY_KIND: "missing"}),
            segdrift(sc.SEGMENT_QUALITY_ALARM, "-1x34", "LU", output=None),
        ],
        "alert_rule_test": [
            check("MLSegmentDataQuality", "8m"),  # pending
            check("MLSegmentDataQuality", "20m",
                  expect("MLSegmentDataQuality", {**CHURN_V1, WINDOW: "5m", SEG_NAME: "country", SEG_VALUE: "DE"},
                         0.12)),
        ],
    },
    {
        "name": "canary worse than baseline fires after 15m of a differing output, valued at their count",
        "interval": "1m",
        "input_series": [
            versus("value", "0x4 1x30"),
            versus("value", "1x34", window="1h"),  # the same output in another window: counted once
            versus("label", "0x8 1x30"),
            versus("age", "1x34", kind=sc.DRIFT_KIND_FEATURE),  # feature mix alone: not the model's outputs
            versus("value", "0x34", version="v3"),
            series(sc.VERSION_PERFORMANCE_DEGRADED, {**PROC, MODEL: "churn", VERSION: "v3", BASELINE: "v1",
                                                     WINDOW: "5m", PERF_METRIC: "accuracy"}, "0x4 1x30"),
            series(sc.VERSION_PERFORMANCE_DEGRADED, {**PROC, MODEL: "churn", VERSION: "v3", BASELINE: "v1",
                                                     WINDOW: "5m", PERF_METRIC: "roc_auc"}, "-1x34"),
        ],
        "alert_rule_test": [
            check("MLCanaryWorseThanBaseline", "10m"),  # pending
            check("MLCanaryWorseThanBaseline", "20m",
                  expect("MLCanaryWorseThanBaseline", {MODEL: "churn", VERSION: "v2", BASELINE: "v1"}, 2),
                  expect("MLCanaryWorseThanBaseline", {MODEL: "churn", VERSION: "v3", BASELINE: "v1"}, 1)),
        ],
    },
    {
        "name": "canary: no difference, a flapping verdict or feature mix alone never fire",
        "interval": "1m",
        "input_series": [
            versus("value", "1x10 0 1x10 0 1x10 0"),  # never 15m in a row
            versus("value", "0x34", version="v3"),
            versus("age", "1x34", kind=sc.DRIFT_KIND_FEATURE, version="v4"),
            series(sc.VERSION_PERFORMANCE_DEGRADED, {**PROC, MODEL: "churn", VERSION: "v5", BASELINE: "v1",
                                                     WINDOW: "5m", PERF_METRIC: "accuracy"}, "-1x34"),  # no verdict
        ],
        "alert_rule_test": [
            check("MLCanaryWorseThanBaseline", "20m"),
            check("MLCanaryWorseThanBaseline", "33m"),
        ],
    },
    {
        "name": "outcomes stopped: joins stop, or never came, while predictions with ids continue",
        "interval": "1m",
        "input_series": [
            records("0+10x900"),
            joined("0+5x420 2100x480"),  # v1: outcomes stop at 7h
            records("0+10x900", version="v2"),
            joined("0+5x900", version="v2"),  # v2: outcomes keep coming
            records("0+10x900", version="v5"),  # v5: ids sent, never an outcome
            records("_x600 0+10x300", version="v3"),  # v3: deployed at 10h, younger than the label delay
        ],
        "alert_rule_test": [
            check("MLOutcomesStopped", _hours(5)),  # v5's predictions are not yet 6h old
            check("MLOutcomesStopped", _hours(13.2),  # v1 pending since 13h; v5 firing since 6.5h
                  expect("MLOutcomesStopped", {MODEL: "churn", VERSION: "v5"}, 600)),
            check("MLOutcomesStopped", _hours(14),
                  expect("MLOutcomesStopped", {MODEL: "churn", VERSION: "v1"}, 600),
                  expect("MLOutcomesStopped", {MODEL: "churn", VERSION: "v5"}, 600)),
        ],
    },
    {
        "name": "outcomes stopped stays quiet when predictions stop too, or one batch of outcomes just arrived",
        "interval": "1m",
        "input_series": [
            records("0+10x300 3000x600"),  # v1: stops predicting at 5h (MLNoPredictions' job)
            records("0+10x900", version="v4"),
            joined("_x720 500x180", version="v4"),  # v4: a first batch joined at 12h, flat since
        ],
        "alert_rule_test": [
            check("MLOutcomesStopped", _hours(14)),
        ],
    },
]


# --- MLEstimatedPerformanceDrop ---------------------------------------------------------------------
_LONG = rules.ESTIMATE_WINDOW


def estimated(values: str, upper: str, *, metric_: str = "accuracy", window: str = _LONG,
              version: str = "v1") -> list[dict[str, str]]:
    """The processor's label-free estimate of churn and its interval's upper bound."""
    where = {"metric_": metric_, "window": window, "version": version}
    return [perf(sc.PERFORMANCE_ESTIMATED, values, **where), perf(sc.PERFORMANCE_ESTIMATED_UPPER, upper, **where)]


_TOL = rules.ESTIMATE_TOLERANCES["accuracy"]
_EST = {**CHURN_V1, PERF_METRIC: "accuracy", WINDOW: _LONG}

TESTS.extend([
    {
        "name": "estimated drop fires after 15m when the estimate's upper bound stays below reference - tolerance",
        "interval": "1m",
        "input_series": [
            perf(sc.PERFORMANCE_REFERENCE, "0.9x40", window=_LONG),
            perf(sc.PERFORMANCE_REFERENCE, "0.9x40"),  # the same holdout value, sent with each window
            *estimated("0.9x4 0.85x36", f"0.92x4 {0.9 - _TOL - 0.01:g}x36"),
            *estimated("0.8x40", "0.82x40", window="5m"),  # the short window is not judged
            perf(sc.PERFORMANCE_REFERENCE, "0.9x40", version="v2", window=_LONG),
            *estimated("0.89x40", "0.91x40", version="v2"),
        ],
        "alert_rule_test": [
            check("MLEstimatedPerformanceDrop", "12m"),  # pending: below the line for 8m
            check("MLEstimatedPerformanceDrop", "25m", expect("MLEstimatedPerformanceDrop", _EST, 0.85)),
        ],
    },
    {
        "name": "estimated drop: quiet while the interval reaches the tolerance line, or without a reference",
        "interval": "1m",
        "input_series": [
            # accuracy: the estimate is 0.04 below the reference, but its upper bound is above 0.9 - tolerance.
            perf(sc.PERFORMANCE_REFERENCE, "0.9x40", window=_LONG),
            *estimated("0.86x40", f"{0.9 - _TOL + 0.005:g}x40"),
            # f1: one class's reference (0.97) is not the overall one (0.91) the macro estimate compares with.
            perf(sc.PERFORMANCE_REFERENCE, "0.91x40", metric_="f1", window=_LONG),
            perf(sc.PERFORMANCE_REFERENCE, "0.97x40", metric_="f1", window=_LONG, **{PRED_CLASS: "1"}),
            *estimated("0.87x40", f"{0.91 - rules.ESTIMATE_TOLERANCES['f1'] + 0.005:g}x40", metric_="f1"),
            # v3: a reference without a performance section, hence no reference series: nothing to compare with.
            *estimated("0.5x40", "0.55x40", version="v3"),
        ],
        "alert_rule_test": [
            check("MLEstimatedPerformanceDrop", "20m"),
            check("MLEstimatedPerformanceDrop", "35m"),
        ],
    },
    {
        # The processor sends the holdout value with each drift evaluation, outcomes or not: a model whose
        # labels never come has only its estimate and that reference line, and the alert is its only judge.
        "name": "estimated drop fires for a label-free model: estimate and reference series only, no outcomes",
        "interval": "1m",
        "input_series": [
            perf(sc.PERFORMANCE_REFERENCE, "0.9x40", window=_LONG),
            perf(sc.PERFORMANCE_REFERENCE, "0.9x40"),
            perf(sc.PERFORMANCE_REFERENCE, "0.95x40", metric_="roc_auc", window=_LONG),
            *estimated("0.8x40", "0.83x40"),
            *estimated("0.93x40", "0.95x40", metric_="roc_auc"),  # within its tolerance of 0.95: quiet
        ],
        "alert_rule_test": [
            check("MLEstimatedPerformanceDrop", "10m"),
            check("MLEstimatedPerformanceDrop", "20m", expect("MLEstimatedPerformanceDrop", _EST, 0.8)),
        ],
    },
    {
        "name": "estimated drop: a single flap above the line restarts the 15m",
        "interval": "1m",
        "input_series": [
            perf(sc.PERFORMANCE_REFERENCE, "0.9x40", window=_LONG),
            *estimated("0.85x40", "0.87x9 0.885 0.87x30"),  # above the line at 10m only
        ],
        "alert_rule_test": [
            check("MLEstimatedPerformanceDrop", "22m"),  # below again since 11m: pending
            check("MLEstimatedPerformanceDrop", "30m", expect("MLEstimatedPerformanceDrop", _EST, 0.85)),
        ],
    },
])


def promtool_tests() -> dict[str, Any]:
    return {"rule_files": [RULES_FILE], "evaluation_interval": "1m", "tests": TESTS}


# --- Dashboard queries: promql_expr_test on synthetic series ------------------------------------------
# Checks what a few non-obvious panel queries compute (rendered as Grafana would, "All" selected), so a
# change that breaks their arithmetic fails before anyone looks at a dashboard.
QUERY_RATE_INTERVAL = "5m"
QUERY_RANGE = "10m"


def _histogram(name: str, labels: dict[str, str], per_minute: dict[str, int],
               sum_per_minute: float | None = None) -> list[dict[str, str]]:
    """Cumulative _bucket series growing by ``per_minute`` (cumulative per le), _count, and _sum when
    ``sum_per_minute`` is given."""
    def part(suffix: str, extra: dict[str, str], values: str) -> dict[str, str]:
        s = series(name, {**labels, **extra}, values)
        s["series"] = s["series"].replace(metric(name) + "{", metric(name) + suffix + "{", 1)
        return s

    out = [part("_bucket", {"le": le}, f"0+{n}x20") for le, n in per_minute.items()]
    out.append(part("_count", {}, f"0+{max(per_minute.values())}x20"))
    if sum_per_minute is not None:
        out.append(part("_sum", {}, f"0+{sum_per_minute:g}x20"))
    return out


def query_tests() -> dict[str, Any]:
    from dashboards import catalog, promql

    def rendered(expr: str, **values: str) -> str:
        return catalog.render(expr, values, rate_interval=QUERY_RATE_INTERVAL, range_=QUERY_RANGE)

    v1 = {**APP, **CHURN_V1}
    v2 = {**APP, INSTANCE: "pod-2", MODEL: "churn", VERSION: "v2"}
    duration = metric(sc.PREDICT_DURATION) + "_count"
    inputs = [
        rows("0+180x20"),
        {"series": series(sc.PREDICT_ROWS, v2, "")["series"], "values": "_x8 0+60x12"},
        {"series": f'{duration}{{job="shop", instance="pod-1", {MODEL}="churn", {VERSION}="v1"}}',
         "values": "0+3x20"},
        {"series": f'{duration}{{job="shop", instance="pod-1", {MODEL}="churn", {VERSION}="v1", '
                   f'{promql.ERROR_TYPE}="ValueError"}}', "values": "0+1x20"},
        {"series": f'{duration}{{job="shop", instance="pod-2", {MODEL}="churn", {VERSION}="v2"}}',
         "values": "_x8 0+5x12"},
        *_histogram(sc.FEATURE_VALUE, {**v1, FEATURE: "age"}, {"30": 10, "50": 30, "+Inf": 40}),
        *_histogram(sc.PREDICTION_VALUE, {**v1, promql.PRED_NAME: "proba:1"}, {"0.5": 45, "+Inf": 60}),
        series(sc.FEATURE_CATEGORY_COUNT, {**v1, FEATURE: "plan", promql.CATEGORY: "a"}, "0+30x20"),
        series(sc.FEATURE_CATEGORY_COUNT, {**v1, FEATURE: "plan", promql.CATEGORY: "b"}, "0+10x20"),
        series(sc.PREDICTION_CLASS_COUNT, {**v2, promql.PRED_NAME: "label", promql.PRED_CLASS: "1"}, "0+15x20"),
        series(sc.PREDICTION_CLASS_COUNT, {**v2, promql.PRED_NAME: "label", promql.PRED_CLASS: "0"}, "0+5x20"),
        drift("age", "1x20"),
        drift("income", "0x20"),
        drift("age", "0x20", window="1h"),
        *_outcome_inputs(),
        versus("value", "1x20"),
        versus("value", "0x20", window="1h"),
        versus("age", "0x20", kind=sc.DRIFT_KIND_FEATURE),
        versus("value", "0.3x20", name=sc.VERSION_DRIFT_SCORE, **{promql.METHOD: "psi"}),
        versus("value", "0.1x20", name=sc.VERSION_DRIFT_SCORE, **{promql.METHOD: "wasserstein"}),
        *(series(name, {**PROC, MODEL: "churn", VERSION: "v2", BASELINE: "v1", WINDOW: "5m", PERF_METRIC: m}, v)
          for name, m, v in ((sc.VERSION_PERFORMANCE_GAP, "accuracy", "-0.08x20"),
                             (sc.VERSION_PERFORMANCE_GAP, "roc_auc", "-0.01x20"),
                             (sc.VERSION_PERFORMANCE_DEGRADED, "accuracy", "1x20"))),
    ]
    pair = f'{MODEL}="churn", {VERSION}="v2", {BASELINE}="v1"'
    version_checks = [
        {"expr": rendered(promql.version_drift_status()), "eval_time": "19m",
         "exp_samples": [{"labels": f'{{{pair}, {KIND}="prediction", {FEATURE}="value"}}', "value": 1},
                         {"labels": f'{{{pair}, {KIND}="feature", {FEATURE}="age"}}', "value": 0}]},
        {"expr": rendered(promql.version_differing_count()), "eval_time": "19m",
         "exp_samples": [{"labels": f"{{{pair}}}", "value": 1}]},
        {"expr": rendered(promql.version_drift_score(), method="psi"), "eval_time": "19m",
         "exp_samples": [{"labels": f'{{{pair}, {FEATURE}="value", {WINDOW}="5m"}}', "value": 0.3}]},
        {"expr": rendered(promql.version_performance(), metric="accuracy"), "eval_time": "19m",
         "exp_samples": [{"labels": f'{{{pair}, {WINDOW}="5m"}}', "value": -0.08}]},
        {"expr": rendered(promql.version_performance(sc.VERSION_PERFORMANCE_DEGRADED), metric="accuracy"),
         "eval_time": "19m", "exp_samples": [{"labels": f'{{{pair}, {WINDOW}="5m"}}', "value": 1}]},
    ]
    mv = lambda version: f'{{{MODEL}="churn", {VERSION}="{version}"}}'  # noqa: E731
    return {
        "rule_files": [RULES_FILE],
        "evaluation_interval": "1m",
        "tests": [{
            "name": "dashboard queries compute what their panels claim",
            "interval": "1m",
            "input_series": inputs,
            "promql_expr_test": [
                {"expr": rendered(promql.traffic_share()), "eval_time": "19m",
                 "exp_samples": [{"labels": mv("v1"), "value": 0.75}, {"labels": mv("v2"), "value": 0.25}]},
                {"expr": rendered(promql.predict_error_ratio()), "eval_time": "19m",
                 "exp_samples": [{"labels": mv("v1"), "value": 0.25}, {"labels": mv("v2"), "value": 0}]},
                {"expr": rendered(promql.feature_cdf_current(), feature="age"), "eval_time": "19m",
                 "exp_samples": [{"labels": '{le="30"}', "value": 0.25}, {"labels": '{le="50"}', "value": 0.75},
                                 {"labels": '{le="+Inf"}', "value": 1}]},
                {"expr": rendered(promql.feature_cdf_current(), feature="proba:1"), "eval_time": "19m",
                 "exp_samples": [{"labels": '{le="0.5"}', "value": 0.75}, {"labels": '{le="+Inf"}', "value": 1}]},
                {"expr": rendered(promql.category_share_current(), feature="plan"), "eval_time": "19m",
                 "exp_samples": [{"labels": f'{{{promql.CATEGORY}="a"}}', "value": 0.75},
                                 {"labels": f'{{{promql.CATEGORY}="b"}}', "value": 0.25}]},
                {"expr": rendered(promql.category_share_current(), feature="label"), "eval_time": "19m",
                 "exp_samples": [{"labels": f'{{{promql.CATEGORY}="1"}}', "value": 0.75},
                                 {"labels": f'{{{promql.CATEGORY}="0"}}', "value": 0.25}]},
                {"expr": rendered(promql.version_changes()), "eval_time": "15m",
                 "exp_samples": [{"labels": mv("v2"), "value": 1}]},
                {"expr": rendered(promql.drifting_count()), "eval_time": "19m",
                 "exp_samples": [{"labels": mv("v1"), "value": 1}]},
                {"expr": rendered(promql.event_rate(sc.FEATURE_MISSING, promql.BY_VERSION)), "eval_time": "19m",
                 "exp_samples": [{"labels": mv("v1"), "value": 0}, {"labels": mv("v2"), "value": 0}]},
                *_outcome_checks(rendered),
                *version_checks,
            ],
        }],
    }


def _outcome_inputs() -> list[dict[str, str]]:
    """Synthetic ground-truth series for churn v1 (the processor's realized performance and join counters)."""
    v1 = {**PROC, **CHURN_V1}
    return [
        perf(sc.PERFORMANCE_VALUE, "0.85x20"),
        perf(sc.PERFORMANCE_LOWER, "0.83x20"),
        perf(sc.PERFORMANCE_UPPER, "0.87x20"),
        perf(sc.PERFORMANCE_REFERENCE, "0.9x20"),
        perf(sc.PERFORMANCE_REFERENCE, "0.9x20", window="1h"),
        perf(sc.PERFORMANCE_VALUE, "0.8x20", window="1h"),
        perf(sc.PERFORMANCE_VALUE, "0.7x20", metric_="f1"),  # another metric: not on the accuracy panel
        perf(sc.PERFORMANCE_VALUE, "0.5x20", **{PRED_CLASS: "1"}),  # one class's: not the overall value
        perf(sc.PERFORMANCE_DEGRADED, "1x20"),
        perf(sc.PERFORMANCE_ESTIMATED, "0.88x20"),
        perf(sc.PERFORMANCE_ESTIMATED, "0.86x20", window="1h"),
        perf(sc.PERFORMANCE_ESTIMATED, "0.75x20", metric_="f1"),  # another metric: not on the accuracy panel
        perf(sc.PERFORMANCE_ESTIMATED_LOWER, "0.84x20"),
        perf(sc.PERFORMANCE_ESTIMATED_UPPER, "0.92x20"),
        perf(sc.PERFORMANCE_DEGRADED, "-1x20", window="1h"),
        series(sc.PERFORMANCE_SAMPLE_COUNT, {**v1, WINDOW: "5m"}, "2000x20"),
        series(sc.OUTCOME_COVERAGE_RATIO, {**v1, WINDOW: "5m"}, "0.5x20"),
        series(sc.CALIBRATION_OBSERVED, {**v1, WINDOW: "5m", BUCKET_LE: "0.1"}, "0.02x20"),
        series(sc.CALIBRATION_OBSERVED, {**v1, WINDOW: "5m", BUCKET_LE: "0.5"}, "0.4x20"),
        series(sc.CALIBRATION_OBSERVED, {**v1, WINDOW: "5m", BUCKET_LE: "1"}, "0.97x20"),
        *_histogram(sc.LABEL_DELAY, v1, {"10": 1, "60": 2, "3600": 3, "+Inf": 4}, sum_per_minute=180),
        joined("0+60x20"),
        series(sc.OUTCOMES_UNMATCHED, {**v1, ERROR_TYPE: "ttl"}, "0+6x20"),
        series(sc.OUTCOMES_REJECTED, {**PROC, MODEL: "churn", ERROR_TYPE: "unknown_class"}, "0+30x20"),
        series(sc.SEGMENT_OVERFLOW, v1, "0+12x20"),
        *_segment_inputs(),
        *_segment_drift_inputs(),
    ]


def _segment_drift_inputs() -> list[dict[str, str]]:
    """Churn v1's segment drift and quality: FR drifted most (drift rank 1), DE's quality worst (quality rank
    1, ranked 1 on performance too by :func:`_segment_inputs`), LU no verdict; the country mix moved."""
    out = []
    intervals = {"DE": ("0.02", "0.09", "0.08", "0.1"), "FR": ("0.33", "0.47", "0.005", "0.015")}
    for value, d_rank, score, detected, q_rank, missing, alarm in (
            ("DE", "2", "0.05", "0", "1", "0.09", "1"), ("FR", "1", "0.4", "1", "2", "0.01", "0"),
            ("LU", None, None, "-1", None, "0.5", "-1")):
        if value in intervals:  # judged values only (LU has no verdict: no interval)
            d_lo, d_hi, q_lo, q_hi = intervals[value]
            out += [segdrift(sc.SEGMENT_DRIFT_SCORE_LOWER, f"{d_lo}x20", value),
                    segdrift(sc.SEGMENT_DRIFT_SCORE_UPPER, f"{d_hi}x20", value),
                    *(segdrift(name, f"{v}x20", value, output=None, **{QUALITY_KIND: kind})
                      for name, kind, v in ((sc.SEGMENT_QUALITY_RATIO_LOWER, "missing", q_lo),
                                            (sc.SEGMENT_QUALITY_RATIO_UPPER, "missing", q_hi),
                                            (sc.SEGMENT_QUALITY_RATIO_LOWER, "invalid", "0"),
                                            (sc.SEGMENT_QUALITY_RATIO_UPPER, "invalid", "0.001")))]
        out += [segdrift(sc.SEGMENT_DRIFT_DETECTED, f"{detected}x20", value),
                segdrift(sc.SEGMENT_QUALITY_ALARM, f"{alarm}x20", value, output=None),
                segdrift(sc.SEGMENT_QUALITY_RATIO, f"{missing}x20", value, output=None, **{QUALITY_KIND: "missing"}),
                segdrift(sc.SEGMENT_QUALITY_RATIO, "0x20", value, output=None, **{QUALITY_KIND: "invalid"})]
        if d_rank is not None:
            out += [segdrift(sc.SEGMENT_DRIFT_RANK, f"{d_rank}x20", value),
                    segdrift(sc.SEGMENT_DRIFT_SCORE, f"{score}x20", value)]
        if q_rank is not None:
            out.append(segdrift(sc.SEGMENT_QUALITY_RANK, f"{q_rank}x20", value, output=None))
    out.append(series(sc.SEGMENT_MIX_DETECTED, {**PROC, **CHURN_V1, WINDOW: "5m", SEG_NAME: "country"}, "1x20"))
    # The library's per-segment metrics of churn v1 on pod-1: DE 120 rows a minute, 6 of them missing a value.
    de = {**APP, **CHURN_V1, SEG_NAME: "country", SEG_VALUE: "DE"}
    out += [series(sc.SEGMENT_ROWS, de, "0+120x20"),
            *(series(name, de, "0+6x20" if kind == "missing" else "0+0x20")
              for kind, name in sc.SEGMENT_QUALITY_COUNTERS.items()),
            *_histogram(sc.SEGMENT_PREDICTION_VALUE, {**de, PRED_NAME: "value"}, {"0.5": 60, "1": 120, "+Inf": 120}),
            series(sc.SEGMENT_PREDICTION_CLASS_COUNT, {**de, PRED_NAME: "label", PRED_CLASS: "1"}, "0+30x20")]
    return out


def _segment_inputs() -> list[dict[str, str]]:
    """Churn v1's segment slices: DE worst (rank 1, degraded), FR (rank 2), LU too small (no verdict, no rank)."""
    rows = {  # value: (rank, gap, value, outcomes, degraded)
        "DE": ("1", "-0.15", "0.75", "2000", "1"),
        "FR": ("2", "0.02", "0.92", "8000", "0"),
        "LU": (None, "-0.3", "0.6", "40", "-1"),
    }
    out = []
    for value, (rank, gap, val, n, degraded) in rows.items():
        if rank is not None:
            out.append(seg(sc.SEGMENT_PERFORMANCE_RANK, f"{rank}x20", value))
        out += [seg(sc.SEGMENT_PERFORMANCE_GAP, f"{gap}x20", value),
                seg(sc.SEGMENT_PERFORMANCE_VALUE, f"{val}x20", value),
                seg(sc.SEGMENT_PERFORMANCE_LOWER, "0.7x20", value),
                seg(sc.SEGMENT_PERFORMANCE_UPPER, "0.95x20", value),
                seg(sc.SEGMENT_SAMPLE_COUNT, f"{n}x20", value),
                seg(sc.SEGMENT_PERFORMANCE_DEGRADED, f"{degraded}x20", value)]
    return out


def _outcome_checks(rendered) -> list[dict[str, Any]]:
    """What each realized-performance panel query returns on :func:`_outcome_inputs` at 19m."""
    from dashboards import promql

    def at(expr: str, *samples: tuple[dict[str, str], float]) -> dict[str, Any]:
        return {"expr": rendered(expr, metric="accuracy"), "eval_time": "19m",
                "exp_samples": [{"labels": "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}",
                                 "value": value} for labels, value in samples]}

    w5, w1h = {**CHURN_V1, WINDOW: "5m"}, {**CHURN_V1, WINDOW: "1h"}
    de, fr = ({**w5, SEG_NAME: "country", SEG_VALUE: v} for v in ("DE", "FR"))
    return [
        at(promql.performance(), (w5, 0.85), (w1h, 0.8)),
        at(promql.performance(sc.PERFORMANCE_LOWER), (w5, 0.83)),
        at(promql.performance(sc.PERFORMANCE_UPPER), (w5, 0.87)),
        at(promql.performance(sc.PERFORMANCE_REFERENCE), (CHURN_V1, 0.9)),
        at(promql.estimated(), (w5, 0.88), (w1h, 0.86)),
        at(promql.estimated(sc.PERFORMANCE_ESTIMATED_LOWER), (w5, 0.84)),
        at(promql.estimated(sc.PERFORMANCE_ESTIMATED_UPPER), (w5, 0.92)),
        at(promql.performance_degraded(), ({**w5, PERF_METRIC: "accuracy"}, 1), ({**w1h, PERF_METRIC: "accuracy"}, -1)),
        at(promql.window_gauge(sc.PERFORMANCE_SAMPLE_COUNT), (w5, 2000)),
        at(promql.window_gauge(sc.OUTCOME_COVERAGE_RATIO), (w5, 0.5)),
        # Delays: 1/4 within 10 s, 1/2 within 1 min, 3/4 within 1 h: the median is 1 min; p90 and p99 fall
        # in +Inf, reported as the highest finite bound.
        at(promql.label_delay(0.5), (CHURN_V1, 60)),
        at(promql.label_delay(0.9), (CHURN_V1, 3600)),
        at(promql.label_delay_mean(), (CHURN_V1, 45)),  # _sum grows by 180 s per minute, _count by 4
        at(promql.label_delay(0.99), (CHURN_V1, 3600)),
        at(promql.rate(sc.OUTCOMES_JOINED, by=promql.BY_VERSION, base=promql.EVAL), (CHURN_V1, 1)),
        at(promql.outcome_rate(sc.OUTCOMES_UNMATCHED, f"{MODEL}, {VERSION}, {ERROR_TYPE}"),
           ({**CHURN_V1, ERROR_TYPE: "ttl"}, 0.1), (CHURN_V1, 0)),
        at(promql.outcome_rate(sc.PREDICTIONS_EXPIRED, f"{MODEL}, {VERSION}, {ERROR_TYPE}"), (CHURN_V1, 0)),
        at(promql.outcome_rate(sc.OUTCOMES_DUPLICATES), (CHURN_V1, 0)),
        at(promql.outcome_rate(sc.OUTCOMES_REJECTED, f"{MODEL}, {ERROR_TYPE}", {MODEL: f"${promql.V_MODEL}"}),
           ({MODEL: "churn", ERROR_TYPE: "unknown_class"}, 0.5), (CHURN_V1, 0)),
        at(promql.calibration_observed(), ({BUCKET_LE: "0.1"}, 0.02), ({BUCKET_LE: "0.5"}, 0.4),
           ({BUCKET_LE: "1"}, 0.97)),
        at(promql.calibration_diagonal(), ({BUCKET_LE: "0.1"}, 0.05), ({BUCKET_LE: "0.5"}, 0.45),
           ({BUCKET_LE: "1"}, 0.95)),
        at(promql.outcome_rate(sc.SEGMENT_OVERFLOW), (CHURN_V1, 0.2)),
        # LU has no verdict, hence no rank: never in the table
        at(promql.worst_segments(), (de, 1), (fr, 2)),
        at(promql.worst_segments(sc.SEGMENT_PERFORMANCE_GAP), (de, -0.15), (fr, 0.02)),
        at(promql.worst_segments(sc.SEGMENT_PERFORMANCE_VALUE), (de, 0.75), (fr, 0.92)),
        at(promql.worst_segments(sc.SEGMENT_PERFORMANCE_LOWER), (de, 0.7), (fr, 0.7)),
        at(promql.worst_segments(sc.SEGMENT_PERFORMANCE_UPPER), (de, 0.95), (fr, 0.95)),
        at(promql.worst_segments(sc.SEGMENT_SAMPLE_COUNT), (de, 2000), (fr, 8000)),
        at(promql.worst_segments(sc.SEGMENT_PERFORMANCE_DEGRADED), (de, 1), (fr, 0)),
        *_segment_drift_checks(at, de, fr),
    ]


def _segment_drift_checks(at: Any, de: dict[str, str], fr: dict[str, str]) -> list[dict[str, Any]]:
    """What each segment drift panel query returns on :func:`_segment_drift_inputs` (LU: no rank, never shown)."""
    from dashboards import generate, promql

    expected = {  # column title -> (DE, FR)
        "drift rank": (2, 1), "drift score": (0.05, 0.4), "drift lower": (0.02, 0.33), "drift upper": (0.09, 0.47),
        "drifted": (0, 1), "quality rank": (1, 2), "worst quality ratio": (0.09, 0.01),
        "quality lower": (0.08, 0.005), "quality upper": (0.1, 0.015), "quality alarm": (1, 0),
        "performance rank": (1, 2), "performance gap": (-0.15, 0.02),
    }
    checks = [at(promql.worst_segments_all(name, agg), (de, expected[title][0]), (fr, expected[title][1]))
              for name, agg, title in generate._ALL_SIGNALS_COLUMNS.values()]
    out = {PRED_NAME: "value"}
    checks += [
        at(promql.segment_drift_score(), ({**de, **out}, 0.05), ({**fr, **out}, 0.4)),
        at(promql.segment_quality_ratio(), ({**de, QUALITY_KIND: "missing"}, 0.09),
           ({**fr, QUALITY_KIND: "missing"}, 0.01)),
        at(promql.segment_mix(), ({**CHURN_V1, SEG_NAME: "country"}, 1)),
    ]
    value = {**CHURN_V1, SEG_NAME: "country", SEG_VALUE: "DE"}
    checks += [at(promql.segment_rate(sc.SEGMENT_ROWS), (value, 2)),
               *(at(promql.segment_rate(name), (value, 0.1 if kind == "missing" else 0))
                 for kind, name in sc.SEGMENT_QUALITY_COUNTERS.items()),
               at(promql.segment_output_median(), ({**value, PRED_NAME: "value"}, 0.5)),
               at(promql.segment_class_rate(), ({**value, PRED_NAME: "label", PRED_CLASS: "1"}, 0.5))]
    return checks
