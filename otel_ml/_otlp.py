"""OTLP encoding of a model's counters: a :class:`~otel_ml._aggregate.Snapshot` becomes SDK data points.

:func:`model_points` turns one snapshot (cumulative, or the delta since the previously exported one)
into histogram and sum data points named from :mod:`otel_ml.semconv`; :func:`to_metrics` groups them
into :class:`Metric` objects and :func:`build_metrics_data` wraps those into the
:class:`~opentelemetry.sdk.metrics.export.MetricsData` that ``MetricExporter.export()`` takes. Pure
functions, no thread and no I/O: the export loop (:mod:`otel_ml._export`) calls them. This module
imports the OTel SDK's metrics package, so it is itself imported only at the first export.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from . import semconv
from ._adapters import SCHEMA_KINDS
from ._aggregate import C_MISSING, C_UNSEEN, DURATION_BOUNDS, ModelAggregate, SampledCall, SegmentCounts, Snapshot
from ._binning import Q_MISSING, Q_NON_FINITE, Q_OUT_OF_RANGE, Q_WRONG_TYPE, NumericTable

__all__ = ["Metric", "build_metrics_data", "model_points", "record_points", "to_metrics"]


def build_metrics_data(
    resource: Resource,
    scope: InstrumentationScope | str,
    metrics: Sequence[Metric],
    *,
    scope_version: str | None = None,
    schema_url: str = "",
) -> MetricsData:
    """One ResourceMetrics holding one ScopeMetrics with ``metrics``: what ``MetricExporter.export`` takes."""
    if isinstance(scope, str):
        scope = InstrumentationScope(scope, scope_version)
    return MetricsData(
        resource_metrics=[
            ResourceMetrics(
                resource=resource,
                scope_metrics=[ScopeMetrics(scope=scope, metrics=list(metrics), schema_url=schema_url)],
                schema_url=schema_url,
            )
        ]
    )


_CUMULATIVE = AggregationTemporality.CUMULATIVE
_DELTA = AggregationTemporality.DELTA
_UNITS = {name: unit for name, (_, unit) in semconv.LIBRARY_METRICS.items()}
_DESCRIPTIONS = {
    semconv.PREDICT_DURATION: "Duration of monitored predict calls.",
    semconv.PREDICT_ROWS: "Rows passed to monitored predict calls, bad ones included.",
    semconv.FEATURE_VALUE: "Finite values of a numeric feature, in the reference's buckets.",
    semconv.FEATURE_CATEGORY_COUNT: "Values of a categorical feature per reference category.",
    semconv.FEATURE_MISSING: "Missing feature values (None, NaN, absent column).",
    semconv.FEATURE_INVALID: "Feature values of the wrong type or not finite.",
    semconv.FEATURE_OUT_OF_RANGE: "Finite feature values outside the reference [min, max].",
    semconv.FEATURE_UNSEEN: "Categorical values not among the reference categories.",
    semconv.SCHEMA_VIOLATIONS: "Inputs or outputs that do not match the reference's schema.",
    semconv.PREDICTION_VALUE: "Numeric model outputs (values, class probabilities), in the reference's buckets.",
    semconv.PREDICTION_CLASS_COUNT: "Predicted class labels per reference class.",
    semconv.INSTRUMENTATION_ERRORS: "Failures inside otel-ml itself (the model's result is unaffected).",
    semconv.PREDICTION_RECORDS: "Prediction records sent over OTLP logs.",
    semconv.RECORDS_DROPPED: "Prediction and outcome records not sent, by reason (error.type).",
    semconv.SEGMENT_ROWS: "Rows of one segment value (ml.segment.name = ml.segment.value).",
    semconv.SEGMENT_PREDICTION_VALUE: "Numeric model outputs of one segment value's rows, in the reference's buckets.",
    semconv.SEGMENT_PREDICTION_CLASS_COUNT: "Predicted class labels of one segment value's rows.",
    **{name: f"Feature values of one segment value's rows that are {kind.replace('_', ' ')}, summed over the "
             "features." for kind, name in semconv.SEGMENT_QUALITY_COUNTERS.items()},
}
_HISTOGRAMS = (semconv.PREDICT_DURATION, semconv.FEATURE_VALUE, semconv.PREDICTION_VALUE,
               semconv.SEGMENT_PREDICTION_VALUE)


def _value_exemplar(ex: SampledCall | None, j: int, start: int) -> list[Exemplar]:
    """Exemplar for column ``j`` of the latest sampled call's first output row, if any."""
    if ex is None or ex.first_output is None or ex.time_ns < start or j >= len(ex.first_output):
        return []
    v = ex.first_output[j]
    if not isinstance(v, float) or not np.isfinite(v):
        return []
    return [Exemplar({}, v, ex.time_ns, span_id=ex.span_id, trace_id=ex.trace_id)]


