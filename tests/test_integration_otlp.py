"""End to end over real OTLP/gRPC and OTLP/HTTP: the library's exporters talk to a receiver started by this test."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent import futures

import grpc
import numpy as np
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import otel_ml
from otel_ml import semconv as M

from _otel_ml_support import log_attrs, log_records, otlp_http_server, reset_library, tracer_provider


class Receiver(metrics_service_pb2_grpc.MetricsServiceServicer, trace_service_pb2_grpc.TraceServiceServicer,
               logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self) -> None:
        self.metrics: list[metrics_service_pb2.ExportMetricsServiceRequest] = []
        self.spans: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.logs: list[logs_service_pb2.ExportLogsServiceRequest] = []
        self.lock = threading.Lock()

    def Export(self, request, context):
        with self.lock:
            if isinstance(request, metrics_service_pb2.ExportMetricsServiceRequest):
                self.metrics.append(request)
                return metrics_service_pb2.ExportMetricsServiceResponse()
            if isinstance(request, logs_service_pb2.ExportLogsServiceRequest):
                self.logs.append(request)
                return logs_service_pb2.ExportLogsServiceResponse()
            self.spans.append(request)
            return trace_service_pb2.ExportTraceServiceResponse()


class _Switch(SpanProcessor):
    """Forwards to ``inner`` only while active (a global provider's processors cannot be removed)."""

    def __init__(self, inner: SpanProcessor) -> None:
        self.inner = inner
        self.active = True

    def on_start(self, span, parent_context=None):
        pass

    def on_end(self, span):
        if self.active:
            self.inner.on_end(span)

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return self.inner.force_flush(timeout_millis)


@pytest.fixture
def receiver():
    rec = Receiver()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(rec, server)
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(rec, server)
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(rec, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    provider = tracer_provider()
    switch = _Switch(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"127.0.0.1:{port}", insecure=True)))
    provider.add_span_processor(switch)
    reset_library()
    try:
        yield rec, port
    finally:
        switch.active = False
        reset_library()
        server.stop(0)


def _metric(requests, name):
    found = []
    for req in requests:
        for rm in req.resource_metrics:
            for sm in rm.scope_metrics:
                found.extend(m for m in sm.metrics if m.name == name)
    return found[-1]


def _attrs(kvs):
    out = {}
    for kv in kvs:
        v = kv.value
        out[kv.key] = getattr(v, v.WhichOneof("value"))
    return out


def _pt(metric, **attrs):
    kind = metric.WhichOneof("data")
    pts = [p for p in getattr(metric, kind).data_points
           if all(_attrs(p.attributes).get(k) == v for k, v in attrs.items())]
    assert len(pts) == 1, (metric.name, attrs, len(pts))
    return pts[0]


