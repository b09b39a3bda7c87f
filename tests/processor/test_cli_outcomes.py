"""``otel-ml outcomes export``: the joined pairs of a model version and time range, to Parquet and CSV,
in the form ``otel-ml performance`` reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from otel_ml import build_reference
from otel_ml._cli import main
from otel_ml_processor._joins import JoinStore
from otel_ml_processor._records import Outcome, Prediction, id_key
from otel_ml_processor._segments import pack
from otel_ml_processor._store import ReferenceStore

from .payloads import hashed_id

T0 = 1_700_000_000  # seconds


def _store(state: Path) -> None:
    s = JoinStore(str(state))
    preds = [Prediction("fraud", "1" if i < 6 else "2", id_key(hashed_id(i)), (T0 + i * 3600) * 10**9, str(i % 2),
                        None, (0.3, 0.7), bytes([i + 1]) * 24, pack({"country": "DE" if i % 3 else "FR"}))
             for i in range(10)]
    outs = [Outcome("fraud", None, id_key(hashed_id(i)), (T0 + i * 3600 + 60) * 10**9, "1", None) for i in range(8)]
    s.add(preds, [], now=T0)
    s.add([], outs, now=T0 + 1)
    s.close()


def test_outcomes_export_writes_joined_pairs_of_a_version_and_time_range(tmp_path: Path) -> None:
    _store(tmp_path)
    out = tmp_path / "v1.parquet"
    r = CliRunner().invoke(main, ["outcomes", "export", "--state-dir", str(tmp_path), "--model", "fraud",
                                  "--version", "1", "--since", "2023-11-14T23:00:00Z", "-o", str(out)])
    assert r.exit_code == 0, r.output
    df = pd.read_parquet(out)
    # version 1 = ids 0..5, all joined; --since 23:00 UTC drops id 0 (22:13:20) -> ids 1..5
    assert sorted(df["id"]) == sorted(hashed_id(i) for i in range(1, 6))
    row = df.set_index("id").loc[hashed_id(3)]
    got = (row["version"], row["label"], row["actual"], row["label_delay_s"])
    assert got == ("1", "1", "1", 60.0)
    # no reference in <state-dir>/references: the classes are unknown, the probabilities stay a list, said so
    assert list(row["prediction_probabilities"]) == [0.30000001192092896, 0.699999988079071]
    assert not any(c.startswith("proba:") for c in df.columns) and "value" not in df.columns
    assert "warning: fraud@1: no reference with classes found" in r.stderr
    assert not (tmp_path / "references").exists()  # read only: the processor's directories are left alone
    assert row["trace_id"] == "04" * 16 and row["span_id"] == "04" * 8
    assert row["segment:country"] == "FR" and df.set_index("id").loc[hashed_id(4), "segment:country"] == "DE"


def test_outcomes_export_csv_all_versions_and_errors(tmp_path: Path) -> None:
    _store(tmp_path)
    out = tmp_path / "all.csv"
    r = CliRunner().invoke(main, ["outcomes", "export", "--state-dir", str(tmp_path), "--model", "fraud",
                                  "-o", str(out)])
    assert r.exit_code == 0, r.output
    df = pd.read_csv(out, dtype={"version": str})
    assert len(df) == 8 and set(df["version"]) == {"1", "2"}  # ids 8, 9 never got an outcome
    # --references: version 1 has a reference (its classes name the columns), version 2 none (lists, warned)
    ref = build_reference(pd.DataFrame({"x": [0.0, 1.0]}), model="fraud", version="1",
                          predictions=np.array([[0.9, 0.1], [0.2, 0.8]]), class_names=["yes", "no"])
    ReferenceStore(str(tmp_path / "refs")).put(ref)
    r = CliRunner().invoke(main, ["outcomes", "export", "--state-dir", str(tmp_path), "--references",
                                  str(tmp_path / "refs"), "--model", "fraud", "-o", str(out)])
    assert r.exit_code == 0 and "fraud@2: no reference" in r.stderr and "fraud@1" not in r.stderr, r.output
    df = pd.read_csv(out, dtype={"version": str}).set_index("id")
    v1, v2 = df.loc[hashed_id(3)], df.loc[hashed_id(7)]
    assert (v1["proba:yes"], v1["proba:no"], v1["prediction_probabilities"]) == pytest.approx((0.3, 0.7, np.nan),
                                                                                              nan_ok=True)
    assert np.isnan(v2["proba:yes"]) and v2["prediction_probabilities"] == "0.3 0.7"
    r = CliRunner().invoke(main, ["outcomes", "export", "--state-dir", str(tmp_path / "nope"), "--model", "fraud",
                                  "-o", str(out)])
    assert r.exit_code == 2 and "no join store" in r.output
    r = CliRunner().invoke(main, ["outcomes", "export", "--state-dir", str(tmp_path), "--model", "fraud", "--since",
                                  "yesterday", "-o", str(out)])
    assert r.exit_code == 2 and "ISO 8601" in r.output


def _churn(n: int, seed: int, flipped_share: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A binary classifier's calibrated P(churn) and the true labels; labels flip in the top share of a region."""
    rng = np.random.default_rng(seed)
    p = 1 / (1 + np.exp(-5.3 * rng.standard_normal(n)))
    y = np.where(rng.random(n) < p, "churn", "stay")
    flip = rng.random(n) > 1 - flipped_share
    return p, np.where(flip, np.where(y == "churn", "stay", "churn"), y)


