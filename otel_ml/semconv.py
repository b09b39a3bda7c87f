"""Semantic conventions of otel-ml: every attribute and metric name, spelled once.

The library, the processor, the dashboard generator and the tests import these names; nothing else
spells them. ``docs/semantic-conventions.md`` describes each one (unit, type, meaning), and
:data:`PROMETHEUS_NAMES` gives the name Prometheus stores after the OpenTelemetry translation
(dots become underscores, unit suffixes and ``_total`` appended).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# --- Attributes -------------------------------------------------------------------------------
MODEL_NAME: Final = "ml.model.name"
MODEL_VERSION: Final = "ml.model.version"
MODEL_ROLE: Final = "ml.model.role"
"""On the predict span when ``monitor(..., role=...)`` is given: one of :data:`MODEL_ROLES`."""
FEATURE_NAME: Final = "ml.feature.name"
FEATURE_CATEGORY: Final = "ml.feature.category"
PREDICTION_NAME: Final = "ml.prediction.name"
PREDICTION_CLASS: Final = "ml.prediction.class"
PREDICT_BATCH_SIZE: Final = "ml.predict.batch_size"
QUALITY_REASON: Final = "ml.quality.reason"
SCHEMA_VIOLATION: Final = "ml.schema.violation"
DRIFT_METHOD: Final = "ml.drift.method"
DRIFT_WINDOW: Final = "ml.drift.window"
DRIFT_KIND: Final = "ml.drift.kind"
BUCKET_LE: Final = "ml.bucket.le"
"""On ``ml.drift.reference.ratio`` of numeric streams: the bucket's upper bound, spelled as the collector
spells the Prometheus ``le`` label of the library's histograms (``0``, ``2.5``, ``+Inf``)."""
ERROR_TYPE: Final = "error.type"

#: Span attribute prefix for raw feature values (only with ``record_feature_values=True``).
FEATURE_VALUE_ATTRIBUTE_PREFIX: Final = "ml.feature.value."
#: Span attribute: the batch's largest reconstruction error divided by the reference's outlier
#: threshold (> 1: the batch holds an out-of-distribution row). A number, never a feature value.
OUTLIER_MAX_SCORE: Final = "ml.outlier.max_score"

# --- Limits ----------------------------------------------------------------------------------------
MAX_NAME_LENGTH: Final = 128
"""Longest model name, model version, feature or output name and category, in characters. A reference
with a longer name is refused when it is built or loaded; a longer category value is counted under its
first ``MAX_NAME_LENGTH`` characters, by the reference and by the monitored process alike."""

# --- Values of bounded attributes ----------------------------------------------------------------
OTHER_CATEGORY: Final = "__other__"
#: Reserved feature name of the multivariate stream: each row's PCA reconstruction error against the
#: reference (``ml.feature.value`` histogram with the reference's edges). Its ``ml.feature.out_of_range``
#: counter counts the out-of-distribution rows (error above the reference's outlier threshold) and
#: its ``ml.feature.missing`` counter the rows skipped for a missing or non-finite numeric value.
RECONSTRUCTION_ERROR_FEATURE: Final = "__reconstruction_error__"
"""Category bucket for values outside the reference's top-K categories (unseen ones included)."""

REASON_NON_FINITE: Final = "non_finite"
REASON_WRONG_TYPE: Final = "wrong_type"

SCHEMA_MISSING_COLUMN: Final = "missing_column"
SCHEMA_UNEXPECTED_COLUMN: Final = "unexpected_column"
SCHEMA_WIDTH_MISMATCH: Final = "width_mismatch"
SCHEMA_UNSUPPORTED_INPUT: Final = "unsupported_input"

MODEL_ROLES: Final = ("live", "canary", "shadow")
"""Values of ``ml.model.role``: the version serving users, one serving a share of them, one scoring the same
requests without serving its answer."""

DRIFT_KIND_FEATURE: Final = "feature"
DRIFT_KIND_PREDICTION: Final = "prediction"

QUALITY_KINDS: Final = ("missing", "invalid", "out_of_range", "unseen")
"""The data-quality kinds, in the order every part keeps them (counters, ratios, the processor's cells).
Their number is ``len(QUALITY_KINDS)``; the maps below give each kind's metric names."""

# --- Spans ---------------------------------------------------------------------------------------
SPAN_NAME_TEMPLATE: Final = "predict {model}"
INSTRUMENTATION_SCOPE: Final = "otel_ml"

