"""``otel-ml outcomes push``: a file of outcomes becomes ``ml.outcome`` records (in-memory transport here;
the records' wire format is covered over real OTLP in tests/test_integration_otlp.py)."""

from __future__ import annotations

import hashlib
import hmac

import pandas as pd
import pytest
from click.testing import CliRunner
from test_records import Capture, attrs

from otel_ml import _records, semconv as M
from otel_ml._cli import main

from _otel_ml_support import reset_library


@pytest.fixture
def sink(monkeypatch):
    reset_library()
    monkeypatch.setenv("OTEL_ML_ID_SECRET", "cli-secret")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    cap = Capture()
    _records.QUEUE.transport = cap
    yield cap
    reset_library()


def wire(text: str) -> str:
    return hmac.new(b"cli-secret", text.encode(), hashlib.sha256).hexdigest()[:32]


def push(*args: str):
    return CliRunner().invoke(main, ["outcomes", "push", *args], catch_exceptions=False)


def test_push_csv_sends_one_record_per_usable_row(sink, tmp_path):
    path = tmp_path / "outcomes.csv"
    path.write_text("order,label,at\n007,yes,2026-01-02T00:00:00Z\n8,no,2026-01-02T00:00:01Z\n9,,2026-01-02\n"
                    ",yes,2026-01-02\n")
    run = push(str(path), "--model", "credit", "--id-column", "order", "--label-column", "label",
               "--timestamp-column", "at", "--version", "3")
    assert run.exit_code == 0, run.output
    assert "4 rows; sent 2 outcome records" in run.output and "2 invalid" in run.output
    recs = sink.records(M.EVENT_OUTCOME)
    assert [attrs(r) for r in recs] == [
        {M.MODEL_NAME: "credit", M.MODEL_VERSION: "3", M.PREDICTION_ID: wire("007"), M.OUTCOME_LABEL: "yes"},
        {M.MODEL_NAME: "credit", M.MODEL_VERSION: "3", M.PREDICTION_ID: wire("8"), M.OUTCOME_LABEL: "no"},
    ]
    assert recs[1].time_unix_nano == pd.Timestamp("2026-01-02T00:00:01Z").value


def test_push_parquet_in_chunks_as_values(sink, tmp_path, monkeypatch):
    from otel_ml import _cli_outcomes

    monkeypatch.setattr(_cli_outcomes, "PUSH_CHUNK_ROWS", 7)
    path = tmp_path / "y.parquet"
    pd.DataFrame({"id": range(50), "y": [float(i) / 2 for i in range(50)]}).to_parquet(path)
    run = push(str(path), "--model", "reg", "--id-column", "id", "--label-column", "y", "--kind", "value")
    assert run.exit_code == 0, run.output
    recs = sink.records(M.EVENT_OUTCOME)
    assert [attrs(r)[M.OUTCOME_VALUE] for r in recs] == [i / 2 for i in range(50)]
    assert attrs(recs[3])[M.PREDICTION_ID] == wire("3")


@pytest.mark.parametrize(("args", "message"), [
    (["--id-column", "nope", "--label-column", "label"], "no column 'nope'"),
    (["--id-column", "order", "--label-column", "label", "--timestamp-column", "when"], "no column 'when'"),
])
def test_bad_input_exits_2_with_one_line(sink, tmp_path, args, message):
    path = tmp_path / "o.csv"
    path.write_text("order,label\n1,a\n")
    run = push(str(path), "--model", "m", *args)
    assert run.exit_code == 2 and message in run.output
    assert len(run.output.strip().splitlines()) == 1


def test_without_a_secret_exits_2(sink, tmp_path, monkeypatch):
    monkeypatch.delenv("OTEL_ML_ID_SECRET")
    path = tmp_path / "o.csv"
    path.write_text("order,label\n1,a\n")
    run = push(str(path), "--model", "m", "--id-column", "order", "--label-column", "label")
    assert run.exit_code == 2 and "OTEL_ML_ID_SECRET" in run.output
    run = push(str(path), "--model", "m", "--id-column", "order", "--label-column", "label", "--raw-ids")
    assert run.exit_code == 0 and attrs(sink.records()[0])[M.PREDICTION_ID] == "1"


def test_records_that_cannot_be_sent_exit_1(sink, tmp_path):
    sink.fail = True
    path = tmp_path / "o.csv"
    path.write_text("order,label\n1,a\n2,b\n")
    run = push(str(path), "--model", "m", "--id-column", "order", "--label-column", "label")
    assert run.exit_code == 1 and "2 not sent" in run.output
