"""The collector-side facts everything else builds on, checked against the real components.

1. The user-facing configs in collector/config/ start the collector we build.
2. Naming: what Prometheus really stores for every otel-ml metric (after OTLP -> collector ->
   prometheus_remote_write -> Prometheus) is what ``otel_ml.semconv.prometheus_name`` says.
3. The filter in otel-ml-collector.yaml sends the library's ml.* metrics, and nothing else, to the
   processor, while Prometheus still gets everything.
4. The load-balancing config keeps every data point of one model version on one processor replica.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from otel_ml import semconv

from ._components import COLLECTOR_CONFIG, ENV_REPLICA, LOADBALANCING_CONFIG, wait_until

MODEL = {semconv.MODEL_NAME: "churn", semconv.MODEL_VERSION: "v7"}
ALL_METRICS: dict[str, tuple[str, str]] = {**semconv.LIBRARY_METRICS, **semconv.PROCESSOR_METRICS}
HISTOGRAM_BOUNDS = [0.0, 1.0, 2.5, 5.0, 10.0]


def send_metrics(
    endpoint: str,
    metrics: Mapping[str, tuple[str, str]],
    *,
    attributes: Iterable[Mapping[str, Any]] = (MODEL,),
    resource: Mapping[str, Any] | None = None,
) -> None:
    """Record one of each metric (kind, unit) per attribute set with the OTel Python SDK, then export
    it over OTLP/gRPC to ``endpoint`` (cumulative temporality, as the library does)."""
    exporter = OTLPMetricExporter(endpoint=endpoint, insecure=True, timeout=10)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        resource=Resource.create({"service.name": "e2e-smoke", **(resource or {})}),
        metric_readers=[reader],
    )
    meter = provider.get_meter(semconv.INSTRUMENTATION_SCOPE)
    attribute_sets = list(attributes)
    for name, (kind, unit) in metrics.items():
        if kind == "histogram":
            inst = meter.create_histogram(
                name, unit=unit, explicit_bucket_boundaries_advisory=HISTOGRAM_BOUNDS
            )
            for attrs in attribute_sets:
                for v in (0.5, 3.0, 7.0):
                    inst.record(v, attributes=attrs)
        elif kind == "counter":
            inst = meter.create_counter(name, unit=unit)
            for attrs in attribute_sets:
                inst.add(3, attributes=attrs)
        elif kind == "gauge":
            inst = meter.create_gauge(name, unit=unit)
            for attrs in attribute_sets:
                inst.set(0.25, attributes=attrs)
        else:  # pragma: no cover - semconv only knows these three
            raise AssertionError(f"unknown instrument kind {kind!r} for {name}")
    assert provider.force_flush(15_000), "the OTel SDK could not export to the collector"
    provider.shutdown()


def expected_series_names(name: str) -> set[str]:
    kind, _ = ALL_METRICS[name]
    base = semconv.prometheus_name(name)
    if kind == "histogram":
        return {f"{base}_bucket", f"{base}_sum", f"{base}_count"}
    return {base}


# --- 1. The configs start -----------------------------------------------------------------------


def test_collector_starts_from_the_user_config(otelcol, prometheus, otlp_sink):
    col = otelcol(
        COLLECTOR_CONFIG,
        env={
            "OTEL_ML_PROCESSOR_ENDPOINT": otlp_sink.endpoint,
            "PROMETHEUS_REMOTE_WRITE_URL": prometheus.remote_write_url,
        },
    )
    assert col.healthy()
    assert col.self_metric("otelcol_process_uptime") >= 0
    assert "Everything is ready" in col.log()


def test_collector_starts_from_the_loadbalancing_config(otelcol, prometheus, otlp_sink):
    col = otelcol(
        LOADBALANCING_CONFIG,
        env={
            ENV_REPLICA.format(1): otlp_sink.endpoint,
            ENV_REPLICA.format(2): otlp_sink.endpoint.replace("127.0.0.1", "localhost"),
            "PROMETHEUS_REMOTE_WRITE_URL": prometheus.remote_write_url,
        },
    )
    assert col.healthy()


# --- 2. Names as Prometheus stores them -------------------------------------------------------------


def test_prometheus_names_match_semconv(otelcol, prometheus, otlp_sink):
    """Every metric of semconv (each kind/unit combination: histogram "s", histogram "", counter
    "{row}"/"{value}"/..., gauge "1", gauge "", gauge "By"...) through the real pipeline."""
    col = otelcol(
        COLLECTOR_CONFIG,
        env={
            "OTEL_ML_PROCESSOR_ENDPOINT": otlp_sink.endpoint,
            "PROMETHEUS_REMOTE_WRITE_URL": prometheus.remote_write_url,
        },
    )
    send_metrics(col.otlp_grpc, ALL_METRICS)

    expected = {n: expected_series_names(n) for n in ALL_METRICS}
    wanted = set().union(*expected.values())
    try:
        stored = set(prometheus.wait_for_names(wanted, timeout=30))
    except TimeoutError:
        stored = set(prometheus.metric_names())
    ours = sorted(s for s in stored if s.startswith(("ml_", "otel_ml_")))
    mismatches = {
        n: {"semconv": sorted(exp), "missing": sorted(exp - stored)}
        for n, exp in expected.items()
        if not exp <= stored
    }
    assert not mismatches, (
        "Prometheus stored other names than otel_ml.semconv.prometheus_name() predicts.\n"
        f"Mismatches: {mismatches}\nEverything Prometheus stored for otel-ml: {ours}"
    )

    # The values made the trip too, with the model labels, and histograms are real histograms.
    rows = prometheus.values(f'{semconv.prometheus_name(semconv.PREDICT_ROWS)}{{ml_model_name="churn"}}')
    assert list(rows.values()) == [3.0]
    (labels,) = rows
    assert ("ml_model_version", "v7") in labels
    duration = semconv.prometheus_name(semconv.PREDICT_DURATION)
    buckets = prometheus.values(f"{duration}_bucket")
    assert {dict(k)["le"]: v for k, v in buckets.items()} == {
        "0": 0.0, "1": 1.0, "2.5": 1.0, "5": 2.0, "10": 3.0, "+Inf": 3.0
    }
    (p50,) = prometheus.promql(f"histogram_quantile(0.5, sum by (le) ({duration}_bucket))")
    assert 2.5 < float(p50["value"][1]) <= 5.0  # values 0.5, 3, 7: the median's bucket is (2.5, 5]
    gauge = prometheus.values(semconv.prometheus_name(semconv.QUALITY_MISSING_RATIO))
    assert list(gauge.values()) == [0.25]


# --- 3. The filter towards the processor -------------------------------------------------------------


def test_only_library_ml_metrics_reach_the_processor(otelcol, prometheus, otlp_sink):
    col = otelcol(
        COLLECTOR_CONFIG,
        env={
            "OTEL_ML_PROCESSOR_ENDPOINT": otlp_sink.endpoint,
            "PROMETHEUS_REMOTE_WRITE_URL": prometheus.remote_write_url,
        },
    )
    # Every metric the library emits goes to the processor; none of the processor's own outputs
    # (ml.drift.*, ml.quality.*, otel_ml.processor.*) nor the service's ordinary telemetry does.
    to_processor = dict(semconv.LIBRARY_METRICS)
    not_to_processor = {
        **semconv.PROCESSOR_METRICS,
        "http.server.request.duration": ("histogram", "s"),
        "mlx.lookalike": ("counter", ""),
    }
    send_metrics(col.otlp_grpc, {**to_processor, **not_to_processor})

    wait_until(
        lambda: set(to_processor) <= otlp_sink.metric_names(),
        timeout=30,
        message=lambda: f"{sorted(to_processor)} at the processor stub; got {sorted(otlp_sink.metric_names())}",
    )
    # Prometheus gets everything, the drift gauges included ...
    prometheus.wait_for_names(
        [semconv.prometheus_name(semconv.DRIFT_SCORE), "http_server_request_duration_seconds_count"],
        timeout=30,
    )
    # ... and by now the processor would have had the rest too, had the filter let it through.
    assert otlp_sink.metric_names() == set(to_processor)
    for _, attrs in otlp_sink.points():
        assert attrs[semconv.MODEL_NAME] == "churn"


# --- 4. Load balancing by model version -----------------------------------------------------------------


def test_loadbalancing_keeps_each_model_version_on_one_replica(otelcol, prometheus):
    from ._components import OtlpSink

    replicas = [OtlpSink(), OtlpSink()]
    try:
        col = otelcol(
            LOADBALANCING_CONFIG,
            env={
                ENV_REPLICA.format(1): replicas[0].endpoint,
                ENV_REPLICA.format(2): replicas[1].endpoint,
                "PROMETHEUS_REMOTE_WRITE_URL": prometheus.remote_write_url,
            },
        )
        models = [
            {semconv.MODEL_NAME: f"model-{i}", semconv.MODEL_VERSION: v}
            for i in range(12)
            for v in ("v1", "v2")
        ]
        metrics = {
            semconv.FEATURE_VALUE: ("histogram", ""),
            semconv.FEATURE_MISSING: ("counter", "{value}"),
            semconv.PREDICT_ROWS: ("counter", "{row}"),
        }
        features = [{**m, semconv.FEATURE_NAME: f} for m in models for f in ("age", "income")]
        # Two app instances serve every model version: their points must still meet on one replica.
        for instance in ("pod-a", "pod-b"):
            send_metrics(col.otlp_grpc, metrics, attributes=features,
                         resource={"service.instance.id": instance})

        expected_points = len(features) * len(metrics) * 2

        def all_arrived() -> bool:
            return sum(len(r.points()) for r in replicas) >= expected_points

        wait_until(all_arrived, timeout=30, message=lambda: (
            f"{expected_points} points at the replicas; got "
            f"{[len(r.points()) for r in replicas]}"))

        where: dict[tuple[str, str], set[int]] = defaultdict(set)
        for idx, replica in enumerate(replicas):
            for _, attrs in replica.points():
                where[(attrs[semconv.MODEL_NAME], attrs[semconv.MODEL_VERSION])].add(idx)
        split = {k: v for k, v in where.items() if len(v) > 1}
        assert not split, f"model versions split over replicas: {split}"
        assert len(where) == len(models)
        per_replica = [sum(1 for v in where.values() if v == {i}) for i in range(2)]
        assert all(n > 0 for n in per_replica), f"one replica got every model: {per_replica}"
    finally:
        for r in replicas:
            r.stop()


@pytest.mark.parametrize("config", [COLLECTOR_CONFIG, LOADBALANCING_CONFIG], ids=lambda p: p.name)
def test_configs_validate(config, otelcol_binary, tmp_path):
    """``otelcol validate`` on the shipped files with their defaults (no env set)."""
    import subprocess

    result = subprocess.run(
        [str(otelcol_binary), "validate", "--config", str(config)],
        capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- 5. Traces and exemplars ----------------------------------------------------------------------------


def test_traces_reach_the_collector_and_exemplars_reach_prometheus(otelcol, prometheus, otlp_sink, tmp_path):
    """A request span with a predict child span reaches the collector's traces pipeline, and the
    latency histogram recorded inside it carries an exemplar (trace_id) all the way into Prometheus."""
    import time

    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from ._components import file_tap, tapped_spans

    traces_file = tmp_path / "traces.jsonl"
    col = otelcol(
        COLLECTOR_CONFIG,
        env={
            "OTEL_ML_PROCESSOR_ENDPOINT": otlp_sink.endpoint,
            "PROMETHEUS_REMOTE_WRITE_URL": prometheus.remote_write_url,
        },
        overrides=[file_tap(COLLECTOR_CONFIG, "traces", traces_file)],
    )
    resource = Resource.create({"service.name": "e2e-traces"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=col.otlp_grpc, insecure=True, timeout=10))
    )
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=col.otlp_grpc, insecure=True, timeout=10),
        export_interval_millis=3_600_000,
    )
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    tracer = tracer_provider.get_tracer("e2e")
    duration = meter_provider.get_meter(semconv.INSTRUMENTATION_SCOPE).create_histogram(
        semconv.PREDICT_DURATION, unit="s"
    )
    start = time.time() - 60
    with (
        tracer.start_as_current_span("GET /predict") as request_span,
        tracer.start_as_current_span(semconv.SPAN_NAME_TEMPLATE.format(model="churn")),
    ):
        duration.record(0.042, attributes=MODEL)
    trace_id = format(request_span.get_span_context().trace_id, "032x")
    assert meter_provider.force_flush(15_000)
    tracer_provider.force_flush(15_000)
    meter_provider.shutdown()
    tracer_provider.shutdown()

    def spans() -> dict[str, dict[str, Any]]:
        return {span["name"]: span for span in tapped_spans(traces_file)}

    got = wait_until(lambda: len(spans()) >= 2 and spans(), timeout=30,
                     message=lambda: f"two spans in {traces_file}; got {sorted(spans())}")
    parent, child = got["GET /predict"], got["predict churn"]
    assert child["traceId"] == parent["traceId"] == trace_id
    assert child["parentSpanId"] == parent["spanId"]

    bucket = f"{semconv.prometheus_name(semconv.PREDICT_DURATION)}_bucket"

    def exemplar_trace_ids() -> set[str]:
        found = prometheus.exemplars(bucket, start, time.time() + 60)
        return {e["labels"].get("trace_id") for s in found for e in s["exemplars"]}

    wait_until(lambda: trace_id in exemplar_trace_ids(), timeout=30,
               message=lambda: f"exemplar with trace_id {trace_id}; got {exemplar_trace_ids()}")


# --- 6. Retry while the processor is away ------------------------------------------------------------------


def test_collector_retries_while_the_processor_is_down(otelcol, prometheus, otlp_sink):
    """The otel-ml exporter's queue + unlimited retry in otel-ml-collector.yaml: data sent while the
    processor is down arrives once it is back on the same address."""
    import time

    from ._components import OtlpSink

    col = otelcol(
        COLLECTOR_CONFIG,
        env={
            "OTEL_ML_PROCESSOR_ENDPOINT": otlp_sink.endpoint,
            "PROMETHEUS_REMOTE_WRITE_URL": prometheus.remote_write_url,
        },
    )
    otlp_sink.stop()  # the processor goes away (restart, crash, rollout)
    send_metrics(col.otlp_grpc, {semconv.FEATURE_VALUE: ("histogram", "")})
    time.sleep(3)  # a few failed attempts; the batch waits in the sending queue
    assert "ml.feature.value" not in otlp_sink.metric_names()

    back = OtlpSink(port=otlp_sink.port)  # the processor is back on the same address
    try:
        wait_until(lambda: semconv.FEATURE_VALUE in back.metric_names(), timeout=60,
                   message="the queued batch to be delivered after the processor came back")
    finally:
        back.stop()


# --- 6. The library, configured by the standard variables only ----------------------------------------

_LIBRARY_APP = """
import numpy as np
import otel_ml