def test_exact_buckets_spans_and_quality_over_real_otlp_grpc(receiver, monkeypatch):
    rec, port = receiver
    monkeypatch.setenv("OTEL_SERVICE_NAME", "integration")
    # reference: x in [-4, 4] (negatives), y in [0, 9], a categorical, regression outputs
    x_ref = np.repeat(np.arange(-4.0, 5.0), 10)
    y_ref = np.tile(np.arange(0.0, 10.0), 9)
    k_ref = np.array(["a", "b", "c"] * 30, dtype=object)
    ref = otel_ml.build_reference({"x": x_ref, "y": y_ref, "k": k_ref}, model="credit", version="3",
                                  categorical=["k"], predictions=x_ref * 0.5, bins=4)
    x_edges = list(ref.feature("x").edges)
    assert x_edges[0] < 0

    otel_ml.configure(endpoint=f"127.0.0.1:{port}", protocol="grpc", export_interval_s=3600, timeout_s=5.0)

    @otel_ml.monitor(model="credit", version="3", reference=ref)
    def predict(batch):
        return np.asarray(batch["x"], dtype=float) * 0.5

    xs = [-9.0, -4.0, -2.5, -1.0, 0.0, 3.5, 4.0, 12.0, float("nan"), float("inf")]
    ys = [1.0, 2.0, 3.0, None, 5.0, "six", 7.0, 8.0, 9.0, 0.0]
    ks = ["a", "a", "b", "zz", None, "c", "c", "a", "b", "b"]
    tracer = trace.get_tracer("integration-test")
    with tracer.start_as_current_span("POST /score") as parent:
        out = predict({"x": xs, "y": ys, "k": ks})
    assert out.shape == (10,)
    assert otel_ml.flush(10.0)

    finite_x = [v for v in xs if np.isfinite(v)]
    expected = [0] * (len(x_edges) + 1)
    for v in finite_x:
        expected[sum(1 for e in x_edges if v > e)] += 1

    fv = _metric(rec.metrics, M.FEATURE_VALUE)
    assert fv.histogram.aggregation_temporality == 2  # CUMULATIVE
    px = _pt(fv, **{M.FEATURE_NAME: "x", M.MODEL_NAME: "credit", M.MODEL_VERSION: "3"})
    assert list(px.explicit_bounds) == x_edges
    assert list(px.bucket_counts) == expected
    assert expected[0] >= 2  # the negative buckets are really populated
    assert px.count == 8 and px.min == -9.0 and px.max == 12.0
    assert not px.HasField("sum")  # the reference has negatives: no sum (OTel spec)
    py = _pt(fv, **{M.FEATURE_NAME: "y"})
    assert list(py.explicit_bounds) == list(ref.feature("y").edges)
    assert py.count == 8 and py.HasField("sum") and py.sum == pytest.approx(1 + 2 + 3 + 5 + 7 + 8 + 9 + 0)

    def counter(name, **attrs):
        return _pt(_metric(rec.metrics, name), **attrs).as_int

    assert counter(M.PREDICT_ROWS) == 10
    assert counter(M.FEATURE_MISSING, **{M.FEATURE_NAME: "x"}) == 1
    assert counter(M.FEATURE_INVALID, **{M.FEATURE_NAME: "x", M.QUALITY_REASON: M.REASON_NON_FINITE}) == 1
    assert counter(M.FEATURE_OUT_OF_RANGE, **{M.FEATURE_NAME: "x"}) == 2
    assert counter(M.FEATURE_MISSING, **{M.FEATURE_NAME: "y"}) == 1
    assert counter(M.FEATURE_INVALID, **{M.FEATURE_NAME: "y", M.QUALITY_REASON: M.REASON_WRONG_TYPE}) == 1
    assert counter(M.FEATURE_CATEGORY_COUNT, **{M.FEATURE_NAME: "k", M.FEATURE_CATEGORY: "a"}) == 3
    assert counter(M.FEATURE_CATEGORY_COUNT, **{M.FEATURE_NAME: "k", M.FEATURE_CATEGORY: M.OTHER_CATEGORY}) == 1
    assert counter(M.FEATURE_UNSEEN, **{M.FEATURE_NAME: "k"}) == 1
    assert counter(M.FEATURE_MISSING, **{M.FEATURE_NAME: "k"}) == 1
    pv = _pt(_metric(rec.metrics, M.PREDICTION_VALUE), **{M.PREDICTION_NAME: "value"})
    assert pv.count == 8

    dur = _pt(_metric(rec.metrics, M.PREDICT_DURATION))
    assert dur.count == 1 and len(dur.explicit_bounds) == 15
    assert _metric(rec.metrics, M.PREDICT_DURATION).unit == "s"
    resource = _attrs(rec.metrics[-1].resource_metrics[0].resource.attributes)
    assert resource["service.name"] == "integration"
    scope = rec.metrics[-1].resource_metrics[0].scope_metrics[0].scope
    assert scope.name == M.INSTRUMENTATION_SCOPE

    spans = [s for req in rec.spans for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]
    predict_spans = [s for s in spans if s.name == "predict credit"]
    assert len(predict_spans) == 1
    span = predict_spans[0]
    attrs = _attrs(span.attributes)
    assert attrs[M.MODEL_NAME] == "credit" and attrs[M.MODEL_VERSION] == "3" and attrs[M.PREDICT_BATCH_SIZE] == 10
    assert span.parent_span_id == parent.get_span_context().span_id.to_bytes(8, "big")
    assert span.trace_id == parent.get_span_context().trace_id.to_bytes(16, "big")
    # exemplar links the duration histogram to this span
    assert dur.exemplars and dur.exemplars[0].span_id == span.span_id


