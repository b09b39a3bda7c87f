"""Traffic for tests/e2e/test_multivariate.py: the multivariate stream and the outlier alarm.

    python tests/e2e/_mv_traffic.py --references DIR --write-references
    python tests/e2e/_mv_traffic.py --endpoint 127.0.0.1:4317 --references DIR [--rows 3000]

The world is benchmarks/multivariate_calibration.py's: ten standard-normal features, ``x0``/``x1``
correlated +0.8 in the 20,000-row reference of every model (``mv-none``, ``mv-swap``, ``mv-burst``;
version ``v1``). The live rows, in batches of 250 through ``@otel_ml.monitor``: ``mv-none`` as in
training; ``mv-swap`` with that correlation flipped to -0.8 (every marginal unchanged); ``mv-burst``
with 1 % of the rows at ``x0 = 3, x1 = -3`` (each value in range, the pair impossible). The library
exports every second over OTLP/gRPC to ``--endpoint``; the script flushes and prints ``sent``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
from _app import arguments, finish
from opentelemetry.sdk.resources import Resource

import otel_ml

VERSION = "v1"
BATCH = 250
SCENARIOS = {"mv-none": "none", "mv-swap": "swap", "mv-burst": "burst"}
_BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "multivariate_calibration.py"


def _calibration():
    spec = importlib.util.spec_from_file_location("multivariate_calibration", _BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    p = arguments(3000)
    args = p.parse_args()
    cal = _calibration()
    names = [f"x{i}" for i in range(cal.D)]
    if args.write_references:
        args.references.mkdir(parents=True, exist_ok=True)
        for i, model in enumerate(SCENARIOS):
            x = cal.sample(np.random.default_rng([3000, i]), cal.REFERENCE_ROWS, cal.RHO)
            otel_ml.build_reference(x, model=model, version=VERSION, feature_names=names,
                                    multivariate=True).save(
                args.references / f"{model}-{VERSION}.json")
        print("references written", flush=True)
        return 0

    otel_ml.configure(endpoint=f"http://{args.endpoint}", protocol="grpc", export_interval_s=1,
                      resource=Resource.create({"service.name": "multivariate-app"}))
    for i, (model, scenario) in enumerate(SCENARIOS.items()):
        reference = otel_ml.load_reference(args.references / f"{model}-{VERSION}.json")

        @otel_ml.monitor(model=model, version=VERSION, reference=reference)
        def predict(x: np.ndarray) -> np.ndarray:
            return x[:, 0] > 0

        x = cal.window(np.random.default_rng([4000, i]), scenario, args.rows)
        x = x[np.random.default_rng([5000, i]).permutation(len(x))]  # the burst spread over the batches
        for b in range(0, args.rows, BATCH):
            predict(x[b:b + BATCH])
    finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