# --- Metrics emitted by the library (otel_ml) ----------------------------------------------------
PREDICT_DURATION: Final = "ml.predict.duration"  # histogram, s
PREDICT_ROWS: Final = "ml.predict.rows"  # counter, {row}
FEATURE_VALUE: Final = "ml.feature.value"  # histogram, reference edges as bounds
FEATURE_CATEGORY_COUNT: Final = "ml.feature.category.count"  # counter, {value}
FEATURE_MISSING: Final = "ml.feature.missing"  # counter, {value}
FEATURE_INVALID: Final = "ml.feature.invalid"  # counter, {value}
FEATURE_OUT_OF_RANGE: Final = "ml.feature.out_of_range"  # counter, {value}
FEATURE_UNSEEN: Final = "ml.feature.unseen"  # counter, {value}
SCHEMA_VIOLATIONS: Final = "ml.schema.violations"  # counter, {event}
PREDICTION_VALUE: Final = "ml.prediction.value"  # histogram, reference edges as bounds
PREDICTION_CLASS_COUNT: Final = "ml.prediction.class.count"  # counter, {prediction}
INSTRUMENTATION_ERRORS: Final = "ml.instrumentation.errors"  # counter, {error}

# --- Metrics emitted by the processor (otel_ml_processor) ----------------------------------------
DRIFT_SCORE: Final = "ml.drift.score"  # gauge, attribute ml.drift.method
DRIFT_DETECTED: Final = "ml.drift.detected"  # gauge 0/1
DRIFT_P_VALUE: Final = "ml.drift.p_value"  # gauge
DRIFT_SAMPLE_COUNT: Final = "ml.drift.sample_count"  # gauge, {row}
QUALITY_MISSING_RATIO: Final = "ml.quality.missing.ratio"  # gauge, 1
QUALITY_INVALID_RATIO: Final = "ml.quality.invalid.ratio"  # gauge, 1
QUALITY_OUT_OF_RANGE_RATIO: Final = "ml.quality.out_of_range.ratio"  # gauge, 1
QUALITY_UNSEEN_RATIO: Final = "ml.quality.unseen.ratio"  # gauge, 1
QUALITY_ALARM: Final = "ml.quality.alarm"  # gauge 0/1
DRIFT_REFERENCE_RATIO: Final = "ml.drift.reference.ratio"  # gauge, 1: the reference's share per bucket

# --- Ground truth: prediction and outcome records (OTLP logs), realized performance -------------
EVENT_PREDICTION: Final = "ml.prediction"
"""``LogRecord.event_name`` of a prediction record (one per predicted row that has an id)."""
EVENT_OUTCOME: Final = "ml.outcome"
"""``LogRecord.event_name`` of an outcome record (the actual label or value for one prediction id)."""
PREDICTION_ID: Final = "ml.prediction.id"
"""Keyed hash of the user's prediction id (raw only when asked)."""
PREDICTION_VALUE_ATTRIBUTE: Final = "ml.prediction.value"
PREDICTION_LABEL: Final = "ml.prediction.label"
PREDICTION_PROBABILITIES: Final = "ml.prediction.probabilities"
OUTCOME_LABEL: Final = "ml.outcome.label"
OUTCOME_VALUE: Final = "ml.outcome.value"
PERFORMANCE_METRIC: Final = "ml.performance.metric"

# Library counters of the record path.
PREDICTION_RECORDS: Final = "ml.prediction.records"  # counter, {record}
RECORDS_DROPPED: Final = "ml.records.dropped"  # counter, {record}, error.type

# Processor: realized performance per model version and window.
PERFORMANCE_VALUE: Final = "ml.performance.value"  # gauge
PERFORMANCE_LOWER: Final = "ml.performance.lower"  # gauge
PERFORMANCE_UPPER: Final = "ml.performance.upper"  # gauge
PERFORMANCE_REFERENCE: Final = "ml.performance.reference"  # gauge
PERFORMANCE_DEGRADED: Final = "ml.performance.degraded"  # gauge 0/1 (NO_VERDICT below min samples)
PERFORMANCE_SAMPLE_COUNT: Final = "ml.performance.sample_count"  # gauge, {outcome}
OUTCOME_COVERAGE_RATIO: Final = "ml.outcome.coverage.ratio"  # gauge, 1
CALIBRATION_OBSERVED: Final = "ml.calibration.observed"  # gauge, 1, per ml.bucket.le
OUTCOMES_JOINED: Final = "ml.outcome.joined"  # counter, {outcome}
OUTCOMES_UNMATCHED: Final = "ml.outcome.unmatched"  # counter, {outcome}
PREDICTIONS_EXPIRED: Final = "ml.prediction.expired"  # counter, {prediction}
OUTCOMES_DUPLICATES: Final = "ml.outcome.duplicates"  # counter, {outcome}
OUTCOMES_REJECTED: Final = "ml.outcome.rejected"  # counter, {outcome}, error.type
LABEL_DELAY: Final = "ml.label.delay"  # histogram, s