def _hist_points(table: NumericTable, attrs: dict[str, Any], name_key: str, counts: np.ndarray,
                 mins: np.ndarray, maxs: np.ndarray, sums: np.ndarray, start: int, now: int,
                 exemplar: SampledCall | None = None) -> list[HistogramDataPoint]:
    points = []
    m = counts.reshape(table.k, table.width) if table.k else counts
    for j, name in enumerate(table.names):
        n_edges = len(table.edges[j])
        bucket_counts = m[j, : n_edges + 1].tolist()
        total = int(sum(bucket_counts))
        has = total > 0 and bool(np.isfinite(mins[j]))
        points.append(
            HistogramDataPoint(
                attributes={**attrs, name_key: name},
                start_time_unix_nano=start,
                time_unix_nano=now,
                count=total,
                sum=float(sums[j]) if table.sum_ok[j] else None,  # type: ignore[arg-type]
                bucket_counts=bucket_counts,
                explicit_bounds=table.edge_lists[j],
                min=float(mins[j]) if has else None,  # type: ignore[arg-type]
                max=float(maxs[j]) if has else None,  # type: ignore[arg-type]
                exemplars=_value_exemplar(exemplar, j, start),
            )
        )
    return points


def model_points(agg: ModelAggregate, snap: Snapshot, base: Snapshot | None, delta: bool) -> dict[str, list[Any]]:
    """Data points of one model, by metric name: cumulative since ``snap.start_ns``, or the delta since ``base``."""
    now = snap.time_ns
    if delta:
        start = base.time_ns if base is not None else snap.start_ns
        interval = True  # min/max since the previous snapshot

        def d(cur: Any, attr: str) -> Any:
            return cur - getattr(base, attr) if base is not None else cur
    else:
        start = snap.start_ns
        interval = False

        def d(cur: Any, attr: str) -> Any:
            return cur

    attrs = agg.attributes
    out: dict[str, list[Any]] = {}

    def num(name: str, value: int, extra: dict[str, Any] | None = None) -> None:
        out.setdefault(name, []).append(
            NumberDataPoint(attributes={**attrs, **extra} if extra else dict(attrs),
                            start_time_unix_nano=start, time_unix_nano=now, value=int(value))
        )

    num(semconv.PREDICT_ROWS, d(snap.rows, "rows"))
    errors = d(snap.errors, "errors")
    if agg.reference is not None or snap.errors:  # without a reference: span, duration and rows only
        num(semconv.INSTRUMENTATION_ERRORS, errors)
    if agg.reference is not None:
        schema = d(snap.schema, "schema")
        for i, kind in enumerate(SCHEMA_KINDS):
            num(semconv.SCHEMA_VIOLATIONS, schema[i], {semconv.SCHEMA_VIOLATION: kind})

    # ml.predict.duration, one point per error.type (None: success)
    ex = snap.exemplar
    for key, dur in snap.durations.items():
        prev = base.durations.get(key) if (delta and base is not None) else None
        counts = [c - p for c, p in zip(dur.counts, prev.counts)] if prev else list(dur.counts)
        count = dur.count - (prev.count if prev else 0)
        exemplars = []
        if ex is not None and ex.error_type == key and ex.time_ns >= start:
            exemplars = [Exemplar({}, float(ex.duration_s), ex.time_ns, span_id=ex.span_id, trace_id=ex.trace_id)]
        p_attrs = {**attrs, semconv.ERROR_TYPE: key} if key is not None else dict(attrs)
        has_minmax = not delta and count > 0
        out.setdefault(semconv.PREDICT_DURATION, []).append(
            HistogramDataPoint(
                attributes=p_attrs, start_time_unix_nano=start, time_unix_nano=now, count=count,
                sum=dur.sum - (prev.sum if prev else 0.0), bucket_counts=counts,
                explicit_bounds=list(DURATION_BOUNDS),
                min=dur.min if has_minmax else None,  # type: ignore[arg-type]
                max=dur.max if has_minmax else None,  # type: ignore[arg-type]
                exemplars=exemplars,
            )
        )

    nt = agg.numeric
    if nt is not None:
        out[semconv.FEATURE_VALUE] = _hist_points(
            nt, attrs, semconv.FEATURE_NAME, d(snap.num_counts, "num_counts"),
            snap.num_imin if interval else snap.num_min, snap.num_imax if interval else snap.num_max,
            d(snap.num_sum, "num_sum"), start, now)
        q = d(snap.num_quality, "num_quality")
        for j, name in enumerate(nt.names):
            f = {semconv.FEATURE_NAME: name}
            num(semconv.FEATURE_MISSING, q[Q_MISSING, j], f)
            num(semconv.FEATURE_INVALID, q[Q_NON_FINITE, j], {**f, semconv.QUALITY_REASON: semconv.REASON_NON_FINITE})
            num(semconv.FEATURE_INVALID, q[Q_WRONG_TYPE, j], {**f, semconv.QUALITY_REASON: semconv.REASON_WRONG_TYPE})
            num(semconv.FEATURE_OUT_OF_RANGE, q[Q_OUT_OF_RANGE, j], f)
    if agg.cat_tables:
        cq = d(snap.cat_quality, "cat_quality")
        for j, table in enumerate(agg.cat_tables):
            f = {semconv.FEATURE_NAME: table.name}
            cat_counts = snap.cat_counts[j]
            if delta and base is not None:
                cat_counts = cat_counts - base.cat_counts[j]
            for label, c in zip(table.labels, cat_counts.tolist()):
                num(semconv.FEATURE_CATEGORY_COUNT, c, {**f, semconv.FEATURE_CATEGORY: label})
            num(semconv.FEATURE_MISSING, cq[C_MISSING, j], f)
            num(semconv.FEATURE_UNSEEN, cq[C_UNSEEN, j], f)
    ot = agg.outputs
    if ot is not None:
        out[semconv.PREDICTION_VALUE] = _hist_points(
            ot, attrs, semconv.PREDICTION_NAME, d(snap.out_counts, "out_counts"),
            snap.out_imin if interval else snap.out_min, snap.out_imax if interval else snap.out_max,
            d(snap.out_sum, "out_sum"), start, now, exemplar=snap.exemplar)
    lt = agg.label_table
    if lt is not None:
        counts = d(snap.label_counts, "label_counts")
        for label, c in zip(lt.labels, counts.tolist()):
            num(semconv.PREDICTION_CLASS_COUNT, c, {semconv.PREDICTION_NAME: lt.name, semconv.PREDICTION_CLASS: label})
    if snap.segments:
        seg_base = {c.name: c for c in base.segments} if (delta and base is not None) else {}
        for seg in snap.segments:
            _segment_points(agg, seg, seg_base.get(seg.name), attrs, start, now, out)
    return out


