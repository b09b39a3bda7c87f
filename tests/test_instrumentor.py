"""OtelMLInstrumentor: a real BaseInstrumentor that monitors estimators with no code change."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
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

from _otel_ml_support import SPANS, point, points, value


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


def _run_instrumented(tmp_path, source, **variables):
    """Run ``source`` under the real ``opentelemetry-instrument`` command, OTLP/gRPC to a receiver in this
    test; returns (the receiver, the script's stdout)."""
    from concurrent import futures
    from pathlib import Path

    import grpc
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
    from test_integration_otlp import Receiver

    command = Path(sys.executable).parent / "opentelemetry-instrument"
    rec = Receiver()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(rec, server)
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(rec, server)
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(rec, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    script = tmp_path / "serve.py"
    script.write_text(source)
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
        **variables,
    })
    try:
        run = subprocess.run([str(command), sys.executable, str(script)], env=env, capture_output=True,
                             text=True, timeout=180, cwd=tmp_path)
        assert run.returncode == 0, run.stderr
    finally:
        server.stop(0)
    return rec, run


def test_opentelemetry_instrument_command_monitors_an_unmodified_script(tmp_path):
    """The real ``opentelemetry-instrument`` command, OTLP/gRPC to a receiver in this test."""
    from test_integration_otlp import _attrs, _metric, _pt

    X, y = _data()
    clf = LogisticRegression().fit(X, y)
    otel_ml.build_reference(X, model="LogisticRegression", version="5", predictions=clf.predict_proba(X),
                            class_names=clf.classes_).save(tmp_path / "LogisticRegression.json")
    rec, run = _run_instrumented(tmp_path, _AUTO_SCRIPT)
    assert "done" in run.stdout

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


# --- per-model options from variables: prediction records, segments, role --------------------------------

_RECORDS_SCRIPT = """
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

train = pd.read_csv("train.csv")
model = Pipeline([
    ("prep", ColumnTransformer([("num", StandardScaler(), ["x0", "x1"]), ("cat", OneHotEncoder(), ["region"])])),
    ("clf", LogisticRegression()),
]).fit(train[["x0", "x1", "region"]], train["y"])
batch = train[["x0", "x1", "region"]].iloc[:6].assign(request_id=[f"r-{i}" for i in range(6)])
batch["region"] = ["eu", "eu", "us", "eu", "us", "eu"]
model.predict_proba(batch)  # the id and segment columns are in the input; the ColumnTransformer ignores the id
X = train[["x0", "x1"]].to_numpy()
plain = LogisticRegression().fit(X, train["y"])
print("plain", plain.predict(X[:3]).tolist())  # numpy input: no id column, so no records, counted; not broken
print("done")
"""


def _train_frame(n=300, seed=0):
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x0": rng.normal(size=n), "x1": rng.normal(size=n),
                          "region": rng.choice(["eu", "us"], size=n)})
    frame["y"] = (frame["x0"] > 0).astype(int)
    return frame


