"""OtelMLInstrumentor: a real BaseInstrumentor that monitors estimators with no code change."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from _otel_ml_support import SPANS, exporter, point, points, value
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sklearn.base import BaseEstimator
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import otel_ml
from otel_ml import semconv as M
from otel_ml._instrumentor import model_identity


@pytest.fixture
def own_spans():
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    return provider, spans


def _data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, (X[:, 0] > 0).astype(int)


def _names(spans):
    return [s.name for s in spans.get_finished_spans()]


def test_is_a_base_instrumentor_declaring_its_libraries():
    inst = otel_ml.OtelMLInstrumentor()
    assert isinstance(inst, BaseInstrumentor)
    deps = inst.instrumentation_dependencies()
    assert "scikit-learn >= 1.0" in deps and any(d.startswith("onnxruntime") for d in deps)
    assert inst._check_dependency_conflicts() is None  # scikit-learn is here: any one library is enough


def test_predict_methods_of_every_estimator_are_monitored_with_the_given_providers(exporter, own_spans):
    provider, spans = own_spans
    X, y = _data()
    clf = LogisticRegression().fit(X, y)
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    mp = MeterProvider(resource=Resource({"service.name": "from-meter-provider"}))
    inst = otel_ml.OtelMLInstrumentor()
    inst.instrument(tracer_provider=provider, meter_provider=mp, exporter=exporter, export_interval_s=3600)
    inst.instrument()  # idempotent (the base class warns)

    class LateEstimator(BaseEstimator):  # defined after instrument(): patched when defined
        def fit(self, X, y=None):
            return self

        def predict(self, X):
            return np.zeros(len(X))

    clf.predict(X[:3])
    clf.predict_proba(X[:2])
    forest.predict(X[:4])  # predict_proba and the trees inside: not counted again
    pipe.predict(X[:5])  # the final LogisticRegression inside: not counted again
    LateEstimator().predict(X[:1])
    assert sorted(_names(spans)) == sorted([
        "predict LogisticRegression", "predict LogisticRegression", "predict RandomForestClassifier",
        "predict Pipeline", "predict LateEstimator"])
    assert not [s for s in SPANS.get_finished_spans() if s.name.startswith("predict ")]  # not the global one
    assert otel_ml.flush(5.0)
    data = exporter.last
    assert value(data, M.PREDICT_ROWS, **{M.MODEL_NAME: "LogisticRegression"}) == 5
    assert value(data, M.PREDICT_ROWS, **{M.MODEL_NAME: "RandomForestClassifier"}) == 4
    assert value(data, M.PREDICT_ROWS, **{M.MODEL_NAME: "Pipeline"}) == 5
    assert not points(data, M.PREDICT_ROWS, **{M.MODEL_NAME: "DecisionTreeClassifier"})
    assert point(data, M.PREDICT_DURATION, **{M.MODEL_NAME: "LogisticRegression"}).count == 2
    assert data.resource_metrics[0].resource.attributes["service.name"] == "from-meter-provider"

    inst.uninstrument()
    inst.uninstrument()
    assert not any(type(v).__module__ == "otel_ml._patch" for v in vars(LogisticRegression).values())
    clf.predict(X[:3])
    assert len(spans.get_finished_spans()) == 5


def test_reference_from_the_references_directory_turns_on_feature_monitoring(exporter, tmp_path, monkeypatch):
    X, y = _data()
    clf = LogisticRegression().fit(X, y)
    ref = otel_ml.build_reference(X, model="LogisticRegression", version="7", predictions=clf.predict_proba(X),
                                  class_names=clf.classes_)
    ref.save(tmp_path / "LogisticRegression.json")
    monkeypatch.setenv("OTEL_ML_REFERENCES", str(tmp_path))
    otel_ml.OtelMLInstrumentor().instrument()
    clf.predict_proba(X[:6])
    clf.predict(X[:2])  # the reference describes predict_proba: predict's labels are not a violation
    assert otel_ml.flush(5.0)
    data = exporter.last
    attrs = {M.MODEL_NAME: "LogisticRegression", M.MODEL_VERSION: "7"}
    assert point(data, M.FEATURE_VALUE, **attrs, **{M.FEATURE_NAME: "x0"}).count == 8
    assert point(data, M.PREDICTION_VALUE, **attrs, **{M.PREDICTION_NAME: "proba:1"}).count == 6
    assert value(data, M.SCHEMA_VIOLATIONS, **{M.SCHEMA_VIOLATION: M.SCHEMA_UNSUPPORTED_INPUT}) == 0


def test_model_identity_from_the_environment(tmp_path):
    X, _ = _data()
    assert model_identity(LogisticRegression, {}) == ("LogisticRegression", "unknown", None)
    env = {"OTEL_ML_MODEL_NAME": "credit", "OTEL_ML_MODEL_VERSION": "3", "OTEL_ML_REFERENCES": str(tmp_path)}
    assert model_identity(LogisticRegression, env) == ("credit", "3", None)  # no credit.json: no reference
    otel_ml.build_reference(X, model="credit", version="3").save(tmp_path / "credit.json")
    name, version, ref = model_identity(LogisticRegression, env)
    assert (name, version, ref.model_version) == ("credit", "3", "3")
    with pytest.raises(ValueError, match="version '3'"):
        model_identity(LogisticRegression, env | {"OTEL_ML_MODEL_VERSION": "4"})
    otel_ml.build_reference(X, model="other", version="1").save(tmp_path / "wrong.json")
    with pytest.raises(ValueError, match="model 'other'"):
        model_identity(LogisticRegression, env | {"OTEL_ML_MODEL_NAME": "wrong", "OTEL_ML_MODEL_VERSION": ""})


def test_a_bad_reference_leaves_the_model_unmonitored_and_says_so(exporter, tmp_path, monkeypatch, caplog):
    (tmp_path / "LogisticRegression.json").write_text("{not json")
    monkeypatch.setenv("OTEL_ML_REFERENCES", str(tmp_path))
    X, y = _data()
    clf = LogisticRegression().fit(X, y)
    expected = clf.predict(X[:3])
    otel_ml.OtelMLInstrumentor().instrument()
    with caplog.at_level("WARNING", logger="otel_ml"):
        assert np.array_equal(clf.predict(X[:3]), expected)
    assert any("cannot monitor LogisticRegression.predict" in r.getMessage() for r in caplog.records)


def test_importing_otel_ml_does_not_load_the_instrumentation_package():
    code = "import sys, otel_ml; print('opentelemetry.instrumentation' in sys.modules, 'sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_instrumenting_imports_no_model_library():
    code = ("import sys, otel_ml; otel_ml.OtelMLInstrumentor().instrument();"
            " print([m for m in ('sklearn', 'xgboost', 'lightgbm', 'onnxruntime') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_xgboost_lightgbm_and_onnx_runtime_models_are_monitored(exporter, own_spans, tmp_path, monkeypatch):
    import lightgbm
    import onnxruntime
    import xgboost
    from onnx import TensorProto, helper

    provider, spans = own_spans
    X, y = _data(300)
    X = X.astype(np.float32)
    graph = helper.make_graph([helper.make_node("Identity", ["X"], ["Y"])], "identity",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 3])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 3])])
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx_model.ir_version = 8
    otel_ml.build_reference(X, model="onnxruntime.InferenceSession", version="2").save(
        tmp_path / "onnxruntime.InferenceSession.json")
    monkeypatch.setenv("OTEL_ML_REFERENCES", str(tmp_path))
    otel_ml.OtelMLInstrumentor().instrument(tracer_provider=provider)

    xgb = xgboost.XGBClassifier(n_estimators=3).fit(X, y)
    lgbm = lightgbm.LGBMClassifier(n_estimators=3, verbose=-1).fit(X, y)
    session = onnxruntime.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    spans.clear()
    xgb.predict(X[:4])  # the Booster inside is not counted again
    xgb.get_booster().predict(xgboost.DMatrix(X[:5]))
    lgbm.booster_.predict(X[:6])
    out = session.run(None, {"X": X[:7]})
    assert np.array_equal(out[0], X[:7])
    names = {s.name: s.attributes[M.PREDICT_BATCH_SIZE] for s in spans.get_finished_spans()}
    assert names == {"predict XGBClassifier": 4, "predict xgboost.Booster": 5, "predict lightgbm.Booster": 6,
                     "predict onnxruntime.InferenceSession": 7}
    assert otel_ml.flush(5.0)
    data = exporter.last
    onnx_attrs = {M.MODEL_NAME: "onnxruntime.InferenceSession", M.MODEL_VERSION: "2"}
    assert point(data, M.FEATURE_VALUE, **onnx_attrs, **{M.FEATURE_NAME: "x2"}).count == 7
    assert value(data, M.PREDICT_ROWS, **{M.MODEL_NAME: "lightgbm.Booster"}) == 6


_AUTO_SCRIPT = r"""
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.ensemble import RandomForestClassifier

