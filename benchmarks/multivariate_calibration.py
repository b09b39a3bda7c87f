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

A second world has a categorical feature: ``segment`` (four equally frequent levels) sets the mean of
``x0`` (+1, -1, +0.5, -0.5), eight more standard-normal features. Scenarios:

- ``cat-none``: no change;
- ``cat-relation``: the means of the segments are swapped in pairs (a <-> b, c <-> d): the segment shares
  and the distribution of ``x0`` are unchanged, only which segment earns more moved.

Judged with the reference's summary that encodes ``segment`` and, for comparison, with a numeric-only
summary (what references built before categoricals were encoded hold: the same data without ``segment``).

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
from otel_ml._monitor import _categorical_with_levels
from otel_ml.stats import PolicyBook, evaluate_profiles, quality_alarm, reference_ratios

D = 10
RHO = 0.8
REFERENCE_ROWS = 20_000
SCENARIOS = ("none", "swap", "weaken", "burst")
BOOK = PolicyBook()
#: The categorical world: segment levels, their means of x0, and the pairs swapped by "cat-relation".
SEGMENTS = ("a", "b", "c", "d")
SEGMENT_MEANS = np.array([1.0, -1.0, 0.5, -0.5])
SWAPPED_MEANS = np.array([-1.0, 1.0, -0.5, 0.5])
D_MIXED = 9  # numeric features besides segment
CAT_SCENARIOS = ("cat-none", "cat-relation")


def sample(rng: np.random.Generator, n: int, rho: float) -> np.ndarray:
    x = rng.standard_normal((n, D))
    x[:, 1] = rho * x[:, 0] + np.sqrt(1 - rho**2) * x[:, 1]
    return x


def reference(seed: int = 0) -> otel_ml.Reference:
    rng = np.random.default_rng(seed)
    return otel_ml.build_reference(sample(rng, REFERENCE_ROWS, RHO), model="mv", version="1",
                                   feature_names=[f"x{i}" for i in range(D)], multivariate=True)


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


def mixed_sample(rng: np.random.Generator, n: int, swapped: bool = False) -> dict[str, Any]:
    """The categorical world's columns: ``segment`` then ``x0`` .. ``x8``."""
    seg = rng.integers(0, len(SEGMENTS), n)
    x = rng.standard_normal((n, D_MIXED))
    x[:, 0] = (SWAPPED_MEANS if swapped else SEGMENT_MEANS)[seg] + 0.6 * x[:, 0]
    return {"segment": np.asarray(SEGMENTS, dtype=object)[seg], **{f"x{i}": x[:, i] for i in range(D_MIXED)}}


def mixed_references(seed: int = 0) -> tuple[otel_ml.Reference, otel_ml.Reference]:
    """The categorical world's reference (segment encoded) and a numeric-only one (segment left out)."""
    data = mixed_sample(np.random.default_rng(seed), REFERENCE_ROWS)
    encoded = otel_ml.build_reference(data, model="mv-cat", version="1", multivariate=True)
    numeric = otel_ml.build_reference({k: v for k, v in data.items() if k != "segment"}, model="mv-num",
                                      version="1", multivariate=True)
    return encoded, numeric


def judge_mixed(ref: otel_ml.Reference, agg: ModelAggregate, data: dict[str, Any]) -> tuple[bool, bool]:
    """(multivariate stream flagged, any univariate stream flagged) for one window of the categorical
    world, through the predict path's tables (the categorical lookup feeds the counts and the summary)."""
    mv, table = agg.multivariate, agg.numeric
    assert mv is not None and table is not None
    names = [p.name for p in ref.features]
    x = np.column_stack([data[n] for n in names if n != "segment"])
    columns = [data[t.name] for t in agg.cat_tables]
    cats, levels = _categorical_with_levels(agg, columns, len(mv.categorical))
    err = mv.errors(x, levels)
    stats = table.stats(np.column_stack((x, err)), None)
    counts = stats.counts.reshape(table.k, table.width)
    by_name = {name: counts[j, : len(table.edges[j]) + 1] for j, name in enumerate(table.names)}
    by_name.update({t.name: c.dense(t.size) for t, c in zip(agg.cat_tables, cats)})
    profiles = ref.streamed_features
    results = evaluate_profiles(profiles, [by_name[p.name] for p in profiles],
                                policy=[BOOK.policy_for(p.name) for p in profiles])
    flagged = {p.name: r.detected == 1 for p, r in zip(profiles, results)}
    return flagged.pop(semconv.RECONSTRUCTION_ERROR_FEATURE), any(flagged.values())


def run_categorical(windows: int, rows: int, seed: int = 2) -> dict[str, dict[str, float]]:
    """Per categorical scenario: the share of windows flagged by the encoded summary, by the numeric-only
    one, and by any univariate stream."""
    encoded, numeric = mixed_references()
    aggs = (ModelAggregate("mv-cat", "1", encoded), ModelAggregate("mv-num", "1", numeric))
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, float]] = {}
    for scenario in CAT_SCENARIOS:
        hits = []
        for _ in range(windows):
            data = mixed_sample(rng, rows, swapped=scenario == "cat-relation")
            enc, uni = judge_mixed(encoded, aggs[0], data)
            num, _ = judge_mixed(numeric, aggs[1], {k: v for k, v in data.items() if k != "segment"})
            hits.append((enc, num, uni))
        out[scenario] = dict(zip(("encoded", "numeric_only", "univariate"),
                                 np.mean(np.array(hits, dtype=float), axis=0).tolist()))
    return out


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
    encoded, _ = mixed_references()
    assert encoded.multivariate is not None
    summary = encoded.multivariate.summary
    print(f"\ncategorical world: segment ({len(SEGMENTS)} levels) sets the mean of x0, {D_MIXED} numeric "
          f"features; encoded levels {dict(summary.categorical)}, {summary.components.shape[0]} of "
          f"{summary.components.shape[1]} components kept")
    print(f"{'scenario':<14}{'encoded':>10}{'numeric-only':>14}{'univariate':>12}")
    for scenario, r in run_categorical(args.windows, args.rows).items():
        print(f"{scenario:<14}{r['encoded']:>10.3f}{r['numeric_only']:>14.3f}{r['univariate']:>12.3f}")


if __name__ == "__main__":
    main()