def test_otlp_http_exporter_from_the_shared_helper():
    """create_metric_exporter picks OTLP/HTTP for a /v1/metrics URL; a real HTTP receiver gets the points."""
    from otel_ml._exporter import create_metric_exporter

    received: list[tuple[str, str | None, metrics_service_pb2.ExportMetricsServiceRequest]] = []

    def on_post(path, headers, body):
        req = metrics_service_pb2.ExportMetricsServiceRequest.FromString(body)
        received.append((path, headers.get("x-token"), req))

    with otlp_http_server(on_post) as port:
        reset_library()
        try:
            exp = create_metric_exporter(f"http://127.0.0.1:{port}/v1/metrics", headers={"x-token": "t0k"},
                                         timeout_s=5)
            otel_ml.configure(exporter=exp, export_interval_s=3600)
            ref = otel_ml.build_reference({"a": np.linspace(-3, 3, 60)}, model="h", version="1", bins=3)

            @otel_ml.monitor(model="h", version="1", reference=ref)
            def predict(X):
                return None

            predict(np.array([[-2.5], [0.0], [2.9]]))
            assert otel_ml.flush(10.0)
            path, token, req = received[-1]
            assert path == "/v1/metrics" and token == "t0k"
            fv = _metric([req], M.FEATURE_VALUE)
            p = _pt(fv, **{M.FEATURE_NAME: "a"})
            assert list(p.explicit_bounds) == list(ref.feature("a").edges)
            assert sum(p.bucket_counts) == 3 and p.bucket_counts[0] == 1
            exp.shutdown()
        finally:
            reset_library()


_FORK_SCRIPT = r"""
import os, sys
import numpy as np
import otel_ml
otel_ml.configure(endpoint=sys.argv[1], protocol="grpc", export_interval_s=3600, timeout_s=5)
ref = otel_ml.build_reference({"a": np.linspace(-1, 1, 50)}, model="forked", version="1", bins=4)

@otel_ml.monitor(model="forked", version="1", reference=ref)
def predict(X):
    return X

predict(np.array([[0.1]]))
assert otel_ml.flush(10), "parent flush before fork"
pid = os.fork()
if pid == 0:
    predict(np.array([[-0.5]] * 5))
    os._exit(0 if otel_ml.flush(10) else 3)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, "child flush failed"
predict(np.array([[0.2], [0.3]]))
assert otel_ml.flush(10), "parent flush after fork"
otel_ml.configure(disabled=True)
"""


def _run_script(script, text, port):
    """Run ``text`` as a script in a fresh interpreter (no OTEL_* variables), the receiver's gRPC address as
    its argument; it must exit 0."""
    script.write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    r = subprocess.run([sys.executable, str(script), f"127.0.0.1:{port}"], capture_output=True, text=True,
                       timeout=120, env=env)
    assert r.returncode == 0, r.stderr


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_pre_fork_worker_exports_its_own_stream_over_grpc(receiver, tmp_path):
    """A gunicorn-like fork: the child re-creates its gRPC exporter and reports under its own instance id."""
    rec, port = receiver
    _run_script(tmp_path / "fork_worker.py", _FORK_SCRIPT, port)
    rows_by_instance: dict[str, int] = {}
    for req in rec.metrics:
        for rm in req.resource_metrics:
            instance = _attrs(rm.resource.attributes)["service.instance.id"]
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == M.PREDICT_ROWS:
                        rows_by_instance[instance] = max(p.as_int for p in m.sum.data_points)
    assert sorted(rows_by_instance.values()) == [3, 5]  # parent 1 + 2, child 5: independent streams


