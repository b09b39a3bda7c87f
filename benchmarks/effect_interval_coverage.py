"""Coverage of the drift score's 95 % bootstrap interval (:func:`otel_ml.stats.effect_interval`).

Seeded generator: a reference of 20,000 rows in 20 buckets of a normal output; windows of ``--rows`` rows drawn
from it shifted by 0, 0.1, 0.25 and 0.5 reference SDs (numeric: Wasserstein) and from a categorical mix moved by
0 or 0.05 (total variation). Per case, the share of windows whose interval holds the true distance (the
distance of the window's population to the reference). Expected: about 0.95 once the shift clearly exceeds
the noise; far below near 0 (a distance is biased upward there, and so is its percentile interval).
Run: ``python benchmarks/effect_interval_coverage.py [--rows 2000] [--windows 1000]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.special import ndtr

from otel_ml.stats import effect_interval, effect_size


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--windows", type=int, default=1000)
    args = ap.parse_args()
    rng = np.random.default_rng(20261201)
    edges = np.linspace(-2.5, 2.5, 19)
    pos = np.concatenate([[-2.75], 0.5 * (edges[1:] + edges[:-1]), [2.75]])

    def probs(shift: float) -> np.ndarray:
        return np.diff(np.concatenate([[0.0], ndtr(edges - shift), [1.0]]))

    ref = probs(0.0) * 20_000
    print(f"{args.windows} windows of {args.rows} rows each, 200 resamples, 95 % percentile intervals")
    for shift in (0.0, 0.1, 0.25, 0.5):
        truth = effect_size(ref[None], probs(shift)[None], numeric=[True], positions=pos[None], spread=[1.0])[0]
        cur = rng.multinomial(args.rows, probs(shift), size=args.windows).astype(float)
        t0 = time.perf_counter()
        lo, hi = effect_interval(np.tile(ref, (args.windows, 1)), cur, numeric=np.ones(args.windows, bool),
                                 positions=np.tile(pos, (args.windows, 1)), spread=np.ones(args.windows))
        took = time.perf_counter() - t0
        cover = ((lo <= truth) & (truth <= hi)).mean()
        print(f"numeric shift {shift:4.2f} SD: true W {truth:.3f}, coverage {cover:.3f}, mean width "
              f"{(hi - lo).mean():.3f} ({took * 1e6 / args.windows:.0f} us per stream)")
    base = np.array([0.5, 0.3, 0.15, 0.05])
    for moved in (0.0, 0.05):
        p = base + np.array([-moved, 0.0, 0.0, moved])
        truth = 0.5 * np.abs(p - base).sum()
        cur = rng.multinomial(args.rows, p, size=args.windows).astype(float)
        lo, hi = effect_interval(np.tile(base * 20_000, (args.windows, 1)), cur,
                                 numeric=np.zeros(args.windows, bool), positions=np.full((args.windows, 4), np.nan),
                                 spread=np.ones(args.windows))
        cover = ((lo <= truth) & (truth <= hi)).mean()
        print(f"categorical, {moved:.2f} of the mass moved: true TV {truth:.3f}, coverage {cover:.3f}, "
              f"mean width {(hi - lo).mean():.3f}")


if __name__ == "__main__":
    main()
