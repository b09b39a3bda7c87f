"""The otel-ml alert rules, defined once.

:func:`prometheus_rules` renders them as a Prometheus rules file (``dashboards/alerts/otel-ml.rules.yml``)
and :func:`grafana_alert_provisioning` as Grafana-managed alert rules in Grafana's file-provisioning
format (``dashboards/provisioning/alerting/otel-ml-alerts.yaml``). Every expression yields one series per
alerting subject, with a positive value, only while the condition holds; so the Grafana rule is simply
"the query returned something" (reduce last, threshold > 0), mirroring Prometheus' semantics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dashboards.promql import (
    BASELINE,
    FEATURE,
    JOB,
    KIND,
    MODEL,
    PERF_METRIC,
    PRED_CLASS,
    PRED_NAME,
    SEG_NAME,
    SEG_VALUE,
    VERSION,
    WINDOW,
    metric,
)
from otel_ml import semconv as sc
from otel_ml.stats import PerformancePolicy
from otel_ml.stats.estimated import ESTIMATED_METRICS

#: Default thresholds; edit here and regenerate (``python -m dashboards.generate``).
DRIFT_FOR = "15m"
QUALITY_FOR = "10m"
NO_PREDICTIONS_WINDOW = "15m"
PROCESSOR_SILENCE = "10m"
PERFORMANCE_FOR = "10m"
SEGMENT_FOR = "10m"
CANARY_FOR = "15m"
#: MLOutcomesStopped: no outcome joined for this long while predictions with ids keep coming. It must
#: exceed the usual label delay (ml.label.delay p99) and the gap between outcome batches (a nightly
#: `otel-ml outcomes push` needs more than 24h): see docs/dashboards.md.
OUTCOMES_SILENCE = "6h"
#: ... and "keep coming" means: some in the last hour.
OUTCOMES_RECENT = "1h"
OUTCOMES_FOR = "30m"

GROUP = "otel-ml"
FOLDER = "otel-ml"
#: Grafana-managed rules must name their datasource by uid. The provisioning file names none: it refers to
#: this environment variable, which Grafana substitutes when it reads the file (its provisioning files
#: interpolate ``${NAME}`` in values). Set it in Grafana's environment to your Prometheus datasource's uid
#: (``otel-ml-prometheus`` for dashboards/provisioning/datasources/otel-ml-datasources.yaml).
DATASOURCE_UID_ENV = "OTEL_ML_DATASOURCE_UID"
DATASOURCE_UID = "${%s}" % DATASOURCE_UID_ENV
OVERVIEW_UID = "otel-ml-overview"


@dataclass(frozen=True)
class Alert:
    name: str
    uid: str
    expr: str
    #: The same data without the condition: while the pipeline runs it returns series whether or not
    #: the alert fires (the e2e test runs it to prove the expression reads real metric names).
    signal: str
    for_: str
    severity: str
    summary: str
    description: str
    labels: dict[str, str] = field(default_factory=dict)
    #: How VALUE in the description renders the alert's value (a Go template pipeline stage).
    value_format: str = "humanizePercentage"


_ROWS = metric(sc.PREDICT_ROWS)
_ALARM = metric(sc.QUALITY_ALARM)
_DETECTED = metric(sc.DRIFT_DETECTED)
_SAMPLES = metric(sc.DRIFT_SAMPLE_COUNT)
_BY_FEATURE = f"{MODEL}, {VERSION}, {KIND}, {FEATURE}"

_QUALITY = sc.QUALITY_RATIOS
QUALITY_LABEL = "quality"


def _quality_union() -> str:
    parts = [
        f'label_replace({metric(name)}, "{QUALITY_LABEL}", "{short}", "", "")'
        for short, name in _QUALITY.items()
    ]
    return (f"max by ({MODEL}, {VERSION}, {FEATURE}, {QUALITY_LABEL}) (\n  "
            + "\n  or ".join(parts) + "\n)")


_BY_STREAM = f"{MODEL}, {VERSION}, {FEATURE}"


def _quality_alarm() -> str:
    """1 while the processor's data-quality verdict holds for a feature (in any window), else 0."""
    return f"max by ({_BY_STREAM}) ({_ALARM})"


def _quality_alarm_firing() -> str:
    """The feature's highest quality ratio, only where the processor's verdict is an alarm.

    The verdict, not a fixed threshold, decides (the processor compares each ratio with the reference's
    own, with a significance test and ``quality_min_increase``); the value tells the on-call how bad it is.
    """
    return (f"max by ({_BY_STREAM}) ({_quality_union()})\n"
            f"and on ({_BY_STREAM})\n"
            f"({_quality_alarm()} == 1)")