# Processor: estimated performance (no labels) per model version and window, attribute ml.performance.metric.
PERFORMANCE_ESTIMATED: Final = "ml.performance.estimated"  # gauge
PERFORMANCE_ESTIMATED_LOWER: Final = "ml.performance.estimated.lower"  # gauge
PERFORMANCE_ESTIMATED_UPPER: Final = "ml.performance.estimated.upper"  # gauge

# --- Segments: realized performance per (segment name, value) slice (issue 13) ------------------
SEGMENT_ATTRIBUTE_PREFIX: Final = "ml.segment."
"""Prediction records carry each segment column as ``ml.segment.<name>`` (string; bounded by the library)."""
MAX_SEGMENT_COLUMNS: Final = 4
"""Segment columns per model (the library keeps the first four; the processor rejects records with more)."""
SEGMENT_NAME: Final = "ml.segment.name"  # attribute of the segment gauges: the segment column
SEGMENT_VALUE: Final = "ml.segment.value"  # attribute of the segment gauges: its value (or OTHER_CATEGORY)
SEGMENT_PERFORMANCE_VALUE: Final = "ml.segment.performance.value"  # gauge: the slice's primary metric
SEGMENT_PERFORMANCE_LOWER: Final = "ml.segment.performance.lower"  # gauge
SEGMENT_PERFORMANCE_UPPER: Final = "ml.segment.performance.upper"  # gauge
SEGMENT_PERFORMANCE_GAP: Final = "ml.segment.performance.gap"  # gauge: slice − rest of the window
SEGMENT_PERFORMANCE_DEGRADED: Final = "ml.segment.performance.degraded"  # gauge 1/0/NO_VERDICT
SEGMENT_SAMPLE_COUNT: Final = "ml.segment.sample_count"  # gauge, {outcome}
SEGMENT_OVERFLOW: Final = "ml.segment.overflow"  # counter, {segment}: series refused by state.max_segment_series

# Library -> processor: outputs and data quality per segment value (own names: never summed into the overall).
SEGMENT_ROWS: Final = "ml.segment.rows"  # counter, {row}: rows of one segment value
SEGMENT_PREDICTION_VALUE: Final = "ml.segment.prediction.value"  # histogram, the output's reference edges
SEGMENT_PREDICTION_CLASS_COUNT: Final = "ml.segment.prediction.class.count"  # counter, {prediction}
#: The library's per-segment quality counter of each kind (summed over the features; :data:`QUALITY_KINDS` order).
SEGMENT_QUALITY_COUNTERS: Final[dict[str, str]] = {
    "missing": "ml.segment.feature.missing",
    "invalid": "ml.segment.feature.invalid",
    "out_of_range": "ml.segment.feature.out_of_range",
    "unseen": "ml.segment.feature.unseen",
}
MAX_SEGMENT_SERIES: Final = 2000
"""Segment series one model version may emit: Σ over its segment columns of (values + 1) × (1 + output
series + 4). ``monitor()`` computes the bound at decoration and refuses a configuration above it."""

# Processor: versions side by side (a candidate model version against its baseline version's traffic).
MODEL_BASELINE_VERSION: Final = "ml.model.baseline_version"
"""On ``ml.version.*``: the version the candidate (``ml.model.version``) is compared with."""
VERSION_DRIFT_DETECTED: Final = "ml.version.drift.detected"  # gauge 0/1 (no point without verdict)
VERSION_DRIFT_SCORE: Final = "ml.version.drift.score"  # gauge, attribute ml.drift.method
VERSION_PERFORMANCE_GAP: Final = "ml.version.performance.gap"  # gauge: candidate - baseline, per metric
VERSION_PERFORMANCE_DEGRADED: Final = "ml.version.performance.degraded"  # gauge 1/0/-1 (NO_VERDICT)

