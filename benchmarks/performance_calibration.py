"""Measured alarm rates of the performance degradation verdict (otel_ml.stats.degradation_verdicts).

Own generator, seeded. A binary classifier scores ``s = w . x`` over five standard-normal features and
outputs the calibrated probability ``sigmoid(k s)`` with ``k`` set so that its accuracy is 0.90; labels
are drawn from that probability. A sixth feature, ``region``, carries no weight: the concept drift
flips every label where ``region > z`` (1/16 of the rows), so the inputs keep their distribution while the
accuracy falls to 0.90 - 0.8/16 = 0.85 in expectation. A smaller drift flips a share of 1/160 of the rows
(accuracy 0.895: the "0.5-point drop").

Each window draws a fresh labelled holdout (the reference, ``build_reference``-sized) and a window of
joined outcomes, computes both with ``classification_metrics`` and judges with the default
``PerformancePolicy`` (primary metrics accuracy and ROC AUC, Holm across them). The rate is the share of
windows with any degraded metric. Targets (issue 11): >= 90 % for 0.90 -> 0.85 at 2,000 outcomes,
<= 5 % without change, none for a 0.5-point drop at 100,000 outcomes.

    python benchmarks/performance_calibration.py [--windows 400] [--seed 20261201]

Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from otel_ml.stats import PerformancePolicy, classification_metrics, degradation_verdicts, regression_metrics

FEATURES = 5
REFERENCE_ROWS = 10_000
BASE_ACCURACY = 0.90
CLASSES = ("0", "1")


def _slope(target: float = BASE_ACCURACY) -> float:
    """``k`` such that the classifier ``sigmoid(k s)``, ``s ~ N(0, 1)``, is right with probability ``target``."""
    nodes = np.linspace(0.0, 10.0, 200_001)  # E[f(|s|)] = 2 * integral over s > 0 (|s| is not smooth at 0)
    weights = np.exp(-nodes**2 / 2)
    weights[[0, -1]] /= 2
    weights /= weights.sum()
    lo, hi = 0.1, 50.0
    for _ in range(80):
        k = (lo + hi) / 2
        acc = float((weights / (1 + np.exp(-k * nodes))).sum())
        lo, hi = (k, hi) if acc < target else (lo, k)
    return (lo + hi) / 2


SLOPE = _slope()


def _region_cut(share: float) -> float:
    """``z`` with ``P(N(0, 1) > z) = share``, by bisection on ``erfc``."""
    lo, hi = -10.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if 0.5 * math.erfc(mid / math.sqrt(2)) > share else (lo, mid)
    return (lo + hi) / 2


@dataclass(frozen=True)
class Scenario:
    name: str
    window: int  # joined outcomes per window
    flipped_share: float  # share of rows (a region of feature space) whose labels flip (regression: get noisier)
    target: str  # "alarm" (>= 90 %) or "quiet" (<= 5 %)
    task: str = "binary"

    @property
    def expected_accuracy(self) -> float:
        return BASE_ACCURACY - (2 * BASE_ACCURACY - 1) * self.flipped_share


SCENARIOS = (
    Scenario("no change", 500, 0.0, "quiet"),
    Scenario("no change", 2_000, 0.0, "quiet"),
    Scenario("no change", 20_000, 0.0, "quiet"),
    Scenario("no change", 100_000, 0.0, "quiet"),
    Scenario("concept drift 0.90 -> 0.85", 2_000, 1 / 16, "alarm"),
    Scenario("concept drift 0.90 -> 0.85", 1_000, 1 / 16, "report"),
    Scenario("concept drift 0.90 -> 0.87", 2_000, 0.0375, "report"),
    Scenario("concept drift 0.90 -> 0.88 (at tolerance)", 2_000, 0.025, "report"),
    Scenario("concept drift 0.90 -> 0.895", 100_000, 1 / 160, "quiet"),
    Scenario("regression: no change", 2_000, 0.0, "quiet", "regression"),
    Scenario("regression: MAE +20 %", 2_000, 0.25, "alarm", "regression"),
    Scenario("regression: MAE +5 %", 100_000, 0.0625, "quiet", "regression"),
)

#: Regression: noise sd of the labels in the drifted region (MAE there 1.8x: +20 % when a quarter of rows).
NOISIER = 1.8


def draw(n: int, flipped_share: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(features, labels, proba_of_class_1)`` of ``n`` rows; labels flipped where ``region`` is in the top share."""
    x = rng.standard_normal((n, FEATURES + 1))
    w = np.ones(FEATURES) / math.sqrt(FEATURES)  # s = w . x ~ N(0, 1)
    proba = 1 / (1 + np.exp(-SLOPE * (x[:, :FEATURES] @ w)))
    labels = (rng.random(n) < proba).astype(np.int64)
    if flipped_share > 0:
        flip = x[:, FEATURES] > _region_cut(flipped_share)
        labels = np.where(flip, 1 - labels, labels)
    return x, labels, proba