# --- prediction and outcome records (OTLP logs) -------------------------------------------------------------
@pytest.fixture
def http_receiver():
    """The same Receiver behind OTLP/HTTP: POST /v1/metrics and /v1/logs (protobuf, gzip or not)."""
    import gzip

    rec = Receiver()
    rec.encodings = []  # type: ignore[attr-defined]

    def on_post(path, headers, body):
        encoding = headers.get("Content-Encoding")
        rec.encodings.append((path, encoding))
        if encoding == "gzip":
            body = gzip.decompress(body)
        if path == "/v1/logs":
            rec.Export(logs_service_pb2.ExportLogsServiceRequest.FromString(body), None)
        else:
            rec.Export(metrics_service_pb2.ExportMetricsServiceRequest.FromString(body), None)

    with otlp_http_server(on_post) as port:
        reset_library()
        try:
            yield rec, port
        finally:
            reset_library()


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_prediction_and_outcome_records_over_real_otlp(protocol, receiver, http_receiver, monkeypatch):
    """Exact records on the wire: event name, attributes, the predict span's ids, reference order, batch sizes."""
    import hashlib
    import hmac

    import pandas as pd

    from _otel_ml_support import SPANS

    rec, port = receiver if protocol == "grpc" else http_receiver
    monkeypatch.setenv("OTEL_SERVICE_NAME", "records")
    monkeypatch.delenv("OTEL_ML_ID_SECRET", raising=False)
    if protocol == "grpc":
        endpoint = f"127.0.0.1:{port}"
    else:
        endpoint = f"http://127.0.0.1:{port}/v1/metrics"
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    otel_ml.configure(endpoint=endpoint, protocol="grpc" if protocol == "grpc" else "http/protobuf",
                      export_interval_s=3600, timeout_s=5.0, id_secret="wire-secret")
    classes = ["b", "a", "c"]  # not sorted: the records keep the reference's order
    rng = np.random.default_rng(1)
    p_ref = rng.dirichlet([1, 1, 1], size=300)
    ref = otel_ml.build_reference({"x": rng.normal(size=300)}, model="churn", version="7",
                                  predictions=p_ref, class_names=classes)

    @otel_ml.monitor(model="churn", version="7", reference=ref, prediction_id="request_id")
    def predict(frame):
        x = frame["x"].to_numpy()
        first = 1 / (1 + np.exp(-x))
        return np.column_stack([first * 0.5, first * 0.5, 1 - first])

    n = 2500
    frame = pd.DataFrame({"x": rng.normal(size=n), "request_id": [f"req-{i}" for i in range(n)]})
    tracer = trace.get_tracer("integration-test")
    SPANS.clear()
    with tracer.start_as_current_span("POST /batch") as parent:
        expected = predict(frame).copy()
    assert otel_ml.flush(10.0)
    small = pd.DataFrame({"x": [0.0, 1.0, 2.0], "request_id": ["s-0", "s-1", "s-2"]})
    predict(small)
    queued = otel_ml.record_outcomes(model="churn", ids=["req-0", "s-2", None], actuals=["a", "c", "b"],
                                     timestamps=[pd.Timestamp("2026-01-01T00:00:00Z")] * 3)
    assert queued == 2
    assert otel_ml.flush(10.0)

    with rec.lock:
        logs = list(rec.logs)
    sizes = [sum(len(sl.log_records) for rl in req.resource_logs for sl in rl.scope_logs) for req in logs]
    assert sizes[:3] == [1000, 1000, 500] and max(sizes) <= 1000 and sum(sizes) == n + 3 + 2
    preds = log_records(logs, M.EVENT_PREDICTION)
    assert len(preds) == n + 3
    spans = {s.name: s for s in SPANS.get_finished_spans()}
    big_span = next(s for s in SPANS.get_finished_spans() if s.name == "predict churn")
    assert big_span.parent.span_id == parent.get_span_context().span_id

    def wire(i):
        return hmac.new(b"wire-secret", i.encode(), hashlib.sha256).hexdigest()[:32]

    for i in (0, 999, 1000, 2499):
        r = preds[i]
        assert r.event_name == "ml.prediction"
        assert log_attrs(r) == {M.MODEL_NAME: "churn", M.MODEL_VERSION: "7", M.PREDICTION_ID: wire(f"req-{i}"),
                                 M.PREDICTION_PROBABILITIES: expected[i].tolist()}
        assert r.trace_id == big_span.context.trace_id.to_bytes(16, "big")
        assert r.span_id == big_span.context.span_id.to_bytes(8, "big")
        assert big_span.start_time <= r.time_unix_nano
    assert [log_attrs(r)[M.PREDICTION_ID] for r in preds] == [wire(f"req-{i}") for i in range(n)] + [
        wire(f"s-{i}") for i in range(3)]
    assert "predict churn" in spans
    outcomes = log_records(logs, M.EVENT_OUTCOME)
    assert [log_attrs(r) for r in outcomes] == [
        {M.MODEL_NAME: "churn", M.PREDICTION_ID: wire("req-0"), M.OUTCOME_LABEL: "a"},
        {M.MODEL_NAME: "churn", M.PREDICTION_ID: wire("s-2"), M.OUTCOME_LABEL: "c"},
    ]
    assert outcomes[0].time_unix_nano == pd.Timestamp("2026-01-01T00:00:00Z").value
    scope = logs[0].resource_logs[0].scope_logs[0].scope
    assert scope.name == M.INSTRUMENTATION_SCOPE

    # the records share the metrics' resource, and the metrics count them
    with rec.lock:
        metrics = list(rec.metrics)
    log_resource = _attrs(logs[-1].resource_logs[0].resource.attributes)
    metric_resource = _attrs(metrics[-1].resource_metrics[0].resource.attributes)
    assert log_resource == metric_resource and log_resource["service.name"] == "records"
    assert _pt(_metric(metrics, M.PREDICTION_RECORDS), **{M.MODEL_NAME: "churn"}).as_int == n + 3
    assert _pt(_metric(metrics, M.RECORDS_DROPPED), **{M.ERROR_TYPE: "invalid"}).as_int == 1
    if protocol == "http":
        assert ("/v1/logs", "gzip") in rec.encodings