rng = np.random.default_rng(0)
X = rng.normal(size=(200, 3))
y = (X[:, 0] > 0).astype(int)
LogisticRegression().fit(X, y).predict_proba(X[:5])
RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y).predict(X[:4])
print("done")
"""


def test_opentelemetry_instrument_command_monitors_an_unmodified_script(tmp_path):
    """The real ``opentelemetry-instrument`` command, OTLP/gRPC to a receiver in this test."""
    from concurrent import futures
    from pathlib import Path

    import grpc
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
    from test_integration_otlp import Receiver, _attrs, _metric, _pt

    command = Path(sys.executable).parent / "opentelemetry-instrument"
    rec = Receiver()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(rec, server)
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(rec, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    X, y = _data()
    clf = LogisticRegression().fit(X, y)
    otel_ml.build_reference(X, model="LogisticRegression", version="5", predictions=clf.predict_proba(X),
                            class_names=clf.classes_).save(tmp_path / "LogisticRegression.json")
    script = tmp_path / "serve.py"
    script.write_text(_AUTO_SCRIPT)
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("OTEL_")}
    env.update({
        "OTEL_SERVICE_NAME": "auto-script",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_ML_REFERENCES": str(tmp_path),
    })
    try:
        run = subprocess.run([str(command), sys.executable, str(script)], env=env, capture_output=True,
                             text=True, timeout=180)
        assert run.returncode == 0, run.stderr
        assert "done" in run.stdout
    finally:
        server.stop(0)

    spans = [s for req in rec.spans for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]
    predict = {s.name: _attrs(s.attributes) for s in spans if s.name.startswith("predict ")}
    assert set(predict) == {"predict LogisticRegression", "predict RandomForestClassifier"}
    assert predict["predict LogisticRegression"][M.MODEL_VERSION] == "5"
    assert predict["predict RandomForestClassifier"][M.PREDICT_BATCH_SIZE] == 4
    rows = _metric(rec.metrics, M.PREDICT_ROWS)
    assert _pt(rows, **{M.MODEL_NAME: "LogisticRegression"}).as_int == 5
    assert _pt(rows, **{M.MODEL_NAME: "RandomForestClassifier"}).as_int == 4
    feature = _pt(_metric(rec.metrics, M.FEATURE_VALUE), **{M.MODEL_NAME: "LogisticRegression", M.FEATURE_NAME: "x1"})
    assert feature.count == 5
    proba = _pt(_metric(rec.metrics, M.PREDICTION_VALUE), **{M.PREDICTION_NAME: "proba:1"})
    assert proba.count == 5
    assert _pt(_metric(rec.metrics, M.PREDICT_DURATION), **{M.MODEL_NAME: "RandomForestClassifier"}).count == 1
    resource = _attrs(rec.metrics[-1].resource_metrics[0].resource.attributes)
    assert resource["service.name"] == "auto-script"
