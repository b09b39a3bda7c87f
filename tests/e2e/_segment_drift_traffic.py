"""Traffic for tests/e2e/test_segment_drift.py: drift and a burst of missing values confined to one segment value.

    python tests/e2e/_segment_drift_traffic.py --references DIR --write-references
    python tests/e2e/_segment_drift_traffic.py --endpoint 127.0.0.1:4317 --references DIR [--rows 6000]

The world: three features ``x1``, ``x2``, ``x3`` ~ N(0, 1) and two segment columns (not features): ``region``
(``north`` 40 %, ``south`` 30 %, ``east`` 20 %, ``west`` 10 %) and ``channel`` (``partner`` 10 %, ``direct``
90 %), all independent. Both models are monitored with ``segments=["region", "channel"]`` and their references
(20,000 rows of the world, version ``v1``) are built with the same segments:

* ``seg-score``, a regression: ``value = x1 + 0.5 x2`` (``x3`` is monitored, not used). Live, its outputs
  for channel ``partner`` rows are shifted by +0.5 (0.45 reference SD: a feature pipeline broken for one
  channel), and ``x3`` is missing in 15 % of region ``west``'s rows. Overall the output moves by about
  0.045 SD (under the 0.1 SD floor of the drift verdict) and ``x3``'s missing share by about 0.015 (under
  the 0.02 rise of the quality alarm); ``partner``'s outputs move by 0.45 SD and ``west``'s quality ratio
  (missing over rows x 3 features) rises from 0 to about 0.05.
* ``seg-class``, a classifier returning labels ``yes``/``no`` (``x1 + x2 > 0``) with prediction ids
  (``seg-class-<row>``) and outcomes (the true class, flipped for 10 % of rows) sent after the
  predictions: nothing changes, it gives the segment class counts and realized performance per segment.

Rows are sent in batches of 250 through ``@otel_ml.monitor``; the library exports every second over
OTLP/gRPC to ``--endpoint``; the script flushes and prints ``sent``.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
from _app import arguments, finish
from opentelemetry.sdk.resources import Resource

import otel_ml

VERSION = "v1"
BATCH = 250
SCORE, CLASSIFIER = "seg-score", "seg-class"
FEATURES = ["x1", "x2", "x3"]
SEGMENTS = ["region", "channel"]
REGIONS = {"north": 0.4, "south": 0.3, "east": 0.2, "west": 0.1}
CHANNELS = {"direct": 0.9, "partner": 0.1}
SHIFTED = ("channel", "partner")  # seg-score's outputs + SHIFT there
MISSING = ("region", "west")  # seg-score's x3 missing in MISSING_SHARE of the rows there
SHIFT = 0.5
MISSING_SHARE = 0.15
REFERENCE_ROWS = 20_000
ID_SECRET = "e2e-segment-drift-secret"


def world(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """``n`` rows: the features, the segment columns and the true class (``y``, 10 % flipped)."""
    frame = pd.DataFrame(rng.normal(0.0, 1.0, (n, 3)), columns=FEATURES)
    for column, shares in (("region", REGIONS), ("channel", CHANNELS)):
        frame[column] = rng.choice(list(shares), size=n, p=list(shares.values()))
    y = frame["x1"] + frame["x2"] > 0
    frame["y"] = np.where(rng.random(n) < 0.10, ~y, y)
    return frame


def score(frame: pd.DataFrame) -> np.ndarray:
    return (frame["x1"] + 0.5 * frame["x2"]).to_numpy()


def label(frame: pd.DataFrame) -> np.ndarray:
    return np.where(frame["x1"] + frame["x2"] > 0, "yes", "no")


def main() -> int:
    p = arguments(6000)
    args = p.parse_args()

    if args.write_references:
        args.references.mkdir(parents=True, exist_ok=True)
        ref = world(np.random.default_rng(1000), REFERENCE_ROWS)
        segments = {column: ref[column].to_numpy() for column in SEGMENTS}
        otel_ml.build_reference(ref[FEATURES], model=SCORE, version=VERSION, predictions=score(ref),
                                segments=segments).save(args.references / f"{SCORE}-{VERSION}.json")
        otel_ml.build_reference(ref[FEATURES], model=CLASSIFIER, version=VERSION, predictions=label(ref),
                                labels=np.where(ref["y"], "yes", "no"), segments=segments,
                                ).save(args.references / f"{CLASSIFIER}-{VERSION}.json")
        print("references written", flush=True)
        return 0

    otel_ml.configure(endpoint=f"http://{args.endpoint}", protocol="grpc", export_interval_s=1, id_secret=ID_SECRET,
                      resource=Resource.create({"service.name": "segment-app", "service.instance.id": "pod-a"}))
    live = world(np.random.default_rng(2000), args.rows)
    live["request_id"] = [f"{CLASSIFIER}-{n}" for n in range(args.rows)]
    print("rows per segment value:", {c: live[c].value_counts().to_dict() for c in SEGMENTS}, flush=True)

    @otel_ml.monitor(model=SCORE, version=VERSION, reference=args.references / f"{SCORE}-{VERSION}.json",
                     segments=SEGMENTS)
    def predict_score(frame: pd.DataFrame) -> np.ndarray:
        return score(frame) + SHIFT * (frame[SHIFTED[0]] == SHIFTED[1]).to_numpy()

    @otel_ml.monitor(model=CLASSIFIER, version=VERSION,
                     reference=args.references / f"{CLASSIFIER}-{VERSION}.json", prediction_id="request_id",
                     segments=SEGMENTS)
    def predict_class(frame: pd.DataFrame) -> np.ndarray:
        return label(frame)

    burst = (live[MISSING[0]] == MISSING[1]) & (np.random.default_rng(3000).random(args.rows) < MISSING_SHARE)
    with_missing = live.assign(x3=live["x3"].mask(burst))
    for b in range(0, args.rows, BATCH):
        predict_score(with_missing.iloc[b:b + BATCH][FEATURES + SEGMENTS])
        predict_class(live.iloc[b:b + BATCH][FEATURES + SEGMENTS + ["request_id"]])
    queued = otel_ml.record_outcomes(model=CLASSIFIER, ids=live["request_id"].tolist(),
                                     actuals=np.where(live["y"], "yes", "no"))
    assert queued == args.rows, (queued, args.rows)
    finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
