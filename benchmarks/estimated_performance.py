"""Does the estimated performance (otel_ml.stats.estimate_binary) track the realized one? Own generator, seeded.

Three features ``x ~ N(0, I)``; the truth is ``P(y = 1 | x) = sigmoid(2 s + 0.3)`` with ``s = 1.5 x0 - x1``
(``x2`` carries no weight). The model is overconfident: it outputs ``sigmoid(1.6 (2 s + 0.3))``, so the
reference's calibration curve has work to do. The reference is built with ``build_reference(...,
labels=y)`` on a holdout of 20,000 rows without shift; its ``proba:1`` edges bin every window, as the
library's histogram does.

* **Covariate shift of size d**: ``x0`` and ``x1`` shrink by ``1 / (1 + d)`` (more rows near the decision
  boundary: accuracy falls) and ``x2`` moves by ``d``; ``P(y | x)`` is unchanged.
* **Concept drift**: labels flip where ``x2 > z`` (a share of the rows); the inputs, hence the
  probabilities and the estimate, do not move, while the realized accuracy falls.

Per window of ``--rows`` (2,000): the estimate from the window's histogram, the realized metrics from its
labels. Per cell: mean realized and estimated accuracy, mean absolute error of the estimate, the share of
windows whose interval covers the realized value (accuracy, F1, ROC AUC) and the interval's mean width.

    python benchmarks/estimated_performance.py [--windows 200] [--rows 2000] [--bins 10] [--seed 20261201]

Exits 1 when, under covariate shift, the accuracy's MAE exceeds 0.02 or its coverage falls below 90 %,
or when the concept drift's gap (realized minus estimated) is not at least half the drop it causes.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass

import numpy as np

from otel_ml import build_reference
from otel_ml.reference import NumericProfile, Reference
from otel_ml.stats import classification_metrics, estimate_binary

HOLDOUT = 20_000
OVERCONFIDENCE = 1.6
METRICS = ("accuracy", "f1", "roc_auc")


def draw(n: int, rng: np.random.Generator, shift: float = 0.0, flip_share: float = 0.0
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x, y, p)``: features, labels and the model's probability of class 1."""
    x = rng.standard_normal((n, 3))
    x[:, :2] /= 1 + shift
    x[:, 2] += shift
    logit = 2 * (1.5 * x[:, 0] - x[:, 1]) + 0.3
    y = rng.random(n) < 1 / (1 + np.exp(-logit))
    if flip_share > 0:
        cut = _upper_quantile(flip_share) + shift
        y = np.where(x[:, 2] > cut, ~y, y)
    p = 1 / (1 + np.exp(-OVERCONFIDENCE * logit))
    return x, y, p


def _upper_quantile(share: float) -> float:
    """``z`` with ``P(N(0, 1) > z) = share`` (bisection on erfc)."""
    lo, hi = -10.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if 0.5 * math.erfc(mid / math.sqrt(2)) > share else (lo, mid)
    return (lo + hi) / 2


def reference(rng: np.random.Generator, bins: int) -> Reference:
    x, y, p = draw(HOLDOUT, rng)
    return build_reference(x, model="estimated-bench", version="1", predictions=np.column_stack([1 - p, p]),
                           class_names=["0", "1"], labels=y.astype(int).astype(str), bins=bins)


def edges_of(ref: Reference) -> np.ndarray:
    prof = next(o for o in ref.outputs if o.name == "proba:1")
    assert isinstance(prof, NumericProfile)
    return np.asarray(prof.edges)


@dataclass(frozen=True)
class Cell:
    name: str
    realized: float
    estimated: float
    mae: float
    coverage: dict[str, float]
    width: float

    @property
    def gap(self) -> float:
        return self.realized - self.estimated


def run_cell(name: str, ref: Reference, windows: int, rows: int, rng: np.random.Generator, *,
             shift: float = 0.0, flip_share: float = 0.0) -> Cell:
    edges = edges_of(ref)
    calibration = ref.performance.calibration if ref.performance else ()
    real_acc, est_acc, width = [], [], []
    covered = dict.fromkeys(METRICS, 0)
    for _ in range(windows):
        _, y, p = draw(rows, rng, shift, flip_share)
        counts = np.bincount(np.searchsorted(edges, p, side="left"), minlength=len(edges) + 1)
        est = estimate_binary(edges, counts, calibration)
        real = classification_metrics(y.astype(int).astype(str), None, p, ["0", "1"])
        for m in METRICS:
            covered[m] += est[m].lower <= real[m].value <= est[m].upper
        real_acc.append(real["accuracy"].value)
        est_acc.append(est["accuracy"].value)
        width.append(est["accuracy"].upper - est["accuracy"].lower)
    r, e = np.asarray(real_acc), np.asarray(est_acc)
    return Cell(name, float(r.mean()), float(e.mean()), float(np.abs(r - e).mean()),
                {m: covered[m] / windows for m in METRICS}, float(np.mean(width)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--windows", type=int, default=200)
    ap.add_argument("--rows", type=int, default=2_000)
    ap.add_argument("--bins", type=int, default=10, help="the reference's bins (proba:1 edges)")
    ap.add_argument("--seed", type=int, default=20261201)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    ref = reference(rng, args.bins)
    shifts = [run_cell(f"covariate d={d:g}", ref, args.windows, args.rows, rng, shift=d) for d in (0, 0.25, 0.5, 1, 2)]
    concept = [run_cell(f"concept flip {s:.0%}", ref, args.windows, args.rows, rng, flip_share=s) for s in (0.05, 0.2)]
    print(f"estimated vs realized, {args.windows} windows x {args.rows:,} rows, reference {HOLDOUT:,} rows, "
          f"{len(edges_of(ref)) + 1} proba buckets, seed {args.seed}")
    print(f"{'scenario':<20} {'realized':>9} {'estimated':>9} {'MAE':>7} {'gap':>7} {'cov acc':>8} {'cov f1':>7} "
          f"{'cov auc':>8} {'width':>7}")
    for c in (*shifts, *concept):
        print(f"{c.name:<20} {c.realized:9.4f} {c.estimated:9.4f} {c.mae:7.4f} {c.gap:+7.4f} "
              f"{c.coverage['accuracy']:8.1%} {c.coverage['f1']:7.1%} {c.coverage['roc_auc']:8.1%} {c.width:7.4f}")
    print(f"({time.perf_counter() - t0:.1f} s)")
    ok = all(c.mae <= 0.02 and c.coverage["accuracy"] >= 0.9 for c in shifts)
    base = shifts[0].realized
    ok &= all(-c.gap >= 0.5 * (base - c.realized) > 0 for c in concept)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