def _drift(kind: str) -> str:
    return f'max by ({_BY_FEATURE}) ({_DETECTED}{{{KIND}="{kind}"}})'


def _rows_rate(by: str, window: str) -> str:
    return f"sum by ({by}) (rate({_ROWS}[{window}]))"


_BY_PERFORMANCE = f"{MODEL}, {VERSION}, {PERF_METRIC}, {WINDOW}"
_BY_SEGMENT = f"{_BY_PERFORMANCE}, {SEG_NAME}, {SEG_VALUE}"
_SEGMENT_DEGRADED = metric(sc.SEGMENT_PERFORMANCE_DEGRADED)


def _segment_degraded() -> str:
    """The processor's verdict per segment slice (1, 0 or NO_VERDICT)."""
    return f"max by ({_BY_SEGMENT}) ({_SEGMENT_DEGRADED})"


def _segment_firing() -> str:
    """The slice's gap to the rest of its window (slice − rest), only where the verdict is 1."""
    return (f"max by ({_BY_SEGMENT}) ({metric(sc.SEGMENT_PERFORMANCE_GAP)})\n"
            f"and on ({_BY_SEGMENT})\n"
            f"({_segment_degraded()} == 1)")


_BY_SEGMENT_OUTPUT = f"{MODEL}, {VERSION}, {WINDOW}, {PRED_NAME}, {SEG_NAME}, {SEG_VALUE}"
_BY_SEGMENT_VALUE = f"{MODEL}, {VERSION}, {WINDOW}, {SEG_NAME}, {SEG_VALUE}"
_SEGMENT_DRIFTED = metric(sc.SEGMENT_DRIFT_DETECTED)
_SEGMENT_QUALITY_ALARM = metric(sc.SEGMENT_QUALITY_ALARM)


def _segment_drift() -> str:
    """The processor's output drift verdict per segment value and output (1, 0 or NO_VERDICT)."""
    return f"max by ({_BY_SEGMENT_OUTPUT}) ({_SEGMENT_DRIFTED})"


def _segment_drift_firing() -> str:
    """The drift score of a segment value's output, only where the verdict is 1."""
    return (f"max by ({_BY_SEGMENT_OUTPUT}) ({metric(sc.SEGMENT_DRIFT_SCORE)})\n"
            f"and on ({_BY_SEGMENT_OUTPUT})\n"
            f"({_segment_drift()} == 1)")


def _segment_quality() -> str:
    """The processor's data-quality verdict per segment value (1, 0 or NO_VERDICT)."""
    return f"max by ({_BY_SEGMENT_VALUE}) ({_SEGMENT_QUALITY_ALARM})"


def _segment_quality_firing() -> str:
    """The segment value's highest quality ratio, only where the verdict is 1."""
    return (f"max by ({_BY_SEGMENT_VALUE}) ({metric(sc.SEGMENT_QUALITY_RATIO)})\n"
            f"and on ({_BY_SEGMENT_VALUE})\n"
            f"({_segment_quality()} == 1)")


_DEGRADED = metric(sc.PERFORMANCE_DEGRADED)


def _degraded() -> str:
    """The processor's verdict per model version, metric and window (1, 0 or NO_VERDICT)."""
    return f"max by ({_BY_PERFORMANCE}) ({_DEGRADED})"


def _degraded_firing() -> str:
    """The metric's realized value, only where the verdict is 1 (NO_VERDICT and 0 never fire)."""
    value = f'{metric(sc.PERFORMANCE_VALUE)}{{{PRED_CLASS}=""}}'
    return (f"max by ({_BY_PERFORMANCE}) ({value})\n"
            f"and on ({_BY_PERFORMANCE})\n"
            f"({_degraded()} == 1)")


_VERSION_DETECTED = metric(sc.VERSION_DRIFT_DETECTED)
_BY_PAIR = f"{MODEL}, {VERSION}, {BASELINE}"


def _canary_outputs() -> str:
    """Per candidate and baseline version: how many outputs differ (verdict 1) in some window."""
    return f'max by ({_BY_PAIR}, {FEATURE}) ({_VERSION_DETECTED}{{{KIND}="{sc.DRIFT_KIND_PREDICTION}"}})'


