"""OTLP encoding of prediction and outcome records: serialized ``LogRecord``s and the export request.

Pure functions, no thread and no I/O; the record sender (:mod:`otel_ml._records`) calls them off the
predict path. No SDK ``LogRecord`` per row, and no protobuf object per row either: what a call's rows
share (time, trace and span id, model, version) is serialized once with the ``opentelemetry.proto``
messages, and each row appends its own attributes in protobuf's wire format (field numbers read from
the generated descriptors). That is about ten times cheaper than a message per row; the tests parse
the result with the real messages. Names come from :mod:`otel_ml.semconv`; the layout is the one
``docs/semantic-conventions.md`` describes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
)
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


# Field numbers of the messages assembled here (read from the generated descriptors, not retyped).
def _tag(message: Any, field: str, wire_type: int) -> bytes:
    return bytes([message.DESCRIPTOR.fields_by_name[field].number << 3 | wire_type])


_LEN, _I64 = 2, 1
_T_REQUEST_RESOURCE_LOGS = _tag(ExportLogsServiceRequest, "resource_logs", _LEN)
_T_RESOURCE = _tag(ResourceLogs, "resource", _LEN)
_T_SCOPE_LOGS = _tag(ResourceLogs, "scope_logs", _LEN)
_T_SCOPE = _tag(ScopeLogs, "scope", _LEN)
_T_LOG_RECORDS = _tag(ScopeLogs, "log_records", _LEN)
_T_ATTRIBUTES = _tag(LogRecord, "attributes", _LEN)
_T_TIME = _tag(LogRecord, "time_unix_nano", _I64)
_T_KEY = _tag(KeyValue, "key", _LEN)
_T_VALUE = _tag(KeyValue, "value", _LEN)
_T_STRING = _tag(AnyValue, "string_value", _LEN)
_T_DOUBLE = _tag(AnyValue, "double_value", _I64)
_T_ARRAY = _tag(AnyValue, "array_value", _LEN)
_T_VALUES = _tag(ArrayValue, "values", _LEN)
_SMALL = [bytes([i]) for i in range(128)]
_pack_double = struct.Struct("<d").pack
_pack_u64 = struct.Struct("<Q").pack
#: One element of an ArrayValue of doubles: values { double_value: <8 bytes> }.
_DOUBLE_ELEMENT = _T_VALUES + _SMALL[9] + _T_DOUBLE


def _varint(n: int) -> bytes:
    if n < 0x80:
        return _SMALL[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field."""
    return tag + _varint(len(payload)) + payload


def _attribute(key: bytes, value: bytes) -> bytes:
    """``attributes { key, value }`` of a LogRecord; ``key`` is the encoded key field, ``value`` an AnyValue."""
    kv = key + _T_VALUE + _varint(len(value)) + value
    return _T_ATTRIBUTES + _varint(len(kv)) + kv


def export_request(resource: ResourcePB, scope_version: str, records: Sequence[bytes]) -> bytes:
    """The serialized ``ExportLogsServiceRequest``: one ResourceLogs (``resource``) holding one ScopeLogs
    (scope ``otel_ml``) of ``records`` (each a serialized LogRecord)."""
    scope = InstrumentationScope(name=semconv.INSTRUMENTATION_SCOPE, version=scope_version).SerializeToString()
    scope_logs = _field(_T_SCOPE, scope) + b"".join([_field(_T_LOG_RECORDS, r) for r in records])
    resource_logs = _field(_T_RESOURCE, resource.SerializeToString()) + _field(_T_SCOPE_LOGS, scope_logs)
    return _field(_T_REQUEST_RESOURCE_LOGS, resource_logs)


def output_columns(arr: np.ndarray, kind: str) -> list[Any]:
    """One Python value per row of a model's output array, as the record attribute ``kind`` carries it."""
    if kind == KIND_PROBABILITIES:
        return arr.astype(np.float64, copy=False).tolist()
    if kind == KIND_VALUE:
        return arr.astype(np.float64, copy=False).tolist()
    return [category_key(v) for v in arr.tolist()]


