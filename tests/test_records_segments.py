"""Segments on prediction records (issue 13, library side): ``ml.segment.<name>`` attributes, bounded values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_records import exporter_of, sink, sink_metrics  # noqa: F401  (the sink fixture)

import otel_ml
from otel_ml import ConfigurationError, semconv as M
from otel_ml._segments import MAX_VALUES_SEEN

from _otel_ml_support import log_attrs as attrs, point, simple_reference


def segment_attrs(sink) -> list[dict[str, str]]:  # noqa: F811
    return [{k: v for k, v in attrs(r).items() if k.startswith(M.SEGMENT_ATTRIBUTE_PREFIX)}
            for r in sink.records(M.EVENT_PREDICTION)]


def test_segment_columns_ride_on_the_records_bounded_by_the_reference(sink):  # noqa: F811
    ref = simple_reference()  # "c" is categorical with categories a, b, c; "x" numeric

    @otel_ml.monitor(model="m", version="1", reference=ref, prediction_id="id", segments=["c", "channel"])
    def predict(X):
        return np.column_stack([np.full(len(X), 0.4), np.full(len(X), 0.6)])

    df = pd.DataFrame({"x": [0.1, 0.2, 0.3], "y": [1.0, 2.0, 3.0], "c": ["a", "zzz", None],
                       "channel": ["web", "app", "web"], "id": [1, 2, 3]})
    predict(df)
    assert otel_ml.flush(10)
    assert segment_attrs(sink) == [
        {"ml.segment.c": "a", "ml.segment.channel": "web"},
        {"ml.segment.c": M.OTHER_CATEGORY, "ml.segment.channel": "app"},  # not among the reference's categories
        {"ml.segment.c": M.OTHER_CATEGORY, "ml.segment.channel": "web"},  # missing
    ]
    # segment columns are not features: no unexpected_column violation
    data = sink_metrics(exporter_of(sink))
    assert point(data, M.SCHEMA_VIOLATIONS, **{M.SCHEMA_VIOLATION: M.SCHEMA_UNEXPECTED_COLUMN}).value == 0


def test_unprofiled_segment_keeps_the_first_values_seen_then_other(sink):  # noqa: F811
    @otel_ml.monitor(model="u", version="1", prediction_id=lambda X: X["id"],
                     segments=lambda X: {"shop": X["shop"]})
    def predict(X):
        return np.zeros(len(X["id"]))

    n = MAX_VALUES_SEEN + 10
    predict({"id": list(range(n)), "shop": [f"s{i}" for i in range(n)]})
    predict({"id": list(range(n, n + 2)), "shop": ["s0", "new"]})
    assert otel_ml.flush(10)
    values = [a["ml.segment.shop"] for a in segment_attrs(sink)]
    assert values[:MAX_VALUES_SEEN] == [f"s{i}" for i in range(MAX_VALUES_SEEN)]
    assert values[MAX_VALUES_SEEN:n] == [M.OTHER_CATEGORY] * 10
    assert values[n:] == ["s0", M.OTHER_CATEGORY]
    assert len(set(values)) == MAX_VALUES_SEEN + 1


def test_segments_with_a_wrong_length_drop_the_calls_records_counted(sink):  # noqa: F811
    @otel_ml.monitor(model="w", version="1", prediction_id=lambda X: X["id"], segments=lambda X: {"s": ["a"]})
    def predict(X):
        return np.zeros(len(X["id"]))

    out = predict({"id": [1, 2, 3]})
    assert out.tolist() == [0.0, 0.0, 0.0]  # the prediction is unaffected
    assert otel_ml.flush(10)
    assert sink.records(M.EVENT_PREDICTION) == []
    data = sink_metrics(exporter_of(sink))
    assert point(data, M.RECORDS_DROPPED, **{M.MODEL_NAME: "w", M.ERROR_TYPE: "invalid"}).value == 3


def test_a_failing_segments_callable_never_breaks_the_prediction(sink):  # noqa: F811
    def boom(X):
        raise KeyError("nope")

    @otel_ml.monitor(model="b", version="1", prediction_id=lambda X: X["id"], segments=boom)
    def predict(X):
        return np.ones(len(X))

    assert predict(pd.DataFrame({"id": [1, 2]})).tolist() == [1.0, 1.0]
    assert otel_ml.flush(10)
    data = sink_metrics(exporter_of(sink))
    assert point(data, M.RECORDS_DROPPED, **{M.MODEL_NAME: "b", M.ERROR_TYPE: "invalid"}).value == 2


@pytest.mark.parametrize("segments, message", [
    (["a", "b", "c", "d", "e"], "at most 4"),
    (["a", "a"], "twice"),
    ([], "non-empty list"),
    ("country", "non-empty list"),
    (["x" * 129], "at most 128"),
])
def test_bad_segments_fail_at_decoration(segments, message, sink):  # noqa: F811
    with pytest.raises(ConfigurationError, match=message):
        otel_ml.monitor(model="m", version="1", prediction_id="id", segments=segments)


def test_a_callable_with_more_than_four_segments_sends_the_first_four(sink, caplog):  # noqa: F811
    @otel_ml.monitor(model="f", version="1", prediction_id=lambda X: X["id"],
                     segments=lambda X: {f"s{i}": ["v"] * len(X["id"]) for i in range(6)})
    def predict(X):
        return np.zeros(len(X["id"]))

    predict({"id": [1, 2]})
    assert otel_ml.flush(10)
    assert segment_attrs(sink) == [{f"ml.segment.s{i}": "v" for i in range(4)}] * 2
    assert "only the first 4" in caplog.text
