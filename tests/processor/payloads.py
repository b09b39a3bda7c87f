"""Test helpers: reference profiles and real OTLP requests shaped as the otel_ml library emits them."""

from __future__ import annotations

import functools

import numpy as np
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb

from otel_ml import semconv
from otel_ml._binning import bucket_counts
from otel_ml._reference import Reference, build_reference

CUMULATIVE = pb.AGGREGATION_TEMPORALITY_CUMULATIVE
DELTA = pb.AGGREGATION_TEMPORALITY_DELTA


@functools.lru_cache(maxsize=32)
def make_reference(model: str = "churn", version: str = "1", n_features: int = 3, rows: int = 20_000,
                   seed: int = 0, bins: int = 10, categorical: bool = True) -> Reference:
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {f"f{i}": rng.normal(0.0, 1.0, rows) for i in range(n_features)}
    if categorical:
        data["plan"] = list(rng.choice(["basic", "pro", "team"], size=rows, p=[0.6, 0.3, 0.1]))
    preds = rng.uniform(0, 1, rows)
    return build_reference(data, model=model, version=version, predictions=preds, bins=bins,
                           categorical=["plan"] if categorical else None)


def kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


class Emitter:
    """Builds cumulative ExportMetricsServiceRequests for one pod, like the library does."""

    def __init__(self, ref: Reference, pod: str = "pod-0", start_ns: int | None = None, seed: int = 1) -> None:
        import time

        self.ref = ref
        self.pod = pod
        self.start_ns = start_ns if start_ns is not None else time.time_ns()
        self.rng = np.random.default_rng(seed)
        self.hist: dict[str, np.ndarray] = {}
        self.cats: dict[str, np.ndarray] = {}
        self.missing: dict[str, int] = {}
        self.time_ns = self.start_ns

    def observe(self, rows: int, shift: dict[str, float] | None = None, missing: float = 0.0) -> None:
        shift = shift or {}
        for p in self.ref.features:
            if p.kind == "numeric":
                values = self.rng.normal(shift.get(p.name, 0.0) * p.std + p.mean - p.mean, p.std, rows) + p.mean
                counts = bucket_counts(values, np.asarray(p.edges))
                self.hist[p.name] = self.hist.get(p.name, 0) + counts
            else:
                total = np.asarray(p.bucket_counts, dtype=float)
                counts = self.rng.multinomial(rows, total / total.sum())
                self.cats[p.name] = self.cats.get(p.name, 0) + counts
            self.missing[p.name] = self.missing.get(p.name, 0) + int(self.rng.binomial(rows, missing))

    def request(self, time_ns: int | None = None, temporality: int = CUMULATIVE,
                bounds_override: list[float] | None = None) -> ExportMetricsServiceRequest:
        import time

        self.time_ns = time_ns if time_ns is not None else max(time.time_ns(), self.time_ns + 1)
        req = ExportMetricsServiceRequest()
        rm = req.resource_metrics.add()
        rm.resource.attributes.extend([kv("service.name", "svc"), kv("service.instance.id", self.pod)])
        sm = rm.scope_metrics.add()
        sm.scope.name = semconv.INSTRUMENTATION_SCOPE
        base = [kv(semconv.MODEL_NAME, self.ref.model_name), kv(semconv.MODEL_VERSION, self.ref.model_version)]
        h = sm.metrics.add(name=semconv.FEATURE_VALUE)
        h.histogram.aggregation_temporality = temporality
        c = sm.metrics.add(name=semconv.FEATURE_CATEGORY_COUNT)
        c.sum.aggregation_temporality = temporality
        c.sum.is_monotonic = True
        m = sm.metrics.add(name=semconv.FEATURE_MISSING)
        m.sum.aggregation_temporality = temporality
        m.sum.is_monotonic = True
        for p in self.ref.features:
            if p.kind == "numeric" and p.name in self.hist:
                counts = self.hist[p.name]
                dp = h.histogram.data_points.add(start_time_unix_nano=self.start_ns, time_unix_nano=self.time_ns,
                                                 count=int(counts.sum()))
                dp.attributes.extend([*base, kv(semconv.FEATURE_NAME, p.name)])
                dp.bucket_counts.extend(int(x) for x in counts)
                dp.explicit_bounds.extend(bounds_override if bounds_override is not None else p.edges)
            elif p.kind == "categorical" and p.name in self.cats:
                for label, n in zip(p.bucket_labels, self.cats[p.name]):
                    dp = c.sum.data_points.add(start_time_unix_nano=self.start_ns, time_unix_nano=self.time_ns,
                                               as_int=int(n))
                    dp.attributes.extend([*base, kv(semconv.FEATURE_NAME, p.name),
                                          kv(semconv.FEATURE_CATEGORY, label)])
            if p.name in self.missing:
                dp = m.sum.data_points.add(start_time_unix_nano=self.start_ns, time_unix_nano=self.time_ns,
                                           as_int=self.missing[p.name])
                dp.attributes.extend([*base, kv(semconv.FEATURE_NAME, p.name)])
        # Unrelated metric the processor must ignore.
        o = sm.metrics.add(name="http.server.request.duration")
        o.gauge.data_points.add(time_unix_nano=self.time_ns, as_double=1.0)
        return req
