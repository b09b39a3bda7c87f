"""Processor ingest throughput: decode + state update of OTLP histogram points, on one core.

Workload: requests as an OTel Collector forwards them, each holding 10 pods x 100 features of
``ml.feature.value`` histograms with 20 buckets (1,000 histogram points), successive cumulative
exports of the same series (so every point is a real increment), plus an unrelated metric that
must be skipped. The processor path is the service's: lean decode with the histogram structure
cache (``_template.py``; each pod's payload misses twice, then hits) and the vectorised state update;
the rate without the cache is shown too. Steady state: the first exports (series creation, cache
learning) are not timed; each rate is the best of 7 passes (the machine may be shared).

Baselines measured in the same run, on the same bytes:

* ``do-nothing receiver``: what a Python OTLP receiver that does nothing with the data still has
  to do to *receive* it -- parse the request with the standard generated classes and read every
  data point's attributes, timestamps and values into Python objects, then drop them;
* ``parse only``: ``ExportMetricsServiceRequest.FromString`` alone (the C parser, no Python object
  per point), shown for reference only;
* ``do-nothing grpc.aio receiver`` (end to end): a grpc.aio server whose handler only parses the
  request with the generated deserializer, against ``python -m otel_ml_processor``, each pinned to one
  core, the client on another, 4 requests in flight; interleaved rounds, each sending both servers
  the same fresh exports (later than any sent before: no replayed duplicates); medians.

Targets (issue): >= 100,000 histogram points/s, and >= 0.5x "a do-nothing Python OTLP receiver
measured in the same run": checked against both do-nothing receivers (in-process, and end to end
over OTLP/gRPC). ``parse only`` is not a receiver and has no target. Timings on a shared machine
are noisy.

Run: ``python benchmarks/bench_processor_ingest.py [--strict]`` (``--strict``: exit 1 on a miss).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "collector"))

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest  # noqa: E402
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue  # noqa: E402

from otel_ml import build_reference, semconv  # noqa: E402
from otel_ml_processor._decode import decode_protobuf  # noqa: E402
from otel_ml_processor._state import State  # noqa: E402
from otel_ml_processor._store import ReferenceStore  # noqa: E402
from otel_ml_processor._template import TemplateCache  # noqa: E402

PODS = 10
FEATURES = 100
BINS = 20
EXPORTS = 30


def _kv(k: str, v: str) -> KeyValue:
    return KeyValue(key=k, value=AnyValue(string_value=v))


def build_payloads(exports: int = EXPORTS) -> tuple[ReferenceStore, list[bytes]]:
    """``exports`` successive cumulative exports of the same series (every point a real increment)."""
    rng = np.random.default_rng(0)
    data = {f"feature_{i:03d}": rng.normal(0, 1, 5000) for i in range(FEATURES)}
    ref = build_reference(data, model="bench", version="1", bins=BINS)
    store = ReferenceStore(None)
    store.put(ref)
    start = time.time_ns()
    assert all(len(f.edges) + 1 == BINS for f in ref.features)
    counts = np.zeros((PODS * FEATURES, BINS), dtype=np.int64)  # cumulative bucket counts, point by point
    # One request, built once; each export sets its numbers in place (same structure, later values).
    req = ExportMetricsServiceRequest()
    points = []
    for p in range(PODS):
        rm = req.resource_metrics.add()
        rm.resource.attributes.extend([_kv("service.name", "api"), _kv("service.instance.id", f"pod-{p}")])
        sm = rm.scope_metrics.add()
        sm.scope.name = "otel_ml"
        m = sm.metrics.add(name=semconv.FEATURE_VALUE)
        m.histogram.aggregation_temporality = 2
        for f in ref.features:
            dp = m.histogram.data_points.add(start_time_unix_nano=start)
            dp.attributes.extend([_kv(semconv.MODEL_NAME, "bench"), _kv(semconv.MODEL_VERSION, "1"),
                                  _kv(semconv.FEATURE_NAME, f.name)])
            dp.explicit_bounds.extend(f.edges)
            points.append(dp)
        other = sm.metrics.add(name="http.server.request.duration")
        other.gauge.data_points.add(time_unix_nano=start, as_double=1.0)
    payloads = []
    for k in range(exports):
        now = start + (k + 1) * 10**9
        counts += rng.integers(0, 20, size=counts.shape)
        for dp, row, total in zip(points, counts.tolist(), counts.sum(axis=1).tolist()):
            dp.time_unix_nano = now
            dp.count = total
            dp.bucket_counts[:] = row
        payloads.append(req.SerializeToString())
    return store, payloads


WARMUP = 3  # exports that create the series and teach the structure cache; not timed


def do_nothing_receiver(payloads: list[bytes]) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = 0
    for body in payloads[WARMUP:]:
        req = ExportMetricsServiceRequest.FromString(body)
        for rm in req.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.HasField("histogram"):
                        for dp in m.histogram.data_points:
                            _ = ({kv.key: kv.value.string_value for kv in dp.attributes}, dp.start_time_unix_nano,
                                 dp.time_unix_nano, dp.count, list(dp.bucket_counts), list(dp.explicit_bounds))
                            n += 1
    return time.perf_counter() - t0, n


def parse_only(payloads: list[bytes]) -> tuple[float, int]:
    t0 = time.perf_counter()
    for body in payloads[WARMUP:]:
        ExportMetricsServiceRequest.FromString(body)
    return time.perf_counter() - t0, (len(payloads) - WARMUP) * PODS * FEATURES


def processor(store: ReferenceStore, payloads: list[bytes], cached: bool = True) -> tuple[float, int]:
    state = State(store, epoch_ns=0)
    cache = TemplateCache() if cached else None  # as the service's Ingestor does
    for body in payloads[:WARMUP]:
        state.ingest(decode_protobuf(body, cache))
    t0 = time.perf_counter()
    n = 0
    for body in payloads[WARMUP:]:
        res = state.ingest(decode_protobuf(body, cache))
        n += res.accepted
    elapsed = time.perf_counter() - t0
    assert n == (len(payloads) - WARMUP) * PODS * FEATURES, n
    return elapsed, n


def rate(fn, *args) -> float:
    dt, n = fn(*args)
    return n / dt


_DO_NOTHING_SERVER = """
import asyncio, grpc
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest as Req, ExportMetricsServiceResponse as Resp)
async def main():
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 << 20)])
    async def export(request, context):
        return Resp()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "opentelemetry.proto.collector.metrics.v1.MetricsService",
        {"Export": grpc.unary_unary_rpc_method_handler(
            export, request_deserializer=Req.FromString, response_serializer=Resp.SerializeToString)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"ready grpc=127.0.0.1:{port}", flush=True)
    await server.wait_for_termination()