# Processor: drift and data quality per segment value, and the segment mix per column (issue 13).
#: 1 = the worst judged slice (realized performance) of the model version and window (was ml.segment.rank).
SEGMENT_PERFORMANCE_RANK: Final = "ml.segment.performance.rank"
QUALITY_KIND: Final = "ml.quality.kind"
"""On ``ml.segment.quality.ratio`` (and its ``.lower`` / ``.upper``): the data-quality kind (one of
:data:`QUALITY_KINDS`)."""
SEGMENT_DRIFT_DETECTED: Final = "ml.segment.drift.detected"  # gauge 1/0/NO_VERDICT per segment value x output
SEGMENT_DRIFT_SCORE: Final = "ml.segment.drift.score"  # gauge: effect size (Wasserstein in SD / total variation)
SEGMENT_DRIFT_SCORE_LOWER: Final = "ml.segment.drift.score.lower"  # gauge: 95 % bootstrap interval of the score
SEGMENT_DRIFT_SCORE_UPPER: Final = "ml.segment.drift.score.upper"  # gauge
SEGMENT_DRIFT_RANK: Final = "ml.segment.drift.rank"  # gauge: 1 = largest drift score of the version and window
SEGMENT_QUALITY_RATIO: Final = "ml.segment.quality.ratio"  # gauge, 1, attribute ml.quality.kind
SEGMENT_QUALITY_RATIO_LOWER: Final = "ml.segment.quality.ratio.lower"  # gauge, 1: 95 % Wilson interval
SEGMENT_QUALITY_RATIO_UPPER: Final = "ml.segment.quality.ratio.upper"  # gauge, 1
SEGMENT_QUALITY_ALARM: Final = "ml.segment.quality.alarm"  # gauge 1/0/NO_VERDICT per segment value
SEGMENT_QUALITY_RANK: Final = "ml.segment.quality.rank"  # gauge: 1 = largest quality excess
SEGMENT_MIX_DETECTED: Final = "ml.segment.mix.detected"  # gauge 1/0/NO_VERDICT per segment column

#: The library's counter of each quality kind (:data:`QUALITY_KINDS` order).
QUALITY_COUNTERS: Final[dict[str, str]] = {
    "missing": FEATURE_MISSING,
    "invalid": FEATURE_INVALID,
    "out_of_range": FEATURE_OUT_OF_RANGE,
    "unseen": FEATURE_UNSEEN,
}
#: The processor's ratio gauge of each quality kind (:data:`QUALITY_KINDS` order).
QUALITY_RATIOS: Final[dict[str, str]] = {
    "missing": QUALITY_MISSING_RATIO,
    "invalid": QUALITY_INVALID_RATIO,
    "out_of_range": QUALITY_OUT_OF_RANGE_RATIO,
    "unseen": QUALITY_UNSEEN_RATIO,
}

# Processor self-telemetry.
PROCESSOR_POINTS_RECEIVED: Final = "otel_ml.processor.points.received"
PROCESSOR_POINTS_REJECTED: Final = "otel_ml.processor.points.rejected"
PROCESSOR_STREAMS: Final = "otel_ml.processor.streams"
PROCESSOR_EVALUATION_DURATION: Final = "otel_ml.processor.evaluation.duration"
PROCESSOR_EXPORT_FAILURES: Final = "otel_ml.processor.export.failures"
PROCESSOR_STATE_BYTES: Final = "otel_ml.processor.state.bytes"
PROCESSOR_CACHE_BYTES: Final = "otel_ml.processor.cache.bytes"
PROCESSOR_INFLIGHT_BYTES: Final = "otel_ml.processor.inflight.bytes"
PROCESSOR_PENDING_PREDICTIONS: Final = "otel_ml.processor.joins.pending_predictions"
PROCESSOR_PENDING_OUTCOMES: Final = "otel_ml.processor.joins.pending_outcomes"
PROCESSOR_JOIN_STORE_BYTES: Final = "otel_ml.processor.joins.bytes"


@dataclass(frozen=True)
class MetricDefinition:
    """One metric as a Collector component's ``metadata.yaml`` declares it: instrument, unit, meaning."""

    instrument: str  # "counter", "gauge" or "histogram"
    unit: str  # UCUM, as OTel spells units
    description: str
    attributes: tuple[str, ...] = ()  # attribute keys its points carry


