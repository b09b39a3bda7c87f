from otel_ml import semconv


def test_prometheus_names_follow_otel_translation():
    assert semconv.prometheus_name(semconv.PREDICT_DURATION) == "ml_predict_duration_seconds"
    assert semconv.prometheus_name(semconv.FEATURE_MISSING) == "ml_feature_missing_total"
    assert semconv.prometheus_name(semconv.FEATURE_VALUE) == "ml_feature_value"
    assert semconv.prometheus_name(semconv.QUALITY_MISSING_RATIO) == "ml_quality_missing_ratio"
    assert semconv.prometheus_name(semconv.DRIFT_DETECTED) == "ml_drift_detected"
    assert semconv.prometheus_name(semconv.DRIFT_REFERENCE_RATIO) == "ml_drift_reference_ratio"


def test_every_ml_metric_is_in_the_ml_namespace():
    for name in semconv.LIBRARY_METRICS:
        assert name.startswith(semconv.ML_METRIC_PREFIX)


def test_every_processor_ml_metric_and_attribute_is_in_the_ml_namespace():
    for name in semconv.PROCESSOR_METRICS:
        assert name.startswith((semconv.ML_METRIC_PREFIX, "otel_ml."))
    assert semconv.BUCKET_LE.startswith(semconv.ML_METRIC_PREFIX)


def test_quality_kinds_are_spelled_once_and_map_to_their_metrics():
    assert semconv.QUALITY_KINDS == ("missing", "invalid", "out_of_range", "unseen")
    assert tuple(semconv.QUALITY_COUNTERS) == semconv.QUALITY_KINDS
    assert tuple(semconv.QUALITY_RATIOS) == semconv.QUALITY_KINDS
    for kind in semconv.QUALITY_KINDS:
        assert semconv.QUALITY_COUNTERS[kind] == f"ml.feature.{kind}" in semconv.LIBRARY_METRICS
        assert semconv.QUALITY_RATIOS[kind] == f"ml.quality.{kind}.ratio" in semconv.PROCESSOR_METRICS


def test_processor_telemetry_table_feeds_processor_metrics():
    for name, definition in semconv.PROCESSOR_TELEMETRY.items():
        assert semconv.PROCESSOR_METRICS[name] == (definition.instrument, definition.unit)
        assert definition.instrument in ("counter", "gauge", "histogram") and definition.description
