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
    ref = build_reference(train, model="churn", version="7", categorical=["plan"], predictions=rng.random(N_REF))
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
    assert "PSI" in out and "Wass." in out and "p-value" in out


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
    code, doc = _json(workdir, df)
    age = doc["features"][0]
    assert age["quality"]["invalid_ratio"] == pytest.approx(15 / 1000)
    assert age["quality"]["out_of_range_ratio"] == pytest.approx(5 / 1000)
    assert age["sample_count"] == 985


def test_below_min_samples_no_verdict_and_exit_0(workdir: Path) -> None:
    code, out = _run(workdir, _current(n=50, age=lambda df, rng: df["age"] + 30.0))
    assert code == 0 and "no verdict" in out


def test_policy_file_overrides_per_feature(workdir: Path) -> None:
    policy = workdir / "policy.yaml"
    policy.write_text("alpha: 0.01\nfeatures:\n  age:\n    wasserstein_floor: 1.0\n    dispersion_floor: 1.0\n")
    code, doc = _json(workdir, _current(age=lambda df, rng: df["age"] + 5.0), "--policy", str(policy))
    assert code == 0 and doc["features"][0]["detected"] is False


@pytest.mark.parametrize(
    ("policy_text", "message"),
    [("alpha: 0.01\nbogus: 1\n", "unknown key 'bogus'"), ("alpha: 2\n", "'alpha'"), ("alpha: [\n", "not valid YAML")],
)
def test_bad_policy_exits_2_naming_the_key(workdir: Path, policy_text: str, message: str) -> None:
    policy = workdir / "bad-policy.yaml"
    policy.write_text(policy_text)
    code, out = _run(workdir, _current(n=10), "--policy", str(policy))
    assert code == 2 and message in out


def test_input_errors_exit_2(workdir: Path) -> None:
    code, out = _run(workdir, None, name="nope.csv")
    assert code == 2 and "no such data file" in out
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
        main, ["drift", "--reference", str(tmp_path / "ref.json"), "--data", str(tmp_path / "cur.csv"), "--format", "json"]
    )
    doc = json.loads(result.output)
    assert result.exit_code == 0, result.output
    assert all(f["quality"].get("unseen_ratio", 0.0) == 0.0 for f in doc["features"])
