"""``otel-ml drift`` per segment value: outputs, quality and mix judged as the processor judges them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pd = pytest.importorskip("pandas")

from otel_ml import build_reference  # noqa: E402
from otel_ml._cli import main  # noqa: E402

N = 20_000
SHARES = [0.6, 0.34, 0.06]
PLANS = ["free", "pro", "team"]


def _frame(n: int, seed: int, team_outputs: str = "same") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"age": rng.normal(40, 10, n), "plan": rng.choice(PLANS, n, p=SHARES)})
    value = rng.random(n)
    team = (df["plan"] == "team").to_numpy()
    if team_outputs == "skewed":  # the team plan's scores pile up near 0: ~0.9 reference SD for that plan
        value[team] = value[team] ** 3
    df["value"] = value
    return df


@pytest.fixture(scope="module")
def refs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("segdrift")
    train = _frame(N, 42)
    build_reference(train[["age", "plan"]], model="churn", version="7", categorical=["plan"],
                    predictions=train["value"].to_numpy(), multivariate=False, segments=["plan"]).save(d / "seg.json")
    build_reference(train[["age", "plan"]], model="churn", version="7", categorical=["plan"],
                    predictions=train["value"].to_numpy(), multivariate=False).save(d / "plain.json")
    return d


def _run(d: Path, ref: str, df: pd.DataFrame, *args: str) -> tuple[int, str]:
    path = d / "current.parquet"
    df.to_parquet(path)
    result = CliRunner().invoke(main, ["drift", "--reference", str(d / ref), "--data", str(path), *args])
    return result.exit_code, result.output


def _json(d: Path, ref: str, df: pd.DataFrame, *args: str) -> tuple[int, dict]:
    code, out = _run(d, ref, df, "--format", "json", *args)
    return code, json.loads(out)


def _values(doc: dict) -> dict[str, dict]:
    return {v["value"]: v for v in doc["segments"]["values"]}


def test_one_value_shifting_fails_the_gate_naming_only_that_value(refs: Path) -> None:
    code, doc = _json(refs, "seg.json", _frame(N, 1, team_outputs="skewed"))
    assert code == 1, doc["summary"]
    assert not doc["drift_detected"] and not doc["quality_alarm"]  # the overall verdicts do not see it
    values = _values(doc)
    assert values["team"]["drift"]["detected"] is True
    assert values["free"]["drift"]["detected"] is False and values["pro"]["drift"]["detected"] is False
    assert doc["segments"]["values"][0]["value"] == "team"  # worst first
    assert doc["segments"]["flagged"] == ["plan=team"]
    assert "segment alarm on plan=team" in doc["summary"]
    code, out = _run(refs, "seg.json", _frame(N, 1, team_outputs="skewed"))
    assert code == 1 and "segments" in out and "DRIFT" in out and "plan=team" in " ".join(out.split())


def test_unchanged_data_passes_with_every_value_judged(refs: Path) -> None:
    code, doc = _json(refs, "seg.json", _frame(N, 2))
    assert code == 0, doc["summary"]
    values = _values(doc)
    assert set(values) == set(PLANS)
    assert all(v["drift"]["detected"] is False and v["quality"]["alarm"] is False for v in values.values())
    assert doc["segments"]["mix"] == {"plan": False}


def test_missing_values_in_one_value_raise_its_quality_alarm(refs: Path) -> None:
    df = _frame(N, 3)
    team = df["plan"] == "team"
    df.loc[team, "age"] = np.where(np.random.default_rng(0).random(int(team.sum())) < 0.3, np.nan,
                                   df.loc[team, "age"])
    code, doc = _json(refs, "seg.json", df)
    values = _values(doc)
    assert code == 1
    assert values["team"]["quality"]["alarm"] is True and values["free"]["quality"]["alarm"] is False
    assert values["team"]["quality"]["missing_ratio"] == pytest.approx(0.15, abs=0.03)  # 30% of 1 of 2 features


def test_mix_shift_is_a_segment_alarm(refs: Path) -> None:
    df = _frame(N, 4)
    df = pd.concat([df, df[df["plan"] == "team"]] * 1, ignore_index=True)  # the team plan's share doubles
    code, doc = _json(refs, "seg.json", df)
    assert doc["segments"]["mix"] == {"plan": True}
    assert code == 1 and "plan (mix)" in doc["segments"]["flagged"]


def test_unknown_values_are_bounded_to_other(refs: Path) -> None:
    df = _frame(N, 5)
    df.loc[df.index[:50], "plan"] = [f"new-{i}" for i in range(50)]
    _, doc = _json(refs, "seg.json", df)
    assert set(_values(doc)) == {*PLANS, "__other__"}
    other = _values(doc)["__other__"]
    assert other["rows"] == 50 and other["drift"]["detected"] is None and "min_samples" in other["no_verdict"]


def test_small_values_get_no_verdict_with_the_reason_and_do_not_hold_the_gate(refs: Path) -> None:
    code, doc = _json(refs, "seg.json", _frame(4000, 6))  # team: ~240 rows < 500
    team = _values(doc)["team"]
    assert team["drift"]["detected"] is None and team["quality"]["alarm"] is None
    assert team["no_verdict"].endswith("< min_samples 500")
    assert code == 0, doc["summary"]


def test_a_reference_without_segments_keeps_its_output(refs: Path) -> None:
    code, doc = _json(refs, "plain.json", _frame(N, 1, team_outputs="skewed"))
    assert code == 0 and "segments" not in doc
    _, out = _run(refs, "plain.json", _frame(N, 1, team_outputs="skewed"))
    assert "segment" not in out


def test_a_file_without_the_segment_column_lists_it_as_not_judged(refs: Path) -> None:
    df = _frame(N, 1, team_outputs="skewed").drop(columns=["plan"])
    code, doc = _json(refs, "seg.json", df, "--min-samples", "1")
    assert doc["segments"]["values"] == []
    assert doc["segments"]["not_judged"] == [{"column": "plan", "reason": "no column in the data"}]
    assert code == 1  # "plan" is a feature: all missing (the overall quality alarm), not a usage error
    _, out = _run(refs, "seg.json", df)
    assert "not judged: segment plan - no column in the data" in out