def _canary_firing() -> str:
    """Outputs that differ (verdict 1) plus realized primary metrics judged worse (verdict 1), per pair."""
    worse = f"max by ({_BY_PAIR}, {PERF_METRIC}) ({metric(sc.VERSION_PERFORMANCE_DEGRADED)})"
    return (f"sum by ({_BY_PAIR}) (\n  ({_canary_outputs()} == 1)\n  or ({worse} == 1)\n)")


_RECORDS = metric(sc.PREDICTION_RECORDS)
_JOINED = metric(sc.OUTCOMES_JOINED)
_BY_VERSION = f"{MODEL}, {VERSION}"


def _outcomes_joined_recently() -> str:
    """Model versions with an outcome joined in the last OUTCOMES_SILENCE: the counter rose, or appeared
    (a new series: its first value is not an increase for ``increase()``)."""
    w = OUTCOMES_SILENCE
    return (f"sum by ({_BY_VERSION}) (increase({_JOINED}[{w}])) > 0\n"
            f"or count by ({_BY_VERSION}) ({_JOINED} unless {_JOINED} offset {w})")


def _outcomes_stopped() -> str:
    """Predictions with ids in the last hour, and already OUTCOMES_SILENCE ago (old enough for their
    outcomes to have come), but no outcome joined for OUTCOMES_SILENCE."""
    w = OUTCOMES_SILENCE
    return (f"(sum by ({_BY_VERSION}) (increase({_RECORDS}[{OUTCOMES_RECENT}])) > 0)\n"
            f"and on ({_BY_VERSION})\n"
            f"(sum by ({_BY_VERSION}) (increase({_RECORDS}[{w}] offset {w})) > 0)\n"
            f"unless on ({_BY_VERSION})\n"
            f"({_outcomes_joined_recently()})")


# --- MLEstimatedPerformanceDrop: the label-free estimate against the reference -----------------------
#: The window whose estimate is judged: the processor's longer default window (its ``windows.sizes``,
#: 5m and 1h); set it to your longest window's ``ml_drift_window`` value.
ESTIMATE_WINDOW = "1h"
ESTIMATE_FOR = "15m"
_ESTIMATED = metric(sc.PERFORMANCE_ESTIMATED)
_ESTIMATED_UPPER = metric(sc.PERFORMANCE_ESTIMATED_UPPER)
_REFERENCE = metric(sc.PERFORMANCE_REFERENCE)
_BY_METRIC = f"{MODEL}, {VERSION}, {PERF_METRIC}"
#: The realized-performance verdict's default tolerance of each estimated metric (one source of truth).
ESTIMATE_TOLERANCES = {m: PerformancePolicy().tolerance(m) for m in ESTIMATED_METRICS}


def _reference_overall() -> str:
    """The holdout's value per model version and metric, over all classes (per-class ones excluded)."""
    return f'max by ({_BY_METRIC}) ({_REFERENCE}{{{PRED_CLASS}=""}})'


def _estimate_margin() -> str:
    """The estimate's upper bound minus the reference value, per model version, metric and window."""
    return (f"max by ({_BY_PERFORMANCE}) ({_ESTIMATED_UPPER})\n"
            f"- on ({_BY_METRIC}) group_left\n"
            f"{_reference_overall()}")


def estimate_below_tolerance(window: str = ESTIMATE_WINDOW,
                             tolerances: dict[str, float] | None = None) -> str:
    """The estimate of ``window``, only where its upper bound + tolerance lies below the reference (one
    comparison per distinct tolerance, so each metric keeps its own): MLEstimatedPerformanceDrop's
    expression, with the window and tolerances as parameters for tests on other windows."""
    by_tolerance: dict[float, list[str]] = {}
    for m, tol in (ESTIMATE_TOLERANCES if tolerances is None else tolerances).items():
        by_tolerance.setdefault(tol, []).append(m)
    one_window = f'{WINDOW}="{window}"'
    below = [f'max by ({_BY_PERFORMANCE}) ({_ESTIMATED_UPPER}{{{one_window}, {PERF_METRIC}=~"{"|".join(ms)}"}})'
             f" + {tol:g}\n"
             f"< on ({_BY_METRIC}) group_left\n"
             f"{_reference_overall()}"
             for tol, ms in sorted(by_tolerance.items())]
    return (f"max by ({_BY_PERFORMANCE}) ({_ESTIMATED}{{{one_window}}})\n"
            f"and on ({_BY_PERFORMANCE})\n"
            "(\n" + "\nor\n".join(below) + "\n)")