def _common(event: str, model: str, version: str | None, role: str | None = None, **fields: Any) -> bytes:
    """The part every record of one batch shares, serialized once by protobuf."""
    attrs = [KeyValue(key=semconv.MODEL_NAME, value=AnyValue(string_value=model))]
    if version is not None:
        attrs.append(KeyValue(key=semconv.MODEL_VERSION, value=AnyValue(string_value=version)))
    if role is not None:
        attrs.append(KeyValue(key=semconv.MODEL_ROLE, value=AnyValue(string_value=role)))
    return LogRecord(event_name=event, attributes=attrs, **fields).SerializeToString()


_ID_KEY = _field(_T_KEY, semconv.PREDICTION_ID.encode())


def _output_value(kind: str, value: Any) -> bytes:
    if kind == KIND_PROBABILITIES:
        array = b"".join([_DOUBLE_ELEMENT + _pack_double(p) for p in value])
        return _field(_T_ARRAY, array)
    if kind == KIND_VALUE:
        return _T_DOUBLE + _pack_double(value)
    return _field(_T_STRING, value.encode())


def prediction_records(model: str, version: str, wire_ids: Sequence[str], outputs: Sequence[Any] | None,
                       kind: str | None, time_ns: int, trace_id: bytes, span_id: bytes, flags: int,
                       observed_ns: int, segments: Sequence[tuple[str, Sequence[str]]] | None = None,
                       role: str | None = None) -> list[bytes]:
    """Serialized ``ml.prediction`` records, one per id; ``outputs[i]`` (of ``kind``) is row i's output,
    ``segments`` (name, one bounded value per id) become ``ml.segment.<name>`` attributes, ``role`` the
    ``ml.model.role`` attribute (shared, like the model's name and version).

    The fields the batch shares are serialized once by protobuf; each row appends its own attributes
    (a serialized message followed by more fields is the message with those fields added).
    """
    common = _common(semconv.EVENT_PREDICTION, model, version, role, time_unix_nano=time_ns,
                     observed_time_unix_nano=observed_ns, trace_id=trace_id, span_id=span_id, flags=flags)
    ids = [common + _attribute(_ID_KEY, _field(_T_STRING, pid.encode())) for pid in wire_ids]
    for name, values in segments or ():
        seg_key = _field(_T_KEY, (semconv.SEGMENT_ATTRIBUTE_PREFIX + name).encode())
        encoded = {v: _attribute(seg_key, _field(_T_STRING, v.encode())) for v in set(values)}
        ids = [rec + encoded[v] for rec, v in zip(ids, values)]
    if outputs is None or kind is None:
        return ids
    key = _field(_T_KEY, kind.encode())
    return [rec if out is None else rec + _attribute(key, _output_value(kind, out)) for rec, out in zip(ids, outputs)]


def outcome_records(model: str, version: str | None, wire_ids: Sequence[str], kind: str, actuals: Sequence[Any],
                    times_ns: Sequence[int], observed_ns: int) -> list[bytes]:
    """Serialized ``ml.outcome`` records: ``kind`` is ``ml.outcome.label`` (str actuals) or ``ml.outcome.value``."""
    common = _common(semconv.EVENT_OUTCOME, model, version, observed_time_unix_nano=observed_ns)
    key = _field(_T_KEY, kind.encode())
    label = kind == semconv.OUTCOME_LABEL
    out = []
    for pid, actual, t in zip(wire_ids, actuals, times_ns):
        value = _field(_T_STRING, actual.encode()) if label else _T_DOUBLE + _pack_double(actual)
        out.append(common + _T_TIME + _pack_u64(t) + _attribute(_ID_KEY, _field(_T_STRING, pid.encode()))
                   + _attribute(key, value))
    return out
