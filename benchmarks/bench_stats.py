"""Benchmark: one drift evaluation over 10,000 streams (model x feature) with 20 buckets each.

The processor evaluates every stream of every model at each window tick with one vectorised call,
:func:`otel_ml.stats.evaluate_batch`. Target: under one second for 10,000 streams of 20 buckets
(500 models of 20 features; a quarter categorical, rows padded to 20). Prints the median of
several runs, and, as the baseline measured in the same run, the per-stream loop a naive caller
would write (:func:`otel_ml.stats.evaluate_profile` one stream at a time, timed on a sample and
scaled). Exits 1 when the median misses the target.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

from otel_ml._reference import CategoricalProfile, NumericProfile
from otel_ml.stats import DriftPolicy, bucket_positions, evaluate_batch, evaluate_profile

STREAMS = 10_000
BUCKETS = 20
FEATURES_PER_MODEL = 20
TARGET_SECONDS = 1.0
RUNS = 7


def make_batch(rng: np.random.Generator) -> dict[str, np.ndarray]:
    s, b = STREAMS, BUCKETS
    numeric = rng.random(s) >= 0.25
    width = np.where(numeric, b, rng.integers(3, b + 1, s))  # categorical rows are shorter: padded
    cols = np.arange(b)[None, :]
    live = cols < width[:, None]
    ref = np.where(live, rng.integers(500, 2000, (s, b)), 0).astype(np.float64)
    p = ref / ref.sum(axis=1, keepdims=True)
    # Windows of 1,000-100,000 rows; one stream in ten drifted.
    n = rng.integers(1_000, 100_000, s)
    tilt = np.where(rng.random(s)[:, None] < 0.1, np.exp(rng.normal(0, 0.3, (s, b))), 1.0)
    q = p * tilt
    q /= q.sum(axis=1, keepdims=True)
    cur = rng.poisson(q * n[:, None]).astype(np.float64)
    edges = np.linspace(-2.0, 2.0, b - 1)
    pos = np.where(numeric[:, None], bucket_positions(edges, -3.0, 3.0)[None, :], np.nan)
    spread = np.where(numeric, 1.0, np.nan)
    family = np.arange(s) // FEATURES_PER_MODEL
    return {"reference": ref, "current": cur, "numeric": numeric, "positions": pos, "spread": spread, "family": family}


def baseline_per_stream(batch: dict[str, np.ndarray], sample: int = 300) -> float:
    """Seconds the one-stream-at-a-time loop would take for all streams (timed on ``sample`` streams)."""
    edges = tuple(np.linspace(-2.0, 2.0, BUCKETS - 1).tolist())
    start = time.perf_counter()
    for i in range(sample):
        ref = batch["reference"][i]
        if batch["numeric"][i]:
            prof = NumericProfile("x", edges, tuple(int(c) for c in ref), int(ref.sum()), 0, 0, -3.0, 3.0, 0.0, 1.0)
            cur = batch["current"][i]
        else:
            k = int((ref > 0).sum())
            prof = CategoricalProfile("c", tuple(f"c{j}" for j in range(k - 1)), tuple(int(c) for c in ref[: k - 1]),
                                      int(ref[k - 1]), int(ref.sum()), 0)
            cur = batch["current"][i][:k]
        evaluate_profile(prof, cur, n_tests=FEATURES_PER_MODEL)
    return (time.perf_counter() - start) * STREAMS / sample


def main() -> int:
    rng = np.random.default_rng(0)
    batch = make_batch(rng)
    policy = DriftPolicy()
    evaluate_batch(**batch, policy=policy)  # warm-up (imports, caches)
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        result = evaluate_batch(**batch, policy=policy)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    baseline = baseline_per_stream(batch)
    per_policy = [policy] * STREAMS
    start = time.perf_counter()
    evaluate_batch(**batch, policy=per_policy)
    with_policies = time.perf_counter() - start
    detected = int((result.detected == 1).sum())
    print(f"evaluate_batch: {STREAMS:,} streams x {BUCKETS} buckets, {STREAMS // FEATURES_PER_MODEL} families")
    print(f"  median of {RUNS} runs: {1000 * median:.1f} ms (min {1000 * min(times):.1f}, max {1000 * max(times):.1f});"
          f" target < {TARGET_SECONDS:.0f} s: {'ok' if median < TARGET_SECONDS else 'MISSED'}")
    print(f"  with one DriftPolicy object per stream: {1000 * with_policies:.1f} ms")
    print(f"  baseline, evaluate_profile per stream (scaled from 300): {baseline:.2f} s"
          f" -> batch is {baseline / median:.0f}x faster")
    print(f"  streams flagged: {detected:,} of {STREAMS:,} ({int((result.detected == -1).sum())} without verdict)")
    return 0 if median < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
