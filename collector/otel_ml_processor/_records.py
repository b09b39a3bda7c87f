"""OTLP ``ExportLogsServiceRequest`` (protobuf or JSON) -> validated prediction and outcome records.

Like :mod:`._decode` for metrics, a *lean schema* declares only what the processor reads: resource and
scope are skipped, a ``LogRecord`` is its time, attributes, trace id, span id and ``event_name``. Records
whose ``event_name`` is neither ``ml.prediction`` nor ``ml.outcome`` are ignored uncounted (like
non-``ml.*`` metrics). Each kept record is validated here, independently of any reference:

* ``ml.model.name`` (and, on predictions, ``ml.model.version``): strings of 1 to
  :data:`otel_ml.semconv.MAX_NAME_LENGTH` characters (``invalid_model``);
* ``ml.prediction.id``: a string of 1 to :data:`MAX_ID_LENGTH` characters (``invalid_id``);
* prediction outputs: ``ml.prediction.value`` a finite number, ``ml.prediction.label`` a string of at
  most ``MAX_NAME_LENGTH`` characters, ``ml.prediction.probabilities`` an array of finite numbers in
  [0, 1]; at least one of them (``invalid_output``);
* outcomes: exactly one of ``ml.outcome.label`` (string) or ``ml.outcome.value`` (finite number)
  (``invalid_actual``);
* segments on predictions: at most 4 ``ml.segment.<name>`` string attributes, names and values of 1 to
  ``MAX_NAME_LENGTH`` characters (``invalid_segment``), kept packed (:mod:`._segments`);
* ``ml.model.role`` on predictions, when present: one of :data:`otel_ml.semconv.MODEL_ROLES`
  (``invalid_role``); :mod:`._outcomes` teaches it to the state (the baseline of versions side by side).

A record that fails is counted under its reason (``ml.outcome.rejected``, ``error.type``) and reported
to the sender as OTLP partial success; the others of the request are kept. Checks that need the
reference (known model, probabilities of the reference's width, labels among its classes) are made by
:mod:`._outcomes`. Nothing here raises anything but :class:`~._decode.DecodeError`.

Ids become compact store keys (:func:`id_key`): the 32-hex-digit keyed hash the library sends is kept
as its 16 bytes; any other (raw) id as ``0x00`` + its UTF-8 bytes, so the two never collide.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass, field

from google.protobuf import (
    descriptor_pb2,
    json_format,
)
from google.protobuf.message import DecodeError as _PbDecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
)

from otel_ml import semconv

from ._decode import DecodeError, LeanSchema
from ._segments import MAX_SEGMENT_COLUMNS, is_packable, pack

#: Longest accepted ``ml.prediction.id`` (characters).
MAX_ID_LENGTH = 256
#: Most probabilities in one prediction record (classes).
MAX_CLASSES = 1024

INVALID_MODEL = "invalid_model"
INVALID_ID = "invalid_id"
INVALID_OUTPUT = "invalid_output"
INVALID_ACTUAL = "invalid_actual"
INVALID_SEGMENT = "invalid_segment"
INVALID_ROLE = "invalid_role"


@dataclass(slots=True)
class Prediction:
    model: str
    version: str
    key: bytes  # :func:`id_key`
    time_ns: int
    label: str | None
    value: float | None
    proba: tuple[float, ...] | None
    trace: bytes  # trace id (16) + span id (8), or b"" when the record has none
    segments: str = ""  # ``ml.segment.<name>`` attributes, packed (:func:`._segments.pack`)
    role: str = ""  # ``ml.model.role`` (one of semconv.MODEL_ROLES), "" when the record has none


@dataclass(slots=True)
class Outcome:
    model: str
    version: str | None
    key: bytes
    time_ns: int
    label: str | None
    value: float | None


@dataclass
class Records:
    """The kept records of one request and the count of each rejection reason."""

    predictions: list[Prediction] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    rejected: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)  # (model, reason)

    def __len__(self) -> int:
        return len(self.predictions) + len(self.outcomes)

    def reject(self, model: str, reason: str) -> None:
        self.rejected[(model, reason)] += 1


def id_key(raw: str) -> bytes:
    """The store key of an id: 16 bytes for a 32-hex-digit hash, else NUL + UTF-8 (two NULs when that
    would be 16 bytes long), so a raw id never takes the form of a hash's key. Ids hold no NUL."""
    if len(raw) == 32:
        try:
            return bytes.fromhex(raw)
        except ValueError:
            pass
    data = raw.encode("utf-8", "surrogatepass")
    return (b"\0\0" if len(data) == 15 else b"\0") + data