def _count_point(out: dict[str, list[Any]], attrs: dict[str, Any], start: int, now: int, name: str, value: int,
                 extra: dict[str, Any] | None = None) -> None:
    out.setdefault(name, []).append(NumberDataPoint(attributes={**attrs, **extra} if extra else attrs,
                                                    start_time_unix_nano=start, time_unix_nano=now, value=int(value)))


_SEGMENT_QUALITY = tuple(semconv.SEGMENT_QUALITY_COUNTERS[k] for k in semconv.QUALITY_KINDS)


def _segment_points(agg: ModelAggregate, seg: SegmentCounts, base: SegmentCounts | None, attrs: dict[str, Any],
                    start: int, now: int, out: dict[str, list[Any]]) -> None:
    """The points of one segment column: per known value and ``__other__``, its rows, outputs and quality."""

    def d(cur: np.ndarray | None, prev: np.ndarray | None) -> Any:
        return cur if cur is None or prev is None else cur - prev

    rows = d(seg.rows, base.rows if base else None).tolist()
    outputs = d(seg.outputs, base.outputs if base else None)
    sums = d(seg.output_sums, base.output_sums if base else None)
    labels = d(seg.labels, base.labels if base else None)
    quality = d(seg.quality, base.quality if base else None).tolist()
    ot, lt = agg.outputs, agg.label_table
    other = len(seg.rows) - 1
    for code in (*range(seg.known), other):
        s_attrs = {**attrs, semconv.SEGMENT_NAME: seg.name, semconv.SEGMENT_VALUE: seg.values[code]}
        num = functools.partial(_count_point, out, s_attrs, start, now)
        num(semconv.SEGMENT_ROWS, rows[code])
        if ot is not None and outputs is not None and sums is not None:
            m = outputs[code].reshape(ot.k, ot.width)
            for j, name in enumerate(ot.names):
                bucket_counts = m[j, : len(ot.edges[j]) + 1].tolist()
                out.setdefault(semconv.SEGMENT_PREDICTION_VALUE, []).append(HistogramDataPoint(
                    attributes={**s_attrs, semconv.PREDICTION_NAME: name}, start_time_unix_nano=start,
                    time_unix_nano=now, count=int(sum(bucket_counts)),
                    sum=float(sums[code, j]) if ot.sum_ok[j] else None,  # type: ignore[arg-type]
                    bucket_counts=bucket_counts, explicit_bounds=ot.edge_lists[j],
                    min=None, max=None, exemplars=[]))  # type: ignore[arg-type]
        if lt is not None and labels is not None:
            for label, c in zip(lt.labels, labels[code].tolist()):
                num(semconv.SEGMENT_PREDICTION_CLASS_COUNT, c,
                    {semconv.PREDICTION_NAME: lt.name, semconv.PREDICTION_CLASS: label})
        if agg.reference is not None:
            for name, c in zip(_SEGMENT_QUALITY, quality[code]):
                num(name, c)


