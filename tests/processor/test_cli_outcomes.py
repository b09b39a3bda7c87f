"""``otel-ml outcomes export``: the joined pairs of a model version and time range, to Parquet and CSV."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from otel_ml._cli import main
from otel_ml_processor._joins import JoinStore
from otel_ml_processor._records import Outcome, Prediction, id_key

from .payloads import hashed_id

T0 = 1_700_000_000  # seconds


def _store(state: Path) -> None:
    s = JoinStore(str(state))
    preds = [Prediction("fraud", "1" if i < 6 else "2", id_key(hashed_id(i)), (T0 + i * 3600) * 10**9, str(i % 2),
                        None, (0.3, 0.7), bytes([i + 1]) * 24) for i in range(10)]
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
    got = (row["version"], row["prediction_label"], row["outcome_label"], row["label_delay_s"])
    assert got == ("1", "1", "1", 60.0)
    assert list(row["prediction_probabilities"]) == [0.30000001192092896, 0.699999988079071]
    assert row["trace_id"] == "04" * 16 and row["span_id"] == "04" * 8


def test_outcomes_export_csv_all_versions_and_errors(tmp_path: Path) -> None:
    _store(tmp_path)
    out = tmp_path / "all.csv"
    r = CliRunner().invoke(main, ["outcomes", "export", "--state-dir", str(tmp_path), "--model", "fraud",
                                  "-o", str(out)])
    assert r.exit_code == 0, r.output
    df = pd.read_csv(out, dtype={"version": str})
    assert len(df) == 8 and set(df["version"]) == {"1", "2"}  # ids 8, 9 never got an outcome
    r = CliRunner().invoke(main, ["outcomes", "export", "--state-dir", str(tmp_path / "nope"), "--model", "fraud",
                                  "-o", str(out)])
    assert r.exit_code == 2 and "no join store" in r.output
    r = CliRunner().invoke(main, ["outcomes", "export", "--state-dir", str(tmp_path), "--model", "fraud", "--since",
                                  "yesterday", "-o", str(out)])
    assert r.exit_code == 2 and "ISO 8601" in r.output
