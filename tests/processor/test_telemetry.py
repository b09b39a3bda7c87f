"""The processor's own metrics: one table (semconv.PROCESSOR_TELEMETRY), and the docs and the export agree with it."""

from __future__ import annotations

import re
from pathlib import Path

from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb

from otel_ml import semconv
from otel_ml_processor._series import REASONS
from otel_ml_processor._telemetry import Telemetry, add_telemetry

DOC = Path(__file__).resolve().parents[2] / "docs" / "semantic-conventions.md"


def documented_rows() -> dict[str, list[str]]:
    """``name -> [type, unit, attributes, meaning]`` of the docs' self-telemetry table."""
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`otel_ml.processor."):
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_docs_table_lists_exactly_the_telemetry_table() -> None:
    assert sorted(documented_rows()) == sorted(semconv.PROCESSOR_TELEMETRY)


def test_docs_table_rows_match_type_unit_attributes_and_description() -> None:
    rows = documented_rows()
    for name, definition in semconv.PROCESSOR_TELEMETRY.items():
        kind, unit, attributes, meaning = rows[name]
        assert kind == definition.instrument, name
        assert unit.strip("`") == definition.unit, name
        assert meaning == definition.description, name
        keys = set(re.findall(r"`([a-z_.]+)` =", attributes))
        assert keys == set(definition.attributes), name


def test_docs_list_every_rejection_reason() -> None:
    attributes = documented_rows()[semconv.PROCESSOR_POINTS_REJECTED][2]
    assert re.findall(r"`([a-z_]+)`", attributes.split("=", 1)[1]) == list(REASONS)


def test_exported_telemetry_follows_the_table() -> None:
    sm = pb.ScopeMetrics()
    tel = Telemetry(start_ns=1, received=7, streams=3)
    tel.rejected["bounds_mismatch"] = 2
    add_telemetry(sm, tel, now_ns=2)
    by_name = {m.name: m for m in sm.metrics}
    assert sorted(by_name) == sorted(semconv.PROCESSOR_TELEMETRY)
    field_of = {"counter": "sum", "gauge": "gauge", "histogram": "histogram"}
    for name, definition in semconv.PROCESSOR_TELEMETRY.items():
        m = by_name[name]
        assert (m.unit, m.description) == (definition.unit, definition.description), name
        assert m.WhichOneof("data") == field_of[definition.instrument], name
        if definition.instrument == "counter":
            assert m.sum.is_monotonic, name
    assert by_name[semconv.PROCESSOR_POINTS_RECEIVED].sum.data_points[0].as_int == 7
    rejected = by_name[semconv.PROCESSOR_POINTS_REJECTED].sum.data_points[0]
    assert (rejected.attributes[0].key, rejected.attributes[0].value.string_value, rejected.as_int) == \
        (semconv.ERROR_TYPE, "bounds_mismatch", 2)
    assert by_name[semconv.PROCESSOR_STREAMS].gauge.data_points[0].as_int == 3