def metrics(labels: np.ndarray, proba: np.ndarray) -> dict:
    return classification_metrics(labels.astype(str), None, proba, CLASSES)


def draw_regression(n: int, noisier_share: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(actuals, predictions)``: the model predicts ``w . x``; the actuals add unit normal noise, NOISIER
    times larger where ``region`` is in the top ``noisier_share`` (inputs unchanged)."""
    x = rng.standard_normal((n, FEATURES + 1))
    pred = 3.0 * x[:, :FEATURES].sum(axis=1)
    scale = np.where(x[:, FEATURES] > _region_cut(noisier_share), NOISIER, 1.0) if noisier_share > 0 else 1.0
    return pred + scale * rng.standard_normal(n), pred


@dataclass(frozen=True)
class Cell:
    scenario: Scenario
    windows: int
    alarms: int
    mean_accuracy: float
    accuracy_alarms: int = 0

    @property
    def rate(self) -> float:
        return self.alarms / self.windows

    @property
    def ok(self) -> bool:
        if self.scenario.target == "alarm":
            return self.rate >= 0.90
        if self.scenario.target == "quiet":
            return self.rate <= 0.05
        return True


def run_cell(scenario: Scenario, windows: int, rng: np.random.Generator,
             policy: PerformancePolicy | None = None) -> Cell:
    policy = policy or PerformancePolicy()
    alarms, accuracy, on_accuracy = 0, 0.0, 0
    main_metric = "accuracy" if scenario.task == "binary" else "mae"
    for _ in range(windows):
        if scenario.task == "binary":
            _, y_ref, p_ref = draw(REFERENCE_ROWS, 0.0, rng)
            _, y_cur, p_cur = draw(scenario.window, scenario.flipped_share, rng)
            current, reference = metrics(y_cur, p_cur), metrics(y_ref, p_ref)
        else:
            current = regression_metrics(*draw_regression(scenario.window, scenario.flipped_share, rng))
            reference = regression_metrics(*draw_regression(REFERENCE_ROWS, 0.0, rng))
        verdicts = degradation_verdicts(current, reference, policy)
        alarms += any(v.degraded == 1 for v in verdicts)
        on_accuracy += any(v.degraded == 1 and v.metric == main_metric for v in verdicts)
        accuracy += current[main_metric].value
    return Cell(scenario, windows, alarms, accuracy / windows, on_accuracy)


def run(windows: int = 400, seed: int = 20261201, scenarios: Sequence[Scenario] = SCENARIOS) -> list[Cell]:
    rng = np.random.default_rng(seed)
    # Fewer of the costly 100,000-outcome windows: their rates are ~0 or ~1, far from the targets.
    return [run_cell(s, windows if s.window <= 20_000 else max(windows // 4, 1), rng) for s in scenarios]


def format_table(cells: Sequence[Cell]) -> str:
    lines = ["| Scenario | Outcomes per window | Windows | Mean accuracy (MAE) | Windows alarmed | on accuracy (MAE) "
             "| Target |",
             "|---|---|---|---|---|---|---|"]
    targets = {"alarm": "≥ 90%", "quiet": "≤ 5%", "report": "(reported)"}
    for c in cells:
        target = targets[c.scenario.target] + ("" if c.ok else " MISSED")
        lines.append(f"| {c.scenario.name} | {c.scenario.window:,} | {c.windows} | {c.mean_accuracy:.3f} "
                     f"| {100 * c.rate:.1f}% | {100 * c.accuracy_alarms / c.windows:.1f}% | {target} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, default=400)
    parser.add_argument("--seed", type=int, default=20261201)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    cells = run(args.windows, args.seed)
    print(f"reference: {REFERENCE_ROWS:,}-row labelled holdout per window (fresh each time); "
          f"default policy (alpha {PerformancePolicy.alpha}, Holm over {', '.join(PerformancePolicy.primary)}, "
          f"min_samples {PerformancePolicy.min_samples}); seed {args.seed}; {time.perf_counter() - start:.0f} s")
    print(format_table(cells))
    return 0 if all(c.ok for c in cells) else 1


if __name__ == "__main__":
    sys.exit(main())
