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


LIBRARY_ATTRIBUTES = (
    semconv.MODEL_NAME, semconv.MODEL_VERSION, semconv.FEATURE_NAME, semconv.FEATURE_CATEGORY,
    semconv.PREDICTION_NAME, semconv.PREDICTION_CLASS, semconv.PREDICT_BATCH_SIZE,
    semconv.QUALITY_REASON, semconv.SCHEMA_VIOLATION, semconv.ERROR_TYPE,
)


def undocumented_attributes(text: str) -> list[str]:
    """What of the library's attributes, span name and 'other' bucket the doc does not document: each
    attribute needs its own row in the "## Attributes" table (a mention elsewhere is not enough), the
    span its "### `predict {model}`" section, the 'other' bucket a mention in the attributes table."""
    section = text.split("\n## Attributes\n", 1)[-1].split("\n## ", 1)[0] if "\n## Attributes\n" in text else ""
    rows = {line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| `")}
    missing = [attr for attr in LIBRARY_ATTRIBUTES if f"`{attr}`" not in rows]
    if f"### `{semconv.SPAN_NAME_TEMPLATE}`" not in text:
        missing.append(semconv.SPAN_NAME_TEMPLATE)
    if f"`{semconv.OTHER_CATEGORY}`" not in section:
        missing.append(semconv.OTHER_CATEGORY)
    return missing


def test_every_library_attribute_is_documented():
    assert undocumented_attributes(DOC.read_text(encoding="utf-8")) == []


def test_an_attribute_mentioned_only_in_passing_is_not_documented():
    text = DOC.read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith(f"| `{semconv.ERROR_TYPE}` |"))
    broken = text.replace(row + "\n", "")
    assert semconv.ERROR_TYPE in broken  # still named elsewhere (the span's attributes, the duration metric)
    assert undocumented_attributes(broken) == [semconv.ERROR_TYPE]
