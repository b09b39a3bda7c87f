"""Cost of drift and data-quality segments on the predict path (issue 13): ``monitor(segments=[...])`` against
the same monitored call without segments, both against the bare model call, measured in the same run.

    .venv/bin/python benchmarks/bench_segment_metrics.py [--quick] [--wall]

A stub model (returns fixed class probabilities) over 20 numeric features; two segment columns, ``country``
(12 values, 10 in the reference's "segments" section) and ``channel`` (4 values), not features. Inputs:

* 1,000 x 20 pandas DataFrame with the segment columns as strings, and as ``category`` (the unsegmented
  call gets the same frame; a third line compares with the unsegmented call on the 20 features alone);
* 1,000 x 20 numpy matrix, the segments from a callable (precomputed arrays);
* 1 x 20 numpy row, segments from a callable; and a 1-row DataFrame.

Overhead = monitored - bare; the target is segmented overhead <= 2 x unsegmented overhead for the
1,000 x 20 call. Times are medians of interleaved rounds of the calling thread's CPU time per call
(``--wall``: wall clock). The per-segment counts are checked exact at the end (exit 1 otherwise).
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np
import pandas as pd
from _harness import install_sdk, us

import otel_ml
from otel_ml import semconv

QUICK = "--quick" in sys.argv
clock = time.perf_counter if "--wall" in sys.argv else time.thread_time
N_FEAT = 20


def interleaved(fns, args, calls, rounds):
    """Median seconds per call of each function on its argument, rounds interleaved."""
    samples = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            arg = args[name]
            t0 = clock()
            for _ in range(calls):
                fn(arg)
            samples[name].append((clock() - t0) / calls)
    return {name: statistics.median(s) for name, s in samples.items()}


def report(title, r):
    plain, seg = r["plain"] - r["bare"], r["segments"] - r["bare"]
    print(f"{title}\n   bare {us(r['bare'])}   overhead without segments {us(plain)}   with 2 segments {us(seg)}"
          f"   ratio {seg / plain:.2f}x (target <= 2x)")
    return seg / plain


def main() -> int:
    sink = install_sdk()

    rng = np.random.default_rng(0)
    n_ref = 20_000
    feats = [f"f{i}" for i in range(N_FEAT)]
    countries = [f"c{i}" for i in range(12)]
    channels = ["web", "app", "store", "phone"]
    X_ref = pd.DataFrame(rng.normal(size=(n_ref, N_FEAT)), columns=feats)
    proba = rng.uniform(size=n_ref)
    ref = otel_ml.build_reference(
        X_ref, model="bench-seg", version="1", predictions=np.column_stack([1 - proba, proba]), top_k=10,
        segments={"country": rng.choice(countries, n_ref), "channel": rng.choice(channels, n_ref)})

    n = 1000
    X = rng.normal(size=(n, N_FEAT))
    P = np.column_stack([np.full(n, 0.3), np.full(n, 0.7)])
    country = rng.choice(countries, n)
    channel = rng.choice(channels, n)
    frame = pd.DataFrame(X, columns=feats)
    frame_seg = frame.assign(country=country.astype(object), channel=channel.astype(object))
    frame_cat = frame.assign(country=pd.Categorical(country), channel=pd.Categorical(channel))
    one = X[:1].copy()
    P1 = P[:1].copy()
    frame1_seg = frame_seg.iloc[:1].copy()

    def model(x):
        return P if len(x) == n else P1

    plain = otel_ml.monitor(model="bench-seg", version="1", reference=ref)(model)
    by_name = otel_ml.monitor(model="bench-seg", version="1", reference=ref, segments=["country", "channel"])(model)
    seg_arrays = {n: {"country": country, "channel": channel}, 1: {"country": country[:1], "channel": channel[:1]}}
    by_callable = otel_ml.monitor(model="bench-seg", version="1", reference=ref,
                                  segments=lambda x: seg_arrays[len(x)])(model)

    calls, rounds = (20, 5) if QUICK else (200, 15)
    fns = {"bare": model, "plain": plain, "segments": by_name}
    ratios = [report("1,000 x 20 DataFrame, segments as strings (pandas str dtype), the same frame unsegmented:",
                     interleaved(fns, {"bare": frame_seg, "plain": frame_seg, "segments": frame_seg}, calls, rounds)),
              report("1,000 x 20 DataFrame, segments as pandas category, the same frame unsegmented:",
                     interleaved(fns, {"bare": frame_cat, "plain": frame_cat, "segments": frame_cat}, calls, rounds))]
    report("1,000 x 20 DataFrame with segment columns vs the unsegmented call on the 20 features alone\n"
           "   (includes adapting a frame wider than the features: off the all-numeric fast path):",
           interleaved(fns, {"bare": frame_seg, "plain": frame, "segments": frame_seg}, calls, rounds))
    fns = {"bare": model, "plain": plain, "segments": by_callable}
    ratios.append(report("1,000 x 20 numpy matrix, segments from a callable:",
                         interleaved(fns, {"bare": X, "plain": X, "segments": X}, calls, rounds)))
    calls1 = calls * 10
    report("1 x 20 numpy row, segments from a callable:",
           interleaved(fns, {"bare": one, "plain": one, "segments": one}, calls1, rounds))
    fns = {"bare": model, "plain": plain, "segments": by_name}
    report("1 x 20 DataFrame row, segments as columns, the same frame unsegmented:",
           interleaved(fns, {"bare": frame1_seg, "plain": frame1_seg, "segments": frame1_seg}, calls1, rounds))
    print(f"1,000 x 20 ratios: {', '.join(f'{r:.2f}x' for r in ratios)}")

    # exact counts: one more call of each kind on a fresh aggregate state is not needed; check totals instead
    otel_ml.flush(10)
    rows = {}
    for rm in sink.last.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name == semconv.SEGMENT_ROWS:
                    for p in m.data.data_points:
                        key = (p.attributes[semconv.SEGMENT_NAME], p.attributes[semconv.SEGMENT_VALUE])
                        rows[key] = p.value
                if m.name == semconv.PREDICT_ROWS:
                    total = sum(p.value for p in m.data.data_points)
    segmented_rows = sum(v for (name, _), v in rows.items() if name == "country")
    plain_calls_rows = total - segmented_rows
    ok = segmented_rows == sum(v for (name, _), v in rows.items() if name == "channel") and plain_calls_rows > 0
    ok &= len([k for k in rows if k[0] == "country"]) == 11  # 10 reference values + __other__
    print("counts", "ok" if ok else "WRONG", f"({segmented_rows} segmented rows)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