def test_prediction_records_carry_the_monitors_role_over_real_otlp(receiver):
    """``monitor(role=...)``: every prediction record of that version carries ``ml.model.role`` (the processor
    learns the baseline from records when it has not seen the version's metric series); no role, none."""
    rec, port = receiver
    otel_ml.configure(endpoint=f"127.0.0.1:{port}", protocol="grpc", export_interval_s=3600, timeout_s=5.0,
                      id_secret="wire-secret")

    def model(x):
        return np.asarray(x, dtype=float)[:, 0]

    def ids(x):
        return [f"r-{i}" for i in range(len(x))]

    monitored = {role: otel_ml.monitor(model="roles", version=str(v), prediction_id=ids, role=role)(model)
                 for v, role in enumerate(("live", "canary", "shadow", None))}
    for predict in monitored.values():
        predict(np.array([[0.1], [0.2], [0.3]]))
    assert otel_ml.flush(10.0)
    with rec.lock:
        logs = list(rec.logs)
    preds = log_records(logs, M.EVENT_PREDICTION)
    by_version: dict[str, set] = {}
    for r in preds:
        a = log_attrs(r)
        by_version.setdefault(a[M.MODEL_VERSION], set()).add(a.get(M.MODEL_ROLE))
    assert by_version == {"0": {"live"}, "1": {"canary"}, "2": {"shadow"}, "3": {None}}
    assert len(preds) == 12


_FORK_RECORDS_SCRIPT = r"""
import os, sys
import numpy as np
import otel_ml
otel_ml.configure(endpoint=sys.argv[1], protocol="grpc", export_interval_s=3600, timeout_s=5, id_secret="fork-secret")

@otel_ml.monitor(model="forked", version="1", prediction_id=lambda X: [f"{os.getpid()}-{i}" for i in range(len(X))])
def predict(X):
    return np.asarray(X, dtype=float)[:, 0]

predict(np.array([[0.1], [0.2]]))  # queued, maybe not sent yet when the fork happens
pid = os.fork()
if pid == 0:
    predict(np.array([[0.5]] * 3))
    os._exit(0 if otel_ml.flush(10) else 3)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, "child flush failed"
assert otel_ml.flush(10), "parent flush"
otel_ml.configure(disabled=True)
print(os.getpid())
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_child_sends_its_own_records_once(receiver, tmp_path):
    """Records queued before a fork are sent by the parent only; the child's carry its own instance id."""
    rec, port = receiver
    _run_script(tmp_path / "fork_records.py", _FORK_RECORDS_SCRIPT, port)
    by_instance: dict[str, int] = {}
    for req in rec.logs:
        for rl in req.resource_logs:
            instance = _attrs(rl.resource.attributes)["service.instance.id"]
            n = sum(len(sl.log_records) for sl in rl.scope_logs)
            by_instance[instance] = by_instance.get(instance, 0) + n
    assert sorted(by_instance.values()) == [2, 3]
    metric_instances = {_attrs(rm.resource.attributes)["service.instance.id"]
                        for req in rec.metrics for rm in req.resource_metrics}
    assert set(by_instance) <= metric_instances
