"""The decorator: a span per predict call and the batch's counts added to the model's aggregate.

Order of work on a call: find the input, adapt it (:mod:`otel_ml._adapters`) and bin it
(:mod:`otel_ml._binning`) without a lock, open the span ``predict {model}`` as a child of the current
span, call the model (timed), map and bin its output, and add everything to the model's counters under
one lock (:mod:`otel_ml._aggregate`); the export thread (:mod:`otel_ml._export`) sends them later.
Any failure of otel-ml itself is caught, counted in ``ml.instrumentation.errors`` and logged once; the
model's return value (the same object) is returned, and an exception of the model propagates unchanged
after being recorded on the span.
"""

from __future__ import annotations

import bisect
import contextvars
import inspect
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from opentelemetry import context as otel_context, trace
from opentelemetry.trace import Span, Status, StatusCode

from . import semconv
from ._adapters import (
    UNSUPPORTED_INPUT,
    WIDTH_MISMATCH,
    Batch,
    Schema,
    adapt,
    batch_size,
    numeric_column,
    output_array,
)
from ._aggregate import ModelAggregate, SampledCall, SegmentCall, get_aggregate, set_role
from ._binning import (
    Q_MISSING,
    Q_NON_FINITE,
    Q_OUT_OF_RANGE,
    Q_WRONG_TYPE,
    SMALL_BATCH,
    CategoricalStats,
    NumericStats,
)
from ._errors import ConfigurationError, ReferenceProfileError
from ._export import PIPELINE
from ._log import internal_error, log_once
from ._records import Recorder, _column
from ._reference import (
    MAX_NAME_LENGTH,
    OUTPUT_LABEL,
    OUTPUT_VALUE,
    PROBA_PREFIX,
    Reference,
    load_reference,
    name_problem,
)
from ._segments import N_KINDS, Segments, sum_by_code

F = TypeVar("F", bound=Callable[..., Any])

#: Raw feature values put on the span with ``record_feature_values=True``: first row, at most this many.
MAX_RECORDED_VALUES = 32
_MAX_STRING = 128
_ATTRS_CACHE_SIZE = 64
_SELF_NAMES = ("self", "cls")

_enabled = True  # switched by OtelMLInstrumentor (set_enabled)
_disabled = False  # OTEL_SDK_DISABLED / configure(disabled=True); refreshed by configure()

#: The model (name, version) whose monitored call is running in this context. A nested monitored call of
#: the same model (RandomForestClassifier.predict calls self.predict_proba) passes straight through, so
#: its rows are not counted twice and no nested span is opened.
_active: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("otel_ml_active", default=None)


@dataclass(frozen=True, slots=True)
class _CallState:
    """What :meth:`_Monitor.before` hands to :meth:`_Monitor.after` across the model call."""

    batch: Batch | None
    num: NumericStats | list[list[float]] | None
    cats: list[CategoricalStats] | None
    violations: list[int] | None
    span: Span | None
    token: contextvars.Token[Any] | None  # the context token of the span, to detach
    active: contextvars.Token[tuple[str, str] | None]
    ids: tuple[Any, int, dict[str, Any] | None] | None = None  # the call's ids, their number, its segments
    segments: _SegmentRows | None = None  # the call's segment codes and per-row quality counts


@dataclass(frozen=True, slots=True)
class _SegmentRows:
    """A call's rows by segment: each column's codes, and each row's feature quality counts (summed)."""

    codes: list[tuple[str, np.ndarray, int]]  # (segment name, one code per row, codes of the column)
    quality: np.ndarray | None  # rows x QUALITY_KINDS (None: no reference)


def _version() -> str:
    from . import __version__

    return __version__


