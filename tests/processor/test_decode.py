"""The lean OTLP decoder: protobuf, JSON, gzip, unpacked encodings, malformed input."""

from __future__ import annotations

import gzip
import os
import random

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from otel_ml import semconv
from otel_ml_processor._decode import DecodeError, TooLargeError, decode_json, decode_protobuf, decompress

from .payloads import Emitter, make_reference


@pytest.fixture(scope="module")
def request_pb() -> ExportMetricsServiceRequest:
    e = Emitter(make_reference(), start_ns=10)
    e.observe(100)
    return e.request(time_ns=20)


def test_decode_protobuf_reads_ml_points_and_ignores_others(request_pb) -> None:
    d = decode_protobuf(request_pb.SerializeToString())
    assert [g.metric for g in d.histograms] == [semconv.FEATURE_VALUE]
    assert sorted(g.metric for g in d.sums) == [semconv.FEATURE_CATEGORY_COUNT, semconv.FEATURE_MISSING]
    assert d.points == 11
    h = d.histograms[0]
    assert h.temporality == 2 and h.start[0] == 10 and h.time[0] == 20
    assert len(h.buckets[0]) == 8 * len(request_pb.resource_metrics[0].scope_metrics[0].metrics[0].histogram
                                        .data_points[0].bucket_counts)


def test_decode_json_equals_protobuf(request_pb) -> None:
    a = decode_protobuf(request_pb.SerializeToString())
    b = decode_json(json_format.MessageToJson(request_pb))
    assert a == b


def test_decode_unpacked_repeated_fields_fall_back_to_full_classes(request_pb) -> None:
    from google.protobuf.internal import encoder

    def ld(field: int, payload: bytes) -> bytes:  # a length-delimited field
        return encoder.TagBytes(field, 2) + encoder._VarintBytes(len(payload)) + payload

    dp = request_pb.resource_metrics[0].scope_metrics[0].metrics[0].histogram.data_points[0]
    counts = list(dp.bucket_counts)
    bare = type(dp)()
    bare.CopyFrom(dp)
    bare.ClearField("bucket_counts")
    # bucket_counts unpacked: field 6, wire type 1 (fixed64), once per count - legal, if unusual.
    point = bare.SerializeToString() + b"".join(encoder.TagBytes(6, 1) + int(c).to_bytes(8, "little") for c in counts)
    hist = ld(1, point) + encoder.TagBytes(2, 0) + b"\x02"
    metric = ld(1, semconv.FEATURE_VALUE.encode()) + ld(9, hist)
    data = ld(1, ld(2, ld(2, metric)))
    d = decode_protobuf(data)
    packed = decode_protobuf(request_pb.SerializeToString())
    assert d.histograms[0].buckets[0] == packed.histograms[0].buckets[0]
    assert d.histograms[0].count[0] == sum(counts)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"\x0a\xff\xff\xff\xff\x0f garbage", id="garbage"),
        pytest.param(None, id="truncated"),
        pytest.param(bytes(random.Random(1).randrange(256) for _ in range(500)), id="random"),
        pytest.param(b"\x0a\x0a\x12\x08\x12\x06\x0a\x04\xff\xfe\xfd\xfc", id="bad_utf8_name"),
    ],
)
def test_decode_malformed_protobuf_raises_decode_error(payload: bytes | None, request_pb) -> None:
    if payload is None:
        payload = request_pb.SerializeToString()[:-7]
    with pytest.raises(DecodeError, match="not a valid OTLP ExportMetricsServiceRequest protobuf"):
        decode_protobuf(payload)


def test_decode_fuzz_never_raises_anything_else(request_pb) -> None:
    data = bytearray(request_pb.SerializeToString())
    rng = random.Random(7)
    for _ in range(300):
        mutated = bytearray(data)
        for _ in range(rng.randrange(1, 8)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        try:
            decode_protobuf(bytes(mutated))
        except DecodeError:
            pass


@pytest.mark.parametrize("payload", [
    pytest.param('{"resourceMetrics": 5}', id="resource_metrics_not_a_list"),
    pytest.param("not json", id="not_json"),
    pytest.param("[]", id="top_level_not_an_object"),
    pytest.param('{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": 7}]}]}]}',
                 id="metric_name_not_a_string"),
])
def test_decode_bad_json_raises_decode_error(payload: str) -> None:
    with pytest.raises(DecodeError):
        decode_json(payload)


def test_decompress_limits_and_errors() -> None:
    data = os.urandom(1000)
    assert decompress(gzip.compress(data), "gzip", 2000) == data
    assert decompress(data, "", 2000) == data
    with pytest.raises(TooLargeError):
        decompress(gzip.compress(b"\0" * 100_000), "gzip", 10_000)
    with pytest.raises(TooLargeError):
        decompress(data, "identity", 10)
    with pytest.raises(DecodeError):
        decompress(b"nope", "gzip", 1000)
    with pytest.raises(DecodeError):
        decompress(gzip.compress(data)[:-20], "gzip", 2000)
    with pytest.raises(DecodeError):
        decompress(data, "br", 2000)
