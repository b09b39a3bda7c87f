"""Benchmark of @otel_ml.monitor: overhead against baselines measured in the same run.

    .venv/bin/python benchmarks/bench_monitor.py [--quick] [--wall]

Times are medians of the calling thread's CPU time per call (``--wall``: wall clock), so other
processes on a busy machine disturb them less.

1. 1 row x 20 features through a scikit-learn LogisticRegression, SDK TracerProvider (always-on sampler,
   a span processor exporting to a no-op exporter): decorator overhead vs. a wrapper that only opens one
   span (target: <= 2x).
2. 1000 x 20: decorator overhead vs. recording every value with the OTel SDK Histogram.record()
   (target: <= 1/100), with exact counts checked.
3. Thread safety: N threads, exact counts. 4. Memory: bounded whatever the input.
Prints medians; no asserts on time (the script exits non-zero only when counts are wrong).
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
import tracemalloc

import numpy as np
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExporter, MetricExportResult
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from sklearn.linear_model import LogisticRegression

import otel_ml
from otel_ml import semconv
from otel_ml._aggregate import aggregates

QUICK = "--quick" in sys.argv
#: Per-thread CPU time: other processes on a shared machine do not inflate it (``--wall`` for wall clock).
clock = time.perf_counter if "--wall" in sys.argv else time.thread_time


class NoopSpanExporter(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS


class NoopMetricExporter(MetricExporter):
    def __init__(self):
        super().__init__(preferred_temporality={}, preferred_aggregation={})
        self.last = None

    def export(self, metrics_data, timeout_millis=10_000, **kwargs):
        self.last = metrics_data
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis=0):
        return True

    def shutdown(self, timeout_millis=0, **kwargs):
        pass


def per_call(fn, arg, calls, rounds):
    """Median over rounds of the mean seconds per call."""
    samples = []
    for _ in range(rounds):
        t0 = clock()
        for _ in range(calls):
            fn(arg)
        samples.append((clock() - t0) / calls)
    return statistics.median(samples)


def interleaved(fns, arg, calls, rounds):
    """Medians per function, rounds interleaved so drift hits every variant alike."""
    samples = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = clock()
            for _ in range(calls):
                fn(arg)
            samples[name].append((clock() - t0) / calls)
    return {name: statistics.median(s) for name, s in samples.items()}


def us(s):
    return f"{s * 1e6:9.1f} µs"


def main() -> int:
    provider = TracerProvider(sampler=ALWAYS_ON)
    provider.add_span_processor(SimpleSpanProcessor(NoopSpanExporter()))
    trace.set_tracer_provider(provider)
    tracer = trace.get_tracer("bench")
    sink = NoopMetricExporter()
    otel_ml.configure(exporter=sink, export_interval_s=3600)

    rng = np.random.default_rng(0)
    n_feat = 20
    X = rng.normal(size=(5000, n_feat))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    clf = LogisticRegression(max_iter=200).fit(X, y)
    ref = otel_ml.build_reference(X, model="bench", version="1", predictions=clf.predict_proba(X), class_names=clf.classes_)

    def bare(x):
        return clf.predict_proba(x)

    def span_only(x):
        with tracer.start_as_current_span("predict bench"):
            return clf.predict_proba(x)

    decorated = otel_ml.monitor(model="bench", version="1", reference=ref)(bare)
    ok = True

    # 1. one row
    one = X[:1].copy()
    for f in (bare, span_only, decorated):
        per_call(f, one, 200, 2)  # warm-up
    calls, rounds = (200, 15) if QUICK else (200, 61)
    r = interleaved({"bare": bare, "span": span_only, "monitor": decorated}, one, calls, rounds)
    span_oh = r["span"] - r["bare"]
    mon_oh = r["monitor"] - r["bare"]
    print(f"clock: {'wall' if clock is time.perf_counter else 'thread CPU time'}; medians")
    print("1) 1 row x 20 features, LogisticRegression.predict_proba, always-on sampler")
    print(f"   bare predict          {us(r['bare'])}")
    print(f"   span-only wrapper     {us(r['span'])}   overhead {us(span_oh)}")
    print(f"   @otel_ml.monitor      {us(r['monitor'])}   overhead {us(mon_oh)}")
    print(f"   ratio monitor/span overhead = {mon_oh / span_oh:.2f}  (target <= 2)")

    # 2. 1000 x 20
    big = rng.normal(size=(1000, n_feat))
    mp = MeterProvider(metric_readers=[InMemoryMetricReader()])
    hist = mp.get_meter("bench").create_histogram("bench.value")
    attrs = [{semconv.FEATURE_NAME: f"x{j}"} for j in range(n_feat)]
    positive = np.abs(big)  # record() drops negative values (with a warning each): give it only positives
    rows_list = positive.tolist()

    def record_each(_):
        for row in rows_list:
            for j, v in enumerate(row):
                hist.record(v, attrs[j])

    rec_rounds = 3 if QUICK else 5
    rec_t = per_call(record_each, None, 1, rec_rounds)
    for f in (bare, decorated):
        per_call(f, big, 5, 2)
    calls, rounds = (10, 9) if QUICK else (10, 61)
    before = aggregates()[0].rows
    r2 = interleaved({"bare": bare, "monitor": decorated}, big, calls, rounds)
    mon2 = r2["monitor"] - r2["bare"]
    print("2) 1000 rows x 20 features")
    print(f"   Histogram.record() per value {rec_t * 1e3:9.1f} ms")
    print(f"   bare predict          {us(r2['bare'])}")
    print(f"   @otel_ml.monitor      {us(r2['monitor'])}   overhead {us(mon2)}")
    print(f"   ratio monitor overhead / record() = 1/{rec_t / mon2:.0f}  (target <= 1/100)")
    otel_ml.flush(5.0)
    agg = aggregates()[0]
    n_calls = agg.rows - before
    counts = agg.num_counts.reshape(agg.numeric.k, agg.numeric.width)
    # exact-count check on a fresh batch
    snapshot_before = counts.copy()
    decorated(big)
    after = agg.num_counts.reshape(agg.numeric.k, agg.numeric.width)
    exact = True
    for j in range(n_feat):
        e = np.asarray(ref.features[j].edges)
        expect = np.bincount(np.searchsorted(e, big[:, j], side="left"), minlength=len(e) + 1)
        exact &= (after[j, : len(e) + 1] - snapshot_before[j, : len(e) + 1]).tolist() == expect.tolist()
    print(f"   counts exact: {exact}  ({n_calls} rows of timed batches counted)")
    ok &= exact

    # 3. threads
    n_threads, per_thread = 8, (200 if QUICK else 1000)
    start_rows = agg.rows
    barrier = threading.Barrier(n_threads)

    def worker():
        barrier.wait()
        for i in range(per_thread):
            decorated(X[i % 100: i % 100 + 1])

    threads = [threading.Thread(target=worker) for _ in range(n_threads)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.perf_counter() - t0
    got = agg.rows - start_rows
    thread_ok = got == n_threads * per_thread
    print(f"3) threads: {n_threads} x {per_thread} calls in {dt:.2f} s; rows counted {got} "
          f"(expected {n_threads * per_thread}): {'exact' if thread_ok else 'WRONG'}")
    ok &= thread_ok

    # 4. memory
    mem_calls = 2000 if QUICK else 20000
    hostile = [
        {f"x{j}": [f"junk{i}"] * 3 for j in range(n_feat)} for i in range(50)
    ] + [rng.normal(scale=1e6, size=(10, n_feat)), None, "text", np.zeros((3, 7))]
    # a stub model (same model version, same counters): sklearn rejecting junk would dominate the time
    stub = otel_ml.monitor(model="bench", version="1", reference=ref)(lambda x: None)

    def hammer(n):
        for i in range(n):
            stub(hostile[i % len(hostile)])

    hammer(len(hostile) * 4)  # warm-up: first-call caches of numpy, sklearn, the SDK
    nbytes0 = agg.nbytes()
    tracemalloc.start(5)
    before_snap = tracemalloc.take_snapshot()
    hammer(mem_calls)
    after_snap = tracemalloc.take_snapshot()
    tracemalloc.stop()
    only_lib = [tracemalloc.Filter(True, "*/otel_ml/*")]
    lib_growth = sum(st.size_diff for st in after_snap.filter_traces(only_lib).compare_to(
        before_snap.filter_traces(only_lib), "filename"))
    all_growth = sum(st.size_diff for st in after_snap.compare_to(before_snap, "filename"))
    print(f"4) memory: counters {nbytes0} B before, {agg.nbytes()} B after {mem_calls} hostile calls; "
          f"heap growth allocated from otel_ml {lib_growth / 1024:.1f} KiB (whole process {all_growth / 1024:.1f} KiB)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