@pytest.mark.parametrize(("flipped_share", "exit_code"), [(0.0, 0), (1 / 16, 1)])
def test_export_is_what_otel_ml_performance_reads(tmp_path: Path, flipped_share: float, exit_code: int) -> None:
    # The reference as the processor holds it (uploaded into <state-dir>/references), classes not sorted.
    p, y = _churn(5000, 1)
    ref = build_reference(pd.DataFrame({"x": p}), model="churn", version="3",
                          predictions=np.column_stack([1 - p, p]), class_names=["stay", "churn"], labels=y)
    ReferenceStore(str(tmp_path / "references")).put(ref)
    # The join store: probability-only prediction records (predict_proba), then their outcomes.
    p, y = _churn(3000, 2, flipped_share)
    s = JoinStore(str(tmp_path))
    s.add([Prediction("churn", "3", id_key(hashed_id(i)), (T0 + i) * 10**9, None, None, (1 - p[i], p[i]), b"")
           for i in range(len(p))], [], now=T0)
    s.add([], [Outcome("churn", None, id_key(hashed_id(i)), (T0 + i + 60) * 10**9, y[i], None)
               for i in range(len(p))], now=T0 + 1)
    joined = list(s.export_rows("churn"))
    s.close()
    proba = np.array([pair.proba for pair in joined], np.float64)
    accuracy = float(np.mean(np.array(["stay", "churn"])[proba.argmax(axis=1)] == [q.actual_label for q in joined]))

    out = tmp_path / "churn.parquet"
    r = CliRunner().invoke(main, ["outcomes", "export", "--state-dir", str(tmp_path), "--model", "churn", "-o",
                                  str(out)])
    assert r.exit_code == 0 and "warning" not in r.output, r.output
    df = pd.read_parquet(out)
    assert [c for c in df.columns if c.startswith("proba:")] == ["proba:stay", "proba:churn"]
    assert "prediction_probabilities" not in df.columns

    r = CliRunner().invoke(main, ["performance", "--reference", str(tmp_path / "references" / _ref_file(tmp_path)),
                                  "--data", str(out), "--label-column", "actual", "--format", "json"])
    assert r.exit_code == exit_code, r.output
    doc = json.loads(r.stdout)
    by_metric = {m["metric"]: m for m in doc["metrics"]}
    assert by_metric["accuracy"]["current"]["value"] == pytest.approx(accuracy, rel=1e-12)
    assert by_metric["accuracy"]["current"]["n"] == len(joined) == 3000


def _ref_file(state: Path) -> str:
    (name,) = [f.name for f in (state / "references").glob("*.json")]
    return name