ref = otel_ml.build_reference({"age": np.linspace(18, 90, 200)}, model="churn", version="v7", bins=4)

@otel_ml.monitor(model="churn", version="v7", reference=ref)
def predict(X):
    return X

predict(np.array([[30.0], [40.0], [50.0]]))
assert otel_ml.flush(20), "otel-ml could not export to the collector"
"""


@pytest.mark.parametrize("protocol", [None, "grpc"], ids=["default-http-protobuf", "grpc"])
def test_library_reaches_the_processor_route_by_otel_variables_only(otelcol, prometheus, otlp_sink, protocol):
    """No protocol variable means OTLP/HTTP to the generic endpoint + /v1/metrics (the spec's default);
    OTEL_EXPORTER_OTLP_PROTOCOL=grpc means OTLP/gRPC; the port decides nothing."""
    import os
    import subprocess
    import sys

    col = otelcol(
        COLLECTOR_CONFIG,
        env={
            "OTEL_ML_PROCESSOR_ENDPOINT": otlp_sink.endpoint,
            "PROMETHEUS_REMOTE_WRITE_URL": prometheus.remote_write_url,
        },
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["OTEL_SERVICE_NAME"] = "e2e-env-only"
    if protocol is None:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = col.otlp_http_url
    else:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://{col.otlp_grpc}"
        env["OTEL_EXPORTER_OTLP_PROTOCOL"] = protocol
    result = subprocess.run([sys.executable, "-c", _LIBRARY_APP], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr

    def rows() -> int | None:
        for req in list(otlp_sink.requests):
            for rm in req.resource_metrics:
                service = {a.key: a.value.string_value for a in rm.resource.attributes}.get("service.name")
                for sm in rm.scope_metrics:
                    for m in sm.metrics:
                        if m.name == semconv.PREDICT_ROWS and service == "e2e-env-only":
                            return sum(p.as_int for p in m.sum.data_points)
        return None

    assert wait_until(rows, timeout=30, message=lambda: f"ml.predict.rows at the processor route; got "
                      f"{sorted(otlp_sink.metric_names())}") == 3