#: The processor's own metrics (self-telemetry): the one table the exporter, the docs' table
#: (``docs/semantic-conventions.md``, tested against it) and the dashboards read.
PROCESSOR_TELEMETRY: Final[dict[str, MetricDefinition]] = {
    PROCESSOR_POINTS_RECEIVED: MetricDefinition(
        "counter", "{point}",
        "`ml.*` data points received (consumed metrics only; other metrics are skipped uncounted)"),
    PROCESSOR_POINTS_REJECTED: MetricDefinition(
        "counter", "{point}", "points dropped; also reported to the sender as OTLP partial success", (ERROR_TYPE,)),
    PROCESSOR_STREAMS: MetricDefinition("gauge", "{stream}", "streams tracked (model × version × feature/output)"),
    PROCESSOR_STATE_BYTES: MetricDefinition("gauge", "By", "memory held by windows and series state"),
    PROCESSOR_CACHE_BYTES: MetricDefinition(
        "gauge", "By",
        "memory held by the lookup caches (rejections, structure templates), within state.max_cache_bytes"),
    PROCESSOR_INFLIGHT_BYTES: MetricDefinition(
        "gauge", "By", "bytes of OTLP requests received and not yet answered, within receivers.max_inflight_bytes"),
    PROCESSOR_EVALUATION_DURATION: MetricDefinition(
        "histogram", "s", "time of one evaluation (all streams, all windows)"),
    PROCESSOR_EXPORT_FAILURES: MetricDefinition("counter", "{export}", "export problems", (ERROR_TYPE,)),
    PROCESSOR_PENDING_PREDICTIONS: MetricDefinition(
        "gauge", "{prediction}", "predictions waiting in the join store for their outcome"),
    PROCESSOR_PENDING_OUTCOMES: MetricDefinition(
        "gauge", "{outcome}", "outcomes waiting in the join store for their prediction"),
    PROCESSOR_JOIN_STORE_BYTES: MetricDefinition("gauge", "By", "disk used by the join store (database and WAL)"),
}

#: Every metric the library emits, with (instrument kind, unit). Units follow UCUM as OTel does.
LIBRARY_METRICS: Final[dict[str, tuple[str, str]]] = {
    PREDICT_DURATION: ("histogram", "s"),
    PREDICT_ROWS: ("counter", "{row}"),
    FEATURE_VALUE: ("histogram", ""),
    FEATURE_CATEGORY_COUNT: ("counter", "{value}"),
    FEATURE_MISSING: ("counter", "{value}"),
    FEATURE_INVALID: ("counter", "{value}"),
    FEATURE_OUT_OF_RANGE: ("counter", "{value}"),
    FEATURE_UNSEEN: ("counter", "{value}"),
    SCHEMA_VIOLATIONS: ("counter", "{event}"),
    PREDICTION_VALUE: ("histogram", ""),
    PREDICTION_CLASS_COUNT: ("counter", "{prediction}"),
    INSTRUMENTATION_ERRORS: ("counter", "{error}"),
    PREDICTION_RECORDS: ("counter", "{record}"),
    RECORDS_DROPPED: ("counter", "{record}"),
    SEGMENT_ROWS: ("counter", "{row}"),
    SEGMENT_PREDICTION_VALUE: ("histogram", ""),
    SEGMENT_PREDICTION_CLASS_COUNT: ("counter", "{prediction}"),
    **{name: ("counter", "{value}") for name in SEGMENT_QUALITY_COUNTERS.values()},
}

