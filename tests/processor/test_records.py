"""The OTLP logs decoder: malformed requests, wrong types, non-finite values, unrelated records."""

from __future__ import annotations

import math

import pytest

from otel_ml import semconv
from otel_ml_processor._decode import DecodeError
from otel_ml_processor._records import decode_logs, decode_logs_json, id_key, id_text

from .payloads import hashed_id, log_record, logs_request, outcome, prediction

T = 1_700_000_000_000_000_000


def test_records_decodes_predictions_and_outcomes() -> None:
    data = logs_request([
        prediction("m", "1", hashed_id(1), T, label="1", proba=[0.2, 0.8], trace=b"\x01" * 16, span=b"\x02" * 8),
        outcome("m", hashed_id(1), T + 5, label="0"),
        outcome("m", "raw-id-7", T, value=2.5, version="1"),
        log_record("some.other.event", {"x": 1}, T),
    ])
    r = decode_logs(data)
    assert len(r.predictions) == 1 and len(r.outcomes) == 2 and not r.rejected
    p = r.predictions[0]
    assert (p.label, p.proba, p.trace, id_text(p.key)) == ("1", (0.2, 0.8), b"\x01" * 16 + b"\x02" * 8, hashed_id(1))
    assert len(p.key) == 16 and id_text(r.outcomes[1].key) == "raw-id-7"
    assert r.outcomes[1].value == 2.5 and r.outcomes[1].version == "1"


def test_records_take_the_role_of_predictions_and_reject_one_outside_the_conventions() -> None:
    r = decode_logs(logs_request([
        prediction("m", "1", hashed_id(1), T, label="1", role="live"),
        prediction("m", "2", hashed_id(2), T, label="1", role="shadow"),
        prediction("m", "3", hashed_id(3), T, label="1"),
        prediction("m", "4", hashed_id(4), T, label="1", role="primary"),
        prediction("m", "4", hashed_id(5), T, label="1", role=1),
        prediction("m", "4", hashed_id(6), T, label="1", role=["live"]),
    ]))
    assert [(p.version, p.role) for p in r.predictions] == [("1", "live"), ("2", "shadow"), ("3", "")]
    assert r.rejected == {("m", "invalid_role"): 3}

def test_records_id_keys_of_hashes_and_raw_ids_never_collide() -> None:
    assert len(id_key(hashed_id(1))) == 16 and id_text(id_key(hashed_id(1))) == hashed_id(1)
    for raw in ("x" * 15, "x" * 16, "é" * 8, "order-1", "g" * 32):
        assert len(id_key(raw)) != 16 and id_text(id_key(raw)) == raw


@pytest.mark.parametrize("record, reason", [
    (log_record(semconv.EVENT_OUTCOME, {}, T), "invalid_model"),
    (log_record(semconv.EVENT_OUTCOME, {semconv.MODEL_NAME: "m", semconv.PREDICTION_ID: "a\0b",
                                        semconv.OUTCOME_LABEL: "1"}, T), "invalid_id"),
    (log_record(semconv.EVENT_OUTCOME, {semconv.MODEL_NAME: 5, semconv.PREDICTION_ID: "a",
                                        semconv.OUTCOME_LABEL: "1"}, T), "invalid_model"),
    (log_record(semconv.EVENT_OUTCOME, {semconv.MODEL_NAME: "m" * 129, semconv.PREDICTION_ID: "a",
                                        semconv.OUTCOME_LABEL: "1"}, T), "invalid_model"),
    (log_record(semconv.EVENT_OUTCOME, {semconv.MODEL_NAME: "m", semconv.PREDICTION_ID: 12,
                                        semconv.OUTCOME_LABEL: "1"}, T), "invalid_id"),
    (log_record(semconv.EVENT_OUTCOME, {semconv.MODEL_NAME: "m", semconv.PREDICTION_ID: "a" * 257,
                                        semconv.OUTCOME_LABEL: "1"}, T), "invalid_id"),
    (outcome("m", "a", T, value=math.nan), "invalid_actual"),
    (outcome("m", "a", T, value=math.inf), "invalid_actual"),
    (outcome("m", "a", T), "invalid_actual"),
    (outcome("m", "a", T, label="1", value=1.0), "invalid_actual"),
    (log_record(semconv.EVENT_OUTCOME, {semconv.MODEL_NAME: "m", semconv.PREDICTION_ID: "a",
                                        semconv.OUTCOME_LABEL: 3}, T), "invalid_actual"),
    (prediction("m", "1", "a", T), "invalid_output"),
    (prediction("m", "1", "a", T, value=math.nan), "invalid_output"),
    (prediction("m", "1", "a", T, proba=[0.5, math.nan]), "invalid_output"),
    (prediction("m", "1", "a", T, proba=[1.5, -0.5]), "invalid_output"),
    (log_record(semconv.EVENT_PREDICTION, {semconv.MODEL_NAME: "m", semconv.PREDICTION_ID: "a",
                                           semconv.PREDICTION_LABEL: "1"}, T), "invalid_model"),
])
def test_records_rejects_bad_records_by_reason_and_keeps_the_others(record, reason) -> None:
    r = decode_logs(logs_request([record, outcome("m", "ok", T, label="1")]))
    assert sum(r.rejected.values()) == 1 and [k[1] for k in r.rejected] == [reason]
    assert len(r.outcomes) == 1 and id_text(r.outcomes[0].key) == "ok"


@pytest.mark.parametrize("data", [b"\xff\xff\xff", b"\x0a\x05\x12\x03\x12\x01"])
def test_records_malformed_protobuf_is_a_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_logs(data)


def test_records_json_is_decoded_like_protobuf_and_bad_json_is_a_decode_error() -> None:
    from google.protobuf import json_format
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsServiceRequest,
    )

    data = logs_request([outcome("m", hashed_id(3), T, label="1")])
    text = json_format.MessageToJson(ExportLogsServiceRequest.FromString(data))
    r = decode_logs_json(text.encode())
    assert id_text(r.outcomes[0].key) == hashed_id(3)
    for bad in (b"[1]", b"{\"resourceLogs\": 3}"):
        with pytest.raises(DecodeError):
            decode_logs_json(bad)


def test_records_a_million_outcomes_for_one_id_decode_in_bounded_records() -> None:
    data = logs_request([outcome("m", "same", T, label="1")] * 20_000)
    r = decode_logs(data)
    assert len(r.outcomes) == 20_000 and len({o.key for o in r.outcomes}) == 1
