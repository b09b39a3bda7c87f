"""Traffic for tests/e2e/test_dashboard_queries.py: a monitored scikit-learn model behind an "HTTP" handler.

    python tests/e2e/_dashboard_traffic.py --endpoint 127.0.0.1:4317 --references DIR --seconds 120

Writes the reference profiles of model ``churn`` versions ``v1`` (stable: returns probabilities; built with
the training labels, so the processor estimates its performance) and
``v2`` (canary, every 4th batch: returns labels) into DIR, prints ``references written`` and then, for
``--seconds``, predicts batches through ``otel_ml.monitor`` inside a span per request and records the
standard OTel ``http.server.request.duration`` histogram (service ``shop``), all exported over OTLP/gRPC
every second. The scenario: feature ``age`` shifted by 0.8 reference standard deviations (drift),
``income`` 8% missing (a data-quality incident), a few unseen ``plan`` values, an unexpected column every
5th batch (schema violation), and 5% of v1 calls raising (error rate, HTTP 500).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from opentelemetry import metrics, trace
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from sklearn.linear_model import LogisticRegression

import otel_ml

SERVICE = "shop"
MODEL = "churn"
SHIFTED = "age"
MISSING = "income"
CATEGORICAL = "plan"
#: Bucket advice of the OTel HTTP semantic conventions for http.server.request.duration.
HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--references", required=True, type=Path)
    p.add_argument("--seconds", type=float, default=120)
    args = p.parse_args()

    resource = Resource.create({"service.name": SERVICE, "service.instance.id": "pod-1"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=args.endpoint, insecure=True)))
    trace.set_tracer_provider(tracer_provider)
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=args.endpoint, insecure=True),
                                           export_interval_millis=1000)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    metrics.set_meter_provider(meter_provider)
    otel_ml.configure(endpoint=f"http://{args.endpoint}", protocol="grpc", export_interval_s=1, resource=resource)

    tracer = trace.get_tracer(SERVICE)
    http_duration = metrics.get_meter(SERVICE).create_histogram(
        "http.server.request.duration", unit="s", explicit_bucket_boundaries_advisory=HTTP_BUCKETS)

    rng = np.random.default_rng(7)

    def batch(n: int, shift: float = 0.0) -> pd.DataFrame:
        return pd.DataFrame({
            SHIFTED: rng.normal(40 + shift, 10, n),
            MISSING: rng.lognormal(10, 0.5, n),
            CATEGORICAL: rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
        })

    train = batch(5000)
    target = (train[SHIFTED] + rng.normal(0, 5, len(train)) > 40).astype(int)
    columns = pd.get_dummies(train, columns=[CATEGORICAL], dtype=float).columns

    def encode(df: pd.DataFrame) -> pd.DataFrame:
        d = df[[SHIFTED, MISSING, CATEGORICAL]].copy()
        d[MISSING] = pd.to_numeric(d[MISSING], errors="coerce").fillna(0.0)
        return pd.get_dummies(d, columns=[CATEGORICAL], dtype=float).reindex(columns=columns, fill_value=0.0)

    clf = LogisticRegression(max_iter=1000).fit(encode(train), target)
    classes = [str(c) for c in clf.classes_]
    # With the training labels: the reference's calibration lets the processor estimate v1's performance.
    ref_v1 = otel_ml.build_reference(train, predictions=clf.predict_proba(encode(train)), class_names=classes,
                                     model=MODEL, version="v1", categorical=[CATEGORICAL],
                                     labels=target.astype(str).to_numpy(), multivariate=True)
    ref_v2 = otel_ml.build_reference(train, predictions=np.array([str(v) for v in clf.predict(encode(train))]),
                                     model=MODEL, version="v2", categorical=[CATEGORICAL], multivariate=True)
    args.references.mkdir(parents=True, exist_ok=True)
    ref_v1.save(args.references / f"{MODEL}-v1.json")
    ref_v2.save(args.references / f"{MODEL}-v2.json")
    print("references written", flush=True)

    @otel_ml.monitor(model=MODEL, version="v1", reference=ref_v1)
    def predict_v1(df: pd.DataFrame) -> np.ndarray:
        if random.random() < 0.05:
            raise ValueError("bad batch")
        return clf.predict_proba(encode(df))

    @otel_ml.monitor(model=MODEL, version="v2", reference=ref_v2)
    def predict_v2(df: pd.DataFrame) -> np.ndarray:
        return np.array([str(v) for v in clf.predict(encode(df))])

    random.seed(7)
    deadline = time.monotonic() + args.seconds
    i = 0
    while time.monotonic() < deadline:
        i += 1
        df = batch(200, shift=8.0)
        df.loc[df.sample(frac=0.08, random_state=i).index, MISSING] = np.nan
        df.loc[df.index[:3], CATEGORICAL] = "zzz"
        if i % 5 == 0:
            df["extra"] = 1.0
        with tracer.start_as_current_span("POST /predict", kind=trace.SpanKind.SERVER):
            t0 = time.perf_counter()
            status = 200
            try:
                (predict_v2 if i % 4 == 0 else predict_v1)(df)
            except ValueError:
                status = 500
            http_duration.record(time.perf_counter() - t0 + random.random() * 0.05, {
                "http.request.method": "POST", "http.route": "/predict", "http.response.status_code": status})
        time.sleep(0.05)
    otel_ml.flush()
    meter_provider.force_flush()
    tracer_provider.force_flush()
    print(f"sent {i} batches", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
