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


# --- prediction and outcome records (OTLP logs), as the contract of issue 11 spells them -------------
def _any(value: object) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, (list, tuple)):
        from opentelemetry.proto.common.v1.common_pb2 import ArrayValue

        return AnyValue(array_value=ArrayValue(values=[_any(v) for v in value]))
    return AnyValue(string_value=str(value))


def hashed_id(i: int) -> str:
    """An id as the library sends it by default: 32 hex digits of a keyed hash."""
    import hashlib
    import hmac

    return hmac.new(b"test-secret", str(i).encode(), hashlib.sha256).hexdigest()[:32]


def log_record(event: str, attrs: dict[str, object], time_ns: int, trace: bytes = b"", span: bytes = b""):
    from opentelemetry.proto.logs.v1 import logs_pb2

    r = logs_pb2.LogRecord(time_unix_nano=time_ns, event_name=event, trace_id=trace, span_id=span)
    r.attributes.extend(KeyValue(key=k, value=_any(v)) for k, v in attrs.items())
    return r


def prediction(model: str, version: str, pid: str, time_ns: int, *, label: str | None = None,
               value: float | None = None, proba: list[float] | None = None, trace: bytes = b"", span: bytes = b"",
               segments: dict[str, object] | None = None, role: object = None):
    attrs: dict[str, object] = {semconv.MODEL_NAME: model, semconv.MODEL_VERSION: version, semconv.PREDICTION_ID: pid}
    if role is not None:
        attrs[semconv.MODEL_ROLE] = role
    for name, seg in (segments or {}).items():
        attrs[semconv.SEGMENT_ATTRIBUTE_PREFIX + name] = seg
    if label is not None:
        attrs[semconv.PREDICTION_LABEL] = label
    if value is not None:
        attrs[semconv.PREDICTION_VALUE_ATTRIBUTE] = value
    if proba is not None:
        attrs[semconv.PREDICTION_PROBABILITIES] = list(proba)
    return log_record(semconv.EVENT_PREDICTION, attrs, time_ns, trace, span)


def outcome(model: str, pid: str, time_ns: int, *, label: str | None = None, value: float | None = None,
            version: str | None = None):
    attrs: dict[str, object] = {semconv.MODEL_NAME: model, semconv.PREDICTION_ID: pid}
    if version is not None:
        attrs[semconv.MODEL_VERSION] = version
    if label is not None:
        attrs[semconv.OUTCOME_LABEL] = label
    if value is not None:
        attrs[semconv.OUTCOME_VALUE] = value
    return log_record(semconv.EVENT_OUTCOME, attrs, time_ns)