def id_text(key: bytes) -> str:
    """The inverse of :func:`id_key` (what ``otel-ml outcomes export`` writes)."""
    if len(key) == 16:
        return key.hex()
    return key[2 if len(key) == 17 and key[1] == 0 else 1:].decode("utf-8", "surrogatepass")


# --- the lean schema ----------------------------------------------------------------------------
def _build_lean() -> dict[str, type[Message]]:
    F = descriptor_pb2.FieldDescriptorProto
    schema = LeanSchema("otel_ml_processor.lean_logs")
    msg = schema.msg

    OPT, REP = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    msg("Request", ("resource_logs", 1, F.TYPE_MESSAGE, REP, "ResourceLogs"))
    msg("ResourceLogs", ("scope_logs", 2, F.TYPE_MESSAGE, REP, "ScopeLogs"))
    msg("ScopeLogs", ("log_records", 2, F.TYPE_MESSAGE, REP, "LogRecord"))
    msg("LogRecord", ("time_unix_nano", 1, F.TYPE_FIXED64, OPT, ""),
        ("attributes", 6, F.TYPE_MESSAGE, REP, "KeyValue"), ("trace_id", 9, F.TYPE_BYTES, OPT, ""),
        ("span_id", 10, F.TYPE_BYTES, OPT, ""), ("event_name", 12, F.TYPE_STRING, OPT, ""))
    msg("KeyValue", ("key", 1, F.TYPE_STRING, OPT, ""), ("value", 2, F.TYPE_MESSAGE, OPT, "AnyValue"))
    msg("AnyValue", ("string_value", 1, F.TYPE_STRING, OPT, ""), ("bool_value", 2, F.TYPE_BOOL, OPT, ""),
        ("int_value", 3, F.TYPE_INT64, OPT, ""), ("double_value", 4, F.TYPE_DOUBLE, OPT, ""),
        ("array_value", 5, F.TYPE_MESSAGE, OPT, "ArrayValue"), ("kvlist_value", 6, F.TYPE_BYTES, OPT, ""),
        ("bytes_value", 7, F.TYPE_BYTES, OPT, ""), oneof="value")
    msg("ArrayValue", ("values", 1, F.TYPE_MESSAGE, REP, "AnyValue"))
    return schema.classes("Request")


_Request = _build_lean()["Request"]
_MISSING = object()


def _scalar(v: object) -> object:
    """An ``AnyValue`` as a Python value (``_MISSING`` when unset)."""
    kind = v.WhichOneof("value")  # type: ignore[attr-defined]
    if kind is None:
        return _MISSING
    if kind == "array_value":
        return [_scalar(x) for x in v.array_value.values]  # type: ignore[attr-defined]
    return getattr(v, kind)


def _name(v: object) -> str | None:
    return v if isinstance(v, str) and 0 < len(v) <= semconv.MAX_NAME_LENGTH else None


def _finite(v: object) -> float | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return float(v)
    return None


_PREDICTION = semconv.EVENT_PREDICTION
_SEGMENT_PREFIX = semconv.SEGMENT_ATTRIBUTE_PREFIX


def _segments(attrs: dict[str, object]) -> str | None:
    """The packed ``ml.segment.<name>`` attributes, or ``None`` when they break the bounds (more than
    :data:`._segments.MAX_SEGMENT_COLUMNS`, a name or value that is not a string of 1 to ``MAX_NAME_LENGTH``
    characters, or one holding the packing's separators)."""
    found = {k[len(_SEGMENT_PREFIX):]: v for k, v in attrs.items() if k.startswith(_SEGMENT_PREFIX)}
    if not found:
        return ""
    if len(found) > MAX_SEGMENT_COLUMNS:
        return None
    for k, v in found.items():
        if _name(k) is None or _name(v) is None or not is_packable(k) or not is_packable(v):  # type: ignore[arg-type]
            return None
    return pack(found)  # type: ignore[arg-type]
_OUTCOME = semconv.EVENT_OUTCOME


