"""OTLP encoding of prediction and outcome records: protobuf ``LogRecord``s and the export request.

Pure functions, no thread and no I/O; the record sender (:mod:`otel_ml._records`) calls them off the
predict path. Records are built straight into ``opentelemetry.proto`` messages (no SDK ``LogRecord`` per
row). Names come from :mod:`otel_ml.semconv`; the layout is the one ``docs/semantic-conventions.md``
describes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as ResourcePB

from . import semconv
from ._reference import category_key

#: What a model output becomes on a prediction record.
KIND_VALUE = semconv.PREDICTION_VALUE_ATTRIBUTE
KIND_LABEL = semconv.PREDICTION_LABEL
KIND_PROBABILITIES = semconv.PREDICTION_PROBABILITIES


def any_value(v: Any) -> AnyValue:
    """An attribute value as OTLP spells it (bool, int, float, str, or a sequence of those)."""
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, (list, tuple)):
        return AnyValue(array_value=ArrayValue(values=[any_value(x) for x in v]))
    return AnyValue(string_value=str(v))


def encode_resource(resource: Any) -> ResourcePB:
    """An SDK ``Resource`` as its protobuf message."""
    return ResourcePB(attributes=[KeyValue(key=k, value=any_value(v)) for k, v in resource.attributes.items()])


def export_request(resource: ResourcePB, scope_version: str, records: Sequence[LogRecord]) -> ExportLogsServiceRequest:
    """One request: one ResourceLogs (``resource``) holding one ScopeLogs (scope ``otel_ml``) of ``records``."""
    return ExportLogsServiceRequest(resource_logs=[ResourceLogs(
        resource=resource,
        scope_logs=[ScopeLogs(scope=InstrumentationScope(name=semconv.INSTRUMENTATION_SCOPE, version=scope_version),
                              log_records=records)],
    )])


def output_columns(arr: np.ndarray, kind: str) -> list[Any]:
    """One Python value per row of a model's output array, as the record attribute ``kind`` carries it."""
    if kind == KIND_PROBABILITIES:
        return arr.astype(np.float64, copy=False).tolist()
    if kind == KIND_VALUE:
        return arr.astype(np.float64, copy=False).tolist()
    return [category_key(v) for v in arr.tolist()]


def _kv_str(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _common(model: str, version: str | None) -> list[KeyValue]:
    attrs = [_kv_str(semconv.MODEL_NAME, model)]
    if version is not None:
        attrs.append(_kv_str(semconv.MODEL_VERSION, version))
    return attrs


def _output_kv(kind: str, value: Any) -> KeyValue | None:
    if value is None:
        return None
    if kind == KIND_PROBABILITIES:
        return KeyValue(key=kind, value=AnyValue(array_value=ArrayValue(values=[AnyValue(double_value=p) for p in value])))
    if kind == KIND_VALUE:
        return KeyValue(key=kind, value=AnyValue(double_value=value))
    return _kv_str(kind, value)


def prediction_records(model: str, version: str, wire_ids: Sequence[str], outputs: Sequence[Any] | None,
                       kind: str | None, time_ns: int, trace_id: bytes, span_id: bytes, flags: int,
                       observed_ns: int) -> list[LogRecord]:
    """``ml.prediction`` records, one per id; ``outputs[i]`` (of ``kind``) is row i's output, if any."""
    common = _common(model, version)
    out = []
    for i, pid in enumerate(wire_ids):
        attrs = [*common, _kv_str(semconv.PREDICTION_ID, pid)]
        if outputs is not None and kind is not None:
            kv = _output_kv(kind, outputs[i])
            if kv is not None:
                attrs.append(kv)
        out.append(LogRecord(time_unix_nano=time_ns, observed_time_unix_nano=observed_ns,
                             event_name=semconv.EVENT_PREDICTION, trace_id=trace_id, span_id=span_id,
                             flags=flags, attributes=attrs))
    return out


def outcome_records(model: str, version: str | None, wire_ids: Sequence[str], kind: str, actuals: Sequence[Any],
                    times_ns: Sequence[int], observed_ns: int) -> list[LogRecord]:
    """``ml.outcome`` records: ``kind`` is ``ml.outcome.label`` (str actuals) or ``ml.outcome.value`` (floats)."""
    common = _common(model, version)
    out = []
    label = kind == semconv.OUTCOME_LABEL
    for pid, actual, t in zip(wire_ids, actuals, times_ns):
        value = AnyValue(string_value=actual) if label else AnyValue(double_value=actual)
        attrs = [*common, _kv_str(semconv.PREDICTION_ID, pid), KeyValue(key=kind, value=value)]
        out.append(LogRecord(time_unix_nano=t, observed_time_unix_nano=observed_ns,
                             event_name=semconv.EVENT_OUTCOME, attributes=attrs))
    return out
