"""Drift and data quality per segment (issue 13, library side): ``ml.segment.*`` metrics of monitor(segments=...).

Every count is checked against a direct, row-by-row computation written here from the documented rules
(docs/semantic-conventions.md, "Per segment"), never against the library's own helpers.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_integration_otlp import receiver  # noqa: F401  (the in-test OTLP/gRPC receiver fixture)

import otel_ml
from otel_ml import ConfigurationError, semconv as M
from otel_ml._aggregate import aggregates
from otel_ml._segments import MAX_VALUES_SEEN

from _otel_ml_support import point, points, simple_reference

QUALITY = {kind: M.SEGMENT_QUALITY_COUNTERS[kind] for kind in M.QUALITY_KINDS}


# --- the direct computation ------------------------------------------------------------------------------
def _key(v: Any) -> str | None:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (np.integer, np.floating)):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v)


def _cell_quality(profile: Any, v: Any) -> str | None:
    """The quality kind of one feature cell, or None when it is fine."""
    if profile.kind == "numeric":
        if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            return "missing"
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
            return "invalid"
        if not math.isfinite(float(v)):
            return "invalid"
        return "out_of_range" if not profile.min <= float(v) <= profile.max else None
    k = _key(v)
    if k is None:
        return "missing"
    return None if k in profile.categories else "unseen"


def expected_counts(ref: otel_ml.Reference, rows: list[dict[str, Any]], segments: dict[str, list[str]],
                    outputs: np.ndarray | list[Any]) -> Counter:
    """What every ``ml.segment.*`` point should hold: ``segments`` gives each row's expected bounded value."""
    want: Counter = Counter()
    for i, row in enumerate(rows):
        kinds = Counter(_cell_quality(p, row.get(p.name)) for p in ref.features)
        for name, values in segments.items():
            v = values[i]
            want[(M.SEGMENT_ROWS, name, v, None)] += 1
            for kind in M.QUALITY_KINDS:
                want[(QUALITY[kind], name, v, None)] += kinds[kind]
            for j, p in enumerate(ref.outputs):
                if p.kind == "numeric":
                    x = float(outputs[i][j])
                    if math.isfinite(x):
                        want[(M.SEGMENT_PREDICTION_VALUE, name, v, (p.name, bisect.bisect_left(p.edges, x)))] += 1
                else:
                    k = _key(outputs[i])
                    cls = k if k in p.categories else M.OTHER_CATEGORY
                    want[(M.SEGMENT_PREDICTION_CLASS_COUNT, name, v, (p.name, cls))] += 1
    return +want  # zeros dropped


def exported_counts(data: Any) -> Counter:
    got: Counter = Counter()
    for name in (M.SEGMENT_ROWS, *QUALITY.values(), M.SEGMENT_PREDICTION_CLASS_COUNT):
        for p in points(data, name):
            extra = None
            if name == M.SEGMENT_PREDICTION_CLASS_COUNT:
                extra = (p.attributes[M.PREDICTION_NAME], p.attributes[M.PREDICTION_CLASS])
            got[(name, p.attributes[M.SEGMENT_NAME], p.attributes[M.SEGMENT_VALUE], extra)] += p.value
    for p in points(data, M.SEGMENT_PREDICTION_VALUE):
        for b, c in enumerate(p.bucket_counts):
            got[(M.SEGMENT_PREDICTION_VALUE, p.attributes[M.SEGMENT_NAME], p.attributes[M.SEGMENT_VALUE],
                 (p.attributes[M.PREDICTION_NAME], b))] += c
    return +got


def bounded(values: list[Any], allowed: list[str] | None) -> list[str]:
    """The documented bounding: the allowed values, else the first 20 seen; the rest and missing: other."""
    seen: list[str] = []
    out = []
    for v in values:
        k = _key(v)
        if k is not None and allowed is not None:
            out.append(k if k in allowed else M.OTHER_CATEGORY)
        elif k is not None and (k in seen or len(seen) < MAX_VALUES_SEEN):
            if k not in seen:
                seen.append(k)
            out.append(k)
        else:
            out.append(M.OTHER_CATEGORY)
    return out


def proba_of(x: np.ndarray) -> np.ndarray:
    p = 1 / (1 + np.exp(-np.nan_to_num(np.asarray(x, dtype=float))))
    return np.column_stack([1 - p, p])