def logs_request(records: list) -> bytes:
    """An ExportLogsServiceRequest (resource, scope ``otel_ml``) holding ``records``."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.append(kv("service.name", "scorer"))
    sl = rl.scope_logs.add()
    sl.scope.name = "otel_ml"
    sl.log_records.extend(records)
    return req.SerializeToString()


def classifier_reference(model: str = "fraud", version: str = "1") -> Reference:
    """A binary classifier's reference (outputs proba:0, proba:1) built on a labelled holdout of 4,000 rows
    whose accuracy is exactly 0.95 (its ``performance`` section)."""
    rng = np.random.default_rng(3)
    n = 4000
    predicted = np.arange(n) % 2
    p1 = np.where(predicted == 1, 0.8, 0.2)
    labels = np.where(np.arange(n) < 3800, predicted, 1 - predicted).astype(str)
    return build_reference({"x": rng.normal(size=n)}, model=model, version=version,
                           predictions=np.column_stack([1 - p1, p1]), class_names=["0", "1"], labels=labels)


# --- per-segment metrics (issue 13's contract: ml.segment.* with ml.segment.name / ml.segment.value) --------
SEGMENT_SHARES = {"DE": 0.5, "FR": 0.3, "US": 0.1, semconv.OTHER_CATEGORY: 0.1}


@functools.lru_cache(maxsize=8)
def segment_reference(model: str = "shop", version: str = "1", column: str = "country", rows: int = 20_000,
                      missing: float = 0.01, seed: int = 0) -> Reference:
    """:func:`make_reference` (numeric output ``value`` ~ U(0, 1)) with a "segments" section for ``column``:
    the values of :data:`SEGMENT_SHARES`, each with its rows, output counts and missing values."""
    import dataclasses

    from otel_ml.reference import SegmentColumnProfile, SegmentValueProfile

    base = make_reference(model, version, n_features=3, rows=rows, seed=seed, categorical=False)
    out = base.outputs[0]
    rng = np.random.default_rng(seed + 1)
    values = {}
    for value, share in SEGMENT_SHARES.items():
        n = int(rows * share)
        counts = bucket_counts(rng.uniform(0, 1, n), np.asarray(out.edges))
        bad = int(rng.binomial(n * len(base.features), missing))
        quality = {kind: bad if kind == "missing" else 0 for kind in semconv.QUALITY_KINDS}
        values[value] = SegmentValueProfile(n, {out.name: tuple(int(c) for c in counts)}, quality)
    return dataclasses.replace(base, segments={column: SegmentColumnProfile(values)})


class SegmentEmitter:
    """Cumulative ``ml.segment.*`` points of one pod for one segment column, as the library emits them."""

    def __init__(self, ref: Reference, column: str = "country", pod: str = "pod-0", start_ns: int = 10,
                 seed: int = 2) -> None:
        self.ref = ref
        self.column = column
        self.pod = pod
        self.start_ns = start_ns
        self.time_ns = start_ns
        self.rng = np.random.default_rng(seed)
        self.rows: dict[str, int] = {}
        self.outputs: dict[str, np.ndarray] = {}
        self.missing: dict[str, int] = {}

    def observe(self, value: str, rows: int, shift: float = 0.0, missing: float = 0.01) -> None:
        """``rows`` rows of segment ``value``: outputs ~ U(shift, 1 + shift), missing values at rate ``missing``."""
        out = self.ref.outputs[0]
        counts = bucket_counts(self.rng.uniform(shift, 1 + shift, rows), np.asarray(out.edges))
        self.outputs[value] = self.outputs.get(value, 0) + counts
        self.rows[value] = self.rows.get(value, 0) + rows
        bad = int(self.rng.binomial(rows * len(self.ref.features), missing))
        self.missing[value] = self.missing.get(value, 0) + bad

    def request(self, time_ns: int | None = None) -> ExportMetricsServiceRequest:
        import time

        self.time_ns = time_ns if time_ns is not None else max(time.time_ns(), self.time_ns + 1)
        req = ExportMetricsServiceRequest()
        rm = req.resource_metrics.add()
        rm.resource.attributes.extend([kv("service.name", "svc"), kv("service.instance.id", self.pod)])
        sm = rm.scope_metrics.add()
        sm.scope.name = semconv.INSTRUMENTATION_SCOPE
        out = self.ref.outputs[0]

        def counter(name: str) -> pb.Metric:
            m = sm.metrics.add(name=name)
            m.sum.aggregation_temporality = CUMULATIVE
            m.sum.is_monotonic = True
            return m

        rows = counter(semconv.SEGMENT_ROWS)
        hist = sm.metrics.add(name=semconv.SEGMENT_PREDICTION_VALUE)
        hist.histogram.aggregation_temporality = CUMULATIVE
        quality = {k: counter(name) for k, name in semconv.SEGMENT_QUALITY_COUNTERS.items()}
        for value, n in self.rows.items():
            base = [kv(semconv.MODEL_NAME, self.ref.model_name), kv(semconv.MODEL_VERSION, self.ref.model_version),
                    kv(semconv.SEGMENT_NAME, self.column), kv(semconv.SEGMENT_VALUE, value)]
            t = {"start_time_unix_nano": self.start_ns, "time_unix_nano": self.time_ns}
            rows.sum.data_points.add(as_int=n, **t).attributes.extend(base)
            counts = self.outputs[value]
            dp = hist.histogram.data_points.add(count=int(counts.sum()), **t)
            dp.attributes.extend([*base, kv(semconv.PREDICTION_NAME, out.name)])
            dp.bucket_counts.extend(int(x) for x in counts)
            dp.explicit_bounds.extend(out.edges)
            for kind, m in quality.items():
                m.sum.data_points.add(as_int=self.missing[value] if kind == "missing" else 0,
                                      **t).attributes.extend(base)
        return req
