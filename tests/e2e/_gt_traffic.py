"""Traffic for tests/e2e/test_ground_truth.py: a scikit-learn classifier with prediction ids, and its outcomes.

    python tests/e2e/_gt_traffic.py --references DIR --write-references --models 1
    python tests/e2e/_gt_traffic.py --endpoint 127.0.0.1:4317 --references DIR --models 1 \
        --predict --outcomes [--concept-drift gt-00 ...] [--segment-drift gt-00 ...] \
        [--segments region channel] [--start 0] [--rows 3000] [--pace 0]

The world: two features ``x1``, ``x2`` ~ N(0, 1); the true class is ``x1 + x2 > 0``, flipped for 10 % of
rows (so the best possible accuracy is 0.90). Every model (``gt-00``, ``gt-01`` ...; version ``v1``) is
a logistic regression trained on 4,000 such rows. ``--write-references`` profiles a labelled holdout of
3,000 rows with ``build_reference(..., labels=y)`` into DIR (the reference performance) and exits.

Rows are numbered: row ``i`` of model ``m`` has the prediction id ``<m>-<i>`` and features and true class
drawn from a generator seeded with ``i``, so a later process (``--outcomes`` alone) knows the same rows.
``--predict`` sends rows ``--start`` .. ``--start + --rows`` through ``@otel_ml.monitor(prediction_id=...)``
in batches of 250, ``--pace`` seconds apart; ``--outcomes`` sends their true classes with
``otel_ml.record_outcomes``. Each prediction carries the segments named in ``--segments``: ``region``
(the default; ``x1-high`` where ``x1 > 0.5``, else ``x1-low``) and ``channel`` (``partner`` for a random
10 % of the rows, else ``direct``). For the models named in ``--concept-drift`` the world changes where
``x1 > 0.5``: there the true class is the opposite one. The
inputs keep their distribution (no feature drifts); only the labels change (about a third of the rows
flip; accuracy falls from about 0.90 to about 0.64). For the models named in ``--segment-drift`` it
changes in channel ``partner`` only: 17.5 % of its true classes flip, its accuracy falls from about 0.88
to about 0.75 while the model's overall accuracy falls by about 0.013 (less than the 0.02 tolerance of
the degradation verdict). The library exports every second over OTLP/gRPC to ``--endpoint``; the script
flushes and prints ``sent`` before exiting.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd
from _app import arguments, finish
from opentelemetry.sdk.resources import Resource
from sklearn.linear_model import LogisticRegression

import otel_ml

VERSION = "v1"
BATCH = 250
ID_SECRET = "e2e-ground-truth-secret"
DRIFT_REGION = 0.5  # --concept-drift flips the true class where x1 > this
PARTNER_SHARE = 0.10  # of the rows in channel "partner"
PARTNER_FLIP = 0.175  # --segment-drift flips this share of the true classes in channel "partner"


def world(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows of features and their true class (before any concept drift)."""
    x = rng.normal(0.0, 1.0, (n, 2))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    noise = rng.random(n) < 0.10
    return x, np.where(noise, 1 - y, y)


def rows(model_index: int, start: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``start`` .. ``start + count`` of a model: the same in every process."""
    xs, ys = zip(*(world(np.random.default_rng([model_index, i]), 1) for i in range(start, start + count)),
                 strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def channel(model_index: int, start: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``start`` .. ``start + count`` of a model: in channel ``partner`` or not, and whether
    ``--segment-drift`` flips the true class (the same in every process)."""
    u = np.random.default_rng([model_index, 3000]).random((start + count, 2))[start:]
    partner = u[:, 0] < PARTNER_SHARE
    return partner, partner & (u[:, 1] < PARTNER_FLIP)


def train(model_index: int) -> LogisticRegression:
    x, y = world(np.random.default_rng([1000, model_index]), 4000)
    return LogisticRegression().fit(x, y)


def main() -> int:
    p = arguments(3000)
    p.add_argument("--models", type=int, default=1)
    p.add_argument("--predict", action="store_true")
    p.add_argument("--outcomes", action="store_true")
    p.add_argument("--concept-drift", nargs="*", default=[], metavar="MODEL")
    p.add_argument("--segment-drift", nargs="*", default=[], metavar="MODEL")
    p.add_argument("--segments", nargs="+", default=["region"], choices=["region", "channel"])
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--pace", type=float, default=0.0)
    args = p.parse_args()

    names = [f"gt-{i:02d}" for i in range(args.models)]
    models = [train(i) for i in range(args.models)]
    if args.write_references:
        args.references.mkdir(parents=True, exist_ok=True)
        for i, (name, clf) in enumerate(zip(names, models, strict=True)):
            x, y = world(np.random.default_rng([2000, i]), 3000)
            otel_ml.build_reference(
                pd.DataFrame(x, columns=["x1", "x2"]), model=name, version=VERSION,
                predictions=clf.predict_proba(x), class_names=[str(c) for c in clf.classes_], labels=y,
            ).save(args.references / f"{name}-{VERSION}.json")
        print("references written", flush=True)
        return 0

    otel_ml.configure(
        endpoint=f"http://{args.endpoint}", protocol="grpc", export_interval_s=1, id_secret=ID_SECRET,
        resource=Resource.create({"service.name": "ground-truth-app", "service.instance.id": "pod-a"}),
    )
    for i, (name, clf) in enumerate(zip(names, models, strict=True)):
        reference = otel_ml.load_reference(args.references / f"{name}-{VERSION}.json")
        x, y = rows(i, args.start, args.rows)
        partner, flip = channel(i, args.start, args.rows)
        ids = [f"{name}-{n}" for n in range(args.start, args.start + args.rows)]
        if args.predict:
            @otel_ml.monitor(model=name, version=VERSION, reference=reference, prediction_id="request_id",
                             segments=args.segments)
            def predict(frame: pd.DataFrame, clf: LogisticRegression = clf) -> np.ndarray:
                return clf.predict_proba(frame[["x1", "x2"]].to_numpy())

            for b in range(0, args.rows, BATCH):
                frame = pd.DataFrame(x[b:b + BATCH], columns=["x1", "x2"])
                frame["request_id"] = ids[b:b + BATCH]
                segments = {"region": np.where(x[b:b + BATCH, 0] > DRIFT_REGION, "x1-high", "x1-low"),
                            "channel": np.where(partner[b:b + BATCH], "partner", "direct")}
                for segment in args.segments:  # only those: another column would be a schema violation
                    frame[segment] = segments[segment]
                predict(frame)
                time.sleep(args.pace)
        if args.outcomes:
            actual = np.where(x[:, 0] > DRIFT_REGION, 1 - y, y) if name in args.concept_drift else y
            actual = np.where(flip, 1 - actual, actual) if name in args.segment_drift else actual
            queued = otel_ml.record_outcomes(model=name, ids=ids, actuals=actual)
            assert queued == len(ids), (queued, len(ids))
    finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
