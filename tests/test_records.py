"""Prediction and outcome records (issue 11, library side): ids, sampling, the bounded queue, counting.

The network is replaced by an in-memory transport here (``QUEUE.transport``); tests/test_integration_otlp.py
sends the same records over real OTLP/gRPC and OTLP/HTTP.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math

import numpy as np
import pandas as pd
import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
)

import otel_ml
from otel_ml import _ids, _records, semconv as M
from otel_ml._logs_exporter import SendResult

from _otel_ml_support import SPANS, log_attrs as attrs, log_records, point, simple_reference

SECRET = "test-secret"


class Capture:
    """The transport of the record queue: keeps every ExportLogsServiceRequest; ``fail`` refuses them."""

    def __init__(self) -> None:
        self.requests: list = []
        self.fail = False

    def __call__(self, body: bytes):
        if self.fail:
            return SendResult(False, error="refused")
        self.requests.append(ExportLogsServiceRequest.FromString(body))  # the real message parses the bytes
        return SendResult(True)

    def records(self, event: str | None = None) -> list:
        return log_records(self.requests, event)


@pytest.fixture
def sink(exporter, monkeypatch):
    monkeypatch.delenv(_ids.ID_SECRET_ENV, raising=False)
    cap = Capture()
    _records.QUEUE.transport = cap
    otel_ml.configure(exporter=exporter, export_interval_s=3600, id_secret=SECRET)
    yield cap


def contract_hash(value: str, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()[:32]


# --- ids -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "text"), [(7, "7"), (7.0, "7"), (np.int64(7), "7"), ("007", "007"), (7.5, "7.5"),
                                           (None, None), (math.nan, None), ("", None), (True, "True")])
def test_id_text(raw, text):
    assert _ids.id_text(raw) == text


def test_wire_id_is_the_contracts_keyed_hash():
    assert _ids.hash_id(12345, SECRET.encode()) == contract_hash("12345")
    keep, wire, invalid = _ids.prepare(["a", None, 3], hashed=True, key=SECRET.encode(), rate=1.0)
    assert keep == [0, 2] and wire == [contract_hash("a"), contract_hash("3")] and invalid == 1


def test_sampling_keeps_the_same_ids_on_both_sides(sink):
    """Predictions sampled at 0.3 by monitor() and outcomes by record_outcomes(): the same ids survive."""
    ref = simple_reference()
    ids = np.arange(3000)

    @otel_ml.monitor(model="m", version="1", reference=ref, prediction_id=lambda X: ids[: len(X["x"])],
                     outcome_sample_rate=0.3)
    def predict(X):
        return np.column_stack([np.full(len(X["x"]), 0.25), np.full(len(X["x"]), 0.75)])

    n = len(ids)
    predict({"x": np.zeros(n), "y": np.ones(n), "c": ["a"] * n})
    queued = otel_ml.record_outcomes(model="m", ids=ids.tolist(), actuals=[1] * n)  # rate from the monitored model
    queued_explicit = otel_ml.record_outcomes(model="m", ids=[str(i) for i in ids], actuals=[0] * n,
                                              outcome_sample_rate=0.3)
    assert otel_ml.flush(10)
    pred = {attrs(r)[M.PREDICTION_ID] for r in sink.records(M.EVENT_PREDICTION)}
    outc = [attrs(r)[M.PREDICTION_ID] for r in sink.records(M.EVENT_OUTCOME)]
    assert 0.25 * n < len(pred) < 0.35 * n
    assert set(outc[:queued]) == pred and set(outc[queued:]) == pred
    assert queued == queued_explicit == len(pred)
    expected = {contract_hash(str(i)) for i in ids
                if int.from_bytes(hmac.digest(SECRET.encode(), str(i).encode(), "sha256")[:8], "big") < 0.3 * 2**64}
    assert pred == expected


# --- record layout ------------------------------------------------------------------------------------
def test_prediction_records_carry_outputs_in_reference_order_and_the_span_ids(sink):
    ref = otel_ml.build_reference({"a": np.linspace(0, 1, 200)}, model="p", version="2",
                                  predictions=np.column_stack([np.linspace(0, 1, 200)] * 3),
                                  class_names=["low", "mid", "high"])

    @otel_ml.monitor(model="p", version="2", reference=ref, prediction_id="order")
    def predict(X):
        a = X["a"].to_numpy()
        return np.column_stack([a, a / 2, a / 4])

    df = pd.DataFrame({"a": [0.2, 0.4], "order": ["o-1", "o-2"]})
    out = predict(df)
    out[:] = -1.0  # the caller's array is its own: the records keep what the model returned
    assert otel_ml.flush(10)
    recs = sink.records(M.EVENT_PREDICTION)
    assert [attrs(r) for r in recs] == [
        {M.MODEL_NAME: "p", M.MODEL_VERSION: "2", M.PREDICTION_ID: contract_hash("o-1"),
         M.PREDICTION_PROBABILITIES: [0.2, 0.1, 0.05]},
        {M.MODEL_NAME: "p", M.MODEL_VERSION: "2", M.PREDICTION_ID: contract_hash("o-2"),
         M.PREDICTION_PROBABILITIES: [0.4, 0.2, 0.1]},
    ]
    span = [s for s in SPANS.get_finished_spans() if s.name == "predict p"][-1]
    for r in recs:
        assert r.trace_id == span.context.trace_id.to_bytes(16, "big")
        assert r.span_id == span.context.span_id.to_bytes(8, "big")
        assert span.start_time <= r.time_unix_nano <= span.end_time + 10**9
    # the id column is not a feature: no unexpected_column violation
    data = sink_metrics(exporter_of(sink))
    assert point(data, M.SCHEMA_VIOLATIONS, **{M.SCHEMA_VIOLATION: M.SCHEMA_UNEXPECTED_COLUMN}).value == 0


def exporter_of(_sink):
    return otel_ml._PIPELINE.config.exporter


def sink_metrics(mem):
    assert otel_ml.flush(10)
    return mem.last


@pytest.mark.parametrize(("output", "kind", "expected"), [
    (np.array([1.5, 2.5]), M.PREDICTION_VALUE_ATTRIBUTE, [1.5, 2.5]),
    (np.array(["yes", "no"], dtype=object), M.PREDICTION_LABEL, ["yes", "no"]),
    (np.array([1, 0]), M.PREDICTION_LABEL, ["1", "0"]),
    (np.array([True, False]), M.PREDICTION_LABEL, ["true", "false"]),
])
def test_value_and_label_outputs(sink, output, kind, expected):
    @otel_ml.monitor(model="v", version="1", prediction_id=lambda X: ["a", "b"])
    def predict(X):
        return output

    predict(np.zeros((2, 3)))
    assert otel_ml.flush(10)
    assert [attrs(r)[kind] for r in sink.records(M.EVENT_PREDICTION)] == expected


def test_outcome_records(sink):
    n = otel_ml.record_outcomes(model="m", ids=["a", "b"], actuals=["yes", 0], version="4",
                                timestamps=[1_700_000_000, pd.Timestamp("2024-01-02T03:04:05Z")])
    v = otel_ml.record_outcomes(model="r", ids=[1], actuals=np.array([2.5]))
    assert (n, v) == (2, 1)
    assert otel_ml.flush(10)
    recs = sink.records(M.EVENT_OUTCOME)
    assert [attrs(r) for r in recs] == [
        {M.MODEL_NAME: "m", M.MODEL_VERSION: "4", M.PREDICTION_ID: contract_hash("a"), M.OUTCOME_LABEL: "yes"},
        {M.MODEL_NAME: "m", M.MODEL_VERSION: "4", M.PREDICTION_ID: contract_hash("b"), M.OUTCOME_LABEL: "0"},
        {M.MODEL_NAME: "r", M.PREDICTION_ID: contract_hash("1"), M.OUTCOME_VALUE: 2.5},
    ]
    assert recs[0].time_unix_nano == 1_700_000_000 * 10**9
    assert recs[1].time_unix_nano == pd.Timestamp("2024-01-02T03:04:05Z").value
    assert not recs[0].trace_id


def test_bad_ids_actuals_and_timestamps_are_counted_not_sent(sink):
    n = otel_ml.record_outcomes(model="r", ids=[1, None, math.nan, 4, 5, 6, 7],
                                actuals=np.array([1.0, 2.0, 3.0, math.nan, math.inf, 6.0, 7.0]),
                                timestamps=[1.7e9, 1.7e9, 1.7e9, 1.7e9, 1.7e9, "not a time", None])
    assert n == 1
    assert _records.COUNTERS.total(_records.COUNTERS.dropped, model="r", what=_records.DROP_INVALID) == 6
    labels = otel_ml.record_outcomes(model="c", ids=["a", "b", "c"], actuals=["x", None, ""])
    assert labels == 1
    assert otel_ml.flush(10)
    ids = [attrs(r)[M.PREDICTION_ID] for r in sink.records(M.EVENT_OUTCOME)]
    assert ids == [contract_hash("1"), contract_hash("a")]
    with pytest.raises(otel_ml.ConfigurationError, match="differ in length"):
        otel_ml.record_outcomes(model="r", ids=[1, 2], actuals=[1.0])
    with pytest.raises(otel_ml.ConfigurationError, match="model"):
        otel_ml.record_outcomes(model="", ids=[1], actuals=[1.0])
    with pytest.raises(otel_ml.ConfigurationError, match="outcome_sample_rate"):
        otel_ml.record_outcomes(model="r", ids=[1], actuals=[1.0], outcome_sample_rate=0)


def test_missing_id_column_is_counted_and_the_result_unchanged(sink, caplog):
    @otel_ml.monitor(model="v", version="1", prediction_id="order")
    def predict(X):
        return np.ones(len(X["a"]))

    with caplog.at_level(logging.WARNING, logger="otel_ml"):
        out = predict(pd.DataFrame({"a": [1, 2, 3]}))
        predict(pd.DataFrame({"a": [1, 2, 3]}))
    assert out.tolist() == [1, 1, 1]
    assert _records.COUNTERS.total(_records.COUNTERS.dropped, what=_records.DROP_INVALID) == 6
    assert sum("cannot take prediction ids" in r.getMessage() for r in caplog.records) == 1


# --- no secret ------------------------------------------------------------------------------------------
def test_without_a_secret_nothing_is_sent_counted_and_logged_once(exporter, monkeypatch, caplog):
    monkeypatch.delenv(_ids.ID_SECRET_ENV, raising=False)
    cap = Capture()
    _records.QUEUE.transport = cap

    @otel_ml.monitor(model="s", version="1", prediction_id=lambda X: list(range(len(X))))
    def predict(X):
        return np.zeros(len(X))

    with caplog.at_level(logging.WARNING, logger="otel_ml"):
        predict(np.zeros((3, 2)))
        predict(np.zeros((4, 2)))
        assert otel_ml.flush(10)
        assert otel_ml.record_outcomes(model="s", ids=[1, 2], actuals=[0.0, 1.0]) == 0
        assert otel_ml.flush(10)
    assert cap.records() == []
    assert _records.COUNTERS.total(_records.COUNTERS.dropped, what=_records.DROP_NO_SECRET) == 9
    messages = [r.getMessage() for r in caplog.records if "OTEL_ML_ID_SECRET" in r.getMessage()]
    assert len(messages) == 1 and "configure(id_secret=" in messages[0]
    data = exporter.last
    assert point(data, M.RECORDS_DROPPED, **{M.MODEL_NAME: "s", M.MODEL_VERSION: "1",
                                             M.ERROR_TYPE: _records.DROP_NO_SECRET}).value == 7
    # the secret from the environment works, and raw ids need no secret
    monkeypatch.setenv(_ids.ID_SECRET_ENV, "from-env")
    predict(np.zeros((1, 2)))
    otel_ml.record_outcomes(model="s", ids=["raw-1"], actuals=[1.0], hash_ids=False)
    assert otel_ml.flush(10)
    assert [attrs(r)[M.PREDICTION_ID] for r in cap.records()] == [contract_hash("0", "from-env"), "raw-1"]


# --- the queue ----------------------------------------------------------------------------------------------
def test_full_queue_drops_and_counts_without_blocking(sink, monkeypatch):
    monkeypatch.setattr(_records, "MAX_QUEUED", 10)
    worker = _records.QUEUE.worker
    monkeypatch.setattr(worker, "start", lambda: None)  # nobody drains: the queue fills up
    monkeypatch.setattr(worker, "wake", lambda: None)

    @otel_ml.monitor(model="q", version="1", prediction_id=lambda X: [f"id{i}" for i in range(len(X))])
    def predict(X):
        return np.zeros(len(X))

    for _ in range(3):
        predict(np.zeros((4, 2)))
    assert _records.COUNTERS.total(_records.COUNTERS.dropped, what=_records.DROP_QUEUE_FULL) == 4
    monkeypatch.undo()
    _records.QUEUE.transport = sink
    assert otel_ml.flush(10)
    assert len(sink.records(M.EVENT_PREDICTION)) == 8
    data = exporter_of(sink).last
    assert point(data, M.PREDICTION_RECORDS, **{M.MODEL_NAME: "q"}).value == 8
    assert point(data, M.RECORDS_DROPPED, **{M.ERROR_TYPE: _records.DROP_QUEUE_FULL}).value == 4


def test_requests_hold_at_most_a_batch(sink, monkeypatch):
    worker = _records.QUEUE.worker
    monkeypatch.setattr(worker, "start", lambda: None)  # both calls queued before the sender runs
    monkeypatch.setattr(worker, "wake", lambda: None)

    @otel_ml.monitor(model="b", version="1", prediction_id=lambda X: np.arange(len(X)))
    def predict(X):
        return np.zeros(len(X))

    predict(np.zeros((1500, 1)))
    predict(np.zeros((1000, 1)))
    monkeypatch.undo()
    _records.QUEUE.transport = sink
    assert otel_ml.flush(10)
    sizes = [len(req.resource_logs[0].scope_logs[0].log_records) for req in sink.requests]
    assert sizes == [1000, 1000, 500]
    scope = sink.requests[0].resource_logs[0].scope_logs[0].scope
    assert scope.name == M.INSTRUMENTATION_SCOPE


def test_failed_export_is_counted(sink, caplog):
    sink.fail = True

    @otel_ml.monitor(model="f", version="1", prediction_id=lambda X: np.arange(len(X)))
    def predict(X):
        return np.zeros(len(X))

    predict(np.zeros((5, 1)))
    assert not otel_ml.flush(10)
    assert _records.COUNTERS.total(_records.COUNTERS.dropped, what=_records.DROP_EXPORT_FAILED) == 5
    assert _records.COUNTERS.total(_records.COUNTERS.sent) == 0


# --- the model is untouched ----------------------------------------------------------------------------------
def test_result_and_exception_pass_unchanged_with_prediction_id(sink):
    result = object()
    calls = []

    class Boom(Exception):
        pass

    boom = Boom("model failed")

    @otel_ml.monitor(model="u", version="1", prediction_id="id")
    def predict(X):
        calls.append(1)
        if X.get("fail"):
            raise boom
        return result

    assert predict({"id": [1, 2], "a": [0.0, 1.0]}) is result
    with pytest.raises(Boom) as info:
        predict({"id": [1, 2], "fail": True})
    assert info.value is boom

    def broken_ids(X):
        raise RuntimeError("ids broke")

    weird = otel_ml.monitor(model="u2", version="1", prediction_id=broken_ids)(lambda X: result)
    assert weird([[1.0]]) is result
    assert otel_ml.flush(10)
    # nothing to send: the failed call has no output, the object is not one output per id (counted),
    # and the broken callable gave no ids (counted)
    assert sink.records() == []
    assert _records.COUNTERS.dropped == {("u", "1", _records.DROP_INVALID): 2, ("u2", "1", _records.DROP_INVALID): 1}
    assert calls == [1, 1]


def test_bad_arguments_raise_at_decoration():
    with pytest.raises(otel_ml.ConfigurationError, match="prediction_id"):
        otel_ml.monitor(model="x", version="1", prediction_id=3)
    with pytest.raises(otel_ml.ConfigurationError, match="outcome_sample_rate"):
        otel_ml.monitor(model="x", version="1", prediction_id="id", outcome_sample_rate=1.5)
    with pytest.raises(otel_ml.ConfigurationError, match="id_secret"):
        otel_ml.configure(id_secret="")


def test_instrument_passes_prediction_id(sink):
    class Model:
        def predict(self, X):
            return np.asarray(X["a"], dtype=float) * 2

    m = otel_ml.instrument(Model(), model="i", version="1", prediction_id="key")
    assert m.predict({"a": [1.0], "key": ["k"]}).tolist() == [2.0]
    assert otel_ml.flush(10)
    assert [attrs(r) for r in sink.records()] == [
        {M.MODEL_NAME: "i", M.MODEL_VERSION: "1", M.PREDICTION_ID: contract_hash("k"),
         M.PREDICTION_VALUE_ATTRIBUTE: 2.0}]
    tracer = trace.get_tracer("t")
    assert tracer is not None


# --- the wire encoding ------------------------------------------------------------------------------------
def test_hand_encoded_records_parse_as_the_messages_protobuf_builds():
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
    from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource

    from otel_ml import _otlp_logs as L

    def kv(key, **value):
        return KeyValue(key=key, value=AnyValue(**value))

    long_label = "é" * 100  # 200 bytes: a two-byte length
    recs = L.prediction_records("m", "1", ["id-a", "id-b"], [[0.25, 0.75], None], L.KIND_PROBABILITIES,
                                123, b"t" * 16, b"s" * 8, 1, 456)
    labels = L.prediction_records("m", "1", ["id-c"], [long_label], L.KIND_LABEL, 7, b"", b"", 0, 8)
    outcomes = L.outcome_records("m", None, ["id-a"], M.OUTCOME_VALUE, [2.5], [99], 100)
    base = {"event_name": M.EVENT_PREDICTION, "time_unix_nano": 123, "observed_time_unix_nano": 456,
            "trace_id": b"t" * 16, "span_id": b"s" * 8, "flags": 1}
    common = [kv(M.MODEL_NAME, string_value="m"), kv(M.MODEL_VERSION, string_value="1")]
    probs = KeyValue(key=M.PREDICTION_PROBABILITIES, value=AnyValue(array_value=ArrayValue(
        values=[AnyValue(double_value=0.25), AnyValue(double_value=0.75)])))
    assert LogRecord.FromString(recs[0]) == LogRecord(
        **base, attributes=[*common, kv(M.PREDICTION_ID, string_value="id-a"), probs])
    assert LogRecord.FromString(recs[1]) == LogRecord(
        **base, attributes=[*common, kv(M.PREDICTION_ID, string_value="id-b")])
    assert LogRecord.FromString(labels[0]) == LogRecord(
        event_name=M.EVENT_PREDICTION, time_unix_nano=7, observed_time_unix_nano=8,
        attributes=[*common, kv(M.PREDICTION_ID, string_value="id-c"), kv(M.PREDICTION_LABEL, string_value=long_label)])
    assert LogRecord.FromString(outcomes[0]) == LogRecord(
        event_name=M.EVENT_OUTCOME, time_unix_nano=99, observed_time_unix_nano=100,
        attributes=[common[0], kv(M.PREDICTION_ID, string_value="id-a"), kv(M.OUTCOME_VALUE, double_value=2.5)])
    many = [recs[0]] * 300  # a request longer than 2^14 bytes: three-byte lengths
    request = ExportLogsServiceRequest.FromString(L.export_request(Resource(attributes=common), "9", many))
    scope_logs = request.resource_logs[0].scope_logs[0]
    assert len(scope_logs.log_records) == 300 and scope_logs.scope.name == M.INSTRUMENTATION_SCOPE
    assert scope_logs.scope.version == "9" and list(request.resource_logs[0].resource.attributes) == common


def test_bad_batch_processor_variable_warns_and_the_default_applies():
    import os
    import subprocess
    import sys

    env = {**os.environ, "OTEL_BLRP_MAX_QUEUE_SIZE": "lots", "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE": "0"}
    run = subprocess.run([sys.executable, "-c", "import otel_ml._records as r; print(r.MAX_QUEUED, r.MAX_BATCH)"],
                         check=False, capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 0 and run.stdout.split() == ["100000", "1000"], run.stderr
    assert "OTEL_BLRP_MAX_QUEUE_SIZE" in run.stderr and "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE" in run.stderr
