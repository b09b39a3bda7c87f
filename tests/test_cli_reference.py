"""``otel-ml reference build`` / ``show``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import otel_ml
from otel_ml._cli import main
from otel_ml._cli_io import read_table


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    n = 3000
    return pd.DataFrame({
        "age": rng.integers(18, 90, n),
        "income": rng.normal(50_000, 10_000, n),
        "city": rng.choice(["paris", "lyon", "nice"], n),
        "label": rng.integers(0, 2, n),
        "score": rng.uniform(size=n),
    })


def test_build_from_csv_and_show(tmp_path, frame):
    data = tmp_path / "train.csv"
    frame.to_csv(data, index=False)
    out = tmp_path / "ref.json"
    runner = CliRunner()
    r = runner.invoke(main, ["reference", "build", str(data), "--model", "credit", "--version", "3",
                             "--categorical", "city", "--target", "label", "--prediction-column", "score",
                             "-o", str(out)])
    assert r.exit_code == 0, r.output
    ref = otel_ml.load_reference(out)
    assert (ref.model_name, ref.model_version, ref.row_count) == ("credit", "3", 3000)
    assert ref.feature_names == ("age", "income", "city")
    assert ref.feature("city").kind == "categorical"
    assert [p.name for p in ref.outputs] == ["value"]
    direct = otel_ml.build_reference(frame[["age", "income", "city"]], model="credit", version="3",
                                     categorical=["city"], predictions=frame["score"].to_numpy())
    assert ref.feature("income").edges == direct.feature("income").edges

    r = runner.invoke(main, ["reference", "show", str(out)])
    assert r.exit_code == 0, r.output
    for word in ("credit", "income", "categorical", "paris", "value"):
        assert word in r.output


def test_build_from_parquet_in_chunks_with_probabilities(tmp_path, frame, monkeypatch):
    import otel_ml._cli_io as cli_io

    monkeypatch.setattr(cli_io, "CHUNK_ROWS", 700)  # several chunks
    frame["p0"] = 1 - frame["score"]
    frame["p1"] = frame["score"]
    data = tmp_path / "train.parquet"
    frame.drop(columns=["score"]).to_parquet(data)
    assert len(read_table(str(data))) == 3000
    out = tmp_path / "ref.json"
    r = CliRunner().invoke(main, ["reference", "build", str(data), "--model", "m", "--version", "1",
                                  "--prediction-column", "p0", "--prediction-column", "p1", "--target", "label",
                                  "-o", str(out), "--progress"])
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert [o["name"] for o in doc["outputs"]] == ["proba:p0", "proba:p1"]
    assert doc["row_count"] == 3000


def test_csv_read_in_chunks_is_complete(tmp_path, frame, monkeypatch):
    import otel_ml._cli_io as cli_io

    monkeypatch.setattr(cli_io, "CHUNK_ROWS", 1000)
    data = tmp_path / "t.csv"
    frame.to_csv(data, index=False)
    df = read_table(str(data))
    assert len(df) == 3000 and df["income"].sum() == pytest.approx(frame["income"].sum())


def test_errors_name_the_problem(tmp_path, frame):
    data = tmp_path / "t.csv"
    frame.to_csv(data, index=False)
    runner = CliRunner()
    r = runner.invoke(main, ["reference", "build", str(data), "--model", "m", "--version", "1",
                             "--categorical", "nope", "-o", str(tmp_path / "r.json")])
    assert r.exit_code != 0 and "nope" in r.output
    other = tmp_path / "t.xlsx"
    other.write_text("x")
    r = runner.invoke(main, ["reference", "build", str(other), "--model", "m", "--version", "1",
                             "-o", str(tmp_path / "r.json")])
    assert r.exit_code != 0 and ".csv" in r.output
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    r = runner.invoke(main, ["reference", "show", str(bad)])
    assert r.exit_code != 0 and "bad.json" in r.output


def test_max_rows_keeps_a_bounded_uniform_sample(tmp_path, frame, monkeypatch):
    import otel_ml._cli_io as cli_io

    monkeypatch.setattr(cli_io, "CHUNK_ROWS", 400)
    data = tmp_path / "t.csv"
    frame.assign(row=np.arange(len(frame))).to_csv(data, index=False)
    df = read_table(str(data), max_rows=1000)
    assert len(df) == 1000 and df["row"].is_unique
    assert df["row"].min() < 300 and df["row"].max() > 2700  # drawn from the whole file
    assert 1000 < df["row"].mean() < 2000
    frame.to_csv(data, index=False)
    out = tmp_path / "r.json"
    r = CliRunner().invoke(main, ["reference", "build", str(data), "--model", "m", "--version", "1",
                                  "--max-rows", "500", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert otel_ml.load_reference(out).row_count == 500


def _build(tmp_path, data, *args):
    return CliRunner().invoke(main, ["reference", "build", str(data), "--model", "m", "--version", "1",
                                     "-o", str(tmp_path / "r.json"), *args])


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "no rows to profile (empty file)"),
        ("header.csv", b"a,b,c\n", "no rows to profile"),
        ("binary.csv", bytes(range(256)) * 64, "cannot read it as CSV"),
        ("fake.parquet", b"a,b\n1,2\n", "cannot read it as Parquet"),
        ("empty.parquet", b"", "cannot read it as Parquet"),
        ("missing.csv", None, "no such data file"),
    ],
)
def test_unreadable_files_exit_2_with_one_line(tmp_path, name, content, message):
    data = tmp_path / name
    if content is not None:
        data.write_bytes(content)
    r = _build(tmp_path, data)
    assert r.exit_code == 2 and isinstance(r.exception, SystemExit), r.output
    assert message in r.output and r.output.count("\n") == 1 and "Traceback" not in r.output, r.output
    assert not (tmp_path / "r.json").exists()


def test_integer_codes_get_a_warning_naming_the_flag(tmp_path, frame):
    data = tmp_path / "t.csv"
    frame.to_csv(data, index=False)  # label: 0/1; age: 72 distinct whole numbers (an amount, no warning)
    r = _build(tmp_path, data, "--prediction-column", "score")
    assert r.exit_code == 0, r.output
    assert "'label' holds only 2 distinct whole numbers (0, 1)" in r.stderr
    assert "--categorical label" in r.stderr and "--numeric label" in r.stderr and "'age'" not in r.stderr
    assert otel_ml.load_reference(tmp_path / "r.json").feature("label").kind == "numeric"  # as documented

    r = _build(tmp_path, data, "--prediction-column", "score", "--categorical", "label")
    assert r.exit_code == 0 and r.stderr == "", r.stderr
    assert otel_ml.load_reference(tmp_path / "r.json").feature("label").kind == "categorical"
    r = _build(tmp_path, data, "--prediction-column", "score", "--numeric", "label")
    assert r.exit_code == 0 and r.stderr == "", r.stderr
    r = _build(tmp_path, data, "--categorical", "label", "--numeric", "label")
    assert r.exit_code == 2 and "both name 'label'" in r.output


def test_show_of_a_bad_reference_exits_2(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    r = CliRunner().invoke(main, ["reference", "show", str(bad)])
    assert r.exit_code == 2 and "bad.json" in r.output and r.output.count("\n") == 1, r.output