class _Monitor:
    """Per-decorated-function state, built once at decoration time."""

    def __init__(self, func: Callable[..., Any], model: str, version: str, reference: Reference | None,
                 input_arg: str | None, record_feature_values: bool, *, outputs: bool = True,
                 tracer_provider: Any = None, records: Recorder | None = None, role: str | None = None,
                 segments: Segments | None = None) -> None:
        self.records = records
        if segments is None and records is not None:
            segments = records.segments
        self.model = model
        self.version = version
        self.reference = reference
        self.record_feature_values = record_feature_values
        self.record_outputs = outputs  # False: the method returns something the reference does not describe
        self.span_name = semconv.SPAN_NAME_TEMPLATE.format(model=model)
        self.tracer = trace.get_tracer(semconv.INSTRUMENTATION_SCOPE, _version(), tracer_provider)
        self.base_attrs = {semconv.MODEL_NAME: model, semconv.MODEL_VERSION: version}
        if role is not None:
            self.base_attrs[semconv.MODEL_ROLE] = role
        self.key = (model, version)
        self._attrs_cache: dict[int | None, dict[str, Any]] = {}
        global _disabled
        config = PIPELINE.config
        _disabled = config.disabled
        self.metrics = config.metrics_enabled
        self.agg: ModelAggregate | None = get_aggregate(model, version, reference) if self.metrics else None
        agg = self.agg
        if role is not None and agg is not None:
            set_role(agg, role)
        if reference is not None and agg is not None:
            self.schema: Schema | None = Schema(reference.feature_names, agg.num_positions, agg.cat_positions,
                                                _non_features(records, segments))
        else:
            self.schema = None
        self.segments = segments if agg is not None else None  # segment metrics need the aggregate
        self._segment_features: dict[str, int] = {}  # segment column -> its categorical table (codes reused)
        if segments is not None and agg is not None:
            segments.share(agg.segment_columns)
            for name in segments.columns:
                col = segments.column(name)
                j = _cat_table_of(agg, name)
                if col is not None and j is not None and col.fixed and \
                        tuple(col.labels) == agg.cat_tables[j].categories:
                    self._segment_features[name] = j
        self._locate_input(func, input_arg)
        if self.metrics:
            PIPELINE.ensure_started()

    def _locate_input(self, func: Callable[..., Any], input_arg: str | None) -> None:
        try:
            params = list(inspect.signature(func).parameters.values())
        except (TypeError, ValueError):
            params = []
        names = [p.name for p in params]
        self.has_self = bool(names) and names[0] in _SELF_NAMES
        if input_arg is not None:
            if names and input_arg not in names and not any(p.kind is p.VAR_KEYWORD for p in params):
                raise ConfigurationError(f"input_arg={input_arg!r} is not a parameter of {func!r}: {names}")
            self.input_name: str | None = input_arg
            self.input_pos = names.index(input_arg) if input_arg in names else -1
        else:
            candidates = [i for i, p in enumerate(params) if p.name not in _SELF_NAMES or i > 0]
            if candidates:
                self.input_pos = candidates[0]
                self.input_name = names[self.input_pos]
                if params[self.input_pos].kind is inspect.Parameter.VAR_POSITIONAL:
                    self.input_name = None
            else:
                self.input_pos = 0
                self.input_name = None
        if 0 <= self.input_pos < len(params) and params[self.input_pos].kind is inspect.Parameter.KEYWORD_ONLY:
            self.input_pos = -1

    def find_input(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[bool, Any]:
        name = self.input_name
        if name is not None and name in kwargs:
            return True, kwargs[name]
        pos = self.input_pos
        if pos < 0:
            return False, None
        if self.has_self and instance is not None:
            pos -= 1
        if 0 <= pos < len(args):
            return True, args[pos]
        return False, None

    # --- before the call ---------------------------------------------------------------------------
    def prepare(
        self, x: Any
    ) -> tuple[Batch | None, NumericStats | list[list[float]] | None, list[CategoricalStats] | None,
               list[int] | None, float | None, list[np.ndarray] | None]:
        """Adapt and bin the input: (batch, numeric stats, categorical stats, schema violations, outlier score,
        and with segments each categorical feature's bucket per row).

        With a multivariate reference each row's reconstruction error joins the numeric values as the
        table's last column; the score is the batch's largest error over the outlier threshold.
        """
        schema = self.schema
        agg = self.agg
        if agg is None:
            return None, None, None, None, None, None
        if schema is None:
            return Batch(batch_size(x) or 0), None, None, None, None, None
        mv = agg.multivariate
        if (type(x) is np.ndarray and x.ndim == 2 and x.dtype.kind == "f" and schema.all_numeric
                and 0 < x.shape[0] <= SMALL_BATCH and x.shape[1] == schema.width):
            # the hot path of online serving: a few rows of floats, buffered as Python rows
            rows = x.tolist()
            score = None
            if mv is not None:
                finite = math.isfinite(sum(map(sum, rows)))
                v = x if x.dtype == np.float64 else x.astype(np.float64)
                if finite and len(rows) == 1:
                    e = mv.row_error(v[0] if agg.mv_columns is None else v[0, agg.mv_columns])
                    rows[0].append(e)
                    return Batch(1, x), rows, None, None, e / mv.threshold if mv.threshold > 0 else e, None
                errs = mv.errors(v if agg.mv_columns is None else v[:, agg.mv_columns], finite=finite).tolist()
                for r, e in zip(rows, errs):
                    r.append(e)
                if finite:
                    top = max(errs)
                    score = top / mv.threshold if mv.threshold > 0 else top
                else:
                    score = _score(np.asarray(errs), mv.threshold)
            return Batch(x.shape[0], x), rows, None, None, score, None
        batch = adapt(x, schema)
        num = None
        cats = None
        score = None
        cat_idx = None
        if batch.rows:
            levels: list[Any] = []  # the summary's categorical input columns, from the same lookup pass
            if batch.categorical is not None:
                if self.segments is not None:  # the rows' buckets, for the quality and codes per segment
                    cat_idx = [t.row_buckets(col) for t, col in zip(agg.cat_tables, batch.categorical)]
                    cats = [t.stats_of_buckets(i) for t, i in zip(agg.cat_tables, cat_idx)]
                    if mv is not None and mv.categorical:
                        levels = [None] * len(mv.categorical)
                        for idx, enc in zip(cat_idx, agg.mv_levels):
                            if enc is not None:
                                levels[enc[0]] = enc[1][idx]
                elif mv is not None and mv.categorical:
                    cats, levels = _categorical_with_levels(agg, batch.categorical, len(mv.categorical))
                else:
                    cats = [t.stats(col) for t, col in zip(agg.cat_tables, batch.categorical)]
            if batch.numeric is not None and agg.numeric is not None:
                values, wrong = batch.numeric, batch.wrong
                one_error = None  # one row: its error, computed without the batch machinery
                if mv is not None:
                    sel = values if agg.mv_columns is None else values[:, agg.mv_columns]
                    if batch.rows == 1:
                        row = sel[0]
                        readable = math.isfinite(sum(row.tolist())) and len(levels) == len(mv.categorical)
                        # (a missing category's level row is NaN: so is the error)
                        e = mv.row_error(row, [c[0] for c in levels]) if readable else math.nan
                        one_error = e
                        score = None if e != e else (e / mv.threshold if mv.threshold > 0 else e)
                    else:
                        err = mv.errors(sel, levels)
                        score = _score(err, mv.threshold)
                        values = np.column_stack((values, err))
                    if wrong is not None:
                        if one_error is not None:
                            values = np.column_stack((values, [one_error]))
                            one_error = None
                        wrong = np.append(wrong, 0)
                if wrong is None and batch.rows <= SMALL_BATCH:
                    num = values.tolist()  # buffered, binned later in one pass
                    if one_error is not None:
                        num[0].append(one_error)
                else:
                    num = agg.numeric.stats(values, wrong)
        return batch, num, cats, batch.violations, score, cat_idx

    # --- segments ----------------------------------------------------------------------------------
    def segment_rows(self, x: Any, taken: Mapping[str, Any] | None, batch: Batch,
                     num: NumericStats | list[list[float]] | None, cats: list[CategoricalStats] | None,
                     cat_idx: list[np.ndarray] | None) -> _SegmentRows | None:
        """Each segment column's code per row, and each row's quality counts; None without rows."""
        segs = self.segments
        n = batch.rows
        if segs is None or not n:
            return None
        named: list[tuple[str, Any]] = segs.named(taken) if taken is not None else [(c, None) for c in segs.columns]
        codes = []
        for name, column in named:
            col = segs.column(name)
            if col is None:
                continue
            j = self._segment_features.get(name)
            if j is not None and cat_idx is not None:  # a categorical feature: its buckets are the codes
                c = cat_idx[j].copy()
                c[c == self.agg.cat_tables[j].missing_bucket] = col.other  # type: ignore[union-attr]
            else:
                if column is None:
                    column = self._segment_column(x, name)
                c = col.codes(column, n)
            codes.append((name, c, col.capacity + 1))
        return _SegmentRows(codes, self._row_quality(batch, num, cats, cat_idx))

    def _segment_column(self, x: Any, name: str) -> Any:
        schema = self.schema
        if isinstance(x, np.ndarray) and x.ndim == 2 and schema is not None and name in schema.index:
            return x[:, schema.index[name]]  # a feature of a matrix input, by the reference's column order
        return _column(x, name)

    def _row_quality(self, batch: Batch, num: NumericStats | list[list[float]] | None,
                     cats: list[CategoricalStats] | None, cat_idx: list[np.ndarray] | None) -> np.ndarray | None:
        """Each row's missing / invalid / out-of-range / unseen feature values (QUALITY_KINDS order), counted
        as the overall counters count them (the multivariate stream excluded); None when every count is 0
        (the call's statistics say so: then no row is looked at)."""
        agg = self.agg
        if agg is None or self.schema is None:
            return None
        q: np.ndarray | None = None
        v = batch.numeric
        nt = agg.numeric
        if v is not None and nt is not None and v.shape[0] == batch.rows:
            k = v.shape[1]
            kinds = None  # which numeric kinds occur (None: not known, look)
            if isinstance(num, list):  # a few rows as Python lists (no wrong-typed cell): row by row
                q = _list_quality(num, nt.ref_min_list[:k], nt.ref_max_list[:k])
                kinds = (False, False, False)
            elif isinstance(num, NumericStats):
                fq = num.quality[:, :k] if num.quality is not None else None
                kinds = (False, False, False) if fq is None else (
                    bool(fq[Q_MISSING].any()), bool(fq[Q_NON_FINITE].any() or fq[Q_WRONG_TYPE].any()),
                    bool(fq[Q_OUT_OF_RANGE].any()))
            if kinds is None or any(kinds):
                q = np.zeros((batch.rows, N_KINDS), dtype=np.int64)
                v = v.astype(np.float64, copy=False)
                lo, hi = nt.ref_min[:k], nt.ref_max[:k]
                if isinstance(num, NumericStats) and num.quality is not None:  # only the columns concerned
                    cols = np.flatnonzero(num.quality[:, :k].any(axis=0))
                    v, lo, hi = v[:, cols], lo[cols], hi[cols]
                    wrong = batch.wrong_cells[:, cols] if batch.wrong_cells is not None else None
                else:
                    wrong = batch.wrong_cells
                fin = np.isfinite(v)
                all_finite = bool(fin.all())
                if not all_finite:
                    nan = np.isnan(v)
                    bad = ~fin & ~nan
                    if wrong is not None:
                        nan &= ~wrong
                        bad |= wrong
                    q[:, 0] = np.count_nonzero(nan, axis=1)
                    q[:, 1] = np.count_nonzero(bad, axis=1)
                if kinds is None or kinds[2]:
                    with np.errstate(invalid="ignore"):
                        out = (v < lo) | (v > hi)
                    if not all_finite:
                        out &= fin
                    q[:, 2] = np.count_nonzero(out, axis=1)
        if cat_idx and cats:
            for t, idx, c in zip(agg.cat_tables, cat_idx, cats):
                if c.missing or c.unseen:
                    if q is None:
                        q = np.zeros((batch.rows, N_KINDS), dtype=np.int64)
                    if c.missing:
                        q[:, 0] += idx == t.missing_bucket
                    if c.unseen:
                        q[:, 3] += idx == t.other
        return q

    def segment_calls(self, rows: _SegmentRows, out_rows: tuple[str, np.ndarray] | None) -> list[SegmentCall]:
        """What the call adds per segment column: rows, output buckets and classes, quality per code."""
        agg = self.agg
        assert agg is not None
        ot, lt = agg.outputs, agg.label_table
        fi = m = lab = None
        n = len(rows.codes[0][1]) if rows.codes else 0
        if out_rows is not None:
            kind, data = out_rows
            if data.shape[0] != n:
                log_once(f"segments:rows:{agg.name}", "otel-ml: model %r returned %d outputs for %d input rows; its "
                         "outputs are not counted per segment", agg.name, data.shape[0], n)
            elif kind == "num" and ot is not None:
                m = data
            elif kind == "label" and lt is not None:
                lab = data
        if n <= SMALL_BATCH:
            return self._small_segment_calls(rows, m, lab)
        if m is not None and ot is not None:
            fi = ot.bin_index(m)
        calls = []
        valid = all_valid = m0 = None
        if fi is not None and m is not None:
            valid = fi >= 0
            all_valid = bool(valid.all())
            m0 = m if all_valid else np.where(valid, m, 0.0)
        for name, codes, size in rows.codes:
            oc = osum = lc = None
            if fi is not None and ot is not None and m0 is not None:
                flat = codes[:, None] * ot.size + fi
                oc = np.bincount(flat.ravel() if all_valid else flat[valid], minlength=size * ot.size)
                oc = oc.reshape(size, ot.size)
                osum = np.bincount((codes[:, None] * ot.k + np.arange(ot.k)).ravel(), weights=m0.ravel(),
                                   minlength=size * ot.k).reshape(size, ot.k)
            if lab is not None and lt is not None:
                w = lt.size + 1
                lc = np.bincount(codes * w + lab, minlength=size * w).reshape(size, w)[:, : lt.size]
            q = sum_by_code(codes, rows.quality, size) if rows.quality is not None else None  # None: all 0
            calls.append(SegmentCall(name, size, np.bincount(codes, minlength=size), oc, osum, lc, q))
        return calls

    def _small_segment_calls(self, rows: _SegmentRows, m: np.ndarray | None,
                             lab: np.ndarray | None) -> list[SegmentCall]:
        """:meth:`segment_calls` of a few rows, row by row (cheaper than array passes for a handful)."""
        ot = self.agg.outputs  # type: ignore[union-attr]
        bins = values = None
        if m is not None and ot is not None:
            values = m.tolist()
            bins = [[o + bisect.bisect_left(e, x) if math.isfinite(x) else -1
                     for o, e, x in zip(ot.offset_list, ot.edge_lists, row)] for row in values]
        labels = lab.tolist() if lab is not None else None
        quality = rows.quality.tolist() if rows.quality is not None else None
        calls = []
        for name, codes, size in rows.codes:
            calls.append(SegmentCall(name, size, sparse=tuple(
                (c, None if bins is None else bins[i], None if values is None else values[i],
                 None if labels is None else labels[i], None if quality is None else quality[i])
                for i, c in enumerate(codes.tolist()))))
        return calls

    def feature_attributes(self, batch: Batch | None) -> dict[str, Any]:
        """First row's raw values as span attributes (opt-in), bounded in count and length."""
        out: dict[str, Any] = {}
        schema = self.schema
        if batch is None or schema is None or not batch.rows:
            return out
        prefix = semconv.FEATURE_VALUE_ATTRIBUTE_PREFIX
        if batch.numeric is not None:
            for name, v in zip(schema.num_names, batch.numeric[0].tolist()):
                if len(out) >= MAX_RECORDED_VALUES:
                    return out
                out[prefix + name[:MAX_NAME_LENGTH]] = v
        if batch.categorical is not None:
            for pos, col in zip(schema.cat_positions, batch.categorical):
                if len(out) >= MAX_RECORDED_VALUES:
                    break
                try:
                    v = col[0]
                except Exception:
                    continue
                out[prefix + schema.names[pos][:MAX_NAME_LENGTH]] = (
                    v if isinstance(v, (bool, int, float)) else str(v)[:_MAX_STRING]
                )
        return out

    # --- after the call ----------------------------------------------------------------------------
    def outputs(
        self, result: Any, per_row: bool = False
    ) -> tuple[NumericStats | list[list[float]] | None, CategoricalStats | None, int | None,
               tuple[str, np.ndarray] | None]:
        """Map a model's return value to the reference outputs: (numeric stats, label stats, violation, and
        with ``per_row`` the rows themselves: ("num", rows x numeric outputs) or ("label", each row's class))."""
        agg = self.agg
        if agg is None or not self.record_outputs or (agg.outputs is None and agg.label_table is None):
            return None, None, None, None
        arr = output_array(result)
        if arr is None or arr.shape[0] == 0:
            return None, None, (None if arr is not None else UNSUPPORTED_INPUT), None
        ot = agg.outputs
        if arr.ndim == 2:
            if ot is None or not agg.proba_outputs:
                return None, None, UNSUPPORTED_INPUT, None
            if arr.shape[1] != len(agg.proba_outputs):
                return None, None, WIDTH_MISMATCH, None
            m = _float_matrix(arr)
            if m is None:
                return None, None, UNSUPPORTED_INPUT, None
            if ot.k == m.shape[1] and agg.proba_in_order and m.shape[0] <= SMALL_BATCH:
                return m.tolist(), None, None, ("num", m) if per_row else None
            if ot.k != m.shape[1]:
                full = np.full((m.shape[0], ot.k), np.nan)
                for c, name in enumerate(agg.proba_outputs):
                    full[:, agg.output_index[name]] = m[:, c]
                m = full
            return ot.stats(m, None), None, None, ("num", m) if per_row else None
        kind = arr.dtype.kind
        if agg.value_output and ot is not None and (kind == "f" or (kind in "iu" and agg.label_table is None)):
            col = arr.astype(np.float64)
            if ot.k == 1:
                m = col.reshape(-1, 1)
                if col.shape[0] <= SMALL_BATCH:
                    return [[v] for v in col.tolist()], None, None, ("num", m) if per_row else None
            else:
                m = np.full((col.shape[0], ot.k), np.nan)
                m[:, agg.output_index[OUTPUT_VALUE]] = col
            return ot.stats(m, None), None, None, ("num", m) if per_row else None
        if agg.label_table is not None:
            if per_row:
                idx = agg.label_table.row_buckets(arr)
                return None, agg.label_table.stats_of_buckets(idx), None, ("label", idx)
            return None, agg.label_table.stats(arr), None, None
        if agg.value_output and ot is not None:
            col, _ = numeric_column(arr)
            m = np.full((col.shape[0], ot.k), np.nan)
            m[:, agg.output_index[OUTPUT_VALUE]] = col
            return ot.stats(m, None), None, None, ("num", m) if per_row else None
        return None, None, UNSUPPORTED_INPUT, None

    # --- the wrapper --------------------------------------------------------------------------------
    def before(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _CallState:
        """Everything up to the model call, entering the model's context last: ``after``'s state. Never raises."""
        batch = num = cats = violations = score = cat_idx = None
        span = token = None
        found = False
        try:
            found, x = self.find_input(instance, args, kwargs)
            if found:
                batch, num, cats, violations, score, cat_idx = self.prepare(x)
            elif self.agg is not None:
                violations = [UNSUPPORTED_INPUT]
        except Exception as exc:
            self.internal_error("adapt", exc)
            batch = num = cats = violations = score = cat_idx = None
        taken: Mapping[str, Any] | BaseException | None = None  # a segments callable's result: taken once
        seg_rows = None
        if self.segments is not None and found:
            try:  # once, for the counts and the records alike
                segs = self.segments
                taken = segs.take(x) if segs.func is not None else {n: self._segment_column(x, n) for n in segs.columns}
            except Exception as exc:
                taken = exc
            if batch is not None:
                try:
                    if isinstance(taken, BaseException):
                        raise taken
                    seg_rows = self.segment_rows(x, taken, batch, num, cats, cat_idx)
                except Exception as exc:
                    self.internal_error("segments", exc)
        try:
            n = batch.rows if batch is not None else (batch_size(x) if found else None)
            attrs = self._attrs_cache.get(n) if not self.record_feature_values else None
            if attrs is None:
                attrs = dict(self.base_attrs)
                if n is not None:
                    attrs[semconv.PREDICT_BATCH_SIZE] = n
                if self.record_feature_values:
                    attrs.update(self.feature_attributes(batch))
                elif len(self._attrs_cache) < _ATTRS_CACHE_SIZE:
                    self._attrs_cache[n] = attrs  # never mutated: the SDK copies span attributes
            if score is not None:
                attrs = {**attrs, semconv.OUTLIER_MAX_SCORE: score}
            span = self.tracer.start_span(self.span_name, attributes=attrs)
            token = otel_context.attach(trace.set_span_in_context(span))
        except Exception as exc:
            self.internal_error("span", exc)
        ids = self.records.take_ids(x, taken) if self.records is not None and found else None
        return _CallState(batch, num, cats, violations, span, token, _active.set(self.key), ids, seg_rows)

    def after(self, state: _CallState, result: Any, exc: BaseException | None, duration: float) -> None:
        """Everything after the model call, from leaving the model's context on. Never raises."""
        _active.reset(state.active)
        batch, violations, span, token = state.batch, state.violations, state.span, state.token
        error_type = type(exc).__qualname__ if exc is not None else None
        try:
            if token is not None:
                otel_context.detach(token)
            if span is not None:
                if exc is not None:
                    span.set_attribute(semconv.ERROR_TYPE, error_type)
                    span.set_status(Status(StatusCode.ERROR, str(exc)[:_MAX_STRING * 4]))
                    span.record_exception(exc)
                span.end()
        except Exception as e:
            self.internal_error("span", e)
        if state.ids is not None and exc is None:
            self.records.submit(state.ids, result, span)  # type: ignore[union-attr]  # never raises
        agg = self.agg
        if agg is None:
            return
        out = label = out_rows = None
        seg_rows = state.segments
        try:
            if exc is None:
                out, label, out_violation, out_rows = self.outputs(result, seg_rows is not None)
                if out_violation is not None:
                    violations = [*(violations or ()), out_violation]
        except Exception as e:
            self.internal_error("outputs", e)
        seg_calls = None
        if seg_rows is not None:
            try:
                seg_calls = self.segment_calls(seg_rows, out_rows)
            except Exception as e:
                self.internal_error("segments", e)
        try:
            exemplar = None
            if span is not None:
                sc = span.get_span_context()
                if sc.trace_flags.sampled:
                    first_out = None
                    if out is not None:  # the first row of numeric outputs, for ml.prediction.value
                        first_out = out[0] if isinstance(out, list) else out.first_row
                    exemplar = SampledCall(sc.trace_id, sc.span_id, time.time_ns(), duration, error_type, first_out)
            agg.commit(
                batch.rows if batch is not None else 0,
                state.num,
                state.cats,
                violations,
                out,
                label,
                duration,
                error_type,
                exemplar,
                seg_calls,
            )
        except Exception as e:
            self.internal_error("record", e)
        if not PIPELINE.running:
            try:
                PIPELINE.ensure_started()  # e.g. first call in a fork child
            except Exception as e:
                self.internal_error("export", e)

    def internal_error(self, where: str, exc: BaseException) -> None:
        internal_error(where, exc)
        if self.agg is not None:
            try:
                self.agg.count_error()
            except Exception:
                pass

    # --- sync and async wrappers --------------------------------------------------------------------
    def sync_wrapper(self, wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                     kwargs: dict[str, Any]) -> Any:
        if not _enabled or _disabled or _active.get() == self.key:
            return wrapped(*args, **kwargs)
        state = self.before(instance, args, kwargs)
        t0 = time.perf_counter()
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            self.after(state, None, exc, time.perf_counter() - t0)
            raise
        self.after(state, result, None, time.perf_counter() - t0)
        return result

    async def async_wrapper(self, wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                            kwargs: dict[str, Any]) -> Any:
        if not _enabled or _disabled or _active.get() == self.key:
            return await wrapped(*args, **kwargs)
        state = self.before(instance, args, kwargs)
        t0 = time.perf_counter()
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            self.after(state, None, exc, time.perf_counter() - t0)
            raise
        self.after(state, result, None, time.perf_counter() - t0)
        return result


def _categorical_with_levels(agg: ModelAggregate, columns: Sequence[Any],
                             n: int) -> tuple[list[CategoricalStats], list[Any]]:
    """Each categorical column's stats and, for the ``n`` the multivariate summary encodes, each row's
    level-table row (:meth:`otel_ml._multivariate.Multivariate.level_rows`), in its order."""
    cats = []
    levels: list[Any] = [None] * n
    for t, col, enc in zip(agg.cat_tables, columns, agg.mv_levels):
        if enc is None:
            cats.append(t.stats(col))
            continue
        if len(col) <= SMALL_BATCH:
            stats = t.stats(col)
            if not stats.missing:  # then its indices are every row's bucket, in order
                cats.append(stats)
                levels[enc[0]] = [enc[2][c] for c in stats.indices]  # type: ignore[union-attr]
                continue
        stats, codes = t.stats_and_codes(col)
        cats.append(stats)
        levels[enc[0]] = [enc[2][c] for c in codes] if isinstance(codes, list) else enc[1][codes]
    return cats, levels


def _list_quality(rows: list[list[float]], lo: list[float], hi: list[float]) -> np.ndarray | None:
    """Each row's missing / invalid / out-of-range values (rows x QUALITY_KINDS), None when all are fine."""
    out = None
    for i, row in enumerate(rows):
        miss = bad = oor = 0
        for x, a, b in zip(row, lo, hi):  # (a multivariate error beyond the features is left out)
            if x != x:
                miss += 1
            elif x < a or x > b:
                if math.isinf(x):
                    bad += 1
                else:
                    oor += 1
        if miss or bad or oor:
            if out is None:
                out = np.zeros((len(rows), N_KINDS), dtype=np.int64)
            out[i, :3] = (miss, bad, oor)
    return out


def _score(err: np.ndarray, threshold: float) -> float | None:
    """The largest finite error over the threshold; None when no row had every numeric feature."""
    if not np.isfinite(err).any():
        return None
    top = float(np.nanmax(err))
    return top / threshold if threshold > 0 else top


def _set_disabled(disabled: bool) -> None:
    global _disabled
    _disabled = bool(disabled)


def _float_matrix(arr: np.ndarray) -> np.ndarray | None:
    if arr.dtype.kind in "iuf":
        return arr.astype(np.float64, copy=False)
    try:
        return arr.astype(np.float64)
    except (TypeError, ValueError):
        return None


def _resolve_reference(reference: Any, model: str, version: str) -> Reference | None:
    if reference is None:
        return None
    if isinstance(reference, Reference):
        ref = reference
        source = "reference"
    elif isinstance(reference, (str, os.PathLike)):
        ref = load_reference(reference)  # raises ReferenceProfileError naming the file
        source = os.fspath(reference)
    else:
        raise ConfigurationError(f"reference must be a path or an otel_ml.Reference, got {type(reference).__name__}")
    if ref.model_name != model or ref.model_version != version:
        raise ReferenceProfileError(
            f"{source}: profile of model {ref.model_name!r} version {ref.model_version!r}, "
            f"but monitor() was given model {model!r} version {version!r}"
        )
    return ref


def _non_features(records: Recorder | None, segments: Segments | None) -> tuple[str, ...]:
    """Input columns that are not features: the prediction id and the segment columns."""
    ids = (records.column,) if records is not None and records.column else ()
    return ids + (segments.columns if segments is not None else ())


def _cat_table_of(agg: ModelAggregate, name: str) -> int | None:
    """The index of the categorical table of feature ``name`` in ``agg``, or None."""
    for j, t in enumerate(agg.cat_tables):
        if t.name == name:
            return j
    return None


def _check_names(model: Any, version: Any) -> tuple[str, str]:
    text = version if version is None or isinstance(version, bool) else str(version)
    for what, value, given in (("model", model, model), ("version", text, version)):
        problem = name_problem(value)
        if problem:
            raise ConfigurationError(f"{what} {problem}, got {given!r}")
    return model, str(version)


def _check_role(role: Any) -> str | None:
    if role is not None and role not in semconv.MODEL_ROLES:
        raise ConfigurationError(f"role must be one of {', '.join(semconv.MODEL_ROLES)} or None, got {role!r}")
    return role


def monitor(
    *,
    model: str,
    version: str,
    reference: str | os.PathLike[str] | Reference | None = None,
    input_arg: str | None = None,
    record_feature_values: bool = False,
    prediction_id: str | Callable[[Any], Any] | None = None,
    outcome_sample_rate: float = 1.0,
    hash_ids: bool | None = None,
    segments: Sequence[str] | Callable[[Any], Mapping[str, Any]] | None = None,
    role: str | None = None,
) -> Callable[[F], F]:
    """Monitor a predict function: a span per call, feature and prediction histograms, quality counts.

    ``reference`` (a path or a :class:`Reference`) is loaded now; a bad file raises
    :class:`ReferenceProfileError` naming it. Without a reference only the span, ``ml.predict.duration``
    and ``ml.predict.rows`` are recorded. The feature batch is the first positional argument after
    ``self``/``cls`` unless ``input_arg`` names another parameter. Works on functions, methods and
    ``async def`` functions. ``record_feature_values=True`` puts the first row's raw values on the span
    (at most 32 of them); off by default.

    ``prediction_id`` (an input column name, or a callable(X) returning one id per row) turns on
    prediction records: one OTLP log record per row (``ml.prediction``: the hashed id, the output, the
    span's trace and span id), sent from a background thread, for joining with outcomes
    (:func:`otel_ml.record_outcomes`). ``outcome_sample_rate`` keeps that share of the ids (decided by
    the id's hash, so the outcome side keeps the same ones); ``hash_ids=False`` sends raw ids (default:
    :func:`otel_ml.configure`'s, which hashes with ``id_secret``/``OTEL_ML_ID_SECRET``).

    ``segments`` (up to 4 input column names, or a callable(X) returning a mapping of segment name to one
    value per row) adds, per segment value, the rows (``ml.segment.rows``), the outputs
    (``ml.segment.prediction.value`` / ``ml.segment.prediction.class.count``) and the feature quality
    counts summed over the features (``ml.segment.feature.*``), so the processor judges drift and data
    quality per segment; with ``prediction_id`` each prediction record also carries
    ``ml.segment.<name>`` (realized performance per segment). Feature histograms are not segmented
    (features × values would exceed the series budget). Values are bounded: the reference's top
    categories of a categorical column, else the values of its "segments" section, else the first 20
    distinct values seen; everything else (and a missing value) is ``__other__``. The segment series
    (Σ columns (values + 1) × (1 + output series + 4)) must stay within
    :data:`~otel_ml.semconv.MAX_SEGMENT_SERIES`, else :class:`ConfigurationError` (:mod:`otel_ml._segments`).

    ``role`` (``live``, ``canary`` or ``shadow``) is put on the span, the metric points and the prediction
    records as ``ml.model.role``
    (the processor compares a model's other versions with its ``live`` one): a shadow model
    scoring the same input as the live one is monitored by a second decorated function called from the
    first, with its own version (docs/library.md, "Shadow and canary versions").
    """
    model, version = _check_names(model, version)
    role = _check_role(role)
    ref = _resolve_reference(reference, model, version)
    if input_arg is not None and not isinstance(input_arg, str):
        raise ConfigurationError(f"input_arg must be a parameter name, got {input_arg!r}")
    segs = Segments(segments, ref) if segments is not None else None
    records = None
    if prediction_id is not None:
        records = Recorder(model, version, prediction_id, outcome_sample_rate, hash_ids, ref, segs, role)

    def decorate(func: F) -> F:
        if not callable(func):
            raise ConfigurationError(f"monitor() decorates a callable, got {type(func).__name__}")
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            raise ConfigurationError("monitor() does not support generator functions")
        import wrapt  # here, not at import time: importing otel_ml stays cheap

        m = _Monitor(func, model, version, ref, input_arg, bool(record_feature_values), records=records,
                     role=role, segments=segs)
        if inspect.iscoroutinefunction(func):
            wrapper = wrapt.FunctionWrapper(func, m.async_wrapper)
        else:
            wrapper = wrapt.FunctionWrapper(func, m.sync_wrapper)
        wrapper._self_otel_ml_monitor = m  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


# --- instrument(estimator) ---------------------------------------------------------------------------

_METHODS = ("predict", "predict_proba")
#: Which reference outputs a method's return value is: predict_proba the class probabilities
#: (``proba:<class>``), predict the label or the regression value. Other methods: whatever the reference says.
_PROBA_METHODS = frozenset({"predict_proba"})
_LABEL_METHODS = frozenset({"predict"})


def describes_outputs(reference: Reference | None, method: str) -> bool:
    """Whether ``reference`` describes what ``method`` returns (else its outputs are not recorded).

    A reference built from ``predict_proba`` describes ``predict_proba`` only; one built from ``predict``
    (labels or values) describes ``predict`` only. The other method is still monitored (span, latency,
    rows, features), but its return value is neither recorded nor counted as a schema violation.
    """
    if reference is None:
        return True
    names = [p.name for p in reference.outputs]
    has_proba = any(n.startswith(PROBA_PREFIX) for n in names)
    has_label = any(n in (OUTPUT_LABEL, OUTPUT_VALUE) for n in names)
    if method in _PROBA_METHODS:
        return has_proba
    if method in _LABEL_METHODS:
        return has_label
    return True


def monitor_method(func: Callable[..., Any], method: str, *, model: str, version: str, reference: Reference | None,
                   record_feature_values: bool = False, input_arg: str | None = None,
                   tracer_provider: Any = None, outputs: bool | None = None,
                   records: Recorder | None = None, segments: Segments | None = None,
                   role: str | None = None) -> Callable[..., Any]:
    """The ``(wrapped, instance, args, kwargs)`` handler monitoring ``func``, a method named ``method``.

    ``outputs`` None: recorded when the reference describes ``method``'s return value.
    """
    if outputs is None:
        outputs = describes_outputs(reference, method)
    m = _Monitor(func, model, version, reference, input_arg, record_feature_values,
                 outputs=outputs, tracer_provider=tracer_provider, records=records, segments=segments, role=role)
    return m.async_wrapper if inspect.iscoroutinefunction(func) else m.sync_wrapper


def instrument(
    estimator: Any,
    *,
    model: str,
    version: str,
    reference: str | os.PathLike[str] | Reference | None = None,
    methods: Iterable[str] = _METHODS,
    record_feature_values: bool = False,
    prediction_id: str | Callable[[Any], Any] | None = None,
    outcome_sample_rate: float = 1.0,
    hash_ids: bool | None = None,
    segments: Sequence[str] | Callable[[Any], Mapping[str, Any]] | None = None,
    role: str | None = None,
) -> Any:
    """Monitor an object's ``predict`` / ``predict_proba`` (scikit-learn style); returns the same object.

    Instrumenting twice is a no-op; :meth:`OtelMLInstrumentor.uninstrument` undoes it. Each method's
    outputs are recorded only when the reference describes them (:func:`describes_outputs`): with a
    reference built from ``predict_proba``, ``predict`` gets its span, latency, rows and feature counts,
    and its labels are ignored. A method called from inside another monitored method of the same model
    (``RandomForestClassifier.predict`` calls ``predict_proba``) is not counted again; but a service
    calling both methods itself on one batch counts the features twice (and, with ``prediction_id``,
    sends each id twice). ``prediction_id``, ``outcome_sample_rate``, ``hash_ids``, ``segments`` and ``role``
    are :func:`monitor`'s: ``segments`` counts outputs and data quality per segment value with or without
    ``prediction_id`` (the methods share one set of segment values), within the same series budget.

    Nothing is stored on the estimator: its class gets a thin dispatcher that monitors the calls of
    instrumented instances only (:mod:`otel_ml._patch`). So ``pickle``/``joblib.dump``, ``copy`` and
    ``sklearn.base.clone`` work as on the plain estimator, and what comes back is the plain estimator,
    not monitored: the reference and the monitoring belong to the serving process, not to the model
    file (call ``instrument()`` again after loading).
    """
    from . import _patch

    model, version = _check_names(model, version)
    role = _check_role(role)
    ref = _resolve_reference(reference, model, version)
    methods = tuple(methods)
    segs = Segments(segments, ref) if segments is not None else None
    records = None
    if prediction_id is not None:
        records = Recorder(model, version, prediction_id, outcome_sample_rate, hash_ids, ref, segs, role)
    handlers = {}
    for name in methods:
        current = getattr(estimator, name, None)
        if current is None or _patch.is_attached(estimator, name):
            continue
        if not callable(current):
            raise ConfigurationError(f"{type(estimator).__name__}.{name} is not callable")
        handlers[name] = monitor_method(current, name, model=model, version=version, reference=ref,
                                        record_feature_values=bool(record_feature_values), records=records,
                                        segments=segs, role=role)
    if not handlers and not any(_patch.is_attached(estimator, n) for n in methods):
        raise ConfigurationError(f"{type(estimator).__name__} has none of the methods {methods}")
    _patch.attach(estimator, handlers)
    return estimator


def set_enabled(enabled: bool) -> None:
    """Monitoring on (default) or off: off, every monitored function and method passes straight through."""
    global _enabled
    _enabled = bool(enabled)
