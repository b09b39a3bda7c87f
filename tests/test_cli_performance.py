"""The offline performance gate: ``otel-ml performance --reference ref.json --data scored.parquet --label-column y``,
and ``otel-ml reference build --label-column``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pd = pytest.importorskip("pandas")

from otel_ml import build_reference, load_reference  # noqa: E402
from otel_ml._cli import main  # noqa: E402


def _scored(n: int, seed: int, flipped_share: float = 0.0) -> pd.DataFrame:
    """A binary classifier's calibrated probabilities and labels; labels flip where ``region`` is in the top share."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    region = rng.random(n)
    p = 1 / (1 + np.exp(-5.3 * x))
    y = np.where(rng.random(n) < p, "churn", "stay")
    flip = region > 1 - flipped_share
    y = np.where(flip, np.where(y == "churn", "stay", "churn"), y)
    return pd.DataFrame({"x": x, "region": region, "proba:stay": 1 - p, "proba:churn": p, "y": y})


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("performance")
    _scored(10_000, 1).to_parquet(d / "holdout.parquet")
    result = CliRunner().invoke(main, ["reference", "build", str(d / "holdout.parquet"), "--model", "churn",
                                       "--version", "3", "--prediction-column", "proba:stay",
                                       "--prediction-column", "proba:churn", "--label-column", "y",
                                       "-o", str(d / "ref.json")])
    assert result.exit_code == 0, result.output
    assert "binary performance on 10000 labels" in result.output
    return d


def _run(workdir: Path, frame: pd.DataFrame, *extra: str, name: str = "scored.parquet"):
    path = workdir / name
    frame.to_parquet(path) if name.endswith(".parquet") else frame.to_csv(path, index=False)
    return CliRunner().invoke(main, ["performance", "--reference", str(workdir / "ref.json"), "--data", str(path),
                                     "--label-column", "y", *extra])


def test_reference_build_stores_the_holdout_performance_and_leaves_the_label_out(workdir: Path) -> None:
    ref = load_reference(workdir / "ref.json")
    assert ref.feature_names == ("x", "region")
    assert ref.performance is not None and ref.performance.classes == ("stay", "churn")
    assert ref.performance.metrics["accuracy"].value == pytest.approx(0.90, abs=0.01)


def test_no_change_passes(workdir: Path) -> None:
    result = _run(workdir, _scored(3000, 2))
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output and "roc_auc" in result.output and "no degradation" in result.output


def test_concept_drift_with_unchanged_inputs_fails_the_gate(workdir: Path) -> None:
    result = _run(workdir, _scored(3000, 3, flipped_share=1 / 16), "--format", "json")
    assert result.exit_code == 1, result.output
    doc = json.loads(result.output)
    assert doc["degraded"] is True and doc["exit_code"] == 1
    by_metric = {m["metric"]: m for m in doc["metrics"]}
    assert by_metric["accuracy"]["degraded"] is True
    assert by_metric["accuracy"]["current"]["value"] == pytest.approx(0.85, abs=0.02)
    assert by_metric["f1"]["degraded"] is None  # not a primary metric: shown, not judged


def test_too_few_rows_cannot_be_judged(workdir: Path) -> None:
    result = _run(workdir, _scored(200, 4, flipped_share=0.5))
    assert result.exit_code == 3, result.output
    assert "no verdict" in result.output and "min_samples" in result.output
    assert _run(workdir, _scored(200, 4), "--min-samples", "100").exit_code in (0, 1)


def test_csv_rows_without_a_label_are_left_out_and_reported(workdir: Path) -> None:
    frame = _scored(3000, 5)
    frame.loc[:99, "y"] = None
    result = _run(workdir, frame, name="scored.csv")
    assert result.exit_code == 0, result.output
    assert "left out: 100 rows without a label" in result.output and "2,900 labelled rows" in result.output


@pytest.mark.parametrize(
    "change, extra, message",
    [(lambda f: f.drop(columns=["y"]), (), "--label-column y: no such column"),
     (lambda f: f.drop(columns=["proba:churn"]), (), "needs its output column 'label'"),
     (lambda f: f.assign(y="maybe"), (), "outside the classes"),
     (lambda f: f, ("--primary", "kappa"), "primary metric 'kappa'"),
     (lambda f: f.assign(**{"proba:churn": np.nan}), (), "not finite")],
)
def test_unusable_input_exits_2_with_one_clear_line(workdir: Path, change, extra, message) -> None:
    result = _run(workdir, change(_scored(1000, 6)), *extra)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_a_reference_without_performance_is_a_usage_error(workdir: Path, tmp_path: Path) -> None:
    frame = _scored(1000, 7)
    build_reference(frame[["x", "region"]], model="churn", version="3").save(tmp_path / "plain.json")
    frame.to_parquet(tmp_path / "d.parquet")
    result = CliRunner().invoke(main, ["performance", "--reference", str(tmp_path / "plain.json"),
                                       "--data", str(tmp_path / "d.parquet"), "--label-column", "y"])
    assert result.exit_code == 2 and "no performance section" in result.output


def test_regression_gate_judges_mae(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    x = rng.standard_normal((5000, 2))
    y = 3 * x[:, 0] + rng.standard_normal(5000)
    build_reference(x, model="price", version="1", predictions=3 * x[:, 0], labels=y).save(tmp_path / "ref.json")
    x2 = rng.standard_normal(3000)
    for noise, code in ((1.0, 0), (1.5, 1)):
        frame = pd.DataFrame({"x0": x2, "value": 3 * x2, "y": 3 * x2 + noise * rng.standard_normal(3000)})
        frame.to_parquet(tmp_path / "d.parquet")
        result = CliRunner().invoke(main, ["performance", "--reference", str(tmp_path / "ref.json"),
                                           "--data", str(tmp_path / "d.parquet"), "--label-column", "y"])
        assert result.exit_code == code, result.output
        assert "mae" in result.output


def test_reference_build_label_column_needs_the_predictions(workdir: Path) -> None:
    result = CliRunner().invoke(main, ["reference", "build", str(workdir / "holdout.parquet"), "--model", "churn",
                                       "--version", "3", "--label-column", "y", "-o", str(workdir / "x.json")])
    assert result.exit_code == 2 and "--label-column needs --prediction-column" in result.output
    result = CliRunner().invoke(main, ["reference", "build", str(workdir / "holdout.parquet"), "--model", "churn",
                                       "--version", "3", "--prediction-column", "proba:churn",
                                       "--label-column", "nope", "-o", str(workdir / "x.json")])
    assert result.exit_code == 2 and "no column 'nope'" in result.output


def test_empty_predicted_labels_are_an_input_error(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": np.arange(600.0), "label": ["a", "b"] * 300, "y": ["a", "b"] * 300})
    build_reference(frame[["x"]], model="m", version="1", predictions=frame["label"].to_numpy(),
                    labels=frame["y"]).save(tmp_path / "ref.json")
    frame.loc[3, "label"] = None
    frame.to_parquet(tmp_path / "d.parquet")
    result = CliRunner().invoke(main, ["performance", "--reference", str(tmp_path / "ref.json"),
                                       "--data", str(tmp_path / "d.parquet"), "--label-column", "y"])
    assert result.exit_code == 2 and "'label' has 1 empty value" in result.output


def test_reference_show_lists_the_holdout_performance(workdir: Path) -> None:
    result = CliRunner().invoke(main, ["reference", "show", str(workdir / "ref.json")])
    assert result.exit_code == 0, result.output
    assert "binary, 10,000 labelled rows, 10 calibration bins" in result.output
    assert "roc_auc" in result.output and "f1:churn" in result.output