def test_opentelemetry_instrument_sends_prediction_records_and_segments_from_variables(tmp_path):
    import hashlib
    import hmac

    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder
    from test_integration_otlp import _attrs, _metric, _pt

    from _otel_ml_support import log_attrs, log_records

    train = _train_frame()
    train.to_csv(tmp_path / "train.csv", index=False)
    features = train[["x0", "x1", "region"]]
    pipe = Pipeline([
        ("prep", ColumnTransformer([("num", StandardScaler(), ["x0", "x1"]), ("cat", OneHotEncoder(), ["region"])])),
        ("clf", LogisticRegression()),
    ]).fit(features, train["y"])
    otel_ml.build_reference(features, model="Pipeline", version="2", predictions=pipe.predict_proba(features),
                            class_names=pipe.classes_).save(tmp_path / "Pipeline.json")
    plain = LogisticRegression().fit(train[["x0", "x1"]].to_numpy(), train["y"])
    rec, run = _run_instrumented(tmp_path, _RECORDS_SCRIPT, OTEL_LOGS_EXPORTER="otlp",
                                 OTEL_ML_ID_SECRET="auto-secret", OTEL_ML_PREDICTION_ID="request_id",
                                 OTEL_ML_SEGMENTS="region", OTEL_ML_MODEL_ROLE="Canary",
                                 OTEL_ML_OUTCOME_SAMPLE_RATE="1")
    expected = plain.predict(train[["x0", "x1"]].to_numpy()[:3]).tolist()
    assert f"plain {expected}" in run.stdout and "done" in run.stdout
    assert "is invalid" not in run.stderr  # no variable was rejected

    def wire(i):
        return hmac.new(b"auto-secret", i.encode(), hashlib.sha256).hexdigest()[:32]

    records = [log_attrs(r) for r in log_records(rec.logs, M.EVENT_PREDICTION)]
    assert [r[M.PREDICTION_ID] for r in records] == [wire(f"r-{i}") for i in range(6)]
    assert [r["ml.segment.region"] for r in records] == ["eu", "eu", "us", "eu", "us", "eu"]
    assert {r[M.MODEL_NAME] for r in records} == {"Pipeline"}  # none of the numpy-input model

    spans = [s for req in rec.spans for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]
    span = next(_attrs(s.attributes) for s in spans if s.name == "predict Pipeline")
    assert span[M.MODEL_ROLE] == "canary"
    rows = _metric(rec.metrics, M.SEGMENT_ROWS)
    seg = {M.MODEL_NAME: "Pipeline", M.SEGMENT_NAME: "region"}
    assert _pt(rows, **seg, **{M.SEGMENT_VALUE: "eu"}).as_int == 4
    assert _pt(rows, **seg, **{M.SEGMENT_VALUE: "us"}).as_int == 2
    assert _pt(_metric(rec.metrics, M.SEGMENT_PREDICTION_VALUE), **seg,
               **{M.SEGMENT_VALUE: "us", M.PREDICTION_NAME: "proba:1"}).count == 2
    assert _pt(_metric(rec.metrics, M.PREDICT_ROWS), **{M.MODEL_NAME: "Pipeline"}).as_int == 6
    dropped = _pt(_metric(rec.metrics, M.RECORDS_DROPPED),
                  **{M.MODEL_NAME: "LogisticRegression", M.ERROR_TYPE: "invalid"})
    assert dropped.as_int == 3  # the numpy-input model's rows: no id column, counted
    features_seen = _pt(_metric(rec.metrics, M.FEATURE_VALUE), **{M.MODEL_NAME: "Pipeline", M.FEATURE_NAME: "x0"})
    assert features_seen.count == 6
    violations = _metric(rec.metrics, M.SCHEMA_VIOLATIONS)
    assert all(p.as_int == 0 for p in violations.sum.data_points
               if _attrs(p.attributes).get(M.MODEL_NAME) == "Pipeline")  # request_id is not an unexpected column


def test_model_settings_from_the_environment():
    from otel_ml._instrumentor import ModelSettings, model_settings

    assert model_settings({}) == ModelSettings()
    env = {"OTEL_ML_PREDICTION_ID": " request_id ", "OTEL_ML_SEGMENTS": "region, plan", "OTEL_ML_MODEL_ROLE": "SHADOW",
           "OTEL_ML_OUTCOME_SAMPLE_RATE": "0.25"}
    assert model_settings(env) == ModelSettings("request_id", ("region", "plan"), "shadow", 0.25)


