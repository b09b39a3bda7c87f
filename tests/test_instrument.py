"""instrument() never breaks the model it wraps: pickling, copies, clone, methods the reference describes."""

from __future__ import annotations

import copy
import pickle
import types

import joblib
import numpy as np
import pytest
from _otel_ml_support import SPANS, exporter, point, points, value
from sklearn.base import clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC

import otel_ml
from otel_ml import semconv as M


def _data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, (X[:, 0] > 0).astype(int)


def _spans(name):
    return [s for s in SPANS.get_finished_spans() if s.name == name]


def test_instrumented_estimator_pickles_as_the_plain_one_and_the_copy_is_plain(exporter, tmp_path):
    X, y = _data()
    clf = LogisticRegression().fit(X, y)
    plain_bytes = pickle.dumps(clf)
    expected = clf.predict_proba(X[:4])
    ref = otel_ml.build_reference(X, model="clf", version="1", predictions=clf.predict_proba(X),
                                  class_names=clf.classes_)
    otel_ml.instrument(clf, model="clf", version="1", reference=ref)

    assert pickle.dumps(clf) == plain_bytes  # nothing of otel-ml in the model's state
    path = tmp_path / "model.joblib"
    joblib.dump(clf, path)
    copies = {
        "pickle": pickle.loads(pickle.dumps(clf)),
        "joblib": joblib.load(path),
        "copy": copy.copy(clf),
        "deepcopy": copy.deepcopy(clf),
    }
    SPANS.clear()
    for how, other in copies.items():
        assert type(other) is LogisticRegression, how
        assert np.array_equal(other.predict_proba(X[:4]), expected), how
        assert "predict_proba" not in vars(other), how
    assert _spans("predict clf") == []  # the copies come back plain: not monitored
    clf.predict_proba(X[:4])
    assert len(_spans("predict clf")) == 1  # the original still is
    assert otel_ml.flush(5.0)
    assert value(exporter.last, M.PREDICT_ROWS) == 4

    fresh = clone(clf)  # as documented: same parameters, not fitted, and not monitored
    assert fresh.get_params() == clf.get_params() and not hasattr(fresh, "coef_")
    fresh.fit(X, y).predict(X[:2])
    assert len(_spans("predict clf")) == 1

    bound = pickle.loads(pickle.dumps(clf.predict_proba))  # what joblib ships to a worker process
    assert np.array_equal(bound(X[:4]), expected)


def test_available_if_methods_keep_their_availability(exporter):
    X, y = _data()
    svc = SVC().fit(X, y)  # no probability=True: predict_proba is unavailable
    assert not hasattr(svc, "predict_proba")
    otel_ml.instrument(svc, model="svc", version="1")
    assert not hasattr(svc, "predict_proba")
    other = SVC().fit(X, y)
    assert np.array_equal(other.predict(X[:3]), svc.predict(X[:3]))
    assert len(_spans("predict svc")) == 1  # only the instrumented instance is monitored
    assert pickle.loads(pickle.dumps(svc)).predict(X[:1]).shape == (1,)


def _predict_function(X):
    return np.zeros(len(X))


def test_method_stored_on_the_instance_is_wrapped_there_and_pickles_as_the_original(exporter):
    obj = types.SimpleNamespace(predict=_predict_function)
    otel_ml.instrument(obj, model="ns", version="1")
    assert obj.predict(np.ones((2, 1))).shape == (2,)
    assert len(_spans("predict ns")) == 1
    back = pickle.loads(pickle.dumps(obj))
    assert back.predict is _predict_function
    assert copy.deepcopy(obj).predict is _predict_function


@pytest.mark.parametrize("built_from", ["predict_proba", "predict"])
def test_only_the_method_the_reference_describes_records_outputs(exporter, built_from):
    X, y = _data()
    clf = LogisticRegression().fit(X, y)
    if built_from == "predict_proba":
        ref = otel_ml.build_reference(X, model="m", version="1", predictions=clf.predict_proba(X),
                                      class_names=clf.classes_)
    else:
        ref = otel_ml.build_reference(X, model="m", version="1", predictions=clf.predict(X))
    otel_ml.instrument(clf, model="m", version="1", reference=ref)
    SPANS.clear()
    for _ in range(3):
        clf.predict(X[:5])
    clf.predict_proba(X[:2])
    assert otel_ml.flush(5.0)
    data = exporter.last
    assert value(data, M.SCHEMA_VIOLATIONS, **{M.SCHEMA_VIOLATION: M.SCHEMA_UNSUPPORTED_INPUT}) == 0
    assert value(data, M.PREDICT_ROWS) == 17  # both methods: span, latency, rows
    assert len(_spans("predict m")) == 4
    assert point(data, M.PREDICT_DURATION).count == 4
    assert point(data, M.FEATURE_VALUE, **{M.FEATURE_NAME: "x0"}).count == 17  # features from both
    if built_from == "predict_proba":
        assert point(data, M.PREDICTION_VALUE, **{M.PREDICTION_NAME: "proba:1"}).count == 2
        assert not points(data, M.PREDICTION_CLASS_COUNT)
    else:
        labels = points(data, M.PREDICTION_CLASS_COUNT)
        assert sum(p.value for p in labels) == 15
        assert not points(data, M.PREDICTION_VALUE, **{M.PREDICTION_NAME: "proba:1"})


def test_predict_of_a_forest_with_a_proba_reference_counts_once_without_violation(exporter):
    X, y = _data()
    forest = RandomForestClassifier(n_estimators=4, random_state=0).fit(X, y)
    ref = otel_ml.build_reference(X, model="rf", version="1", predictions=forest.predict_proba(X),
                                  class_names=forest.classes_)
    otel_ml.instrument(forest, model="rf", version="1", reference=ref)
    SPANS.clear()
    forest.predict(X[:6])  # calls predict_proba inside
    assert otel_ml.flush(5.0)
    assert value(exporter.last, M.PREDICT_ROWS) == 6
    assert len(_spans("predict rf")) == 1
    assert value(exporter.last, M.SCHEMA_VIOLATIONS, **{M.SCHEMA_VIOLATION: M.SCHEMA_UNSUPPORTED_INPUT}) == 0


def test_uninstrument_restores_the_class(exporter):
    X, y = _data()
    clf = LogisticRegression().fit(X, y)
    had = "predict" in vars(LogisticRegression)
    otel_ml.instrument(clf, model="u", version="1")
    otel_ml.OtelMLInstrumentor().instrument()
    otel_ml.OtelMLInstrumentor().uninstrument()
    assert ("predict" in vars(LogisticRegression)) == had
    assert not any(type(v).__module__ == "otel_ml._patch" for v in vars(LogisticRegression).values())
    assert pickle.dumps(clf)


class _AsyncModel:
    async def predict(self, X):
        return np.asarray(X).sum(axis=1)


def test_async_predict_method_is_awaited_inside_its_span(exporter):
    import asyncio

    model = otel_ml.instrument(_AsyncModel(), model="async", version="1")
    SPANS.clear()
    out = asyncio.run(model.predict(np.ones((3, 2))))
    assert out.tolist() == [2.0, 2.0, 2.0]
    assert len(_spans("predict async")) == 1
    assert otel_ml.flush(5.0)
    assert value(exporter.last, M.PREDICT_ROWS) == 3
    assert pickle.loads(pickle.dumps(model)).__class__ is _AsyncModel
