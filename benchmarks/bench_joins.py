"""Join store: outcomes joined per second on one core, disk bytes per waiting prediction, RSS vs waiting rows.

Workload: a binary classifier's prediction records as the library sends them (32-hex keyed-hash id,
label, two probabilities, trace and span id), in requests of 1,000 records; then their outcomes in
requests of 1,000, each matching a waiting prediction. Everything runs on this thread (the service
runs the store on one worker thread), with the file under a temporary directory.

Rates are per CPU second of this process (``time.process_time``: the store runs on this thread, so
that is "on one core" even when the machine is shared and wall-clock time is mostly waiting for a
CPU); ``--wall`` measures elapsed time instead (fsync waits included).

* ``joins/s``: outcome requests through the service's path -- lean decode of the OTLP bytes
  (``_records.decode_logs``) + ``JoinStore.add`` (set-wise join, commit) -- median rate over the
  timed requests, for ``synchronous=normal`` (the default; kill -9 safe) and ``full`` (power-loss
  safe). Baseline in the same run: the same rows inserted with ``executemany`` into a plain
  rowid table and committed (the cheapest a SQLite-backed store can do per request): the ratio says
  what the join costs over plain durable writes.
* ``bytes/row``: file size (database + WAL after a checkpoint) / waiting predictions, at the end.
* ``RSS``: the process's resident memory after each step of waiting predictions (it should stay flat:
  waiting predictions live in SQLite, whose page cache is bounded).

Targets (issue 11): >= 50,000 outcomes/s; 10 M waiting predictions <= 1 GB (<= ~100 B/row); RSS flat.

Run: ``python benchmarks/bench_joins.py [--rows 1000000] [--strict]``.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import sqlite3
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "collector"))

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.logs.v1 import logs_pb2

from otel_ml import semconv
from otel_ml_processor._joins import JoinStore
from otel_ml_processor._records import decode_logs

BATCH = 1000  # records per request (--batch)
#: CPU seconds of this process by default: "on one core" on a shared machine (--wall: elapsed time).
CLOCK = time.process_time
NOW = time.time_ns()


def _id(i: int) -> str:
    return hmac.new(b"bench", str(i).encode(), hashlib.sha256).hexdigest()[:32]


def _kv(k: str, v: AnyValue) -> KeyValue:
    return KeyValue(key=k, value=v)


def _request(records: list[logs_pb2.LogRecord]) -> bytes:
    req = ExportLogsServiceRequest()
    sl = req.resource_logs.add().scope_logs.add()
    sl.scope.name = "otel_ml"
    sl.log_records.extend(records)
    return req.SerializeToString()


def predictions(lo: int, hi: int) -> bytes:
    recs = []
    for i in range(lo, hi):
        p1 = (i % 97) / 97
        recs.append(logs_pb2.LogRecord(
            time_unix_nano=NOW + i, event_name=semconv.EVENT_PREDICTION, trace_id=os.urandom(16),
            span_id=os.urandom(8), attributes=[
                _kv(semconv.MODEL_NAME, AnyValue(string_value="fraud")),
                _kv(semconv.MODEL_VERSION, AnyValue(string_value="3")),
                _kv(semconv.PREDICTION_ID, AnyValue(string_value=_id(i))),
                _kv(semconv.PREDICTION_LABEL, AnyValue(string_value=str(int(p1 > 0.5)))),
                _kv(semconv.PREDICTION_PROBABILITIES, AnyValue(array_value=ArrayValue(
                    values=[AnyValue(double_value=1 - p1), AnyValue(double_value=p1)])))]))
    return _request(recs)


def outcomes(lo: int, hi: int) -> bytes:
    return _request([logs_pb2.LogRecord(
        time_unix_nano=NOW + 10**9 + i, event_name=semconv.EVENT_OUTCOME, attributes=[
            _kv(semconv.MODEL_NAME, AnyValue(string_value="fraud")),
            _kv(semconv.PREDICTION_ID, AnyValue(string_value=_id(i))),
            _kv(semconv.OUTCOME_LABEL, AnyValue(string_value=str(i % 2)))]) for i in range(lo, hi)])


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def fill(store: JoinStore, rows: int, report: bool) -> list[tuple[int, float]]:
    steps = []
    for lo in range(0, rows, BATCH):
        r = decode_logs(predictions(lo, min(rows, lo + BATCH)))
        store.add(r.predictions, [])
        if report and (lo + BATCH) % max(BATCH, rows // 5) == 0:
            steps.append((lo + BATCH, rss_mb()))
    return steps


def join_rates(store: JoinStore, joined: int) -> list[float]:
    payloads = [outcomes(lo, lo + BATCH) for lo in range(0, joined, BATCH)]
    rates = []
    for data in payloads:
        t = CLOCK()
        r = decode_logs(data)
        res = store.add([], r.outcomes)
        rates.append(BATCH / (CLOCK() - t))
        assert len(res.pairs) == BATCH, len(res.pairs)
    return rates


def service_rates(directory: str, joined: int) -> list[float]:
    """The service's whole path minus the thread hop: decode, reference checks, store, windows, delay histogram."""
    import numpy as np

    from otel_ml import build_reference
    from otel_ml_processor._outcomes import Outcomes
    from otel_ml_processor._store import ReferenceStore

    refs = ReferenceStore(None)
    p1 = np.random.default_rng(0).uniform(size=1000)
    refs.put(build_reference({"x": p1}, model="fraud", version="3", predictions=np.column_stack([1 - p1, p1]),
                             class_names=["0", "1"]))
    out = Outcomes(refs, directory=directory, windows=(300.0, 3600.0), labels=("5m", "1h"), ttl=30 * 86400.0,
                   max_pending=10_000_000, max_window_pairs=100_000, synchronous="normal", policy=lambda: None)
    for lo in range(0, joined, BATCH):
        out.joins.add(decode_logs(predictions(lo, lo + BATCH)).predictions, [])
    rates = []
    for data in [outcomes(lo, lo + BATCH) for lo in range(0, joined, BATCH)]:
        t = CLOCK()
        r = decode_logs(data)
        out.check(r)
        res = out.joins.add(r.predictions, r.outcomes)
        out._feed(res.pairs)
        rates.append(BATCH / (CLOCK() - t))
    assert sum(out.joined.values()) == joined, out.joined
    return rates


