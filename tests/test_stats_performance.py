"""otel_ml.stats.performance: metrics against scikit-learn (the oracle), interval coverage on simulated
data, the degradation verdict and its policy."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from sklearn import metrics as skm

from otel_ml import ConfigurationError
from otel_ml.stats import (
    NO_VERDICT,
    Estimate,
    PerformancePolicy,
    classification_metrics,
    degradation_verdicts,
    regression_metrics,
    reliability,
)
from otel_ml.stats.performance import wilson


def _binary(n: int, rng: np.random.Generator, slope: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    p = 1 / (1 + np.exp(-slope * rng.standard_normal(n)))
    return (rng.random(n) < p).astype(np.int64), p


def _multiclass(n: int, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    logits = rng.standard_normal((n, k)) * 2
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    y = (p.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1)
    return np.minimum(y, k - 1), p


def _ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    total = 0.0
    for i in range(bins):
        lo, hi = i / bins, (i + 1) / bins
        sel = (p > lo) & (p <= hi) if i else (p <= hi)
        if sel.any():
            total += sel.sum() / len(p) * abs(p[sel].mean() - y[sel].mean())
    return total


def test_binary_metrics_match_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    y, p = _binary(3000, rng)
    pred = (p > 0.5).astype(np.int64)
    m = classification_metrics(y.astype(str), None, p, ["0", "1"])
    assert m["accuracy"].value == pytest.approx(skm.accuracy_score(y, pred))
    for avg in ("precision", "recall", "f1"):
        fn = getattr(skm, f"{avg}_score")
        assert m[avg].value == pytest.approx(fn(y, pred, average="macro"))
        for c in (0, 1):
            assert m[f"{avg}:{c}"].value == pytest.approx(fn(y, pred, pos_label=c))
    assert m["roc_auc"].value == pytest.approx(skm.roc_auc_score(y, p))
    assert m["log_loss"].value == pytest.approx(skm.log_loss(y, p))
    assert m["brier"].value == pytest.approx(skm.brier_score_loss(y, p))
    assert m["ece"].value == pytest.approx(_ece(y, p))
    assert m["accuracy"].n == 3000 and m["precision:1"].n == int(pred.sum()) and m["recall:1"].n == int(y.sum())
    for name, e in m.items():
        assert e.lower <= e.value <= e.upper, name


def test_multiclass_metrics_match_scikit_learn_and_predicted_labels_win_over_argmax() -> None:
    rng = np.random.default_rng(2)
    y, p = _multiclass(2500, 4, rng)
    classes = ["a", "b", "c", "d"]
    names = np.array(classes)
    m = classification_metrics(names[y], None, p, classes)
    pred = p.argmax(axis=1)
    assert m["accuracy"].value == pytest.approx(skm.accuracy_score(y, pred))
    assert m["f1"].value == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["precision"].value == pytest.approx(skm.precision_score(y, pred, average="macro"))
    assert m["recall"].value == pytest.approx(skm.recall_score(y, pred, average="macro"))
    assert m["f1:c"].value == pytest.approx(skm.f1_score(y, pred, average=None)[2])
    assert m["roc_auc"].value == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr", average="macro"))
    assert m["log_loss"].value == pytest.approx(skm.log_loss(y, p))
    assert m["brier"].value == pytest.approx(np.mean(((p - np.eye(4)[y]) ** 2).sum(axis=1)))
    top = p.max(axis=1)
    assert m["ece"].value == pytest.approx(_ece((pred == y).astype(float), top))
    # Given labels are used as they are (here: always "a"); a class never predicted counts 0 in the macro.
    always_a = classification_metrics(names[y], np.full(len(y), "a"), p, classes)
    assert always_a["accuracy"].value == pytest.approx(np.mean(y == 0))
    assert always_a["precision"].value == pytest.approx(
        skm.precision_score(y, np.zeros_like(y), average="macro", zero_division=0))
    assert math.isnan(always_a["precision:b"].value) and always_a["precision:b"].n == 0


def test_labels_without_probabilities_give_label_metrics_only() -> None:
    m = classification_metrics(["x", "y", "x"], ["x", "x", "x"], None, ["x", "y"])
    assert "roc_auc" not in m and "log_loss" not in m
    assert m["accuracy"].value == pytest.approx(2 / 3)


def test_bad_classification_input_raises_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"outside the classes.*'z'"):
        classification_metrics(["x", "z"], ["x", "x"], None, ["x", "y"])
    with pytest.raises(ValueError, match="shape"):
        classification_metrics(["x", "y"], None, np.ones((2, 3)) / 3, ["x", "y"])
    with pytest.raises(ValueError, match="finite"):
        classification_metrics(["x", "y"], None, np.array([0.2, np.nan]), ["x", "y"])
    with pytest.raises(ValueError, match="y_pred or proba"):
        classification_metrics(["x"], None, None, ["x", "y"])


def test_empty_and_one_class_windows_are_undefined_never_zero() -> None:
    empty = classification_metrics([], None, np.empty((0, 2)), ["0", "1"])
    assert all(math.isnan(e.value) and e.n == 0 for e in empty.values())
    p = np.linspace(0.1, 0.9, 50)
    one = classification_metrics(["1"] * 50, None, p, ["0", "1"])
    assert math.isnan(one["roc_auc"].value) and one["accuracy"].value == pytest.approx(np.mean(p > 0.5))
    assert all(math.isnan(e.value) for e in regression_metrics([], []).values())


def test_roc_auc_interval_is_delongs() -> None:
    rng = np.random.default_rng(3)
    y, p = _binary(300, rng, slope=1.5)
    p = np.round(p, 2)  # ties
    pos, neg = p[y == 1], p[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    se = math.sqrt(v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg))
    m = classification_metrics(y.astype(str), None, p, ["0", "1"])["roc_auc"]
    assert m.value == pytest.approx(psi.mean())
    assert m.standard_error == pytest.approx(se)


def test_regression_metrics_match_scikit_learn_and_mape_skips_zero_actuals() -> None:
    rng = np.random.default_rng(4)
    y = rng.normal(5, 3, 4000)
    y[:10] = 0.0
    f = y + rng.normal(0.2, 1, 4000)
    m = regression_metrics(y, f)
    assert m["mae"].value == pytest.approx(skm.mean_absolute_error(y, f))
    assert m["rmse"].value == pytest.approx(skm.root_mean_squared_error(y, f))
    assert m["r2"].value == pytest.approx(skm.r2_score(y, f))
    assert m["mean_error"].value == pytest.approx(np.mean(f - y))
    assert m["mape"].value == pytest.approx(skm.mean_absolute_percentage_error(y[10:], f[10:]))
    assert m["mape"].n == 3990 and math.isfinite(m["mape"].upper)
    with pytest.raises(ValueError, match="finite"):
        regression_metrics([1.0, np.inf], [1.0, 2.0])


def test_reliability_bins_are_the_direct_computation() -> None:
    rng = np.random.default_rng(5)
    y, p = _binary(1000, rng)
    bins = reliability(y == 1, p, bins=5)
    assert [b["upper"] for b in bins] == [0.2, 0.4, 0.6, 0.8, 1.0]
    sel = (p > 0.4) & (p <= 0.6)
    assert bins[2]["count"] == sel.sum()
    assert bins[2]["observed"] == pytest.approx(y[sel].mean())
    assert bins[2]["mean_predicted"] == pytest.approx(p[sel].mean())
    assert sum(b["count"] for b in bins) == 1000


# --- Coverage of the 95 % intervals on simulated data -----------------------------------------


def test_wilson_covers_95_percent() -> None:
    rng = np.random.default_rng(6)
    n, p = 200, 0.85
    k = rng.binomial(n, p, size=2000)
    _, lo, hi = wilson(k, np.full(2000, n))
    coverage = np.mean((lo <= p) & (p <= hi))
    assert 0.935 <= coverage <= 0.965, coverage  # binomial sd of the estimate: 0.005


def _coverage(draw, truth: float, metric: str, reps: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(reps):
        e = draw(rng)[metric]
        hits += e.lower <= truth <= e.upper
    return hits / reps


@pytest.mark.parametrize("metric", ["roc_auc", "f1", "log_loss", "brier"])
def test_classification_intervals_cover_95_percent(metric: str) -> None:
    def draw(rng: np.random.Generator, n: int = 600) -> dict[str, Estimate]:
        y, p = _multiclass(n, 3, rng)
        return classification_metrics(y.astype(str), None, p, ["0", "1", "2"])

    truth = draw(np.random.default_rng(99), 400_000)[metric].value
    coverage = _coverage(draw, truth, metric, 400, seed=7)
    assert 0.92 <= coverage <= 0.98, (metric, coverage)  # sd 0.011


@pytest.mark.parametrize("metric", ["mae", "rmse", "r2", "mean_error"])
def test_regression_intervals_cover_95_percent(metric: str) -> None:
    def draw(rng: np.random.Generator, n: int = 500) -> dict[str, Estimate]:
        y = rng.gamma(2.0, 2.0, n)
        return regression_metrics(y, y + rng.standard_t(10, n))

    truth = draw(np.random.default_rng(98), 1_000_000)[metric].value
    coverage = _coverage(draw, truth, metric, 400, seed=8)
    assert 0.92 <= coverage <= 0.98, (metric, coverage)


# --- The verdict ----------------------------------------------------------------------------


def _acc(value: float, n: int) -> Estimate:
    k = round(value * n)
    p, lo, hi = wilson(k, n)
    return Estimate(float(p), float(lo), float(hi), n)


def test_a_significant_drop_beyond_tolerance_alarms() -> None:
    (v,) = degradation_verdicts({"accuracy": _acc(0.85, 2000)}, {"accuracy": _acc(0.90, 10_000)}, PerformancePolicy())
    assert v.degraded == 1 and v.p_value < 1e-6 and "tolerance" in v.reason


def test_a_significant_drop_within_tolerance_does_not_alarm() -> None:
    (v,) = degradation_verdicts({"accuracy": _acc(0.895, 100_000)}, {"accuracy": _acc(0.90, 10_000)}, None)
    assert v.degraded == 0 and "within tolerance" in v.reason


def test_a_drop_beyond_tolerance_that_is_not_significant_does_not_alarm() -> None:
    (v,) = degradation_verdicts({"accuracy": _acc(0.86, 600)}, {"accuracy": _acc(0.90, 600)},
                                PerformancePolicy(min_samples=100))
    assert v.degraded == 0 and "not significant" in v.reason


def test_too_few_outcomes_give_no_verdict_never_zero() -> None:
    (v,) = degradation_verdicts({"accuracy": _acc(0.5, 499)}, {"accuracy": _acc(0.9, 10_000)}, PerformancePolicy())
    assert v.degraded == NO_VERDICT and math.isnan(v.p_value) and "min_samples" in v.reason
    undefined = Estimate(math.nan, math.nan, math.nan, 5000)
    (w,) = degradation_verdicts({"roc_auc": undefined}, {"roc_auc": _acc(0.9, 10_000)}, PerformancePolicy())
    assert w.degraded == NO_VERDICT


def test_errors_use_a_relative_tolerance_and_losses_rise() -> None:
    ref = Estimate(1.0, 0.98, 1.02, 10_000)
    up8 = Estimate(1.08, 1.06, 1.10, 5_000)
    up15 = Estimate(1.15, 1.13, 1.17, 5_000)
    assert degradation_verdicts({"mae": up8}, {"mae": ref})[0].degraded == 0
    assert degradation_verdicts({"mae": up15}, {"mae": ref})[0].degraded == 1
    better = Estimate(0.5, 0.48, 0.52, 5_000)
    policy = PerformancePolicy(primary=("log_loss",))
    assert degradation_verdicts({"log_loss": better}, {"log_loss": ref}, policy)[0].degraded == 0


def test_holm_adjusts_p_values_across_the_primary_metrics() -> None:
    cur = {"accuracy": _acc(0.87, 2000), "roc_auc": Estimate(0.90, 0.89, 0.91, 2000)}
    ref = {"accuracy": _acc(0.90, 10_000), "roc_auc": Estimate(0.95, 0.945, 0.955, 10_000)}
    raw = [degradation_verdicts({m: cur[m]}, {m: ref[m]})[0].p_value for m in ("accuracy", "roc_auc")]
    both = degradation_verdicts(cur, ref)
    assert [v.metric for v in both] == ["accuracy", "roc_auc"]
    low, high = sorted(range(2), key=lambda i: raw[i])
    assert both[low].p_value == pytest.approx(2 * raw[low])
    assert both[high].p_value == pytest.approx(max(2 * raw[low], raw[high]))
    assert raw[high] < 2 * raw[low] or both[high].p_value == pytest.approx(raw[high])


@pytest.mark.parametrize(
    "kwargs, field",
    [({"min_samples": 0}, "min_samples"), ({"alpha": 1.5}, "alpha"), ({"tolerances": {"acc": 0.1}}, "acc"),
     ({"tolerances": {"mae": -1}}, "tolerances.mae"), ({"primary": ("mean_error",)}, "mean_error"),
     ({"primary": "accuracy"}, "primary")],
)
def test_policy_rejects_bad_values_naming_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigurationError, match=field):
        PerformancePolicy(**kwargs)


def test_policy_merges_tolerances_over_the_defaults() -> None:
    policy = PerformancePolicy(tolerances={"accuracy": 0.05})
    assert policy.tolerance("accuracy") == 0.05 and policy.tolerance("f1:fraud") == 0.02
    assert hash(policy) == hash(PerformancePolicy(tolerances={"accuracy": 0.05}))


def test_statistics_import_without_scipy() -> None:
    """A core install (no scipy) builds references with labels: the package must not need scipy to import."""
    program = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'scipy' or name.startswith('scipy.'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from otel_ml.stats import classification_metrics\n"
        "m = classification_metrics(['0', '0', '1', '1'], None, [0.2, 0.1, 0.7, 0.4], ['0', '1'])\n"
        "print(round(m['roc_auc'].value, 3))\n"
    )
    run = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "1.0"


def test_every_interval_holds_its_value_even_for_perfect_predictions() -> None:
    n = np.arange(1, 5000)
    for k in (np.zeros_like(n), n):
        p, lo, hi = wilson(k, n)
        assert np.all(lo <= p) and np.all(p <= hi)
    labels = ["a", "b"] * 300
    for e in classification_metrics(labels, labels, np.eye(2)[[0, 1] * 300], ["a", "b"]).values():
        assert e.lower <= e.value <= e.upper or math.isnan(e.lower)
