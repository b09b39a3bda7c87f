"""OTLP ``ExportMetricsServiceRequest`` (protobuf or JSON) -> the processor's columnar point groups.

Speed comes from a *lean schema*: a private set of protobuf messages that is wire-compatible with
OTLP but declares only what the processor reads, and declares some fields as raw ``bytes``:

* a metric's ``sum`` and ``histogram`` payloads are ``bytes``, parsed only when the metric's name is
  one the processor consumes, so other metrics cost a length skip (non-``ml.`` data is cheap);
* a data point's attributes are a list of raw ``KeyValue`` encodings, which are hashable: the state
  looks them up in a dict and parses a series' attributes once, when the series first appears;
* a histogram point's ``bucket_counts`` and ``explicit_bounds`` are the raw packed arrays, which
  become numpy arrays for a whole request in one ``frombuffer`` and compare with the reference's
  edges as one ``bytes`` comparison.

With a :class:`~._template.TemplateCache` (the service always passes one), a ``sum``/``histogram``
payload that repeats the structure of an earlier one from the same resource is decoded without any
per-point Python work (see ``_template.py``).

Proto3 encoders pack repeated numbers (every OTLP exporter does). A request that uses the unpacked
encoding, which the lean schema cannot see, is detected (a point with a count but no buckets) and
re-read with the full OTLP classes, re-encoded packed and decoded again. JSON requests are parsed with
the full classes (``ignore_unknown_fields``, as the OTLP spec requires) and take the same path.

Nothing here raises anything but :class:`DecodeError`, whatever the input.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import DecodeError as _PbDecodeError, Message
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from otel_ml import semconv

from ._limits import digest
from ._template import TemplateCache, histogram_columns, sum_columns

#: Histogram metrics the processor consumes.
HISTOGRAM_METRICS = frozenset({semconv.FEATURE_VALUE, semconv.PREDICTION_VALUE, semconv.SEGMENT_PREDICTION_VALUE})
#: Sum (counter) metrics the processor consumes.
SUM_METRICS = frozenset(
    {
        semconv.FEATURE_CATEGORY_COUNT,
        semconv.PREDICTION_CLASS_COUNT,
        semconv.FEATURE_MISSING,
        semconv.FEATURE_INVALID,
        semconv.FEATURE_OUT_OF_RANGE,
        semconv.FEATURE_UNSEEN,
        semconv.SEGMENT_ROWS,
        semconv.SEGMENT_PREDICTION_CLASS_COUNT,
        *semconv.SEGMENT_QUALITY_COUNTERS.values(),
    }
)

TEMPORALITY_DELTA = 1
TEMPORALITY_CUMULATIVE = 2
FLAG_NO_RECORDED_VALUE = 1

#: Defaults of ``receivers.max_attribute_bytes`` and ``receivers.max_resource_bytes``.
MAX_ATTRIBUTE_BYTES = 4096
MAX_RESOURCE_BYTES = 16384


@dataclass(frozen=True)
class SizeLimits:
    """Largest encoded attribute (key and value) of a data point, and largest encoded resource.
    Points beyond them are dropped at decode and counted (``attributes_too_large``)."""

    max_attribute_bytes: int = MAX_ATTRIBUTE_BYTES
    max_resource_bytes: int = MAX_RESOURCE_BYTES


_DEFAULT_LIMITS = SizeLimits()


class DecodeError(ValueError):
    """The payload is not a valid OTLP ExportMetricsServiceRequest (the message says why)."""


class TooLargeError(DecodeError):
    """The (decompressed) payload exceeds the configured size limit."""


@dataclass(slots=True)
class _Group:
    """The data points of one metric of one resource, column by column: the columns of every kind."""

    metric: str
    resource: bytes  # the 16-byte digest of the resource's encoding (:func:`._limits.digest`)
    temporality: int
    attrs: Sequence[tuple[bytes, ...]]
    #: Columns are tuples, or int64/float64 arrays when the structure cache decoded the group.
    start: Sequence[int] | np.ndarray
    time: Sequence[int] | np.ndarray


@dataclass(slots=True)
class HistogramGroup(_Group):
    """The data points of one histogram metric of one resource, column by column."""

    count: Sequence[int] | np.ndarray
    buckets: Sequence[bytes]
    bounds: Sequence[bytes]
    flags: Sequence[int]
    #: Set when the structure cache decoded the group: ``start``/``time``/``count`` are int64 arrays,
    #: ``values`` the bucket counts of all points (float64) and ``widths`` the buckets per point.
    values: np.ndarray | None = None
    widths: np.ndarray | None = None
    template: int = -1


@dataclass(slots=True)
class SumGroup(_Group):
    """The data points of one sum metric of one resource, column by column."""

    value: Sequence[float] | np.ndarray
    flags: Sequence[int]
    #: Set when the structure cache decoded the group (``start``/``time``/``value`` are arrays).
    template: int = -1


@dataclass(slots=True)
class Decoded:
    histograms: list[HistogramGroup] = field(default_factory=list)
    sums: list[SumGroup] = field(default_factory=list)
    #: Points dropped because an attribute or their resource exceeds :class:`SizeLimits`.
    too_large: int = 0

    @property
    def points(self) -> int:
        return sum(len(g.start) for g in self.histograms) + sum(len(g.start) for g in self.sums)


# --- the lean schema ----------------------------------------------------------------------------

class LeanSchema:
    """A proto3 schema built in code with only the fields a decoder reads: the others are skipped unparsed,
    and a field declared ``bytes`` instead of its message type is kept undecoded."""

    def __init__(self, package: str) -> None:
        self.package = package
        self._fdp = descriptor_pb2.FileDescriptorProto(name=f"{package.replace('.', '_')}.proto", package=package,
                                                       syntax="proto3")

    def msg(self, name: str, *fields: tuple[str, int, int, int, str], oneof: str | None = None) -> None:
        """Message ``name`` of ``(name, number, type, label, message type or "")`` fields; with ``oneof``
        all of them form that oneof."""
        m = self._fdp.message_type.add(name=name)
        for fname, number, ftype, label, type_name in fields:
            f = m.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                f.type_name = f".{self.package}.{type_name}"
        if oneof is not None:
            m.oneof_decl.add(name=oneof)
            for f in m.field:
                f.oneof_index = 0

    def classes(self, *names: str) -> dict[str, type[Message]]:
        """The message classes of ``names``."""
        pool = descriptor_pool.DescriptorPool()
        pool.Add(self._fdp)
        return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{self.package}.{name}"))
                for name in names}


def _build_lean() -> dict[str, type[Message]]:
    F = descriptor_pb2.FieldDescriptorProto
    schema = LeanSchema("otel_ml_processor.lean")
    msg = schema.msg
    OPT, REP = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    msg("Request", ("resource_metrics", 1, F.TYPE_MESSAGE, REP, "ResourceMetrics"))
    msg("ResourceMetrics", ("resource", 1, F.TYPE_BYTES, OPT, ""),
        ("scope_metrics", 2, F.TYPE_MESSAGE, REP, "ScopeMetrics"))
    msg("ScopeMetrics", ("metrics", 2, F.TYPE_MESSAGE, REP, "Metric"))
    msg("Metric", ("name", 1, F.TYPE_STRING, OPT, ""), ("sum", 7, F.TYPE_BYTES, OPT, ""),
        ("histogram", 9, F.TYPE_BYTES, OPT, ""))
    msg("Histogram", ("data_points", 1, F.TYPE_MESSAGE, REP, "HistogramDataPoint"),
        ("aggregation_temporality", 2, F.TYPE_INT32, OPT, ""))
    msg("HistogramDataPoint", ("start_time_unix_nano", 2, F.TYPE_FIXED64, OPT, ""),
        ("time_unix_nano", 3, F.TYPE_FIXED64, OPT, ""), ("count", 4, F.TYPE_FIXED64, OPT, ""),
        ("bucket_counts", 6, F.TYPE_BYTES, OPT, ""), ("explicit_bounds", 7, F.TYPE_BYTES, OPT, ""),
        ("attributes", 9, F.TYPE_BYTES, REP, ""), ("flags", 10, F.TYPE_UINT32, OPT, ""))
    msg("Sum", ("data_points", 1, F.TYPE_MESSAGE, REP, "NumberDataPoint"),
        ("aggregation_temporality", 2, F.TYPE_INT32, OPT, ""))
    msg("NumberDataPoint", ("start_time_unix_nano", 2, F.TYPE_FIXED64, OPT, ""),
        ("time_unix_nano", 3, F.TYPE_FIXED64, OPT, ""), ("as_double", 4, F.TYPE_DOUBLE, OPT, ""),
        ("as_int", 6, F.TYPE_SFIXED64, OPT, ""), ("attributes", 7, F.TYPE_BYTES, REP, ""),
        ("flags", 8, F.TYPE_UINT32, OPT, ""))
    return schema.classes("Request", "Histogram", "Sum")


_LEAN = _build_lean()
_Request = _LEAN["Request"]
_Histogram = _LEAN["Histogram"]
_Sum = _LEAN["Sum"]


class _Unpacked(Exception):
    """The lean schema cannot read this request (unpacked repeated numbers)."""


def _too_large(attrs: Sequence[tuple[bytes, ...]], limit: int) -> list[bool] | None:
    """Per point, whether an attribute exceeds ``limit`` bytes; None when none does."""
    flags = [any(len(a) > limit for a in p) for p in attrs]
    return flags if any(flags) else None


def _point_count(raw: bytes, histogram: bool) -> int:
    try:
        return len((_Histogram if histogram else _Sum).FromString(raw).data_points)
    except _PbDecodeError as exc:
        raise DecodeError(f"malformed {'histogram' if histogram else 'sum'} ({exc})") from None


def _drop(cols: list[Any], bad: list[bool]) -> list[Any]:
    keep = [i for i, b in enumerate(bad) if not b]
    return [tuple(c[i] for i in keep) for c in cols]


def _lean_decode(data: bytes, cache: TemplateCache | None = None, limits: SizeLimits = _DEFAULT_LIMITS) -> Decoded:
    try:
        req = _Request.FromString(data)
    except _PbDecodeError as exc:
        raise DecodeError(f"not a valid OTLP ExportMetricsServiceRequest protobuf ({exc})") from None
    out = Decoded()
    hist_names = HISTOGRAM_METRICS
    sum_names = SUM_METRICS
    max_attr = limits.max_attribute_bytes
    for rm in req.resource_metrics:
        if len(rm.resource) > limits.max_resource_bytes:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name in hist_names and metric.histogram:
                        out.too_large += _point_count(metric.histogram, True)
                    elif metric.name in sum_names and metric.sum:
                        out.too_large += _point_count(metric.sum, False)
            continue
        resource = digest(rm.resource)
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                name = metric.name
                if name in hist_names:
                    raw = metric.histogram
                    if not raw:
                        continue
                    if cache is not None:
                        hit = cache.lookup(name, resource, raw)
                        if hit is not None:
                            t, words = hit
                            start, tim, count, values = histogram_columns(t, words)
                            out.histograms.append(HistogramGroup(
                                name, resource, t.temporality, t.attrs, start, tim, count,
                                (), t.bounds, t.flags, values, t.widths, t.id))
                            continue
                    try:
                        h = _Histogram.FromString(raw)
                    except _PbDecodeError as exc:
                        raise DecodeError(f"metric {name!r}: malformed histogram ({exc})") from None
                    pts = h.data_points
                    if not pts:
                        continue
                    cols = list(zip(*[
                        (tuple(p.attributes), p.start_time_unix_nano, p.time_unix_nano, p.count,
                         p.bucket_counts, p.explicit_bounds, p.flags)
                        for p in pts
                    ]))
                    bad = _too_large(cols[0], max_attr) if len(raw) > max_attr else None
                    if bad is not None:
                        out.too_large += sum(bad)
                        cols = _drop(cols, bad)
                        if not cols[0]:
                            continue
                    p_attrs, p_start, p_time, p_count, p_buckets, p_bounds, p_flags = cols
                    group = HistogramGroup(name, resource, h.aggregation_temporality, p_attrs, p_start, p_time,
                                           p_count, p_buckets, p_bounds, p_flags)
                    for c, b in zip(group.count, group.buckets):
                        if c and not b:
                            raise _Unpacked
                    out.histograms.append(group)
                elif name in sum_names:
                    raw = metric.sum
                    if not raw:
                        continue
                    if cache is not None:
                        hit = cache.lookup(name, resource, raw, histogram=False)
                        if hit is not None:
                            t, words = hit
                            start, tim, value = sum_columns(t, words)
                            out.sums.append(SumGroup(name, resource, t.temporality, t.attrs, start, tim, value,
                                                     t.flags, t.id))
                            continue
                    try:
                        s = _Sum.FromString(raw)
                    except _PbDecodeError as exc:
                        raise DecodeError(f"metric {name!r}: malformed sum ({exc})") from None
                    pts = s.data_points
                    if not pts:
                        continue
                    cols = list(zip(*[
                        (tuple(p.attributes), p.start_time_unix_nano, p.time_unix_nano, p.as_int + p.as_double,
                         p.flags)
                        for p in pts
                    ]))
                    bad = _too_large(cols[0], max_attr) if len(raw) > max_attr else None
                    if bad is not None:
                        out.too_large += sum(bad)
                        cols = _drop(cols, bad)
                        if not cols[0]:
                            continue
                    p_attrs, p_start, p_time, p_value, p_flags = cols
                    out.sums.append(SumGroup(name, resource, s.aggregation_temporality, p_attrs, p_start, p_time,
                                             p_value, p_flags))
    return out


def decode_protobuf(data: bytes, cache: TemplateCache | None = None, limits: SizeLimits = _DEFAULT_LIMITS) -> Decoded:
    """Decode a binary ``ExportMetricsServiceRequest``; raises :class:`DecodeError` if malformed.

    With a :class:`~._template.TemplateCache`, repeated histogram payloads skip the per-point work.
    Points whose attributes or resource exceed ``limits`` are dropped and counted in ``too_large``.
    """
    try:
        return _lean_decode(data, cache, limits)
    except _Unpacked:
        pass
    except DecodeError:
        raise
    except Exception as exc:  # never let a surprise escape as anything but a decode error
        raise DecodeError(f"cannot decode request ({type(exc).__name__}: {exc})") from None
    try:
        full = ExportMetricsServiceRequest.FromString(data)
        return _lean_decode(full.SerializeToString(), None, limits)
    except _Unpacked:
        raise DecodeError("histogram data point with a count but no bucket_counts") from None
    except DecodeError:
        raise
    except Exception as exc:
        raise DecodeError(f"not a valid OTLP ExportMetricsServiceRequest protobuf ({exc})") from None


def decode_json(data: bytes | str, cache: TemplateCache | None = None, limits: SizeLimits = _DEFAULT_LIMITS) -> Decoded:
    """Decode an OTLP/JSON ``ExportMetricsServiceRequest`` (unknown fields ignored, as the spec says)."""
    head = data.lstrip()[:1]
    if head not in (b"{", "{"):
        raise DecodeError("not a valid OTLP/JSON ExportMetricsServiceRequest (expected a JSON object)")
    try:
        msg = json_format.Parse(data, ExportMetricsServiceRequest(), ignore_unknown_fields=True)
        encoded = msg.SerializeToString()
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise DecodeError(f"not a valid OTLP/JSON ExportMetricsServiceRequest ({exc})") from None
    except Exception as exc:
        raise DecodeError(f"not a valid OTLP/JSON ExportMetricsServiceRequest ({type(exc).__name__})") from None
    return decode_protobuf(encoded, cache, limits)


def decompress(data: bytes, encoding: str, limit: int) -> bytes:
    """Undo ``Content-Encoding`` (gzip, deflate or identity) without ever producing more than ``limit`` bytes."""
    enc = (encoding or "identity").strip().lower()
    if enc in ("", "identity"):
        if len(data) > limit:
            raise TooLargeError(f"request body of {len(data)} bytes exceeds the limit of {limit} bytes")
        return data
    if enc in ("gzip", "x-gzip"):
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif enc == "deflate":
        d = zlib.decompressobj()
    else:
        raise DecodeError(f"unsupported Content-Encoding {encoding!r} (use gzip or identity)")
    try:
        out = d.decompress(data, limit + 1)
        if len(out) > limit or d.unconsumed_tail:
            raise TooLargeError(f"decompressed request exceeds the limit of {limit} bytes")
        out += d.flush()
        if len(out) > limit:
            raise TooLargeError(f"decompressed request exceeds the limit of {limit} bytes")
    except zlib.error as exc:
        raise DecodeError(f"body is not valid {enc} data ({exc})") from None
    if not d.eof:
        raise DecodeError(f"body is truncated {enc} data")
    return out


def gzip_bytes(data: bytes) -> bytes:
    """gzip ``data`` (helper for tests and benchmarks)."""
    return gzip.compress(data, compresslevel=1)
