"""Benchmark: every performance metric with its interval on one window of 20,000 joined outcomes.

The processor computes them per model version and window at each tick, and ``otel-ml performance`` once per
file. Target: well under 100 ms for 20,000 pairs (binary classifier with probabilities, a 5-class
classifier, a regression). Prints medians of several runs and, as the baseline measured in the same run,
the floor any implementation pays: one sort of the scores (ROC AUC's ranks) and one pass of numpy over the
rows, so the ratio shows what the intervals cost on top. Exits 1 when a median misses the target.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

from otel_ml.stats import classification_metrics, degradation_verdicts, regression_metrics

ROWS = 20_000
TARGET_SECONDS = 0.100
RUNS = 9


def _median(fn: Callable[[], object]) -> float:
    fn()  # warm-up
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    rng = np.random.default_rng(20261201)
    p = 1 / (1 + np.exp(-3 * rng.standard_normal(ROWS)))
    y = np.where(rng.random(ROWS) < p, "1", "0")
    logits = rng.standard_normal((ROWS, 5)) * 2
    pk = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    yk = (pk.cumsum(axis=1) < rng.random((ROWS, 1))).sum(axis=1).clip(0, 4).astype(str)
    yr = rng.gamma(2.0, 2.0, ROWS)
    fr = yr + rng.standard_normal(ROWS)
    ref = classification_metrics(y, None, p, ["0", "1"])
    cases = {
        "binary (labels + probabilities, all metrics)": lambda: classification_metrics(y, None, p, ["0", "1"]),
        "5-class (all metrics, macro OvR AUC)": lambda: classification_metrics(yk, None, pk, list("01234")),
        "regression (mae, rmse, mape, r2, mean_error)": lambda: regression_metrics(yr, fr),
        "binary metrics + verdict": lambda: degradation_verdicts(classification_metrics(y, None, p, ["0", "1"]), ref),
    }
    baseline = _median(lambda: (np.argsort(p), np.abs(p - (y == "1")).mean()))
    print(f"{ROWS:,} joined outcomes, median of {RUNS} runs; baseline (one sort + one pass): {1e3 * baseline:.2f} ms")
    ok = True
    for name, fn in cases.items():
        t = _median(fn)
        ok &= t < TARGET_SECONDS
        print(f"  {name:<48} {1e3 * t:7.2f} ms  ({t / baseline:5.1f}x baseline)  "
              f"target < {1e3 * TARGET_SECONDS:.0f} ms")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
