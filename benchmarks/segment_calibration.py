"""Measured alarm rates of the segmented performance verdict (otel_ml_processor._segments).

Own generator, seeded. A window holds ``rows`` joined pairs of a classifier with accuracy 0.90 on every
row; each pair carries two segments: ``country`` (10 values: ``c0`` holds 10 % of traffic, the other nine
share the rest evenly) and ``channel`` (4 values, 40/30/20/10 %), drawn independently. Under the
*effect*, the accuracy of ``country = c0`` falls to 0.75, so the window's overall accuracy moves by
only 0.015 (under the 2-point tolerance of the whole-window verdict). The verdict function runs directly
on each window's correctness column (no processor, no wire): :func:`segment_verdicts` with the default
``PerformancePolicy`` (min_samples 500, alpha 0.01 Holm across all slices, accuracy tolerance 0.02).

Targets (issue 13): with the effect, ``c0`` degraded and ranked first in >= 90 % of windows of 20,000
joined outcomes; with no effect, <= 5 % of windows raise any segment alarm.

    python benchmarks/segment_calibration.py [--windows 400] [--seed 20261201]

Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from otel_ml.stats import PerformancePolicy
from otel_ml_processor._segments import pack, segment_verdicts, slices

BASE_ACCURACY = 0.90
SEGMENT_ACCURACY = 0.75
COUNTRY_SHARE = np.array([0.10] + [0.10] * 9)
CHANNEL_SHARE = np.array([0.4, 0.3, 0.2, 0.1])


def simulate(rng: np.random.Generator, rows: int, effect: bool) -> tuple[np.ndarray, np.ndarray]:
    """One window: (correct 1/0 per pair, packed segments per pair)."""
    country = rng.choice(len(COUNTRY_SHARE), rows, p=COUNTRY_SHARE / COUNTRY_SHARE.sum())
    channel = rng.choice(len(CHANNEL_SHARE), rows, p=CHANNEL_SHARE)
    accuracy = np.where(effect & (country == 0), SEGMENT_ACCURACY, BASE_ACCURACY)
    correct = (rng.random(rows) < accuracy).astype(np.float64)
    texts = {(a, b): pack({"country": f"c{a}", "channel": f"h{b}"})
             for a in range(len(COUNTRY_SHARE)) for b in range(len(CHANNEL_SHARE))}
    packed = np.array([texts[(a, b)] for a, b in zip(country.tolist(), channel.tolist())], dtype=object)
    return correct, packed


def rates(windows: int, rows: int, seed: int) -> dict[str, float]:
    """Share of windows where c0 is degraded and ranked 1 (effect), and with any alarm (no effect)."""
    rng = np.random.default_rng(seed)
    policy = PerformancePolicy()
    found = any_null = overall_moved = 0
    for _ in range(windows):
        correct, packed = simulate(rng, rows, effect=True)
        masks, _ = slices(packed, 100)
        res = {(v.name, v.value): v for v in segment_verdicts(correct, masks, "accuracy", policy)}
        c0 = res[("country", "c0")]
        found += c0.degraded == 1.0 and c0.rank == 1
        overall_moved += BASE_ACCURACY - correct.mean() > policy.tolerance("accuracy")
        correct, packed = simulate(rng, rows, effect=False)
        masks, _ = slices(packed, 100)
        any_null += any(v.degraded == 1.0 for v in segment_verdicts(correct, masks, "accuracy", policy))
    return {"found_and_first": found / windows, "null_alarm": any_null / windows,
            "overall_beyond_tolerance": overall_moved / windows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--windows", type=int, default=400)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=20261201)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    r = rates(args.windows, args.rows, args.seed)
    print(f"{args.windows} windows x {args.rows:,} pairs, seed {args.seed} ({time.perf_counter() - t0:.1f} s)")
    print(f"  c0 (10 %, 0.90 -> 0.75) degraded and ranked first: {100 * r['found_and_first']:.1f} %  (target >= 90 %)")
    print(f"  overall accuracy drop beyond the 0.02 tolerance:   {100 * r['overall_beyond_tolerance']:.1f} %")
    print(f"  no effect, any segment alarm:                     {100 * r['null_alarm']:.1f} %  (target <= 5 %)")
    return 0 if r["found_and_first"] >= 0.90 and r["null_alarm"] <= 0.05 else 1


if __name__ == "__main__":
    sys.exit(main())