def baseline_rates(directory: str, joined: int) -> list[float]:
    db = sqlite3.connect(os.path.join(directory, "plain.sqlite"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE t(mid INTEGER, id BLOB, vid INTEGER, t INTEGER, alab TEXT, aval REAL)")
    payloads = [outcomes(lo, lo + BATCH) for lo in range(0, joined, BATCH)]
    rates = []
    for data in payloads:
        t = CLOCK()
        r = decode_logs(data)
        db.execute("BEGIN")
        db.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)",
                       [(1, o.key, None, o.time_ns // 10**6, o.label, o.value) for o in r.outcomes])
        db.execute("COMMIT")
        rates.append(BATCH / (CLOCK() - t))
    db.close()
    return rates


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000, help="waiting predictions for bytes/row and RSS")
    ap.add_argument("--joined", type=int, default=100_000, help="outcomes joined in the timed part")
    ap.add_argument("--waiting", type=int, default=0, help="extra waiting predictions in the store while joining")
    ap.add_argument("--batch", type=int, default=1000, help="records per request (a Collector's batch: 8192)")
    ap.add_argument("--strict", action="store_true")
    ap.add_argument("--wall", action="store_true", help="elapsed instead of CPU time")
    ap.add_argument("--dir", default=None,
                    help="where the stores go (default: the temporary directory; tmpfs has no fsync cost)")
    args = ap.parse_args()
    global BATCH, CLOCK
    BATCH = args.batch
    if args.wall:
        CLOCK = time.perf_counter
    print(f"clock: {'elapsed' if args.wall else 'CPU time of this process'}; requests of {BATCH} records")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    ok = True
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        base = statistics.median(baseline_rates(d, args.joined))
        print(f"baseline (decode + plain executemany insert + commit): {base:,.0f} outcomes/s")
        for sync in ("normal", "full"):
            sd = os.path.join(d, sync)
            store = JoinStore(sd, synchronous=sync)
            fill(store, args.joined + args.waiting, report=False)
            rate = statistics.median(join_rates(store, args.joined))
            store.close()
            ok &= rate >= 50_000 or sync == "full"
            print(f"joins, synchronous={sync}: {rate:,.0f} outcomes/s (median of {args.joined // BATCH} requests of "
                  f"{BATCH}, {args.joined + args.waiting:,} predictions in the store); "
                  f"{rate / base:.2f}x the baseline; target >= 50,000 (normal)")
        rate = statistics.median(service_rates(os.path.join(d, "service"), args.joined))
        ok &= rate >= 50_000
        print(f"service path (decode + checks + store + windows), synchronous=normal: {rate:,.0f} outcomes/s; "
              f"{rate / base:.2f}x the baseline; target >= 50,000")
        sd = os.path.join(d, "size")
        store = JoinStore(sd)
        rss0 = rss_mb()
        steps = fill(store, args.rows, report=True)
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = store.nbytes()
        per_row = size / args.rows
        print(f"disk: {args.rows:,} waiting predictions in {size / 1e6:,.1f} MB = {per_row:.0f} B/row "
              f"(10 M -> {per_row * 1e7 / 1e9:.2f} GB; target <= 1 GB)")
        print("RSS (MB) by waiting predictions: " + ", ".join(f"{n:,}: {m:.0f}" for n, m in steps)
              + f" (before filling: {rss0:.0f})")
        ok &= per_row * 1e7 <= 1e9
        growth = steps[-1][1] - steps[0][1]
        print(f"RSS growth from the first to the last step: {growth:+.1f} MB")
        store.close()
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    raise SystemExit(main())