asyncio.run(main())
"""


def _pin(cpu: int) -> None:
    try:
        os.sched_setaffinity(0, {cpu % (os.cpu_count() or 1)})
    except (AttributeError, OSError):
        pass


def _start(cmd: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: _pin(0))
    assert proc.stdout is not None
    for line in proc.stdout:
        m = re.search(r"ready grpc=(\S+)", line)
        if m:
            threading.Thread(target=proc.stdout.read, daemon=True).start()  # drain
            return proc, m.group(1)
    raise RuntimeError(f"{cmd[:3]} did not start")


E2E_ROUNDS = 5  # interleaved rounds per server; the figure is the median
E2E_REQUESTS = 120  # timed requests per round
E2E_INFLIGHT = 4


def _blast(target: str, payloads: list[bytes], inflight: int = E2E_INFLIGHT) -> float:
    """Send ``payloads`` once each (the first WARMUP untimed), ``inflight`` at a time; timed points/s."""
    import asyncio

    import grpc

    async def run() -> float:
        ch = grpc.aio.insecure_channel(target, options=[("grpc.max_send_message_length", 64 << 20)])
        call = ch.unary_unary("/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
                              request_serializer=None, response_deserializer=None)
        for body in payloads[:WARMUP]:
            await call(body)
        timed = payloads[WARMUP:]
        t0 = time.perf_counter()

        async def worker(k: int) -> None:
            for i in range(k, len(timed), inflight):
                await call(timed[i])

        await asyncio.gather(*(worker(k) for k in range(inflight)))
        dt = time.perf_counter() - t0
        await ch.close()
        return len(timed) * PODS * FEATURES / dt

    return asyncio.run(run())


def end_to_end(store: ReferenceStore) -> tuple[list[float], list[float]]:
    """Points/s per round through a real OTLP/gRPC receiver on one core: do-nothing receiver, processor.

    Each round sends both servers the same fresh exports, later than any sent before, so that every
    point is a new cumulative point for the processor (as from a Collector), not a replayed duplicate.
    """
    per_round = WARMUP + E2E_REQUESTS
    _, payloads = build_payloads(E2E_ROUNDS * per_round)
    _pin(1)
    with tempfile.TemporaryDirectory() as refs:
        store.get("bench", "1").reference.save(os.path.join(refs, "bench.json"))  # type: ignore[union-attr]
        base_proc, base_target = _start([sys.executable, "-c", _DO_NOTHING_SERVER])
        ours_proc, ours_target = _start([sys.executable, "-m", "otel_ml_processor", "--otlp-grpc", "127.0.0.1:0",
                                         "--otlp-http", "none", "--export-endpoint", "none",
                                         "--references", refs])
        try:
            base: list[float] = []
            ours: list[float] = []
            for r in range(E2E_ROUNDS):  # interleaved: the machine's load changes over time
                batch = payloads[r * per_round: (r + 1) * per_round]
                base.append(_blast(base_target, batch))
                ours.append(_blast(ours_target, batch))
        finally:
            for p in (base_proc, ours_proc):
                p.terminate()
                p.wait()
    return base, ours


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--strict", action="store_true")
    ap.add_argument("--no-e2e", action="store_true", help="skip the end-to-end gRPC comparison")
    args = ap.parse_args()
    store, payloads = build_payloads()
    print(f"workload: {len(payloads)} requests x {PODS * FEATURES} histogram points ({BINS} buckets), "
          f"{sum(map(len, payloads)) / len(payloads) / 1024:.0f} KiB each")
    base = parse = ours = cold = 0.0
    for _ in range(7):  # interleaved, best of each
        base = max(base, rate(do_nothing_receiver, payloads))
        parse = max(parse, rate(parse_only, payloads))
        ours = max(ours, rate(processor, store, payloads))
        cold = max(cold, rate(processor, store, payloads, False))
    print(f"do-nothing receiver (parse + read points): {base:12,.0f} points/s")
    print(f"parse only (FromString):                   {parse:12,.0f} points/s")
    print(f"processor (decode + state update):         {ours:12,.0f} points/s  (structure cache, as deployed)")
    print(f"processor without the structure cache:     {cold:12,.0f} points/s  (first exports of a pod)")
    ratio = ours / base
    print(f"ratio vs do-nothing receiver: {ratio:.2f}x (target >= 0.5x); "
          f"vs parse only: {ours / parse:.2f}x (reference only, no target)")
    # The issue's targets: >= 100,000 points/s, and >= 0.5x "a do-nothing Python OTLP receiver measured
    # in the same run" -- the do-nothing receivers above (in-process) and below (over gRPC). A bare
    # FromString is not a receiver (it reads no point); its ratio is shown for reference only.
    ratios = {"do-nothing receiver, in-process": ratio}
    if not args.no_e2e:
        e2e_base, e2e_ours = end_to_end(store)
        mb, mo = statistics.median(e2e_base), statistics.median(e2e_ours)
        per_round = [o / b for o, b in zip(e2e_ours, e2e_base)]
        ratios["do-nothing grpc.aio receiver, end to end"] = mo / mb
        print(f"end to end over OTLP/gRPC: each server pinned to one core, {E2E_INFLIGHT} requests in flight, "
              f"{E2E_ROUNDS} interleaved rounds of {E2E_REQUESTS} fresh exports (medians):")
        print(f"  do-nothing grpc.aio receiver (generated deserializer): {mb:12,.0f} points/s")
        print(f"  otel-ml processor (python -m otel_ml_processor):       {mo:12,.0f} points/s")
        print(f"  END-TO-END RATIO processor / do-nothing grpc.aio receiver: {mo / mb:.2f}x (target >= 0.5x; "
              f"per round {min(per_round):.2f}-{max(per_round):.2f}x)")
    ok = ours >= 100_000 and min(ratios.values()) >= 0.5
    summary = ", ".join(f"vs {k} {v:.2f}x" for k, v in ratios.items())
    print(f"targets (issue): >= 100,000 points/s ({ours:,.0f}) and >= 0.5x a do-nothing Python OTLP receiver "
          f"({summary}): {'PASS' if ok else 'MISS'}")
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
