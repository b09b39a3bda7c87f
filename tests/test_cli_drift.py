"""The offline command: ``otel-ml drift --reference ref.json --data current.csv``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pd = pytest.importorskip("pandas")

from otel_ml import build_reference  # noqa: E402
from otel_ml._cli import main  # noqa: E402

N_REF = 20_000


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("drift")
    rng = np.random.default_rng(42)
    train = pd.DataFrame(
        {
            "age": rng.normal(40, 10, N_REF),
            "income": rng.lognormal(10, 1, N_REF),
            "plan": rng.choice(["free", "pro", "team"], N_REF, p=[0.5, 0.3, 0.2]),
            "visits": rng.poisson(3, N_REF),
        }
    )
    # the per-column behaviour; the multivariate stream's verdicts: tests/test_multivariate.py
    ref = build_reference(train, model="churn", version="7", categorical=["plan"], predictions=rng.random(N_REF),
                          multivariate=False)
    ref.save(d / "ref.json")
    return d


def _current(n: int = 3000, seed: int = 1, **changes: object) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n),
            "income": rng.lognormal(10, 1, n),
            "plan": rng.choice(["free", "pro", "team"], n, p=[0.5, 0.3, 0.2]),
            "visits": rng.poisson(3, n),
        }
    )
    for k, v in changes.items():
        df[k] = v(df, rng) if callable(v) else v
    return df


def _run(workdir: Path, df: pd.DataFrame | None, *args: str, name: str = "current.csv") -> tuple[int, str]:
    path = workdir / name
    if df is not None:
        if name.endswith(".parquet"):
            df.to_parquet(path)
        else:
            df.to_csv(path, index=False)
    result = CliRunner().invoke(main, ["drift", "--reference", str(workdir / "ref.json"), "--data", str(path), *args])
    return result.exit_code, result.output


def _json(workdir: Path, df: pd.DataFrame, *args: str, **kw: str) -> tuple[int, dict]:
    code, out = _run(workdir, df, "--format", "json", *args, **kw)
    return code, json.loads(out)


def test_unshifted_data_exits_0(workdir: Path) -> None:
    code, doc = _json(workdir, _current())
    assert code == 0, doc
    assert not doc["drift_detected"] and not doc["quality_alarm"]
    assert [f["name"] for f in doc["features"]] == ["age", "income", "plan", "visits"]
    assert all(f["detected"] is False for f in doc["features"])
    assert doc["model"] == {"name": "churn", "version": "7"}


def test_shifted_feature_exits_1_and_is_flagged(workdir: Path) -> None:
    code, doc = _json(workdir, _current(age=lambda df, rng: df["age"] + 5.0))
    assert code == 1
    flagged = {f["name"]: f["detected"] for f in doc["features"]}
    assert flagged == {"age": True, "income": False, "plan": False, "visits": False}
    age = doc["features"][0]
    assert age["wasserstein"] > 0.35 and age["p_value"] < 1e-10 and age["psi"] > 0.1


def test_table_output_names_the_drifted_feature(workdir: Path) -> None:
    code, out = _run(workdir, _current(age=lambda df, rng: df["age"] + 5.0))
    assert code == 1
    assert "DRIFT" in out and "drift detected in age" in out
    assert "PSI" in out and "Wass." in out and "p adj." in out


def test_parquet_and_outputs_present_are_judged(workdir: Path) -> None:
    df = _current(value=lambda df, rng: rng.random(len(df)))
    code, doc = _json(workdir, df, name="current.parquet")
    assert code == 0
    out = [f for f in doc["features"] if f["role"] == "prediction"]
    assert [f["name"] for f in out] == ["value"] and out[0]["detected"] is False


def test_missing_values_raise_the_quality_alarm(workdir: Path) -> None:
    def holes(df: pd.DataFrame, rng: np.random.Generator) -> pd.Series:
        s = df["income"].copy()
        s[rng.random(len(s)) < 0.06] = np.nan
        return s

    code, doc = _json(workdir, _current(income=holes))
    income = doc["features"][1]
    assert code == 1 and doc["quality_alarm"] and not doc["drift_detected"]
    assert income["quality"]["alarm"] and 0.04 < income["quality"]["missing_ratio"] < 0.08


def test_absent_column_counts_as_missing(workdir: Path) -> None:
    code, doc = _json(workdir, _current().drop(columns=["visits"]))
    visits = doc["features"][3]
    assert code == 1 and visits["absent"] and visits["quality"]["missing_ratio"] == 1.0
    assert visits["detected"] is None  # no values: no verdict


def test_new_category_is_detected_and_counted_as_unseen(workdir: Path) -> None:
    def new(df: pd.DataFrame, rng: np.random.Generator) -> pd.Series:
        s = df["plan"].copy()
        s[rng.random(len(s)) < 0.05] = "enterprise"
        return s

    code, doc = _json(workdir, _current(plan=new))
    plan = doc["features"][2]
    assert code == 1 and plan["detected"] is True
    assert 0.03 < plan["quality"]["unseen_ratio"] < 0.07 and plan["ks"] is None and plan["wasserstein"] is None


def test_invalid_and_out_of_range_values_are_counted(workdir: Path) -> None:
    df = _current(n=1000).astype({"age": object})
    df.loc[:9, "age"] = "abc"
    df.loc[10:14, "age"] = np.inf
    df.loc[15:19, "age"] = 1e6
    _, doc = _json(workdir, df)
    age = doc["features"][0]
    assert age["quality"]["invalid_ratio"] == pytest.approx(15 / 1000)
    assert age["quality"]["out_of_range_ratio"] == pytest.approx(5 / 1000)
    assert age["sample_count"] == 985


def test_below_min_samples_could_not_judge_exit_3(workdir: Path) -> None:
    code, out = _run(workdir, _current(n=50, age=lambda df, rng: df["age"] + 30.0))
    assert code == 3 and "no verdict" in out and "could not judge 4 of 4 columns" in out, out
    assert "50 values < min_samples 500" in out


def test_a_large_shift_in_too_few_rows_is_not_a_pass(workdir: Path) -> None:
    # The case: 300 rows, a large shift and most categories unseen.
    shifted = _current(n=300, age=lambda df, rng: df["age"] + 15.0,
                       plan=lambda df, rng: np.where(rng.random(len(df)) < 0.55, "enterprise", df["plan"]))
    code, doc = _json(workdir, shifted)
    assert code == 3 and doc["exit_code"] == 3 and doc["summary"].startswith("could not judge"), doc
    assert all(f["detected"] is None and f["no_verdict"] for f in doc["features"])

    code, doc = _json(workdir, shifted, "--min-samples", "200")
    assert code == 1, doc
    assert {f["name"] for f in doc["features"] if f["detected"]} >= {"age", "plan"}


def test_min_samples_defaults_to_the_policy_default(workdir: Path) -> None:
    from otel_ml.stats import DriftPolicy

    n = DriftPolicy.min_samples
    assert _run(workdir, _current(n=n - 1))[0] == 3
    assert _run(workdir, _current(n=n))[0] == 0
    policy = workdir / "min-samples.yaml"
    policy.write_text(f"min_samples: {n - 100}\n")
    assert _run(workdir, _current(n=n - 1), "--policy", str(policy))[0] == 0
    assert _run(workdir, _current(n=n - 1), "--policy", str(policy), "--min-samples", str(n))[0] == 3


@pytest.mark.parametrize("content", ["age,income,plan,visits\n", ""], ids=["header_only", "empty_file"])
def test_no_rows_could_not_judge_exit_3(workdir: Path, content: str) -> None:
    (workdir / "norows.csv").write_text(content)
    code, out = _run(workdir, None, name="norows.csv")
    assert code == 3 and "could not judge: the data has no rows" in out, out
    code, out = _run(workdir, None, "--format", "json", name="norows.csv")
    assert code == 3 and json.loads(out)["exit_code"] == 3


def test_exit_codes_are_in_the_help() -> None:
    out = CliRunner().invoke(main, ["drift", "--help"]).output
    for line in ("0  every column judged", "1  drift or a data-quality alarm", "2  usage or input error",
                 "3  could not judge"):
        assert line in out, out
    assert "--min-samples" in out


def test_policy_file_overrides_per_feature(workdir: Path) -> None:
    policy = workdir / "policy.yaml"
    policy.write_text("alpha: 0.01\nfeatures:\n  age:\n    wasserstein_floor: 1.0\n    dispersion_floor: 1.0\n")
    code, doc = _json(workdir, _current(age=lambda df, rng: df["age"] + 5.0), "--policy", str(policy))
    assert code == 0 and doc["features"][0]["detected"] is False


@pytest.mark.parametrize(
    ("policy_text", "message"),
    [
        pytest.param("alpha: 0.01\nbogus: 1\n", "unknown key 'bogus'", id="unknown_key"),
        pytest.param("alpha: 2\n", "'alpha'", id="alpha_out_of_range"),
        pytest.param("alpha: [\n", "not valid YAML", id="not_yaml"),
    ],
)
def test_bad_policy_exits_2_naming_the_key(workdir: Path, policy_text: str, message: str) -> None:
    policy = workdir / "bad-policy.yaml"
    policy.write_text(policy_text)
    code, out = _run(workdir, _current(n=10), "--policy", str(policy))
    assert code == 2 and message in out


def test_input_errors_exit_2(workdir: Path) -> None:
    code, out = _run(workdir, None, name="nope.csv")
    assert code == 2 and "no such data file" in out
    (workdir / "binary.csv").write_bytes(bytes(range(256)) * 64)
    code, out = _run(workdir, None, name="binary.csv")
    assert code == 2 and "cannot read it as CSV" in out and out.count("\n") == 1, out
    (workdir / "fake.parquet").write_text("a,b\n1,2\n")
    code, out = _run(workdir, None, name="fake.parquet")
    assert code == 2 and "cannot read it as Parquet" in out and out.count("\n") == 1, out
    (workdir / "data.xlsx").write_text("x")
    code, out = _run(workdir, None, name="data.xlsx")
    assert code == 2 and "unsupported data format" in out
    (workdir / "broken.json").write_text("{")
    result = CliRunner().invoke(
        main, ["drift", "--reference", str(workdir / "broken.json"), "--data", str(workdir / "current.csv")]
    )
    assert result.exit_code == 2 and "broken.json" in result.output
    result = CliRunner().invoke(main, ["drift", "--data", str(workdir / "current.csv")])
    assert result.exit_code == 2 and "--reference" in result.output


def test_csv_text_maps_back_to_boolean_and_integer_categories(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    train = pd.DataFrame({"flag": rng.random(5000) < 0.3, "code": rng.integers(1, 4, 5000), "x": rng.normal(size=5000)})
    build_reference(train, model="m", version="1", categorical=["flag", "code"]).save(tmp_path / "ref.json")
    current = pd.DataFrame({"flag": rng.random(2000) < 0.3, "code": rng.integers(1, 4, 2000).astype(float),
                            "x": rng.normal(size=2000)})
    current.to_csv(tmp_path / "cur.csv", index=False)
    result = CliRunner().invoke(
        main,
        ["drift", "--reference", str(tmp_path / "ref.json"), "--data", str(tmp_path / "cur.csv"), "--format", "json"],
    )
    doc = json.loads(result.output)
    assert result.exit_code == 0, result.output
    assert all(f["quality"].get("unseen_ratio", 0.0) == 0.0 for f in doc["features"])


def _build(tmp_path: Path, train: pd.DataFrame, *args: str) -> Path:
    train.to_csv(tmp_path / "train.csv", index=False)
    result = CliRunner().invoke(main, ["reference", "build", str(tmp_path / "train.csv"), "--model", "m",
                                       "--version", "1", "-o", str(tmp_path / "ref.json"), *args])
    assert result.exit_code == 0, result.output
    return tmp_path / "ref.json"


def _drift(ref: Path, data: pd.DataFrame, tmp_path: Path, *args: str) -> tuple[int, dict]:
    data.to_csv(tmp_path / "current.csv", index=False)
    result = CliRunner().invoke(main, ["drift", "--reference", str(ref), "--data", str(tmp_path / "current.csv"),
                                       "--format", "json", *args])
    return result.exit_code, json.loads(result.output) if result.exit_code != 2 else result.output


def test_a_prediction_column_is_judged_as_build_stored_it(tmp_path: Path) -> None:
    # `build --prediction-column proba:1` stores the single output as "value": drift with the same flag judges
    # the proba:1 column as it, and without the flag lists proba:1 and value as not judged (never silently).
    frame = _current(n=2000).assign(**{"proba:1": lambda df: np.random.default_rng(5).random(len(df))})
    ref = _build(tmp_path, frame, "--categorical", "plan", "--prediction-column", "proba:1")

    code, doc = _drift(ref, frame, tmp_path, "--prediction-column", "proba:1")
    assert code == 0, doc
    outputs = [(f["name"], f["column"]) for f in doc["features"] if f["role"] == "prediction"]
    assert outputs == [("value", "proba:1")] and doc["not_judged"] == []

    code, doc = _drift(ref, frame, tmp_path)
    assert code == 0
    not_judged = {n["column"]: n["reason"] for n in doc["not_judged"]}
    assert set(not_judged) == {"proba:1", "value"}, not_judged
    assert "not in the reference" in not_judged["proba:1"] and "--prediction-column" in not_judged["value"]


def test_probability_columns_keep_their_class_names(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    p1 = rng.random(2000)
    frame = _current(n=2000).assign(**{"proba:0": 1 - p1, "proba:1": p1})
    ref = _build(tmp_path, frame, "--categorical", "plan",
                 "--prediction-column", "proba:0", "--prediction-column", "proba:1")
    assert [o["name"] for o in json.loads(ref.read_text())["outputs"]] == ["proba:0", "proba:1"]

    code, doc = _drift(ref, frame, tmp_path)  # the data's own column names match: no flag needed
    assert code == 0, doc
    assert [f["column"] for f in doc["features"] if f["role"] == "prediction"] == ["proba:0", "proba:1"]


def test_unusable_prediction_columns_exit_2(tmp_path: Path) -> None:
    frame = _current(n=600).assign(score=lambda df: np.random.default_rng(7).random(len(df)))
    ref = _build(tmp_path, frame, "--categorical", "plan", "--prediction-column", "score")
    code, out = _drift(ref, frame, tmp_path, "--prediction-column", "nope")
    assert code == 2 and "--prediction-column names no column" in out and "nope" in out
    code, out = _drift(ref, frame, tmp_path, "--prediction-column", "score", "--prediction-column", "age")
    assert code == 2 and "outputs the reference does not have" in out and "proba:score" in out


def test_every_unjudged_column_is_listed_in_the_table(workdir: Path) -> None:
    code, out = _run(workdir, _current(extra=1.0, **{"proba:1": 0.5}))
    assert code == 0, out
    assert "not judged: extra - not in the reference" in out and "not judged: proba:1" in out
    assert "not judged: value - reference output" in out


@pytest.mark.parametrize("width", [60, 80, 100, 250])
def test_table_fits_the_terminal(workdir: Path, width: int) -> None:
    _current().to_csv(workdir / "fit.csv", index=False)
    result = CliRunner().invoke(main, ["drift", "--reference", str(workdir / "ref.json"),
                                       "--data", str(workdir / "fit.csv")], env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= width, result.output
    assert all(name in result.output for name in ("age", "income", "plan", "visits", "verdict", "quality"))
    if width >= 250:
        assert "not shown at this width" not in result.output and "p-value" in result.output
    else:
        assert "not shown at this width" in result.output


def test_progress_bar_on_a_terminal_stderr_only(workdir: Path) -> None:
    import os
    import pty
    import subprocess
    import sys
    import threading

    _current().to_csv(workdir / "tty.csv", index=False)
    script = ("import sys; from otel_ml._cli_commands import main; "
              f"main(['drift', '--reference', {str(workdir / 'ref.json')!r}, '--data', {str(workdir / 'tty.csv')!r}, "
              "'--format', 'json', '--progress'])")
    leader, follower = pty.openpty()
    terminal = bytearray()

    def drain() -> None:  # keep reading, so that a full pty buffer never blocks the command
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the command exited and closed its end
                return
            if not chunk:
                return
            terminal.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    proc = subprocess.run([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=follower, timeout=120)
    os.close(follower)
    reader.join(timeout=10)
    os.close(leader)
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["exit_code"] == 0  # stdout stays machine-readable
    assert b"reading tty.csv" in terminal or b"judging" in terminal, bytes(terminal)


def test_no_progress_bar_when_stderr_is_not_a_terminal(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import otel_ml._cli_io as cli_io

    monkeypatch.setattr(cli_io, "PROGRESS_MIN_BYTES", 0)  # every file counts as large
    _current().to_csv(workdir / "quiet.csv", index=False)
    result = CliRunner().invoke(main, ["drift", "--reference", str(workdir / "ref.json"),
                                       "--data", str(workdir / "quiet.csv"), "--format", "json"])
    assert result.exit_code == 0 and result.stderr == ""


def test_estimated_performance_is_reported_for_a_calibrated_binary_classifier(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    n = 6_000
    x = rng.normal(size=n)
    p1 = 1 / (1 + np.exp(-3 * x))
    y = np.where(rng.random(n) < p1, "yes", "no")
    ref = build_reference(pd.DataFrame({"x": x}), model="m", version="1", predictions=np.column_stack([1 - p1, p1]),
                          class_names=["no", "yes"], labels=y)
    ref.save(tmp_path / "ref.json")
    xc = rng.normal(size=3_000)
    pc = 1 / (1 + np.exp(-3 * xc))
    pd.DataFrame({"x": xc, "proba:no": 1 - pc, "proba:yes": pc}).to_csv(tmp_path / "cur.csv", index=False)
    args = ["drift", "--reference", str(tmp_path / "ref.json"), "--data", str(tmp_path / "cur.csv")]
    doc = json.loads(CliRunner().invoke(main, [*args, "--format", "json"]).output)
    est = doc["estimated_performance"]
    assert set(est) == {"accuracy", "f1", "roc_auc"}
    expected = float(np.maximum(pc, 1 - pc).mean())  # calibrated by construction
    assert est["accuracy"]["lower"] <= expected <= est["accuracy"]["upper"]
    assert abs(est["accuracy"]["value"] - expected) < 0.02 and est["accuracy"]["n"] == 3_000
    result = CliRunner().invoke(main, [*args, "--no-progress"])
    assert "estimated performance (no labels" in result.output and result.exit_code == doc["exit_code"]


def test_no_estimated_performance_without_calibration(workdir: Path) -> None:
    _, doc = _json(workdir, _current())
    assert doc["estimated_performance"] is None
