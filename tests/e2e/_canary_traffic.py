"""Traffic for tests/e2e/test_canary.py: one model served by three versions side by side, with outcomes.

    python tests/e2e/_canary_traffic.py --references DIR --write-references
    python tests/e2e/_canary_traffic.py --endpoint 127.0.0.1:4317 --references DIR --predict|--outcomes \
        [--rows 6000]

The world and the classifier are tests/e2e/_gt_traffic.py's (its model ``gt-00``'s logistic regression).
Model ``canary`` has three versions, each under ``@otel_ml.monitor(prediction_id=..., role=...)``:

* ``v1``, role ``live``: the classifier's probabilities;
* ``v2``, role ``canary``: the same classifier with its log-odds shifted by +1 (as a wrongly fitted
  intercept would): its probabilities of class 1 move up (mean about 0.52 -> 0.65) and its accuracy falls
  from about 0.89 to about 0.76;
* ``v3``, role ``canary``: the same classifier unchanged (a redeploy).

The batches of 250 rows go to the three versions in turn: each serves a third of the traffic, so only the
``live`` role makes ``v1`` the baseline. ``--write-references`` saves one profile per version, all three
the live classifier's on the labelled holdout (the same bin edges, so the versions' streams are
comparable; docs/library.md, "Shadow and canary versions"). ``--predict`` serves the rows (prediction ids
``canary-<row>``), ``--outcomes`` sends their true classes with ``otel_ml.record_outcomes`` (rows are seeded:
a later process knows the same ones); the script flushes and prints ``sent``.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable

import numpy as np
import pandas as pd
from _app import arguments, finish
from _gt_traffic import BATCH, ID_SECRET, rows, train, world
from opentelemetry.sdk.resources import Resource

import otel_ml

MODEL = "canary"
ROLES = {"v1": "live", "v2": "canary", "v3": "canary"}
SHIFT = 1.0  # v2's log-odds shift


def _shifted(proba: np.ndarray) -> np.ndarray:
    p1 = 1.0 / (1.0 + np.exp(-(np.log(proba[:, 1] / proba[:, 0]) + SHIFT)))
    return np.column_stack([1.0 - p1, p1])


def main() -> int:
    p = arguments(6000)
    p.add_argument("--predict", action="store_true")
    p.add_argument("--outcomes", action="store_true")
    args = p.parse_args()

    clf = train(0)
    if args.write_references:
        args.references.mkdir(parents=True, exist_ok=True)
        x, y = world(np.random.default_rng([2000, 0]), 3000)
        live = otel_ml.build_reference(pd.DataFrame(x, columns=["x1", "x2"]), model=MODEL, version="v1",
                                       predictions=clf.predict_proba(x),
                                       class_names=[str(c) for c in clf.classes_], labels=y)
        for version in ROLES:
            dataclasses.replace(live, model_version=version).save(args.references / f"{MODEL}-{version}.json")
        print("references written", flush=True)
        return 0

    otel_ml.configure(endpoint=f"http://{args.endpoint}", protocol="grpc", export_interval_s=1, id_secret=ID_SECRET,
                      resource=Resource.create({"service.name": "canary-app", "service.instance.id": "pod-a"}))
    x, y = rows(0, 0, args.rows)
    ids = [f"{MODEL}-{n}" for n in range(args.rows)]
    if args.predict:
        outputs: dict[str, Callable[[np.ndarray], np.ndarray]] = {
            "v1": clf.predict_proba, "v2": lambda x: _shifted(clf.predict_proba(x)), "v3": clf.predict_proba}
        predict = []
        for version, role in ROLES.items():
            reference = otel_ml.load_reference(args.references / f"{MODEL}-{version}.json")

            @otel_ml.monitor(model=MODEL, version=version, reference=reference, prediction_id="request_id",
                             role=role)
            def serve(frame: pd.DataFrame, output: Callable[[np.ndarray], np.ndarray] = outputs[version]
                      ) -> np.ndarray:
                return output(frame[["x1", "x2"]].to_numpy())

            predict.append(serve)
        for i, b in enumerate(range(0, args.rows, BATCH)):
            frame = pd.DataFrame(x[b:b + BATCH], columns=["x1", "x2"])
            frame["request_id"] = ids[b:b + BATCH]
            predict[i % len(predict)](frame)
    if args.outcomes:
        queued = otel_ml.record_outcomes(model=MODEL, ids=ids, actuals=y)
        assert queued == len(ids), (queued, len(ids))
    finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