@pytest.mark.parametrize(("name", "raw", "reason"), [
    ("OTEL_ML_PREDICTION_ID", "a,b", "one input column"),
    ("OTEL_ML_SEGMENTS", "a,b,c,d,e", "at most 4"),
    ("OTEL_ML_SEGMENTS", "a,a", "named twice"),
    ("OTEL_ML_SEGMENTS", "a,,b", "column name"),
    ("OTEL_ML_MODEL_ROLE", "blue", "live, canary, shadow"),
    ("OTEL_ML_OUTCOME_SAMPLE_RATE", "0", "(0, 1]"),
    ("OTEL_ML_OUTCOME_SAMPLE_RATE", "1.5", "(0, 1]"),
    ("OTEL_ML_OUTCOME_SAMPLE_RATE", "nan", "(0, 1]"),
    ("OTEL_ML_OUTCOME_SAMPLE_RATE", "half", "not a number"),
])
def test_a_bad_setting_warns_once_and_its_default_applies(name, raw, reason, caplog):
    from otel_ml._instrumentor import model_settings

    good = {"OTEL_ML_PREDICTION_ID": "id", "OTEL_ML_SEGMENTS": "region", "OTEL_ML_MODEL_ROLE": "live",
            "OTEL_ML_OUTCOME_SAMPLE_RATE": "0.5"}
    fallback = {"OTEL_ML_PREDICTION_ID": ("prediction_id", None), "OTEL_ML_SEGMENTS": ("segments", ()),
                "OTEL_ML_MODEL_ROLE": ("role", None), "OTEL_ML_OUTCOME_SAMPLE_RATE": ("outcome_sample_rate", 1.0)}
    field, default = fallback[name]
    with caplog.at_level("WARNING", logger="otel_ml"):
        first = model_settings(good | {name: raw})
        second = model_settings(good | {name: raw})
    assert first == second and getattr(first, field) == default
    others = {f: getattr(first, f) for f, _ in fallback.values() if f != field}
    assert others == {f: getattr(model_settings(good), f) for f in others}  # the other variables still apply
    warnings = [r.getMessage() for r in caplog.records if name in r.getMessage()]
    assert len(warnings) == 1 and raw in warnings[0] and reason in warnings[0], warnings


def test_settings_apply_to_every_model_and_a_missing_id_column_never_breaks_predict(exporter, own_spans,
                                                                                      monkeypatch):
    from otel_ml import _records

    provider, spans = own_spans
    monkeypatch.setenv("OTEL_ML_PREDICTION_ID", "request_id")
    monkeypatch.setenv("OTEL_ML_SEGMENTS", "region")
    monkeypatch.setenv("OTEL_ML_MODEL_ROLE", "shadow")
    monkeypatch.setenv("OTEL_ML_OUTCOME_SAMPLE_RATE", "0.5")
    X, y = _data()
    clf = LogisticRegression().fit(X, y)
    expected = clf.predict(X[:4])
    otel_ml.OtelMLInstrumentor().instrument(tracer_provider=provider, exporter=exporter, export_interval_s=3600)
    assert np.array_equal(clf.predict(X[:4]), expected)  # numpy: neither the id nor the segment column
    assert {s.attributes[M.MODEL_ROLE] for s in spans.get_finished_spans()} == {"shadow"}
    assert _records.COUNTERS.total(_records.COUNTERS.dropped, model="LogisticRegression", what="invalid") == 4
    assert _records.RECORDERS["LogisticRegression"].rate == 0.5  # what record_outcomes() samples with
    assert otel_ml.flush(5.0)
    assert value(exporter.last, M.PREDICT_ROWS, **{M.MODEL_NAME: "LogisticRegression", M.MODEL_ROLE: "shadow"}) == 4


def test_segments_over_a_models_series_budget_are_left_off_for_that_model(exporter, tmp_path, monkeypatch, caplog):
    X, y = _data()
    clf = LogisticRegression().fit(X, y)
    wide = np.random.default_rng(1).dirichlet(np.ones(30), size=len(X))  # 30 output series per segment value
    otel_ml.build_reference(X, model="wide", version="1", predictions=wide,
                            class_names=[f"c{i}" for i in range(30)]).save(tmp_path / "wide.json")
    for name, val in {"OTEL_ML_REFERENCES": str(tmp_path), "OTEL_ML_MODEL_NAME": "wide",
                      "OTEL_ML_SEGMENTS": "s1,s2,s3,s4"}.items():
        monkeypatch.setenv(name, val)
    expected = clf.predict(X[:5])
    otel_ml.OtelMLInstrumentor().instrument(exporter=exporter, export_interval_s=3600)
    with caplog.at_level("WARNING", logger="otel_ml"):
        assert np.array_equal(clf.predict(X[:5]), expected)
        clf.predict_proba(X[:2])
    warnings = [r.getMessage() for r in caplog.records if "OTEL_ML_SEGMENTS" in r.getMessage()]
    assert len(warnings) == 1 and "MAX_SEGMENT_SERIES" in warnings[0] and "without segments" in warnings[0]
    assert otel_ml.flush(5.0)
    assert point(exporter.last, M.FEATURE_VALUE, **{M.MODEL_NAME: "wide", M.FEATURE_NAME: "x0"}).count == 7
    assert not points(exporter.last, M.SEGMENT_ROWS)
