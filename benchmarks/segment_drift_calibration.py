"""Measured alarm rates of the per-segment drift and quality verdicts (otel_ml_processor._segment_drift).

Own generator, seeded. A model with one numeric output (U(0, 1) in training, 20,000 reference rows, 3
features, 1 % missing values) and one segment column ``country`` of 10 values (``c0`` holds 10 % of the
traffic, the other nine share the rest evenly); the reference profiles each value from its own training
rows. Each window holds ``rows`` rows drawn the same way and goes through the processor's own path: real
OTLP ``ml.segment.*`` points -> :class:`State` (series, windows) -> :class:`Evaluator` (default policy).

* *null*: no change: the share of windows with any segment drift, quality or mix alarm;
* *drift*: the outputs of ``c0`` shift by ``--shift`` (0.1 = a third of the output's SD) while the
  overall output distribution moves by a tenth of that: ``c0`` flagged and ranked first;
* *quality*: ``c0`` loses 5 % of its values (1 % in training): ``c0`` alarmed and ranked first.

Targets: null <= 5 % of windows with any alarm; drift and quality >= 90 % found and ranked first.

    python benchmarks/segment_drift_calibration.py [--windows 200] [--rows 20000] [--seed 20261201]

Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "collector"))

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest  # noqa: E402
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue  # noqa: E402

from otel_ml import build_reference, semconv  # noqa: E402
from otel_ml.reference import Reference, SegmentColumnProfile, SegmentValueProfile  # noqa: E402
from otel_ml.stats import PolicyBook  # noqa: E402
from otel_ml_processor._decode import decode_protobuf  # noqa: E402
from otel_ml_processor._evaluate import Evaluator  # noqa: E402
from otel_ml_processor._state import State  # noqa: E402
from otel_ml_processor._store import ReferenceStore  # noqa: E402

VALUES = [f"c{i}" for i in range(10)]
SHARES = np.array([0.1] + [0.1] * 9)
FEATURES = 3
MISSING = 0.01
NOW = 1_000_000.0


def _kv(k: str, v: str) -> KeyValue:
    return KeyValue(key=k, value=AnyValue(string_value=v))


def _draw(rng: np.random.Generator, rows: int) -> np.ndarray:
    return rng.choice(len(VALUES), size=rows, p=SHARES / SHARES.sum())


def reference(rng: np.random.Generator, rows: int = 20_000) -> Reference:
    import dataclasses

    out = rng.uniform(0, 1, rows)
    base = build_reference({f"f{i}": rng.normal(size=rows) for i in range(FEATURES)}, model="m", version="1",
                           predictions=out)
    edges = np.asarray(base.outputs[0].edges)
    seg = _draw(rng, rows)
    values = {}
    for j, v in enumerate(VALUES):
        sel = out[seg == j]
        counts = np.bincount(np.searchsorted(edges, sel, side="left"), minlength=len(edges) + 1)
        n = len(sel)
        quality = {k: int(rng.binomial(n * FEATURES, MISSING)) if k == "missing" else 0 for k in semconv.QUALITY_KINDS}
        values[v] = SegmentValueProfile(n, {"value": tuple(int(c) for c in counts)}, quality)
    return dataclasses.replace(base, segments={"country": SegmentColumnProfile(values)})


def window(rng: np.random.Generator, ref: Reference, rows: int, shift: float, missing_c0: float) -> bytes:
    edges = np.asarray(ref.outputs[0].edges)
    seg = _draw(rng, rows)
    req = ExportMetricsServiceRequest()
    sm = req.resource_metrics.add().scope_metrics.add()
    hist = sm.metrics.add(name=semconv.SEGMENT_PREDICTION_VALUE)
    hist.histogram.aggregation_temporality = 2
    names = (semconv.SEGMENT_ROWS, *semconv.SEGMENT_QUALITY_COUNTERS.values())
    counters = {name: sm.metrics.add(name=name) for name in names}
    for m in counters.values():
        m.sum.aggregation_temporality = 2
    for j, v in enumerate(VALUES):
        n = int((seg == j).sum())
        out = rng.uniform(0, 1, n) + (shift if j == 0 else 0.0)
        counts = np.bincount(np.searchsorted(edges, out, side="left"), minlength=len(edges) + 1)
        attrs = [_kv(semconv.MODEL_NAME, "m"), _kv(semconv.MODEL_VERSION, "1"), _kv(semconv.SEGMENT_NAME, "country"),
                 _kv(semconv.SEGMENT_VALUE, v)]
        dp = hist.histogram.data_points.add(start_time_unix_nano=10, time_unix_nano=20, count=int(counts.sum()))
        dp.attributes.extend([*attrs, _kv(semconv.PREDICTION_NAME, "value")])
        dp.bucket_counts.extend(counts.tolist())
        dp.explicit_bounds.extend(edges.tolist())
        bad = int(rng.binomial(n * FEATURES, missing_c0 if j == 0 else MISSING))
        for name, value in ((semconv.SEGMENT_ROWS, n), (semconv.SEGMENT_QUALITY_COUNTERS["missing"], bad)):
            counters[name].sum.data_points.add(start_time_unix_nano=10, time_unix_nano=20,
                                               as_int=value).attributes.extend(attrs)
    return req.SerializeToString()


def run(rng: np.random.Generator, ref: Reference, store: ReferenceStore, windows: int, rows: int, shift: float,
        missing_c0: float) -> tuple[float, float, float, float, float]:
    """Shares of windows: any drift alarm, any quality alarm, any mix alarm, c0 drifted and ranked first,
    c0 quality alarmed and ranked first."""
    ev = Evaluator(store, PolicyBook(), ("1m",))
    found = np.zeros(5)
    for _ in range(windows):
        state = State(store, windows=(60.0,), slots_per_window=6, clock=lambda: NOW, epoch_ns=0)
        state.ingest(decode_protobuf(window(rng, ref, rows, shift, missing_c0)), NOW)
        s = ev.evaluate(state, NOW).segments
        assert s is not None
        c0 = next(i for i, k in enumerate(s.pred_keys) if k[4] == "c0")
        q0 = next(i for i, k in enumerate(s.qual_keys) if k[3] == "c0")
        found += [(s.drift_detected == 1).any(), (s.quality_alarm == 1).any(), (s.mix_detected == 1).any(),
                  s.drift_detected[c0] == 1 and s.drift_rank[c0] == 1,
                  s.quality_alarm[q0] == 1 and s.quality_rank[q0] == 1]
    return tuple(found / windows)  # type: ignore[return-value]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--windows", type=int, default=200)
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--shift", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=20261201)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    ref = reference(rng)
    store = ReferenceStore(None)
    store.put(ref)
    t0 = time.perf_counter()
    null = run(rng, ref, store, args.windows, args.rows, 0.0, MISSING)
    drift = run(rng, ref, store, args.windows, args.rows, args.shift, MISSING)
    quality = run(rng, ref, store, args.windows, args.rows, 0.0, 0.05)
    print(f"{args.windows} windows of {args.rows:,} rows, 10 segment values (c0: 10 % of traffic), seed {args.seed}")
    print(f"null:    any segment alarm: drift {null[0]:.1%}, quality {null[1]:.1%}, mix {null[2]:.1%} (target <= 5 %)")
    print(f"drift:   c0 outputs +{args.shift}: flagged and ranked first {drift[3]:.1%} (target >= 90 %); "
          f"quality alarms {drift[1]:.1%}")
    print(f"quality: c0 missing 1 % -> 5 %: alarmed and ranked first {quality[4]:.1%} (target >= 90 %); "
          f"drift alarms {quality[0]:.1%}")
    print(f"({time.perf_counter() - t0:.1f} s)")
    ok = max(null[:3]) <= 0.05 and drift[3] >= 0.9 and quality[4] >= 0.9
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
