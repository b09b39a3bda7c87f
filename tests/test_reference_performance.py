"""The optional "performance" section of a reference: build_reference(labels=...), save/load, validation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

import otel_ml
from otel_ml import ReferenceProfileError
from otel_ml._reference import loads_reference


def _holdout(n: int = 3000, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3))
    p = 1 / (1 + np.exp(-3 * x[:, 0]))
    y = np.where(rng.random(n) < p, "fraud", "ok")
    return x, np.column_stack([1 - p, p]), y


@pytest.fixture(scope="module")
def binary_ref():
    x, proba, y = _holdout()
    return otel_ml.build_reference(x, model="m", version="1", predictions=proba, class_names=["ok", "fraud"], labels=y)


def test_binary_classifier_stores_metrics_intervals_and_calibration(binary_ref) -> None:
    perf = binary_ref.performance
    _, proba, y = _holdout()
    assert perf.task == "binary" and perf.n == 3000 and perf.classes == ("ok", "fraud")
    assert perf.metrics["roc_auc"].value == pytest.approx(skm.roc_auc_score(y == "fraud", proba[:, 1]))
    acc = perf.metrics["accuracy"]
    assert acc.lower < acc.value < acc.upper and acc.n == 3000
    assert {"f1:fraud", "recall:ok", "log_loss", "brier", "ece"} <= set(perf.metrics)
    assert sum(b.count for b in perf.calibration) == 3000
    top = perf.calibration[-1]
    assert top.upper == 1.0 and top.observed == pytest.approx(np.mean(y[proba[:, 1] > 0.9] == "fraud"))


def test_save_load_round_trips_the_section(tmp_path, binary_ref) -> None:
    path = tmp_path / "ref.json"
    binary_ref.save(path)
    doc = json.loads(path.read_text())
    assert set(doc["performance"]) == {"task", "n", "classes", "metrics", "calibration"}
    loaded = otel_ml.load_reference(path)
    assert loaded == binary_ref and loaded.performance == binary_ref.performance


def test_multiclass_labels_and_regression_and_no_labels() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2000, 2))
    labels = np.array(["a", "b", "c"])[rng.integers(0, 3, 2000)]
    pred = np.where(rng.random(2000) < 0.7, labels, "a")
    ref = otel_ml.build_reference(x, model="m", version="1", predictions=pred, labels=labels)
    assert ref.performance.task == "multiclass" and ref.performance.classes == ("a", "b", "c")
    assert ref.performance.metrics["f1"].value == pytest.approx(skm.f1_score(labels, pred, average="macro"))
    assert "roc_auc" not in ref.performance.metrics and ref.performance.calibration == ()
    reg = otel_ml.build_reference(x, model="m", version="1", predictions=x[:, 0] * 2.0, labels=x[:, 0] * 2 + 0.5)
    assert reg.performance.task == "regression"
    assert reg.performance.metrics["mean_error"].value == pytest.approx(-0.5)
    plain = otel_ml.build_reference(x, model="m", version="1", predictions=x[:, 0])
    assert plain.performance is None and "performance" not in plain.to_dict()
    assert loads_reference(plain.to_json()).performance is None


@pytest.mark.parametrize(
    "kwargs, message",
    [({"labels": ["ok"] * 10}, "one label per row"),
     ({"labels": None, "predictions": None}, None),
     ({"predictions": None}, "needs the model's predictions"),
     ({"labels": np.array([None] * 2999 + ["ok"], dtype=object)}, "missing label"),
     ({"predictions": np.linspace(0, 1, 3000)}, "finite numeric labels")],
)
def test_bad_labels_are_refused_with_a_clear_error(kwargs, message) -> None:
    x, proba, y = _holdout()
    args = {"predictions": proba, "class_names": ["ok", "fraud"], "labels": y, **kwargs}
    if args["predictions"] is None or np.ndim(args["predictions"]) == 1:
        args.pop("class_names")
    if message is None:
        assert otel_ml.build_reference(x, model="m", version="1", **args).performance is None
        return
    with pytest.raises(ReferenceProfileError, match=message):
        otel_ml.build_reference(x, model="m", version="1", **args)


def _mutated(ref, mutate):
    doc = ref.to_dict()
    mutate(doc["performance"])
    return json.dumps(doc)


@pytest.mark.parametrize(
    "mutate, field",
    [(lambda p: p.update(task="ranking"), "performance.task"),
     (lambda p: p.update(n=0), "performance.n"),
     (lambda p: p.update(n=10**400), "performance.n"),
     (lambda p: p["metrics"]["accuracy"].update(value="0.9"), "performance.metrics.'accuracy'.value"),
     (lambda p: p["metrics"]["accuracy"].update(lower=2.0), "performance.metrics.'accuracy'"),
     (lambda p: p["metrics"].update(mae={"value": 1, "lower": 0, "upper": 2}), "performance.metrics.'mae'"),
     (lambda p: p["metrics"].update({f"f1:c{i}": {"value": 0.5, "lower": 0.4, "upper": 0.6} for i in range(9000)}),
      "performance.metrics"),
     (lambda p: p.update(classes=["a", "a"]), "performance.classes"),
     (lambda p: p.update(classes=["a", "b", "c"]), "performance.classes"),
     (lambda p: p["calibration"]["bins"][0].update(observed=1.5), "performance.calibration.bins[0].observed"),
     (lambda p: p["calibration"]["bins"][1].update(upper=0.0), "performance.calibration.bins[1].upper"),
     (lambda p: p["calibration"].update(bins=[{"upper": 1.0}] * 1001), "performance.calibration.bins"),
     (lambda p: p.update(calibration=[]), "performance.calibration"),
     (lambda p: p.clear(), "performance.task")],
)
def test_a_bad_section_is_refused_naming_the_field(binary_ref, mutate, field) -> None:
    with pytest.raises(ReferenceProfileError, match=f"^ref.json: {__import__('re').escape(field)}"):
        loads_reference(_mutated(binary_ref, mutate), source="ref.json")


def test_the_section_is_optional_and_may_omit_classes_and_calibration(binary_ref) -> None:
    def strip(p):
        del p["classes"], p["calibration"]
        for m in p["metrics"].values():
            del m["n"]

    loaded = loads_reference(_mutated(binary_ref, strip))
    assert loaded.performance.classes == () and loaded.performance.metrics["accuracy"].n == 3000
