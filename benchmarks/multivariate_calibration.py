"""Detection and false-alarm rates of the multivariate stream and the outlier alarm (seeded).

Ten standard-normal features; in the reference ``x0`` and ``x1`` have correlation +0.8. Each window
of ``--rows`` rows goes through the library's numeric table (the hot path's binning, reconstruction
error column included) and is judged as the processor judges it: the drift verdict across the
model's streams (:func:`otel_ml.stats.evaluate_profiles`, Holm across them) and the out-of-range
quality alarm of the reconstruction-error stream (:func:`otel_ml.stats.quality_alarm`, the outlier
alarm). Scenarios:

- ``none``: no change (fresh samples of the reference distribution);
- ``swap``: the correlation of ``x0``, ``x1`` flips to -0.8, every marginal unchanged;
- ``weaken``: that correlation falls to 0.7 (a smaller change, for the limits);
- ``burst``: 1 % of the rows are out of distribution (``x0 = 3``, ``x1 = -3``: each value within
  the training range, the pair impossible under the reference).

Prints, per scenario, the share of windows in which the multivariate stream is flagged, in which any
univariate stream is flagged, and in which the outlier alarm fires. Targets: swap flagged in at
least 90 % of windows with univariate streams quiet; no change flagged in at most 5 %.

    python benchmarks/multivariate_calibration.py [--windows 500] [--rows 1000]
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

import otel_ml
from otel_ml import semconv
from otel_ml._aggregate import ModelAggregate
from otel_ml._binning import Q_OUT_OF_RANGE
from otel_ml.stats import PolicyBook, evaluate_profiles, quality_alarm, reference_ratios

D = 10
RHO = 0.8
REFERENCE_ROWS = 20_000
SCENARIOS = ("none", "swap", "weaken", "burst")
BOOK = PolicyBook()


def sample(rng: np.random.Generator, n: int, rho: float) -> np.ndarray:
    x = rng.standard_normal((n, D))
    x[:, 1] = rho * x[:, 0] + np.sqrt(1 - rho**2) * x[:, 1]
    return x


def reference(seed: int = 0) -> otel_ml.Reference:
    rng = np.random.default_rng(seed)
    return otel_ml.build_reference(sample(rng, REFERENCE_ROWS, RHO), model="mv", version="1",
                                   feature_names=[f"x{i}" for i in range(D)])


def window(rng: np.random.Generator, scenario: str, n: int) -> np.ndarray:
    if scenario == "swap":
        return sample(rng, n, -RHO)
    if scenario == "weaken":
        return sample(rng, n, 0.7)
    x = sample(rng, n, RHO)
    if scenario == "burst":
        k = max(1, n // 100)
        x[:k, 0] = 3.0
        x[:k, 1] = -3.0
    return x


def judge(ref: otel_ml.Reference, agg: ModelAggregate, x: np.ndarray) -> tuple[bool, bool, bool]:
    """(multivariate stream flagged, any univariate stream flagged, outlier alarm) for one window."""
    mv = agg.multivariate
    table = agg.numeric
    assert mv is not None and table is not None
    err = mv.errors(x)  # every feature is numeric and in the summary
    stats = table.stats(np.column_stack((x, err)), None)
    counts = stats.counts.reshape(table.k, table.width)
    profiles = ref.streamed_features
    current = [counts[j, : len(p.edges) + 1] for j, p in enumerate(profiles)]  # type: ignore[union-attr]
    policies = [BOOK.policy_for(p.name) for p in profiles]  # as the processor picks them
    results = evaluate_profiles(profiles, current, policy=policies)
    flagged = {p.name: r.detected == 1 for p, r in zip(profiles, results)}
    multivariate = flagged.pop(semconv.RECONSTRUCTION_ERROR_FEATURE)
    error = profiles[-1]
    outliers = 0 if stats.quality is None else int(stats.quality[Q_OUT_OF_RANGE, -1])
    # as the processor: rows = complete + skipped rows; Bonferroni over every quality test of the model
    _, alarm = quality_alarm(reference_ratios(error)["out_of_range"], outliers, len(err), policy=policies[-1],
                             n_tests=len(profiles) * len(semconv.QUALITY_KINDS))
    return multivariate, any(flagged.values()), alarm == 1


def run(windows: int, rows: int, seed: int = 1) -> dict[str, dict[str, float]]:
    ref = reference()
    agg = ModelAggregate("mv", "1", ref)
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, float]] = {}
    for scenario in SCENARIOS:
        hits = np.array([judge(ref, agg, window(rng, scenario, rows)) for _ in range(windows)], dtype=float)
        out[scenario] = dict(zip(("multivariate", "univariate", "outlier_alarm"), hits.mean(axis=0).tolist()))
    return out


def main(argv: Any = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=500)
    parser.add_argument("--rows", type=int, default=1000)
    args = parser.parse_args(argv)
    ref = reference()
    assert ref.multivariate is not None
    print(f"reference: {REFERENCE_ROWS} rows x {D} features, "
          f"{ref.multivariate.summary.components.shape[0]} components kept, "
          f"outlier threshold {ref.multivariate.summary.threshold:.3f}")
    print(f"{args.windows} windows of {args.rows} rows; share of windows flagged")
    print(f"{'scenario':<10}{'multivariate':>14}{'univariate':>12}{'outlier alarm':>15}")
    for scenario, r in run(args.windows, args.rows).items():
        print(f"{scenario:<10}{r['multivariate']:>14.3f}{r['univariate']:>12.3f}{r['outlier_alarm']:>15.3f}")


if __name__ == "__main__":
    main()
