"""OTLP export of pre-aggregated metrics: exporter construction, MetricsData building, the export thread.

Two reusable helpers (the processor imports them too):

* :func:`create_metric_exporter` builds an OTLP metric exporter for an endpoint, choosing OTLP/HTTP or
  OTLP/gRPC the way the OpenTelemetry exporters do (port 4318, a ``/v1/metrics`` path or
  ``protocol="http/protobuf"`` mean HTTP; everything else gRPC).
* :func:`build_metrics_data` wraps a list of :class:`~opentelemetry.sdk.metrics.export.Metric` into the
  :class:`~opentelemetry.sdk.metrics.export.MetricsData` an exporter's ``export()`` takes.

The rest of the module is the library's own periodic exporter (:class:`ExportPipeline`): a daemon thread
that, every ``OTEL_METRIC_EXPORT_INTERVAL``, turns the in-memory counts of every monitored model into OTLP
histogram and sum data points and exports them. Predict calls never wait for it.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from urllib.parse import unquote, urlparse

from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.metrics.export import Metric as Metric  # re-exported for the processor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from . import semconv
from ._aggregate import (
    DURATION_BOUNDS,
    Q_MISSING,
    Q_NON_FINITE,
    Q_OUT_OF_RANGE,
    Q_WRONG_TYPE,
    SCHEMA_KINDS,
    ModelAggregate,
    NumericTable,
    Snapshot,
    aggregates,
)
from ._errors import ConfigurationError
from ._log import internal_error, log_once

PROTOCOL_GRPC = "grpc"
PROTOCOL_HTTP = "http/protobuf"
_HTTP_METRICS_PATH = "/v1/metrics"
DEFAULT_TIMEOUT_S = 10.0


def resolve_protocol(endpoint: str | None, protocol: str | None = None) -> str:
    """``"http/protobuf"`` or ``"grpc"`` for an endpoint, as the OTel exporters decide.

    An explicit ``protocol`` wins; otherwise an endpoint whose port is 4318 or whose path ends in
    ``/v1/metrics`` is OTLP/HTTP, and anything else OTLP/gRPC.
    """
    if protocol:
        p = protocol.strip().lower()
        if p in ("http/protobuf", "http"):
            return PROTOCOL_HTTP
        if p == "grpc":
            return PROTOCOL_GRPC
        raise ConfigurationError(f"OTLP protocol {protocol!r} is not supported (use 'grpc' or 'http/protobuf')")
    if endpoint:
        parsed = urlparse(endpoint if "://" in endpoint else f"//{endpoint}")
        try:
            port = parsed.port
        except ValueError:
            raise ConfigurationError(f"OTLP endpoint {endpoint!r} has an invalid port") from None
        if port == 4318 or parsed.path.rstrip("/").endswith(_HTTP_METRICS_PATH):
            return PROTOCOL_HTTP
    return PROTOCOL_GRPC


def _parse_headers(headers: Mapping[str, str] | str | None) -> dict[str, str] | None:
    if headers is None:
        return None
    if isinstance(headers, Mapping):
        return {str(k).strip().lower(): str(v).strip() for k, v in headers.items()}
    out: dict[str, str] = {}
    for item in str(headers).split(","):
        if not item.strip():
            continue
        if "=" not in item:
            raise ConfigurationError(f"OTLP header {item.strip()!r} is not of the form key=value")
        k, v = item.split("=", 1)
        out[unquote(k).strip().lower()] = unquote(v).strip()
    return out


def create_metric_exporter(
    endpoint: str | None = None,
    *,
    protocol: str | None = None,
    headers: Mapping[str, str] | str | None = None,
    insecure: bool | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    preferred_temporality: dict[type, AggregationTemporality] | None = None,
    max_export_batch_size: int | None = 2000,
) -> MetricExporter:
    """An OTLP metric exporter for ``endpoint`` (OTLP/HTTP or OTLP/gRPC, see :func:`resolve_protocol`).

    ``endpoint`` may be ``host:port``, ``http://host:port`` or, for HTTP, a full URL such as
    ``https://host/otlp/v1/metrics`` (kept as is; ``/v1/metrics`` is added only to a URL without a path). With ``endpoint=None`` the exporter reads the standard
    ``OTEL_EXPORTER_OTLP_(METRICS_)ENDPOINT`` variables itself. ``headers`` is a mapping or the
    ``k1=v1,k2=v2`` form of ``OTEL_EXPORTER_OTLP_HEADERS``. Raises :class:`ConfigurationError` for a bad
    protocol, port or header.
    """
    if timeout_s <= 0:
        raise ConfigurationError(f"timeout_s must be positive, got {timeout_s}")
    proto = resolve_protocol(endpoint, protocol)
    hdrs = _parse_headers(headers)
    if proto == PROTOCOL_HTTP:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HTTPExporter

        url = endpoint
        if url is not None:
            if "://" not in url:
                url = f"{'http' if insecure is not False else 'https'}://{url}"
            if not urlparse(url).path.strip("/"):  # a bare host:port gets the signal path; a full URL is kept
                url = url.rstrip("/") + _HTTP_METRICS_PATH
        return HTTPExporter(
            endpoint=url,
            headers=hdrs,
            timeout=timeout_s,
            preferred_temporality=preferred_temporality,
            max_export_batch_size=max_export_batch_size,
        )
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GRPCExporter

    if insecure is None and endpoint is not None and "://" not in endpoint:
        host = endpoint.rsplit(":", 1)[0].strip("[]")
        insecure = host in ("localhost", "127.0.0.1", "::1")
    return GRPCExporter(
        endpoint=endpoint,
        insecure=insecure,
        headers=hdrs,
        timeout=timeout_s,
        preferred_temporality=preferred_temporality,
        max_export_batch_size=max_export_batch_size,
    )


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


# --- The library's periodic exporter ------------------------------------------------------------

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
}
_HISTOGRAMS = (semconv.PREDICT_DURATION, semconv.FEATURE_VALUE, semconv.PREDICTION_VALUE)


def _value_exemplar(ex: tuple[Any, ...] | None, j: int, start: int) -> list[Exemplar]:
    """Exemplar for column ``j`` of the latest sampled call's first output row, if any."""
    if ex is None or ex[5] is None or ex[2] < start or j >= len(ex[5]):
        return []
    v = ex[5][j]
    if not isinstance(v, float) or not np.isfinite(v):
        return []
    return [Exemplar({}, v, ex[2], span_id=ex[1], trace_id=ex[0])]


