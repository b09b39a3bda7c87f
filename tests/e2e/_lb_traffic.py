"""Traffic for tests/e2e/test_scale_out.py: many small monitored models in one app instance.

    python tests/e2e/_lb_traffic.py --endpoint 127.0.0.1:4317 --references DIR --instance pod-a \
        [--write-references] --models 16 --seconds 300

With ``--write-references`` it profiles ``--models`` models (``model-00`` ... , version ``v1``, numeric
features ``x1``, ``x2``) into DIR and prints ``references written``; without, it waits for them. Then,
for ``--seconds``, every model predicts a batch of 100 rows every ~0.25 s through ``otel_ml.monitor``;
``x1`` is shifted by one standard deviation for the even-numbered models. The library exports OTLP/gRPC
every second with resource ``service.name=scale-out-app``, ``service.instance.id=<--instance>``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from opentelemetry.sdk.resources import Resource

import otel_ml


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--references", required=True, type=Path)
    p.add_argument("--instance", required=True)
    p.add_argument("--write-references", action="store_true")
    p.add_argument("--models", type=int, default=16)
    p.add_argument("--seconds", type=float, default=300)
    args = p.parse_args()

    names = [f"model-{i:02d}" for i in range(args.models)]
    paths = {n: args.references / f"{n}-v1.json" for n in names}
    if args.write_references:
        rng = np.random.default_rng(11)
        args.references.mkdir(parents=True, exist_ok=True)
        for n in names:
            train = {"x1": rng.normal(0, 1, 4000), "x2": rng.normal(5, 2, 4000)}
            otel_ml.build_reference(train, model=n, version="v1").save(paths[n])
        print("references written", flush=True)
    deadline = time.monotonic() + 120
    while not all(path.exists() for path in paths.values()):
        if time.monotonic() > deadline:
            print("references never appeared", flush=True)
            return 1
        time.sleep(0.2)

    otel_ml.configure(
        endpoint=f"http://{args.endpoint}", protocol="grpc", export_interval_s=1,
        resource=Resource.create({"service.name": "scale-out-app", "service.instance.id": args.instance}),
    )
    predictors = []
    for i, n in enumerate(names):
        reference = otel_ml.load_reference(paths[n])
        shift = 1.0 if i % 2 == 0 else 0.0

        @otel_ml.monitor(model=n, version="v1", reference=reference)
        def predict(batch: dict[str, np.ndarray]) -> np.ndarray:
            return batch["x1"] + batch["x2"]

        predictors.append((predict, shift))

    rng = np.random.default_rng(hash(args.instance) % 2**32)
    end = time.monotonic() + args.seconds
    batches = 0
    while time.monotonic() < end:
        for predict, shift in predictors:
            predict({"x1": rng.normal(shift, 1, 100), "x2": rng.normal(5, 2, 100)})
        batches += 1
        time.sleep(0.25)
    otel_ml.flush()
    print(f"sent {batches} rounds", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