def _record(r: object, out: Records) -> None:
    event = r.event_name  # type: ignore[attr-defined]
    attrs: dict[str, object] = {}
    for a in r.attributes:  # type: ignore[attr-defined]
        attrs[a.key] = _scalar(a.value)
    model = attrs.get(semconv.MODEL_NAME)
    shown = model if isinstance(model, str) and len(model) <= semconv.MAX_NAME_LENGTH else ""
    if _name(model) is None:
        out.reject(shown, INVALID_MODEL)
        return
    assert isinstance(model, str)
    version = attrs.get(semconv.MODEL_VERSION, _MISSING)
    raw_id = attrs.get(semconv.PREDICTION_ID)
    if not isinstance(raw_id, str) or not 0 < len(raw_id) <= MAX_ID_LENGTH or "\0" in raw_id:
        out.reject(model, INVALID_ID)
        return
    t = r.time_unix_nano  # type: ignore[attr-defined]
    if event == _PREDICTION:
        if _name(version) is None:
            out.reject(model, INVALID_MODEL)
            return
        value = attrs.get(semconv.PREDICTION_VALUE_ATTRIBUTE, _MISSING)
        label = attrs.get(semconv.PREDICTION_LABEL, _MISSING)
        proba = attrs.get(semconv.PREDICTION_PROBABILITIES, _MISSING)
        fvalue = None if value is _MISSING else _finite(value)
        if (value is not _MISSING and fvalue is None) or (label is not _MISSING and (
                not isinstance(label, str) or len(label) > semconv.MAX_NAME_LENGTH)):
            out.reject(model, INVALID_OUTPUT)
            return
        probs: tuple[float, ...] | None = None
        if proba is not _MISSING:
            if not isinstance(proba, list) or not 0 < len(proba) <= MAX_CLASSES:
                out.reject(model, INVALID_OUTPUT)
                return
            ps = [_finite(p) for p in proba]
            if any(p is None or not 0.0 <= p <= 1.0 for p in ps):
                out.reject(model, INVALID_OUTPUT)
                return
            probs = tuple(ps)  # type: ignore[arg-type]
        if fvalue is None and label is _MISSING and probs is None:
            out.reject(model, INVALID_OUTPUT)
            return
        segments = _segments(attrs)
        if segments is None:
            out.reject(model, INVALID_SEGMENT)
            return
        role = attrs.get(semconv.MODEL_ROLE, "")
        if role != "" and role not in semconv.MODEL_ROLES:
            out.reject(model, INVALID_ROLE)
            return
        tid, sid = r.trace_id, r.span_id  # type: ignore[attr-defined]
        trace = tid + sid if len(tid) == 16 and len(sid) == 8 and any(tid) else b""
        out.predictions.append(Prediction(model, str(version), id_key(raw_id), t,
                                          None if label is _MISSING else str(label), fvalue, probs, trace,
                                          segments, str(role)))
    else:
        if version is not _MISSING and _name(version) is None:
            out.reject(model, INVALID_MODEL)
            return
        label = attrs.get(semconv.OUTCOME_LABEL, _MISSING)
        value = attrs.get(semconv.OUTCOME_VALUE, _MISSING)
        if (label is _MISSING) == (value is _MISSING):
            out.reject(model, INVALID_ACTUAL)
            return
        if label is not _MISSING:
            if not isinstance(label, str) or len(label) > semconv.MAX_NAME_LENGTH:
                out.reject(model, INVALID_ACTUAL)
                return
            out.outcomes.append(Outcome(model, None if version is _MISSING else version,  # type: ignore[arg-type]
                                        id_key(raw_id), t, label, None))
        else:
            fvalue = _finite(value)
            if fvalue is None:
                out.reject(model, INVALID_ACTUAL)
                return
            out.outcomes.append(Outcome(model, None if version is _MISSING else version,  # type: ignore[arg-type]
                                        id_key(raw_id), t, None, fvalue))


def decode_logs(data: bytes) -> Records:
    """Decode a binary ``ExportLogsServiceRequest`` into validated records; :class:`DecodeError` if malformed."""
    try:
        req = _Request.FromString(data)
    except _PbDecodeError as exc:
        raise DecodeError(f"not a valid OTLP ExportLogsServiceRequest protobuf ({exc})") from None
    except Exception as exc:
        raise DecodeError(f"cannot decode request ({type(exc).__name__})") from None
    out = Records()
    wanted = (_PREDICTION, _OUTCOME)
    try:
        for rl in req.resource_logs:
            for sl in rl.scope_logs:
                for r in sl.log_records:
                    if r.event_name in wanted:
                        _record(r, out)
    except RecursionError:
        raise DecodeError("OTLP log attributes nested too deeply") from None
    return out


def decode_logs_json(data: bytes | str) -> Records:
    """Decode an OTLP/JSON ``ExportLogsServiceRequest`` (unknown fields ignored, as the spec says)."""
    head = data.lstrip()[:1]
    if head not in (b"{", "{"):
        raise DecodeError("not a valid OTLP/JSON ExportLogsServiceRequest (expected a JSON object)")
    try:
        msg = json_format.Parse(data, ExportLogsServiceRequest(), ignore_unknown_fields=True)
        encoded = msg.SerializeToString()
    except Exception as exc:  # ParseError, ValueError, RecursionError, ...
        raise DecodeError(f"not a valid OTLP/JSON ExportLogsServiceRequest ({type(exc).__name__}: {exc})") from None
    return decode_logs(encoded)