#: Every metric the processor emits, with (instrument kind, unit).
PROCESSOR_METRICS: Final[dict[str, tuple[str, str]]] = {
    DRIFT_SCORE: ("gauge", ""),
    DRIFT_DETECTED: ("gauge", ""),
    DRIFT_P_VALUE: ("gauge", ""),
    DRIFT_SAMPLE_COUNT: ("gauge", "{row}"),
    QUALITY_MISSING_RATIO: ("gauge", "1"),
    QUALITY_INVALID_RATIO: ("gauge", "1"),
    QUALITY_OUT_OF_RANGE_RATIO: ("gauge", "1"),
    QUALITY_UNSEEN_RATIO: ("gauge", "1"),
    QUALITY_ALARM: ("gauge", ""),
    DRIFT_REFERENCE_RATIO: ("gauge", "1"),
    PERFORMANCE_VALUE: ("gauge", ""),
    PERFORMANCE_LOWER: ("gauge", ""),
    PERFORMANCE_UPPER: ("gauge", ""),
    PERFORMANCE_REFERENCE: ("gauge", ""),
    PERFORMANCE_DEGRADED: ("gauge", ""),
    PERFORMANCE_SAMPLE_COUNT: ("gauge", "{outcome}"),
    OUTCOME_COVERAGE_RATIO: ("gauge", "1"),
    CALIBRATION_OBSERVED: ("gauge", "1"),
    OUTCOMES_JOINED: ("counter", "{outcome}"),
    OUTCOMES_UNMATCHED: ("counter", "{outcome}"),
    PREDICTIONS_EXPIRED: ("counter", "{prediction}"),
    OUTCOMES_DUPLICATES: ("counter", "{outcome}"),
    OUTCOMES_REJECTED: ("counter", "{record}"),
    LABEL_DELAY: ("histogram", "s"),
    PERFORMANCE_ESTIMATED: ("gauge", ""),
    PERFORMANCE_ESTIMATED_LOWER: ("gauge", ""),
    PERFORMANCE_ESTIMATED_UPPER: ("gauge", ""),
    SEGMENT_PERFORMANCE_VALUE: ("gauge", ""),
    SEGMENT_PERFORMANCE_LOWER: ("gauge", ""),
    SEGMENT_PERFORMANCE_UPPER: ("gauge", ""),
    SEGMENT_PERFORMANCE_GAP: ("gauge", ""),
    SEGMENT_PERFORMANCE_DEGRADED: ("gauge", ""),
    SEGMENT_SAMPLE_COUNT: ("gauge", "{outcome}"),
    SEGMENT_PERFORMANCE_RANK: ("gauge", ""),
    SEGMENT_OVERFLOW: ("counter", "{segment}"),
    SEGMENT_DRIFT_DETECTED: ("gauge", ""),
    SEGMENT_DRIFT_SCORE: ("gauge", ""),
    SEGMENT_DRIFT_SCORE_LOWER: ("gauge", ""),
    SEGMENT_DRIFT_SCORE_UPPER: ("gauge", ""),
    SEGMENT_DRIFT_RANK: ("gauge", ""),
    SEGMENT_QUALITY_RATIO: ("gauge", "1"),
    SEGMENT_QUALITY_RATIO_LOWER: ("gauge", "1"),
    SEGMENT_QUALITY_RATIO_UPPER: ("gauge", "1"),
    SEGMENT_QUALITY_ALARM: ("gauge", ""),
    SEGMENT_QUALITY_RANK: ("gauge", ""),
    SEGMENT_MIX_DETECTED: ("gauge", ""),
    VERSION_DRIFT_DETECTED: ("gauge", ""),
    VERSION_DRIFT_SCORE: ("gauge", ""),
    VERSION_PERFORMANCE_GAP: ("gauge", ""),
    VERSION_PERFORMANCE_DEGRADED: ("gauge", ""),
    **{name: (m.instrument, m.unit) for name, m in PROCESSOR_TELEMETRY.items()},
}

ML_METRIC_PREFIX: Final = "ml."
"""The processor ignores every metric whose name does not start with this prefix."""


def prometheus_name(name: str) -> str:
    """Return the base name Prometheus stores for an otel-ml metric, as the OTel translation makes it.

    Histograms then appear as ``<name>_bucket`` / ``_sum`` / ``_count``. This mirrors the
    collector's ``prometheusremotewrite`` exporter with its default ``add_metric_suffixes: true``;
    the end-to-end tests check it against a real Prometheus.
    """
    kind, unit = {**LIBRARY_METRICS, **PROCESSOR_METRICS}[name]
    base = name.replace(".", "_")
    suffix = {"s": "seconds", "By": "bytes"}.get(unit, "")
    if unit == "1" and kind == "gauge":  # the translator moves a "ratio" token to the end (or appends one)
        base = "_".join([*(t for t in base.split("_") if t != "ratio"), "ratio"])
    if suffix and not base.endswith("_" + suffix):
        base = f"{base}_{suffix}"
    if kind == "counter":
        base += "_total"
    return base


PROMETHEUS_NAMES: Final[dict[str, str]] = {
    n: prometheus_name(n) for n in (*LIBRARY_METRICS, *PROCESSOR_METRICS)
}