def _hist_points(table: NumericTable, attrs: dict[str, Any], name_key: str, counts: np.ndarray,
                 mins: np.ndarray, maxs: np.ndarray, sums: np.ndarray, start: int, now: int,
                 exemplar: tuple[Any, ...] | None = None) -> list[HistogramDataPoint]:
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
        mm = 1  # interval min/max

        def d(cur: Any, attr: str) -> Any:
            return cur - getattr(base, attr) if base is not None else cur
    else:
        start = snap.start_ns
        mm = 0

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
        if ex is not None and ex[4] == key and ex[2] >= start:
            exemplars = [Exemplar({}, float(ex[3]), ex[2], span_id=ex[1], trace_id=ex[0])]
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
            nt, attrs, semconv.FEATURE_NAME, d(snap.num_counts, "num_counts"), snap.num_min[mm],
            snap.num_max[mm], d(snap.num_sum, "num_sum"), start, now)
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
            counts = snap.cat_counts[j] - base.cat_counts[j] if (delta and base is not None) else snap.cat_counts[j]
            for label, c in zip(table.labels, counts.tolist()):
                num(semconv.FEATURE_CATEGORY_COUNT, c, {**f, semconv.FEATURE_CATEGORY: label})
            num(semconv.FEATURE_MISSING, cq[0, j], f)
            num(semconv.FEATURE_UNSEEN, cq[1, j], f)
    ot = agg.outputs
    if ot is not None:
        out[semconv.PREDICTION_VALUE] = _hist_points(
            ot, attrs, semconv.PREDICTION_NAME, d(snap.out_counts, "out_counts"), snap.out_min[mm],
            snap.out_max[mm], d(snap.out_sum, "out_sum"), start, now, exemplar=snap.exemplar)
    lt = agg.label_table
    if lt is not None:
        counts = d(snap.label_counts, "label_counts")
        for label, c in zip(lt.labels, counts.tolist()):
            num(semconv.PREDICTION_CLASS_COUNT, c, {semconv.PREDICTION_NAME: lt.name, semconv.PREDICTION_CLASS: label})
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


