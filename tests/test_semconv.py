from otel_ml import semconv


def test_prometheus_names_follow_otel_translation():
    assert semconv.prometheus_name(semconv.PREDICT_DURATION) == "ml_predict_duration_seconds"
    assert semconv.prometheus_name(semconv.FEATURE_MISSING) == "ml_feature_missing_total"
    assert semconv.prometheus_name(semconv.FEATURE_VALUE) == "ml_feature_value"
    assert semconv.prometheus_name(semconv.QUALITY_MISSING_RATIO) == "ml_quality_missing_ratio"
    assert semconv.prometheus_name(semconv.DRIFT_DETECTED) == "ml_drift_detected"
    assert semconv.prometheus_name(semconv.DRIFT_REFERENCE_RATIO) == "ml_drift_reference_ratio"
    # A unit-"1" gauge's "ratio" token moves to the end, as the Collector's translator writes it (a real
    # Prometheus showed ml_segment_quality_lower_ratio, never ml_segment_quality_ratio_lower_ratio).
    assert semconv.prometheus_name(semconv.SEGMENT_QUALITY_RATIO_LOWER) == "ml_segment_quality_lower_ratio"
    assert semconv.prometheus_name(semconv.SEGMENT_QUALITY_RATIO_UPPER) == "ml_segment_quality_upper_ratio"


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


# --- docs/semantic-conventions.md agrees with semconv ----------------------------------------------
import re  # noqa: E402
from pathlib import Path  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "semantic-conventions.md"


def _unit(cell: str) -> str:
    """A unit cell as semconv spells it: `` `s` `` -> ``s``; ``—`` (with or without a note) -> ``""``."""
    cell = cell.strip()
    if cell.startswith("—"):
        return ""
    return cell.strip("`")


def documented_metrics(text: str) -> dict[str, tuple[str, str]]:
    """Every metric the doc describes: name -> (instrument kind, unit), from its three table styles."""
    found: dict[str, tuple[str, str]] = {}
    heading = None
    for line in text.splitlines():
        m = re.match(r"^### `([a-z_.]+)`$", line)
        if m:
            heading = m.group(1)
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if heading and cells and cells[0].split(" ")[0] in ("Histogram", "Counter", "Gauge"):
            found[heading] = (cells[0].split(" ")[0].lower(), _unit(cells[1]))  # "### name" + its table
            heading = None
        elif (len(cells) >= 4 and re.fullmatch(r"`(ml|otel_ml)\.[a-z_.]+`", cells[0])
              and cells[1].lower() in ("gauge", "counter", "histogram")):
            found[cells[0].strip("`")] = (cells[1].lower(), _unit(cells[2]))  # | Metric | Type | Unit | ...
    return found


def test_doc_lists_every_metric_with_the_kind_and_unit_semconv_gives_it():
    documented = documented_metrics(DOC.read_text())
    declared = {**semconv.LIBRARY_METRICS, **semconv.PROCESSOR_METRICS}
    assert set(documented) == set(declared), (set(documented) ^ set(declared))
    wrong = {name: (documented[name], declared[name]) for name in declared if documented[name] != declared[name]}
    assert not wrong, f"doc (kind, unit) vs semconv: {wrong}"


def test_doc_unit_parser_sees_a_disagreement():
    text = "| Metric | Type | Unit | Meaning |\n|---|---|---|---|\n| `ml.drift.score` | gauge | 1 | score |\n"
    assert documented_metrics(text) == {"ml.drift.score": ("gauge", "1")}
    assert documented_metrics(text)["ml.drift.score"] != semconv.PROCESSOR_METRICS[semconv.DRIFT_SCORE]
