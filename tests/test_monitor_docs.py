"""docs/semantic-conventions.md documents every signal the library emits, with its semconv unit."""

from __future__ import annotations

from pathlib import Path

from otel_ml import semconv

DOC = Path(__file__).resolve().parents[1] / "docs" / "semantic-conventions.md"


def test_every_library_metric_is_documented_with_its_instrument_and_unit():
    text = DOC.read_text(encoding="utf-8")
    for name, (kind, unit) in semconv.LIBRARY_METRICS.items():
        section = text.split(f"### `{name}`", 1)
        assert len(section) == 2, f"no section for {name}"
        body = section[1].split("\n### ", 1)[0]
        assert kind.capitalize() in body, f"{name}: instrument {kind} not stated"
        if unit:
            assert f"`{unit}`" in body, f"{name}: unit {unit} not stated"


def test_every_library_attribute_is_documented():
    text = DOC.read_text(encoding="utf-8")
    for attr in (semconv.MODEL_NAME, semconv.MODEL_VERSION, semconv.FEATURE_NAME, semconv.FEATURE_CATEGORY,
                 semconv.PREDICTION_NAME, semconv.PREDICTION_CLASS, semconv.PREDICT_BATCH_SIZE,
                 semconv.QUALITY_REASON, semconv.SCHEMA_VIOLATION, semconv.ERROR_TYPE,
                 semconv.SPAN_NAME_TEMPLATE, semconv.OTHER_CATEGORY):
        assert f"`{attr}`" in text or attr in text, attr