_ESTIMATED_DROP = Alert(
    name="MLEstimatedPerformanceDrop",
    uid="otel-ml-estimated-performance-drop",
    expr=estimate_below_tolerance(),
    signal=_estimate_margin(),
    for_=ESTIMATE_FOR,
    severity="warning",
    summary="Model {{ $labels.%s }} {{ $labels.%s }}: estimated {{ $labels.%s }} (no labels) is below its "
    "reference (window {{ $labels.%s }})" % (MODEL, VERSION, PERF_METRIC, WINDOW),
    description=(
        "For %s, even the upper bound of the 95 %% interval of the processor's label-free estimate of "
        "{{ $labels.%s }} (%s, window {{ $labels.%s }}) has stayed below the reference's holdout value minus "
        "the tolerance of the realized-performance verdict (%s). Estimated value now: VALUE.\n"
        "It is an estimate, not a measurement: the predicted probabilities read through the holdout's "
        "calibration curve. It is valid under covariate shift only (the inputs moved, P(y | x) did not) and "
        "for a model that was calibrated on its holdout; it cannot see concept drift "
        "(docs/statistics.md, 'Estimated performance (no labels)').\n"
        "Runbook:\n"
        "1. 'otel-ml / ML model overview', panel 'Realized and estimated {{ $labels.%s }} vs reference': "
        "the estimate with its interval, and the realized value where outcomes are joined (they decide: "
        "MLModelPerformanceDegraded).\n"
        "2. Check the drift panels (label-free too): which input features and whether the prediction "
        "distribution moved, the multivariate and outlier signals, data-quality alarms. The estimate falls "
        "because the model now sees more inputs it is unsure about: find the population that moved (a new "
        "market, an upstream change, a broken feature).\n"
        "3. Fix a broken producer; for a real shift, collect labels for the new population and retrain, "
        "then rebuild the reference with labels."
    ) % (ESTIMATE_FOR, PERF_METRIC, sc.PERFORMANCE_ESTIMATED, WINDOW,
         ", ".join(f"{m} {t:g}" for m, t in ESTIMATE_TOLERANCES.items()), PERF_METRIC),
    value_format='printf "%.4g"',
)


