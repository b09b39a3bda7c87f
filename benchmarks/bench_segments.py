"""Cost of segmented realized performance in the processor's evaluation: one model version's windows
evaluated with and without segments (the ratio is what matters; both measured in the same run).

Each of ``--pairs`` joined pairs of a binary classifier carries two segments (``country``: 10 values,
``channel``: 4; 14 slices) or none; the evaluation snapshots the performance windows and evaluates the
two windows (5m, 1h) as the service does. Prints medians of ``--repeat`` runs.

    python benchmarks/bench_segments.py [--pairs 100000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from otel_ml.stats import PerformancePolicy
from otel_ml_processor._joins import Pair
from otel_ml_processor._performance import PerformanceWindows, TaskSpec
from otel_ml_processor._segments import pack

NOW = 1_800_000_000.0


def windows(pairs: int, segmented: bool) -> PerformanceWindows:
    rng = np.random.default_rng(1)
    texts = [pack({"country": f"c{a}", "channel": f"h{b}"}) for a in range(10) for b in range(4)]
    wrong = rng.random(pairs) < 0.1
    batch = [Pair("m", "1", bytes(16), 0, 0, int((NOW - 10) * 1000), str(i % 2), None, None, bytes(24),
                  str((i + int(wrong[i])) % 2), None, texts[i % 40] if segmented else "") for i in range(pairs)]
    w = PerformanceWindows((300.0, 3600.0), ("5m", "1h"), max_pairs=pairs)
    w.add("m", "1", batch, TaskSpec("binary", ("0", "1"), None))
    return w


def median_s(w: PerformanceWindows, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        w.snapshot().evaluate(NOW, PerformancePolicy())
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    plain = median_s(windows(args.pairs, False), args.repeat)
    seg = median_s(windows(args.pairs, True), args.repeat)
    print(f"{args.pairs:,} joined pairs, 2 windows, median of {args.repeat}")
    print(f"  without segments: {1000 * plain:.1f} ms")
    print(f"  with 2 segment columns (14 slices): {1000 * seg:.1f} ms  ({seg / plain:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