# --- inputs ------------------------------------------------------------------------------------------------
N = 1000


def mixed_rows(seed: int = 1, n: int = N) -> list[dict[str, Any]]:
    """Rows of x (numeric, some missing / infinite / out of range / wrong-typed), y, c (categorical with
    unseen and missing values), channel (not a feature: 3 values and missing) and country (30 values)."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        x: Any = float(rng.normal() * 2)
        r = rng.random()
        if r < 0.05:
            x = None
        elif r < 0.08:
            x = math.inf
        elif r < 0.10:
            x = "oops"
        rows.append({
            "x": x,
            "y": float(rng.uniform(-1, 12)),
            "c": [None, "a", "b", "c", "zzz"][int(rng.integers(0, 5))],
            "channel": [None, "web", "app", "store"][int(rng.integers(0, 4))],
            "country": f"k{int(rng.integers(0, 30))}",
        })
    return rows


@pytest.mark.parametrize("kind", ["pandas", "pandas-category", "dict-of-columns", "list-of-dicts", "polars"])
def test_per_segment_counts_equal_a_direct_computation(exporter, kind):
    ref = simple_reference()
    rows = mixed_rows()
    cols = {k: [r[k] for r in rows] for k in rows[0]}

    @otel_ml.monitor(model="m", version="1", reference=ref, segments=["c", "channel", "country"])
    def predict(X):
        y = [r["y"] for r in X] if isinstance(X, list) else X["y"]
        return proba_of(np.asarray(y, dtype=float) - 5)

    if kind.startswith("pandas"):
        x: Any = pd.DataFrame(cols)
        if kind == "pandas-category":  # codes over categories, some of them never used
            x["c"] = pd.Categorical(cols["c"], categories=["a", "b", "c", "zzz", "never"])
            x["channel"] = pd.Categorical(cols["channel"], categories=["store", "web", "app", "unused"])
    elif kind == "polars":
        pl = pytest.importorskip("polars")
        x = pl.DataFrame({k: pl.Series(k, v, dtype=pl.Object if k == "x" else None) for k, v in cols.items()})
    elif kind == "list-of-dicts":
        x = rows
    else:
        x = cols
    out = predict(x)
    assert otel_ml.flush(10)
    segs = {"c": bounded(cols["c"], ["a", "b", "c"]), "channel": bounded(cols["channel"], None),
            "country": bounded(cols["country"], None)}
    assert len(set(segs["country"])) == MAX_VALUES_SEEN + 1  # 30 countries: the first 20 and __other__
    want = expected_counts(ref, rows, segs, out)
    assert want[(M.SEGMENT_ROWS, "channel", M.OTHER_CATEGORY, None)] > 0
    assert want[(QUALITY["invalid"], "c", "a", None)] > 0 and want[(QUALITY["unseen"], "c", M.OTHER_CATEGORY, None)] > 0
    assert exported_counts(exporter.last) == want


@pytest.mark.parametrize("chunk", [1, 3, 8])
def test_per_segment_counts_of_small_calls_equal_a_direct_computation(exporter, chunk):
    """Calls of a few rows take the row-by-row path: the same counts."""
    ref = simple_reference()
    rows = mixed_rows(seed=9, n=120)

    @otel_ml.monitor(model="m", version="1", reference=ref, segments=["c", "channel"])
    def predict(X):
        return proba_of(np.asarray(X["y"], dtype=float) - 5)

    outs = []
    for i in range(0, len(rows), chunk):
        part = rows[i:i + chunk]
        outs.extend(predict({k: [r[k] for r in part] for k in part[0]}).tolist())
    assert otel_ml.flush(10)
    cols = {k: [r[k] for r in rows] for k in rows[0]}
    segs = {"c": bounded(cols["c"], ["a", "b", "c"]), "channel": bounded(cols["channel"], None)}
    want = expected_counts(ref, rows, segs, outs)
    assert want[(QUALITY["invalid"], "channel", "web", None)] > 0 and want[(QUALITY["missing"], "c", "a", None)] > 0
    assert exported_counts(exporter.last) == want


def test_numpy_rows_one_at_a_time_with_bad_values(exporter):
    rng = np.random.default_rng(8)
    X_ref = rng.normal(size=(2000, 4))
    ref = otel_ml.build_reference(X_ref, model="np1", version="1", predictions=rng.uniform(size=2000),
                                  multivariate=True)
    X = rng.normal(size=(60, 4)) * 2
    X[::7, 1] = np.nan
    X[::11, 2] = -np.inf
    kind = [f"k{i % 3}" for i in range(60)]
    current: dict[str, Any] = {}

    @otel_ml.monitor(model="np1", version="1", reference=ref, segments=lambda x: current)
    def predict(x):
        return np.array([0.25])

    for i in range(60):
        current["kind"] = [kind[i]]
        predict(X[i:i + 1])
    assert otel_ml.flush(10)
    rows = [{f"x{j}": float(v) for j, v in enumerate(r)} for r in X]
    want = expected_counts(ref, rows, {"kind": kind}, [[0.25]] * 60)
    assert want[(QUALITY["out_of_range"], "kind", "k0", None)] > 0 and want[(QUALITY["invalid"], "kind", "k0", None)]
    assert exported_counts(exporter.last) == want  # the reconstruction error is not a feature here


def test_numpy_matrix_segments_by_a_feature_column_and_by_a_callable(exporter):
    rng = np.random.default_rng(3)
    X_ref = np.column_stack([rng.normal(size=(2000, 3)), rng.integers(0, 4, 2000)])
    ref = otel_ml.build_reference(X_ref, model="np", version="1", predictions=rng.uniform(size=2000))
    X = np.column_stack([rng.normal(size=(N, 3)) * 1.5, rng.integers(0, 6, N)])
    X[::17, 1] = np.nan
    X[::29, 2] = np.inf
    region = rng.choice(["north", "south", "east"], N)

    @otel_ml.monitor(model="np", version="1", reference=ref, segments=["x3"])
    def by_column(X):
        return X[:, 0] * 0.1 + 0.5

    @otel_ml.monitor(model="np", version="1", reference=ref, segments=lambda X: {"region": region})
    def by_callable(X):
        return X[:, 0] * 0.1 + 0.5

    out = by_column(X)
    by_callable(X)
    assert otel_ml.flush(10)
    rows = [{f"x{j}": float(v) for j, v in enumerate(r)} for r in X]
    want = expected_counts(ref, rows, {"x3": bounded(X[:, 3].tolist(), None)}, out.reshape(-1, 1))
    want += expected_counts(ref, rows, {"region": bounded(region.tolist(), None)}, out.reshape(-1, 1))
    assert {k[2] for k in want if k[1] == "x3"} == {"0", "1", "2", "3", "4", "5"}  # whole floats as in records
    got = exported_counts(exporter.last)
    assert got == want
    # the overall counters are untouched by segments: one row per call and row
    assert point(exporter.last, M.PREDICT_ROWS).value == 2 * N


def test_label_outputs_are_counted_per_class_and_segment(exporter):
    rng = np.random.default_rng(5)
    data = {"a": rng.normal(size=3000), "tier": rng.choice(["gold", "silver"], 3000).astype(object)}
    labels = rng.choice(["yes", "no"], 3000)
    ref = otel_ml.build_reference(data, model="lab", version="1", predictions=labels)

    @otel_ml.monitor(model="lab", version="1", reference=ref, segments=["tier"])
    def predict(X):
        return np.where(np.asarray(X["a"]) > 0, "yes", np.where(np.asarray(X["a"]) > -1, "no", "maybe"))

    X = {"a": rng.normal(size=500).tolist(), "tier": rng.choice(["gold", "silver", "bronze"], 500).tolist()}
    out = predict(X)
    assert otel_ml.flush(10)
    rows = [{"a": a, "tier": t} for a, t in zip(X["a"], X["tier"])]
    want = expected_counts(ref, rows, {"tier": bounded(X["tier"], ["gold", "silver"])}, out.tolist())
    assert want[(M.SEGMENT_PREDICTION_CLASS_COUNT, "tier", "gold", ("label", M.OTHER_CATEGORY))] > 0
    assert exported_counts(exporter.last) == want


@pytest.mark.parametrize("rows", [1, 5])
def test_small_batches_and_missing_segment_values_go_to_other(exporter, rows):
    ref = simple_reference()

    @otel_ml.monitor(model="m", version="1", reference=ref, segments=["channel"])
    def predict(X):
        return proba_of(np.asarray(X["x"], dtype=float))

    values = [None, float("nan"), pd.NA, "web", "web"]
    total: Counter = Counter()
    for i in range(0, 5, rows):
        chunk = values[i:i + rows]
        predict(pd.DataFrame({"x": [0.5] * len(chunk), "y": [1.0] * len(chunk), "c": ["a"] * len(chunk),
                              "channel": pd.Series(chunk, dtype=object)}))
        total.update(bounded(chunk, None))
    assert otel_ml.flush(10)
    got = {p.attributes[M.SEGMENT_VALUE]: p.value for p in points(exporter.last, M.SEGMENT_ROWS)}
    assert got == {M.OTHER_CATEGORY: 3, "web": 2} == dict(total)


def test_segments_without_prediction_id_and_records_agree_with_metrics(exporter):
    from test_records import Capture

    from otel_ml import _records

    cap = Capture()
    _records.QUEUE.transport = cap
    otel_ml.configure(exporter=exporter, export_interval_s=3600, id_secret="s" * 32)
    ref = simple_reference()

    @otel_ml.monitor(model="m", version="1", reference=ref, segments=["shop"])
    def plain(X):
        return proba_of(np.asarray(X["x"]))

    @otel_ml.monitor(model="m", version="1", reference=ref, segments=["shop"], prediction_id="id")
    def with_ids(X):
        return proba_of(np.asarray(X["x"]))

    shops = [f"s{i % 25}" for i in range(50)]
    frame = pd.DataFrame({"x": np.linspace(-2, 2, 50), "y": 1.0, "c": "a", "shop": shops, "id": range(50)})
    plain(frame.iloc[::-1])  # the first 20 seen come from this call: s24 .. s5
    with_ids(frame)
    assert otel_ml.flush(10)
    rows = {p.attributes[M.SEGMENT_VALUE]: p.value for p in points(exporter.last, M.SEGMENT_ROWS)}
    first = bounded(shops[::-1], None)
    assert rows == dict(Counter(first) + Counter(bounded(shops[::-1], None)))
    records = [r for r in cap.records(M.EVENT_PREDICTION)]
    from _otel_ml_support import log_attrs

    sent = [log_attrs(r)["ml.segment.shop"] for r in records]
    assert sent == [v if v in set(first) else M.OTHER_CATEGORY for v in shops]  # the same bounded values


def test_segment_values_of_the_reference_section_bound_a_column_that_is_not_a_feature(exporter):
    rng = np.random.default_rng(2)
    n = 3000
    data = pd.DataFrame({"x": rng.normal(size=n)})
    channel = rng.choice(["web", "app"], n)
    ref = otel_ml.build_reference(data, model="s", version="1", predictions=rng.uniform(size=n),
                                  segments={"channel": channel})
    assert set(ref.segments["channel"].values) == {"web", "app", M.OTHER_CATEGORY}

    @otel_ml.monitor(model="s", version="1", reference=ref, segments=["channel"])
    def predict(X):
        return np.full(len(X), 0.5)

    predict(pd.DataFrame({"x": [0.0] * 4, "channel": ["web", "store", "kiosk", "app"]}))
    assert otel_ml.flush(10)
    got = {p.attributes[M.SEGMENT_VALUE]: p.value for p in points(exporter.last, M.SEGMENT_ROWS)}
    assert got == {"web": 1, "app": 1, M.OTHER_CATEGORY: 2}  # not the first values seen: the reference's


def test_delta_temporality_exports_each_calls_segment_counts_once(exporter):
    otel_ml.configure(exporter=exporter, export_interval_s=3600, temporality="delta")
    ref = simple_reference()

    @otel_ml.monitor(model="m", version="1", reference=ref, segments=["c"])
    def predict(X):
        return proba_of(np.asarray(X["x"]))

    predict(pd.DataFrame({"x": [0.1, 0.2], "y": 1.0, "c": ["a", "b"]}))
    assert otel_ml.flush(10)
    predict(pd.DataFrame({"x": [0.3], "y": 1.0, "c": ["a"]}))
    assert otel_ml.flush(10)
    second = {p.attributes[M.SEGMENT_VALUE]: p.value for p in points(exporter.last, M.SEGMENT_ROWS)}
    assert second == {"a": 1, "b": 0, "c": 0, M.OTHER_CATEGORY: 0}
    hist = point(exporter.last, M.SEGMENT_PREDICTION_VALUE, **{M.SEGMENT_VALUE: "a", M.PREDICTION_NAME: "proba:1"})
    assert hist.count == 1 and list(hist.explicit_bounds) == list(ref.outputs[1].edges)


# --- the budget ---------------------------------------------------------------------------------------------
def test_a_segmentation_over_the_series_budget_is_refused_naming_the_number():
    rng = np.random.default_rng(0)
    n = 5000
    data = {"city": np.array([f"c{i % 600}" for i in range(n)], dtype=object), "x": rng.normal(size=n)}
    ref = otel_ml.build_reference(data, model="big", version="1", predictions=rng.uniform(size=(n, 2)),
                                  class_names=["no", "yes"], top_k=1000)
    # (600 cities + 1) x (1 + 2 outputs + 4 quality kinds)
    with pytest.raises(ConfigurationError, match=r"4207 segment series.*MAX_SEGMENT_SERIES = 2000"):
        otel_ml.monitor(model="big", version="1", reference=ref, segments=["city"])
    with pytest.raises(ConfigurationError, match="MAX_SEGMENT_SERIES"):  # a callable may name that column too
        otel_ml.monitor(model="big", version="1", reference=ref, segments=lambda X: {"x": X["x"]})
    # within the budget: 4 columns of at most 20 values seen, (20 + 1) x 7 each
    otel_ml.monitor(model="big", version="1", reference=ref, segments=["a", "b", "c", "d"])
    assert M.MAX_SEGMENT_SERIES >= 4 * 21 * 7


# --- failures -------------------------------------------------------------------------------------------
def test_a_failure_in_the_segment_step_leaves_the_prediction_and_the_overall_counts(exporter, monkeypatch, caplog):
    from otel_ml import _monitor

    ref = simple_reference()

    @otel_ml.monitor(model="m", version="1", reference=ref, segments=["c"])
    def predict(X):
        return proba_of(np.asarray(X["x"]))

    def broken(self, rows, out_rows):
        raise RuntimeError("segment bug")

    monkeypatch.setattr(_monitor._Monitor, "segment_calls", broken)
    frame = pd.DataFrame({"x": [0.1, 0.2, 0.3], "y": 1.0, "c": ["a", "b", "a"]})
    expected = proba_of(frame["x"].to_numpy())
    for _ in range(3):
        assert np.array_equal(predict(frame), expected)
    assert otel_ml.flush(10)
    assert point(exporter.last, M.INSTRUMENTATION_ERRORS).value == 3
    assert point(exporter.last, M.PREDICT_ROWS).value == 9
    assert point(exporter.last, M.FEATURE_CATEGORY_COUNT, **{M.FEATURE_NAME: "c", M.FEATURE_CATEGORY: "a"}).value == 6
    assert points(exporter.last, M.SEGMENT_ROWS) == []
    assert caplog.text.count("internal error in segments") == 1  # logged once


def test_an_absent_segment_column_is_counted_and_the_prediction_returned(exporter):
    ref = simple_reference()

    @otel_ml.monitor(model="m", version="1", reference=ref, segments=["channel"])
    def predict(X):
        return proba_of(np.asarray(X["x"]))

    frame = pd.DataFrame({"x": [0.1, 0.2], "y": 1.0, "c": ["a", "b"]})
    assert predict(frame).shape == (2, 2)
    assert otel_ml.flush(10)
    assert point(exporter.last, M.INSTRUMENTATION_ERRORS).value == 1
    assert point(exporter.last, M.PREDICT_ROWS).value == 2


def test_segment_counters_stay_bounded_whatever_the_values(exporter):
    @otel_ml.monitor(model="nb", version="1", segments=lambda X: {"user": X["user"]})
    def predict(X):
        return np.zeros(len(X["user"]))

    for i in range(50):
        predict({"user": [f"u{i}-{j}" for j in range(100)]})
    assert otel_ml.flush(10)
    values = {p.attributes[M.SEGMENT_VALUE]: p.value for p in points(exporter.last, M.SEGMENT_ROWS)}
    assert len(values) == MAX_VALUES_SEEN + 1 and values[M.OTHER_CATEGORY] == 5000 - MAX_VALUES_SEEN
    agg = aggregates()[0]
    assert agg.segments["user"].rows.shape == (MAX_VALUES_SEEN + 1,)
    assert points(exporter.last, QUALITY["missing"]) == []  # no reference: rows only


# --- on the wire ----------------------------------------------------------------------------------------
def test_segment_metrics_over_real_otlp_grpc(receiver):  # noqa: F811
    from test_integration_otlp import _attrs, _metric, _pt

    rec, port = receiver
    ref = simple_reference("wire", "2")
    otel_ml.configure(endpoint=f"127.0.0.1:{port}", protocol="grpc", export_interval_s=3600, timeout_s=5.0)

    @otel_ml.monitor(model="wire", version="2", reference=ref, segments=["c", "channel"], role="canary")
    def predict(X):
        return proba_of(np.asarray(X["y"], dtype=float) - 5)

    rows = mixed_rows(seed=7, n=200)
    cols = {k: [r[k] for r in rows] for k in rows[0]}
    out = predict(pd.DataFrame(cols))
    assert otel_ml.flush(10.0)

    segs = {"c": bounded(cols["c"], ["a", "b", "c"]), "channel": bounded(cols["channel"], None)}
    want = expected_counts(ref, rows, segs, out)
    base = {M.MODEL_NAME: "wire", M.MODEL_VERSION: "2", M.MODEL_ROLE: "canary"}
    rows_metric = _metric(rec.metrics, M.SEGMENT_ROWS)
    assert rows_metric.unit == "{row}" and rows_metric.sum.is_monotonic
    assert rows_metric.sum.aggregation_temporality == 2  # CUMULATIVE, as the overall counters
    for name, values in segs.items():
        for v in [*dict.fromkeys(values), M.OTHER_CATEGORY]:
            p = _pt(rows_metric, **{M.SEGMENT_NAME: name, M.SEGMENT_VALUE: v})
            assert _attrs(p.attributes) == {**base, M.SEGMENT_NAME: name, M.SEGMENT_VALUE: v}
            assert p.as_int == want[(M.SEGMENT_ROWS, name, v, None)]
            for kind, metric in QUALITY.items():
                q = _pt(_metric(rec.metrics, metric), **{M.SEGMENT_NAME: name, M.SEGMENT_VALUE: v})
                assert q.as_int == want[(metric, name, v, None)], (kind, name, v)
            for output in ref.outputs:
                h = _pt(_metric(rec.metrics, M.SEGMENT_PREDICTION_VALUE),
                        **{M.SEGMENT_NAME: name, M.SEGMENT_VALUE: v, M.PREDICTION_NAME: output.name})
                assert list(h.explicit_bounds) == list(output.edges)  # the overall histogram's bounds
                assert list(h.bucket_counts) == [want[(M.SEGMENT_PREDICTION_VALUE, name, v, (output.name, b))]
                                                 for b in range(len(output.edges) + 1)]
    # segment series never share a name with the overall ones
    overall = _pt(_metric(rec.metrics, M.PREDICT_ROWS))
    assert overall.as_int == 200 and M.SEGMENT_NAME not in _attrs(overall.attributes)


def test_columns_of_several_functions_share_the_model_versions_budget(exporter, caplog):
    rng = np.random.default_rng(0)
    n = 3000
    data = {"city": np.array([f"c{i % 280}" for i in range(n)], dtype=object), "x": rng.normal(size=n)}
    ref = otel_ml.build_reference(data, model="two", version="1", predictions=rng.uniform(size=(n, 2)),
                                  class_names=["no", "yes"], top_k=1000)

    # (280 + 1) x 7 = 1967 series: within the budget alone, and so is shop's (20 + 1) x 7 alone
    @otel_ml.monitor(model="two", version="1", reference=ref, segments=["city"])
    def by_city(X):
        return np.full((len(X), 2), 0.5)

    @otel_ml.monitor(model="two", version="1", reference=ref, segments=["shop"])
    def by_shop(X):
        return np.full((len(X), 2), 0.5)

    frame = pd.DataFrame({"city": ["c1", "c2"], "x": [0.0, 1.0], "shop": ["s1", "s2"]})
    by_city(frame)
    assert by_shop(frame).shape == (2, 2)
    assert otel_ml.flush(10)
    names = {p.attributes[M.SEGMENT_NAME] for p in points(exporter.last, M.SEGMENT_ROWS)}
    assert names == {"city"}  # together they would exceed MAX_SEGMENT_SERIES: shop is left out, logged
    assert "segment 'shop' is not counted" in caplog.text and "2000 segment series (1967 held)" in caplog.text


def test_instrument_counts_segments_without_prediction_id(exporter):
    ref = simple_reference()

    class Model:
        def predict_proba(self, X):
            return proba_of(np.asarray(X["x"]))

    model = otel_ml.instrument(Model(), model="m", version="1", reference=ref, segments=["c"])
    model.predict_proba(pd.DataFrame({"x": [0.1, 0.2, 0.3], "y": 1.0, "c": ["a", "b", "a"]}))
    assert otel_ml.flush(10)
    got = {p.attributes[M.SEGMENT_VALUE]: p.value for p in points(exporter.last, M.SEGMENT_ROWS)}
    assert got == {"a": 2, "b": 1, "c": 0, M.OTHER_CATEGORY: 0}


def test_a_matrix_input_segmented_by_a_feature_puts_it_on_the_records_too(exporter):
    from test_records import Capture

    from otel_ml import _records

    from _otel_ml_support import log_attrs

    cap = Capture()
    _records.QUEUE.transport = cap
    otel_ml.configure(exporter=exporter, export_interval_s=3600, id_secret="s" * 32)
    rng = np.random.default_rng(3)
    X_ref = np.column_stack([rng.normal(size=(500, 2)), rng.integers(0, 3, 500)])
    ref = otel_ml.build_reference(X_ref, model="mx", version="1", predictions=rng.uniform(size=500))

    @otel_ml.monitor(model="mx", version="1", reference=ref, segments=["x2"],
                     prediction_id=lambda X: list(range(len(X))))
    def predict(X):
        return np.full(len(X), 0.5)

    X = np.array([[0.0, 0.0, 2.0], [0.0, 0.0, 1.0], [0.0, 0.0, 2.0]])
    predict(X)
    assert otel_ml.flush(10)
    assert [log_attrs(r)["ml.segment.x2"] for r in cap.records(M.EVENT_PREDICTION)] == ["2", "1", "2"]
    got = {p.attributes[M.SEGMENT_VALUE]: p.value for p in points(exporter.last, M.SEGMENT_ROWS)}
    assert got == {"2": 2, "1": 1, M.OTHER_CATEGORY: 0}


def test_a_segmented_monitor_streams_the_same_multivariate_errors_as_an_unsegmented_one(exporter):
    """Segments change how the categorical columns are looked up (one bucket per row, shared with the
    multivariate summary's indicators): the reconstruction errors must not change, batch or single row."""
    rng = np.random.default_rng(1)
    n = 3000
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(list("pqrs"), n)})
    df["b"] += np.where(df["c"] == "p", 2.0, 0.0)
    proba = np.column_stack([np.full(n, 0.4), np.full(n, 0.6)])
    refs = {v: otel_ml.build_reference(df, predictions=proba, class_names=[0, 1], model="mvseg", version=v,
                                       multivariate=True) for v in ("1", "2")}
    assert refs["1"].multivariate is not None and refs["1"].multivariate.summary.categorical
    plain = otel_ml.monitor(model="mvseg", version="1", reference=refs["1"])(lambda x: proba[: len(x)])
    segmented = otel_ml.monitor(model="mvseg", version="2", reference=refs["2"],
                                segments=["c"])(lambda x: proba[: len(x)])
    test = df.sample(1000, random_state=0).reset_index(drop=True)
    test.loc[3, "c"] = None  # a missing category: the row is not scored, on both
    for call in (plain, segmented):
        call(test)
        for i in range(20):
            call(test.iloc[[i]])
    assert otel_ml.flush(5.0)
    hist = {v: point(exporter.last, M.FEATURE_VALUE, **{M.MODEL_VERSION: v,
                                                        M.FEATURE_NAME: M.RECONSTRUCTION_ERROR_FEATURE})
            for v in ("1", "2")}
    assert sum(hist["1"].bucket_counts) == 1020 - 2  # row 3 is missing its category in both calls
    assert list(hist["1"].bucket_counts) == list(hist["2"].bucket_counts)