ALERTS: tuple[Alert, ...] = (
    Alert(
        name="MLFeatureDriftDetected",
        uid="otel-ml-feature-drift",
        expr=f"{_drift(sc.DRIFT_KIND_FEATURE)} == 1",
        signal=_drift(sc.DRIFT_KIND_FEATURE),
        for_=DRIFT_FOR,
        severity="warning",
        summary="Feature {{ $labels.%s }} of model {{ $labels.%s }} {{ $labels.%s }} has drifted"
        % (FEATURE, MODEL, VERSION),
        description=(
            "The otel-ml processor has judged the live distribution of input feature {{ $labels.%s }} "
            "different from the model's reference (significance test plus effect-size floor) for %s.\n"
            "Runbook:\n"
            "1. Open the 'otel-ml / Feature drill-down' dashboard for this model, version and feature: "
            "compare the current and reference distributions and look at when the scores crossed their "
            "thresholds.\n"
            "2. Check 'otel-ml / Service correlation' for a deploy (version annotation), an upstream change "
            "or a traffic shift at that time; check the data-quality panels (missing / out-of-range) "
            "first, a broken upstream often looks like drift.\n"
            "3. If the shift is real and lasting, retrain or rebuild the reference from recent data "
            "(otel-ml reference push); if it is expected (seasonality, a new market), update the "
            "reference or raise this feature's threshold in the processor config."
        ) % (FEATURE, DRIFT_FOR),
    ),
    Alert(
        name="MLPredictionDriftDetected",
        uid="otel-ml-prediction-drift",
        expr=f"{_drift(sc.DRIFT_KIND_PREDICTION)} == 1",
        signal=_drift(sc.DRIFT_KIND_PREDICTION),
        for_=DRIFT_FOR,
        severity="warning",
        summary="Predictions ({{ $labels.%s }}) of model {{ $labels.%s }} {{ $labels.%s }} have drifted"
        % (FEATURE, MODEL, VERSION),
        description=(
            "The distribution of the model's output {{ $labels.%s }} differs from the reference for %s: "
            "the model now answers differently than it did on its training/validation data.\n"
            "Runbook:\n"
            "1. In 'otel-ml / ML model overview', see which input features drift at the same time "
            "(drift status panel); output drift with no input drift points at the model or its "
            "serving code (a new version, a changed preprocessing step).\n"
            "2. Compare the versions side by side: if only a canary drifts, stop the rollout.\n"
            "3. Check business KPIs or labelled feedback before retraining; rebuild the reference when "
            "the new behaviour is confirmed correct."
        ) % (FEATURE, DRIFT_FOR),
    ),
    Alert(
        name="MLDataQualityRatioHigh",
        uid="otel-ml-data-quality",
        expr=_quality_alarm_firing(),
        signal=_quality_alarm(),
        for_=QUALITY_FOR,
        severity="warning",
        summary="Data quality of feature {{ $labels.%s }} ({{ $labels.%s }} {{ $labels.%s }}) is worse than "
        "in its reference" % (FEATURE, MODEL, VERSION),
        description=(
            "The otel-ml processor's data-quality verdict (ml.quality.alarm) has been an alarm for %s: the "
            "share of missing, invalid, out-of-range or unseen values of feature {{ $labels.%s }} rose "
            "significantly above the reference's share of the same (by at least the policy's "
            "quality_min_increase). Highest of the four shares now: VALUE.\n"
            "Runbook:\n"
            "1. 'otel-ml / Feature drill-down' shows which share rose and when; a step change at a deploy of "
            "the model's caller or of an upstream job is the usual cause.\n"
            "2. missing: a column dropped or renamed upstream, a join that stopped matching; invalid: "
            "wrong types or NaN/inf from a broken transformation; out_of_range: values outside the "
            "training range (unit change, new population); unseen: new category values.\n"
            "3. Fix the producer, or, if the new data is legitimate, rebuild the reference."
        ) % (QUALITY_FOR, FEATURE),
    ),
    Alert(
        name="MLDriftProcessorAbsent",
        uid="otel-ml-processor-absent",
        expr=(f"absent_over_time({_SAMPLES}[{PROCESSOR_SILENCE}])\n"
              f"and on () (sum(rate({_ROWS}[{PROCESSOR_SILENCE}])) > 0)"),
        signal=f"count({_SAMPLES})",
        for_="5m",
        severity="critical",
        summary="No otel-ml drift evaluations reach Prometheus while models serve traffic",
        description=(
            "Models are predicting, but no %s series has been written for %s: the otel-ml processor "
            "is down, cannot export, or the collector no longer routes ml.* metrics to it (or its "
            "output back to Prometheus). Drift and data-quality alerts are blind meanwhile.\n"
            "Runbook:\n"
            "1. Check the processor: its /healthz and /readyz endpoints, its logs, restarts.\n"
            "2. Check the collector pipeline that sends ml.* metrics to the processor (exporter errors, "
            "retries, queue size) and the one that brings its output back.\n"
            "3. The processor checkpoints its windows: after a restart evaluations resume where they "
            "stopped."
        ) % (_SAMPLES, PROCESSOR_SILENCE),
    ),
    Alert(
        name="MLDriftEvaluationStale",
        uid="otel-ml-evaluation-stale",
        expr=(f"({_rows_rate(f'{MODEL}, {VERSION}', PROCESSOR_SILENCE)} > 0)\n"
              f"unless on ({MODEL}, {VERSION})\n"
              f"max by ({MODEL}, {VERSION}) ({_SAMPLES})"),
        signal=f"max by ({MODEL}, {VERSION}) ({_SAMPLES})",
        for_="10m",
        severity="warning",
        summary="Model {{ $labels.%s }} {{ $labels.%s }} serves traffic but is not evaluated for drift"
        % (MODEL, VERSION),
        description=(
            "This model version has predictions but the processor reports no (or stale) drift "
            "evaluations for it, so its drift and data-quality are unknown.\n"
            "Runbook:\n"
            "1. Most often no reference is stored for this model name and version: list them with the "
            "processor's admin API (GET /api/v1/references) and push one (otel-ml reference push).\n"
            "2. Otherwise check the processor's rejected points (otel_ml.processor.points.rejected: "
            "histogram bounds that differ from the reference's edges) and its logs.\n"
            "3. If the whole processor is silent, MLDriftProcessorAbsent fires too: start there."
        ),
    ),
    Alert(
        name="MLNoPredictions",
        uid="otel-ml-no-predictions",
        expr=(f"(({_rows_rate(f'{JOB}, {MODEL}', NO_PREDICTIONS_WINDOW)} == 0) + 1)\n"
              f"or\n"
              f"(count by ({JOB}, {MODEL}) (max_over_time({_ROWS}[3h]))\n"
              f" unless count by ({JOB}, {MODEL}) ({_ROWS}))"),
        signal=_rows_rate(f"{JOB}, {MODEL}", NO_PREDICTIONS_WINDOW),
        for_="10m",
        severity="critical",
        summary="Model {{ $labels.%s }} in service {{ $labels.%s }} makes no predictions" % (MODEL, JOB),
        description=(
            "No rows were predicted by this model for %s (its counter is flat, or the service stopped "
            "reporting it at all).\n"
            "Runbook:\n"
            "1. Check the service: is it up, does it receive requests (Service correlation dashboard: "
            "HTTP request rate)? A traffic drop upstream explains a flat counter.\n"
            "2. If requests arrive but no predictions: the predict path errors before the model (see "
            "the error-rate panel) or a deploy routed traffic to a model version without "
            "instrumentation.\n"
            "3. If the series vanished: the service's OTel exporter or the collector stopped sending "
            "metrics (check the collector's exporter metrics and the service's logs)."
        ) % NO_PREDICTIONS_WINDOW,
    ),
    Alert(
        name="MLModelPerformanceDegraded",
        uid="otel-ml-performance-degraded",
        expr=_degraded_firing(),
        signal=_degraded(),
        for_=PERFORMANCE_FOR,
        severity="warning",
        summary="Model {{ $labels.%s }} {{ $labels.%s }}: realized {{ $labels.%s }} is worse than its "
        "reference (window {{ $labels.%s }})" % (MODEL, VERSION, PERF_METRIC, WINDOW),
        description=(
            "The otel-ml processor has judged the realized {{ $labels.%s }} of this model version, on the "
            "predictions whose outcomes were joined in the last {{ $labels.%s }}, worse than on the "
            "reference's holdout for %s (%s == 1: a significant drop, and larger than the policy's "
            "tolerance). Realized value now: VALUE.\n"
            "Runbook:\n"
            "1. 'otel-ml / ML model overview', row 'Realized performance': the value against the reference "
            "with its interval, the joined outcomes and label coverage (a verdict on a small or skewed "
            "sample of labels is weaker), the calibration. For log_loss and mae the exemplars link to the "
            "traces of the worst-scored predictions.\n"
            "2. Look for a cause: input drift or data-quality alarms at the same time, a new model version "
            "(annotation), an upstream change. Degradation without input drift is concept drift: the "
            "relation between inputs and outcome changed.\n"
            "3. Roll back a new version, or retrain on recent labelled data (`otel-ml outcomes export` "
            "writes the joined records) and rebuild the reference with labels."
        ) % (PERF_METRIC, WINDOW, PERFORMANCE_FOR, _DEGRADED),
        value_format='printf "%.4g"',
    ),
    _ESTIMATED_DROP,
    Alert(
        name="MLSegmentUnderperforming",
        uid="otel-ml-segment-underperforming",
        expr=_segment_firing(),
        signal=_segment_degraded(),
        for_=SEGMENT_FOR,
        severity="warning",
        summary="Model {{ $labels.%s }} {{ $labels.%s }}: segment {{ $labels.%s }}={{ $labels.%s }} "
        "underperforms the rest (realized {{ $labels.%s }}, window {{ $labels.%s }})"
        % (MODEL, VERSION, SEG_NAME, SEG_VALUE, PERF_METRIC, WINDOW),
        description=(
            "The otel-ml processor has judged the realized {{ $labels.%s }} of this segment significantly "
            "worse than on the rest of the window's joined predictions, by more than the policy's tolerance, "
            "for %s (%s == 1; Holm-corrected across the model version's segments). Gap (segment − rest): "
            "VALUE. The model's overall figure may well be fine: the average hides the segment.\n"
            "Runbook:\n"
            "1. 'otel-ml / ML model overview', table 'Worst segments': the segment's value with its interval, "
            "its sample count and its rank among the segments.\n"
            "2. Look for a cause specific to the segment: a new market, channel or device, an upstream change "
            "that reaches only this traffic, too little of it in the training data.\n"
            "3. Export the joined records (`otel-ml outcomes export`) and evaluate the segment offline; retrain "
            "with more of its data or route it to a fallback."
        ) % (PERF_METRIC, SEGMENT_FOR, _SEGMENT_DEGRADED),
        value_format='printf "%.4g"',
    ),
    Alert(
        name="MLSegmentDrift",
        uid="otel-ml-segment-drift",
        expr=_segment_drift_firing(),
        signal=_segment_drift(),
        for_=DRIFT_FOR,
        severity="warning",
        summary="Model {{ $labels.%s }} {{ $labels.%s }}: output {{ $labels.%s }} drifted in segment "
        "{{ $labels.%s }}={{ $labels.%s }} (window {{ $labels.%s }})"
        % (MODEL, VERSION, PRED_NAME, SEG_NAME, SEG_VALUE, WINDOW),
        description=(
            "The otel-ml processor has judged the distribution of this output on the segment's rows different "
            "from the reference's profile of the same segment value for %s (%s == 1: significant, "
            "Holm-corrected across the model version's segments, and larger than the effect floor). Drift score: "
            "VALUE (numeric: Wasserstein distance in reference SDs; categorical: total variation). The overall "
            "output may look fine: the average hides the segment.\n"
            "Runbook:\n"
            "1. 'otel-ml / ML model overview', row 'Segments': the segment's rank and score among the others, "
            "its data quality and, with outcomes, its realized performance.\n"
            "2. Look for a cause specific to the segment: its traffic mix (panel 'Segment mix per column'), an "
            "upstream change reaching only this traffic, a new market, channel or device.\n"
            "3. If the segment's inputs really changed, retrain with recent data of it and rebuild the reference "
            "(`otel-ml reference build --segment COLUMN`)."
        ) % (DRIFT_FOR, _SEGMENT_DRIFTED),
        value_format='printf "%.4g"',
    ),
    Alert(
        name="MLSegmentDataQuality",
        uid="otel-ml-segment-data-quality",
        expr=_segment_quality_firing(),
        signal=_segment_quality(),
        for_=QUALITY_FOR,
        severity="warning",
        summary="Model {{ $labels.%s }} {{ $labels.%s }}: data quality degraded in segment "
        "{{ $labels.%s }}={{ $labels.%s }} (window {{ $labels.%s }})" % (MODEL, VERSION, SEG_NAME, SEG_VALUE, WINDOW),
        description=(
            "The otel-ml processor has judged a data-quality ratio (missing, invalid, out-of-range or unseen "
            "values over the segment's rows x features) risen above the reference's ratio for the same segment "
            "value for %s (%s == 1: significant, Holm-corrected across the model version's segments, and above "
            "quality_min_increase). Highest ratio: VALUE.\n"
            "Runbook:\n"
            "1. 'otel-ml / ML model overview', row 'Segments', panel 'Data quality per segment': which kind rose.\n"
            "2. Look for the source feeding only this segment's traffic (a client version, a region's upstream)."
        ) % (QUALITY_FOR, _SEGMENT_QUALITY_ALARM),
    ),
    Alert(
        name="MLCanaryWorseThanBaseline",
        uid="otel-ml-canary-worse-than-baseline",
        expr=_canary_firing(),
        # Every compared stream (features too): returns data wherever two versions of a model are compared.
        signal=f"count by ({_BY_PAIR}) ({_VERSION_DETECTED})",
        for_=CANARY_FOR,
        severity="warning",
        summary="Model {{ $labels.%s }}: version {{ $labels.%s }} is worse than or differs from baseline "
        "{{ $labels.%s }}" % (MODEL, VERSION, BASELINE),
        description=(
            "For %s the otel-ml processor has judged candidate version {{ $labels.%s }} worse than, or "
            "predicting differently from, its baseline version {{ $labels.%s }} on the same period's traffic: "
            "VALUE finding(s) among its outputs' distributions (%s{%s=\"prediction\"} == 1: significant after "
            "Holm's correction and above the effect floor) and, where outcomes are joined, its realized primary "
            "metrics (%s == 1: significantly worse beyond the tolerance). A canary or shadow expected to "
            "behave like the live version does not.\n"
            "Runbook:\n"
            "1. 'otel-ml / ML model overview', row 'Versions side by side': which outputs differ, and whether "
            "the features differ too (the canary serves other traffic than the baseline: a routing effect, "
            "not the model).\n"
            "2. With labels, compare the two versions' realized performance (row 'Realized performance').\n"
            "3. Halt the rollout (route traffic back to the baseline) until the difference is understood."
        ) % (CANARY_FOR, VERSION, BASELINE, _VERSION_DETECTED, KIND, metric(sc.VERSION_PERFORMANCE_DEGRADED)),
        value_format='printf "%.0f"',
    ),
    Alert(
        name="MLOutcomesStopped",
        uid="otel-ml-outcomes-stopped",
        expr=_outcomes_stopped(),
        signal=f"sum by ({_BY_VERSION}) (increase({_JOINED}[{OUTCOMES_SILENCE}]))",
        for_=OUTCOMES_FOR,
        severity="warning",
        summary="Model {{ $labels.%s }} {{ $labels.%s }}: no outcomes joined for %s while it keeps predicting"
        % (MODEL, VERSION, OUTCOMES_SILENCE),
        description=(
            "This model version sends prediction records (%s rises, VALUE in the last %s) and did so %s ago "
            "already, but no outcome has been joined to a prediction (%s flat) for %s: realized performance "
            "and its alarm are blind. Assumes outcomes arrive within %s of the prediction and at least once "
            "every %s (tune OUTCOMES_SILENCE in dashboards/rules.py to the label delay and batch schedule).\n"
            "Runbook:\n"
            "1. Is the outcome producer running (the job calling record_outcomes / `otel-ml outcomes "
            "push`)? Its ml.records.dropped counter says whether records were dropped (no_id_secret, "
            "export_failed).\n"
            "2. Outcomes arrive but do not join: ml.outcome.unmatched and ml.outcome.rejected rise (a different "
            "id secret or id column on the two sides, a renamed model).\n"
            "3. Check the collector's logs pipeline to the processor and the processor's logs."
        ) % (_RECORDS, OUTCOMES_RECENT, OUTCOMES_SILENCE, _JOINED, OUTCOMES_SILENCE, OUTCOMES_SILENCE,
             OUTCOMES_SILENCE),
        value_format='printf "%.0f"',
    ),
)


