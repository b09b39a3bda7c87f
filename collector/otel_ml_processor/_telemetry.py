"""The processor's own metrics (self-telemetry): what is counted, and how it goes out over OTLP.

Names, instruments, units and descriptions come from one table,
:data:`otel_ml.semconv.PROCESSOR_TELEMETRY` (the processor's ``metadata.yaml``); the docs' table is
tested against it. Counters are cumulative since the processor started; the resource says who sent
them (``service.name = otel-ml-processor``).
"""

from __future__ import annotations

import collections
import dataclasses
import os
import socket
import time
from dataclasses import dataclass, field

import numpy as np
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb

from otel_ml import semconv

SERVICE_NAME = "otel-ml-processor"
SCOPE_NAME = "otel_ml_processor"
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


@dataclass
class Telemetry:
    """The processor's own counters (cumulative since start) and gauges."""

    start_ns: int = field(default_factory=time.time_ns)
    received: int = 0
    rejected: collections.Counter[str] = field(default_factory=collections.Counter)
    export_failures: collections.Counter[str] = field(default_factory=collections.Counter)
    streams: int = 0
    series: int = 0
    state_bytes: int = 0
    cache_bytes: int = 0
    inflight_bytes: int = 0
    eval_buckets: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS) + 1))
    eval_count: int = 0
    eval_sum: float = 0.0

    def snapshot(self) -> Telemetry:
        """A copy safe to read from another thread while the loop keeps counting."""
        return dataclasses.replace(self, rejected=collections.Counter(self.rejected),
                                   export_failures=collections.Counter(self.export_failures),
                                   eval_buckets=list(self.eval_buckets))

    def record_evaluation(self, seconds: float) -> None:
        i = int(np.searchsorted(DURATION_BUCKETS, seconds, side="left"))
        self.eval_buckets[i] += 1
        self.eval_count += 1
        self.eval_sum += seconds


def resource_attributes() -> list[KeyValue]:
    return [
        kv("service.name", SERVICE_NAME),
        kv("service.instance.id", f"{socket.gethostname()}:{os.getpid()}"),
        kv("telemetry.sdk.name", "otel-ml"),
        kv("telemetry.sdk.language", "python"),
    ]


def new_metric(sm: pb.ScopeMetrics, name: str) -> pb.Metric:
    """A metric of the processor, with the unit (and, for self-telemetry, the description) of its table row."""
    m = sm.metrics.add(name=name)
    m.unit = semconv.PROCESSOR_METRICS[name][1]
    definition = semconv.PROCESSOR_TELEMETRY.get(name)
    if definition is not None:
        m.description = definition.description
    return m


def add_telemetry(sm: pb.ScopeMetrics, tel: Telemetry, now_ns: int) -> None:
    """Append every self-telemetry metric, each encoded as its table row's instrument says."""
    values: dict[str, dict[str, int] | int | None] = {
        semconv.PROCESSOR_POINTS_RECEIVED: tel.received,
        semconv.PROCESSOR_POINTS_REJECTED: dict(tel.rejected) or 0,
        semconv.PROCESSOR_EXPORT_FAILURES: dict(tel.export_failures) or 0,
        semconv.PROCESSOR_STREAMS: tel.streams,
        semconv.PROCESSOR_STATE_BYTES: tel.state_bytes,
        semconv.PROCESSOR_CACHE_BYTES: tel.cache_bytes,
        semconv.PROCESSOR_INFLIGHT_BYTES: tel.inflight_bytes,
        semconv.PROCESSOR_EVALUATION_DURATION: None,
    }
    for name, definition in semconv.PROCESSOR_TELEMETRY.items():
        m = new_metric(sm, name)
        value = values[name]
        if definition.instrument == "counter":
            m.sum.aggregation_temporality = pb.AGGREGATION_TEMPORALITY_CUMULATIVE
            m.sum.is_monotonic = True
            items = value.items() if isinstance(value, dict) else [(None, value)]
            for reason, v in items:
                dp = m.sum.data_points.add(start_time_unix_nano=tel.start_ns, time_unix_nano=now_ns, as_int=int(v or 0))
                if reason is not None:
                    dp.attributes.append(kv(semconv.ERROR_TYPE, reason))
        elif definition.instrument == "gauge":
            m.gauge.data_points.add(time_unix_nano=now_ns, as_int=int(value or 0))  # type: ignore[arg-type]
        else:  # histogram: the evaluation duration
            m.histogram.aggregation_temporality = pb.AGGREGATION_TEMPORALITY_CUMULATIVE
            dp = m.histogram.data_points.add(start_time_unix_nano=tel.start_ns, time_unix_nano=now_ns,
                                             count=tel.eval_count, sum=tel.eval_sum)
            dp.bucket_counts.extend(tel.eval_buckets)
            dp.explicit_bounds.extend(DURATION_BUCKETS)