RecordTable = dict[tuple[str, "str | None", str], int]


def record_points(start: int, now: int, sent: RecordTable, dropped: RecordTable,
                  base: tuple[RecordTable, RecordTable] | None) -> dict[str, list[NumberDataPoint]]:
    """``ml.prediction.records`` and ``ml.records.dropped`` points from the record counters
    (:mod:`otel_ml._records`): cumulative, or the delta since ``base`` (the last exported tables)."""
    out: dict[str, list[NumberDataPoint]] = {}

    def attrs(model: str, version: str | None) -> dict[str, Any]:
        a: dict[str, Any] = {semconv.MODEL_NAME: model}
        if version is not None:
            a[semconv.MODEL_VERSION] = version
        return a

    for (model, version, event), n in sorted(sent.items(), key=str):
        if event != semconv.EVENT_PREDICTION:
            continue
        n -= base[0].get((model, version, event), 0) if base else 0
        out.setdefault(semconv.PREDICTION_RECORDS, []).append(
            NumberDataPoint(attributes=attrs(model, version), start_time_unix_nano=start, time_unix_nano=now, value=n))
    for (model, version, reason), n in sorted(dropped.items(), key=str):
        n -= base[1].get((model, version, reason), 0) if base else 0
        out.setdefault(semconv.RECORDS_DROPPED, []).append(
            NumberDataPoint(attributes={**attrs(model, version), semconv.ERROR_TYPE: reason},
                            start_time_unix_nano=start, time_unix_nano=now, value=n))
    return out


def to_metrics(points: dict[str, list[Any]], delta: bool) -> list[Metric]:
    """Metric objects (names from semconv, in LIBRARY_METRICS order) from points grouped by name."""
    temporality = _DELTA if delta else _CUMULATIVE
    metrics = []
    for name in semconv.LIBRARY_METRICS:
        pts = points.get(name)
        if not pts:
            continue
        if name in _HISTOGRAMS:
            data: Any = Histogram(data_points=pts, aggregation_temporality=temporality)
        else:
            data = Sum(data_points=pts, aggregation_temporality=temporality, is_monotonic=True)
        metrics.append(Metric(name=name, description=_DESCRIPTIONS.get(name, ""), unit=_UNITS[name], data=data))
    return metrics