def _annotations(alert: Alert, value: str) -> dict[str, str]:
    return {
        "summary": alert.summary,
        "description": alert.description.replace("VALUE", value),
    }


def _prometheus_value(alert: Alert) -> str:
    return "{{ $value | %s }}" % alert.value_format


def _grafana_value(alert: Alert) -> str:
    return "{{ %s $values.B.Value }}" % alert.value_format


def prometheus_rules() -> dict:
    """The Prometheus rules file, as a dict (YAML-ready)."""
    rules = []
    for a in ALERTS:
        rules.append({
            "alert": a.name,
            "expr": a.expr,
            "for": a.for_,
            "labels": {"severity": a.severity, **a.labels},
            "annotations": _annotations(a, _prometheus_value(a)),
        })
    return {"groups": [{"name": GROUP, "rules": rules}]}


def _seconds(duration: str) -> int:
    return int(duration[:-1]) * {"s": 1, "m": 60, "h": 3600}[duration[-1]]


def grafana_alert_provisioning(datasource_uid: str = DATASOURCE_UID) -> dict:
    """The same rules as Grafana-managed alerts, in Grafana's alerting file-provisioning format."""
    rules = []
    for a in ALERTS:
        rules.append({
            "uid": a.uid,
            "title": a.name,
            "condition": "C",
            "data": [
                {
                    "refId": "A",
                    "relativeTimeRange": {"from": 600, "to": 0},
                    "datasourceUid": datasource_uid,
                    "model": {"refId": "A", "expr": a.expr, "instant": True, "range": False,
                              "intervalMs": 60000, "maxDataPoints": 43200},
                },
                {
                    "refId": "B",
                    "datasourceUid": "__expr__",
                    "model": {"refId": "B", "type": "reduce", "expression": "A", "reducer": "last",
                              "settings": {"mode": "dropNN"}},
                },
                {
                    "refId": "C",
                    "datasourceUid": "__expr__",
                    "model": {"refId": "C", "type": "threshold", "expression": "B",
                              "conditions": [{"evaluator": {"type": "gt", "params": [0]}}]},
                },
            ],
            "noDataState": "OK",
            "execErrState": "Error",
            "for": a.for_,
            "annotations": {**_annotations(a, _grafana_value(a)),
                            "__dashboardUid__": OVERVIEW_UID},
            "labels": {"severity": a.severity, **a.labels},
            "isPaused": False,
        })
    return {
        "apiVersion": 1,
        "groups": [{"orgId": 1, "name": GROUP, "folder": FOLDER, "interval": "1m", "rules": rules}],
    }


__all__ = ["ALERTS", "Alert", "grafana_alert_provisioning", "prometheus_rules"]