class ExportPipeline:
    """One daemon thread exporting every model's counts each interval, and on :meth:`flush`.

    Bounded by construction: counts are cumulative, so a failed export is simply superseded by the next
    one (nothing queues up); at most one export runs at a time; flush waits at most its timeout.
    """

    def __init__(self) -> None:
        self._init_state()
        self._config: Any = None
        self._atexit = False

    def _init_state(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._exporter: MetricExporter | None = None
        self._requested = 0
        self._completed = 0
        self._results: dict[int, bool] = {}
        self._last: dict[ModelAggregate, Snapshot] = {}  # last exported snapshot per aggregate (delta)
        self._resource: Resource | None = None
        self._resource_is_fallback = False
        self._stop = False
        self.running = False
        self.exports = 0
        self.failures = 0

    # --- configuration -------------------------------------------------------------------------
    @property
    def config(self) -> Any:
        if self._config is None:
            from ._config import load_config

            self._config = load_config()
        return self._config

    def configure(self, config: Any) -> None:
        """Replace the configuration; the running thread (if any) is stopped and restarted lazily.

        The last exported snapshots are kept, so delta temporality does not re-send old counts.
        """
        last = self._last
        self.shutdown(timeout_s=1.0, flush=False)
        self._last = last
        self._config = config

    def _make_exporter(self) -> MetricExporter:
        from ._config import EXPORTER_CONSOLE

        cfg = self.config
        if cfg.exporter is not None:
            return cfg.exporter
        if cfg.exporter_kind == EXPORTER_CONSOLE:
            from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

            return ConsoleMetricExporter()
        return create_metric_exporter(
            cfg.endpoint, protocol=cfg.protocol, headers=dict(cfg.headers) or None, timeout_s=cfg.timeout_s
        )

    # --- thread ----------------------------------------------------------------------------------
    def ensure_started(self) -> None:
        """Start the export thread if metrics are enabled and it is not running (idempotent)."""
        if self.running or not self.config.metrics_enabled:
            return
        with self._cond:
            if self.running:
                return
            self._stop = False
            if self._resource is None:
                # Resolved here, on a user thread: Resource.create() needs a thread pool, which is gone
                # at interpreter exit. A global SDK MeterProvider set later still wins at first export.
                from ._config import resolve_resource

                self._resource = resolve_resource(self.config)
                self._resource_is_fallback = self.config.resource is None
            t = threading.Thread(target=self._run, name="otel-ml-export", daemon=True)
            self._thread = t
            self.running = True
            t.start()
        if not self._atexit:
            self._atexit = True
            atexit.register(_atexit_flush, weakref.ref(self))

    def _run(self) -> None:
        me = threading.current_thread()
        cond = self._cond
        interval = self.config.export_interval_s
        next_at = time.monotonic() + interval
        while True:
            with cond:
                while not self._stop and self._requested <= self._completed and self._thread is me:
                    remaining = next_at - time.monotonic()
                    if remaining <= 0:
                        break
                    cond.wait(remaining)
                if self._stop or self._thread is not me:
                    return
                target = self._requested
            ok = self.export_once()
            if time.monotonic() >= next_at:
                next_at = time.monotonic() + interval
            with cond:
                if self._thread is not me:
                    return
                for seq in range(self._completed + 1, target + 1):
                    self._results[seq] = ok
                self._completed = max(self._completed, target)
                if len(self._results) > 64:
                    for seq in sorted(self._results)[:-64]:
                        del self._results[seq]
                self._cond.notify_all()

    def collect(self) -> tuple[MetricsData | None, list[tuple[ModelAggregate, Snapshot]]]:
        """Snapshot every model and build the MetricsData to export (None when no model is monitored)."""
        delta = self.config.delta
        points: dict[str, list[Any]] = {}
        snaps = []
        for agg in aggregates():
            snap = agg.snapshot()
            snaps.append((agg, snap))
            for name, pts in model_points(agg, snap, self._last.get(agg), delta).items():
                points.setdefault(name, []).extend(pts)
        if not snaps:
            return None, snaps
        if self._resource is None or self._resource_is_fallback:
            from ._config import global_sdk_resource, resolve_resource, with_instance_id

            g = global_sdk_resource() if self.config.resource is None else None
            if g is not None:
                self._resource = with_instance_id(g)
                self._resource_is_fallback = False
            elif self._resource is None:
                self._resource = resolve_resource(self.config)
                self._resource_is_fallback = False
        from . import __version__

        data = build_metrics_data(self._resource, semconv.INSTRUMENTATION_SCOPE, to_metrics(points, delta),
                                  scope_version=__version__)
        return data, snaps

    def export_once(self) -> bool:
        """Collect and export now, on the calling thread. True on success (or nothing to export)."""
        snaps: list[tuple[ModelAggregate, Snapshot]] = []
        try:
            data, snaps = self.collect()
            if data is None:
                return True
            if self._exporter is None:
                self._exporter = self._make_exporter()
            result = self._exporter.export(data, timeout_millis=self.config.timeout_s * 1000)
            ok = result == MetricExportResult.SUCCESS
        except Exception as exc:  # never let the export thread die
            internal_error("export", exc)
            ok = False
        self.exports += 1
        if ok:
            for agg, snap in snaps:
                self._last[agg] = snap
        else:
            self.failures += 1
            for agg, snap in snaps:
                agg.restore_interval(snap)
            log_once("export-failed", "otel-ml: metrics export failed; the counts are kept and "
                     "exported with the next attempt")
        return ok

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Export everything now; True when the export finished successfully within ``timeout_s``."""
        if not self.config.metrics_enabled:
            return True
        if not aggregates():
            return True
        self.ensure_started()
        deadline = time.monotonic() + max(0.0, timeout_s)
        with self._cond:
            self._requested += 1
            target = self._requested
            self._cond.notify_all()
            while self._completed < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self.running:
                    return False
                self._cond.wait(remaining)
            return self._results.get(target, False)

    def shutdown(self, timeout_s: float = 5.0, flush: bool = True) -> None:
        """Optionally flush, stop the thread and shut the exporter down (a user-supplied one is left open)."""
        if flush and self.running:
            self.flush(timeout_s)
        with self._cond:
            self._stop = True
            self._cond.notify_all()
            t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout_s)
        exporter = self._exporter
        if exporter is not None and (self._config is None or exporter is not self._config.exporter):
            try:
                exporter.shutdown()
            except Exception:
                pass
        self._init_state()

    def _after_fork_in_child(self) -> None:
        self._init_state()  # the parent's thread and gRPC channel do not exist here


def _atexit_flush(ref: Any) -> None:
    pipeline = ref()
    if pipeline is not None and pipeline.running:
        try:
            pipeline.flush(5.0)  # bounded: an unreachable collector costs at most this at exit
            pipeline.shutdown(timeout_s=0.5, flush=False)
        except Exception:
            pass


PIPELINE = ExportPipeline()

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=PIPELINE._after_fork_in_child)
