"""Traffic for tests/e2e/test_model_chain.py: two chained monitored models in one request.

    python tests/e2e/_chain_traffic.py --references DIR --write-references
    python tests/e2e/_chain_traffic.py --endpoint 127.0.0.1:4317 --references DIR [--rows 3000]

The upstream model ``scorer`` (version ``v1``) maps its inputs ``x1``, ``x2`` (standard normal in training)
to a score ``x1 + 0.5 x2`` (output ``value``); the downstream model ``ranker`` (``v1``) takes that score and
two request features of its own, ``z1`` and ``z2`` (standard normal), and returns a probability. Each is
under ``@otel_ml.monitor``; one handler calls both inside the request's server span ``POST /rank``
(docs/library.md, "Model chains"). ``--write-references`` profiles 5,000 training rows: the ranker's
reference is built on the scorer's outputs for them, as it is fed in production.

Live, the scorer's input ``x1`` has moved by +1 (an upstream change); ``x2``, ``z1`` and ``z2`` have not.
Requests of 250 rows; spans over OTLP/gRPC (batched) and the library's metrics every second to
``--endpoint``; the script flushes both and prints ``sent``.
"""

from __future__ import annotations

import sys

import numpy as np
from _app import arguments, finish
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import otel_ml

UPSTREAM, DOWNSTREAM, VERSION = "scorer", "ranker", "v1"
REQUEST_SPAN = "POST /rank"
BATCH = 250
SHIFT = 1.0  # of the upstream input x1, in its standard deviations


def score(x: dict[str, np.ndarray]) -> np.ndarray:
    return x["x1"] + 0.5 * x["x2"]


def rank(x: dict[str, np.ndarray]) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(x["score"] + x["z1"] - x["z2"])))


def inputs(rng: np.random.Generator, n: int, shift: float = 0.0) -> dict[str, np.ndarray]:
    """A request's rows: the scorer's inputs and the ranker's own features."""
    return {"x1": rng.normal(shift, 1.0, n), "x2": rng.normal(0.0, 1.0, n),
            "z1": rng.normal(0.0, 1.0, n), "z2": rng.normal(0.0, 1.0, n)}


def main() -> int:
    p = arguments(3000)
    args = p.parse_args()
    up_file, down_file = (args.references / f"{m}-{VERSION}.json" for m in (UPSTREAM, DOWNSTREAM))

    if args.write_references:
        args.references.mkdir(parents=True, exist_ok=True)
        train = inputs(np.random.default_rng(1), 5000)
        up = {k: train[k] for k in ("x1", "x2")}
        down = {"score": score(up), "z1": train["z1"], "z2": train["z2"]}
        otel_ml.build_reference(up, model=UPSTREAM, version=VERSION, predictions=down["score"]).save(up_file)
        otel_ml.build_reference(down, model=DOWNSTREAM, version=VERSION, predictions=rank(down)).save(down_file)
        print("references written", flush=True)
        return 0

    resource = Resource.create({"service.name": "chain-app", "service.instance.id": "pod-a"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=args.endpoint, insecure=True)))
    trace.set_tracer_provider(tracer_provider)
    otel_ml.configure(endpoint=f"http://{args.endpoint}", protocol="grpc", export_interval_s=1, resource=resource)

    @otel_ml.monitor(model=UPSTREAM, version=VERSION, reference=otel_ml.load_reference(up_file))
    def predict_score(x: dict[str, np.ndarray]) -> np.ndarray:
        return score(x)

    @otel_ml.monitor(model=DOWNSTREAM, version=VERSION, reference=otel_ml.load_reference(down_file))
    def predict_rank(x: dict[str, np.ndarray]) -> np.ndarray:
        return rank(x)

    def handle(request: dict[str, np.ndarray]) -> np.ndarray:
        s = predict_score({"x1": request["x1"], "x2": request["x2"]})
        return predict_rank({"score": s, "z1": request["z1"], "z2": request["z2"]})

    tracer = trace.get_tracer("chain-app")
    rng = np.random.default_rng(2)
    for _ in range(0, args.rows, BATCH):
        with tracer.start_as_current_span(REQUEST_SPAN, kind=trace.SpanKind.SERVER):
            handle(inputs(rng, BATCH, shift=SHIFT))
    tracer_provider.force_flush()
    finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
