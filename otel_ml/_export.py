"""The library's export loop: a daemon thread that exports every monitored model's counts.

Every ``OTEL_METRIC_EXPORT_INTERVAL`` (and on :meth:`ExportPipeline.flush`) the thread snapshots each
model's aggregate (:mod:`otel_ml._aggregate`), encodes the snapshots as OTLP data points
(:mod:`otel_ml._otlp`) and hands them to the configured exporter (:mod:`otel_ml._exporter`). Predict
calls never wait for it. The encoding module and the OTel SDK's metrics package are imported at the
first export, not with ``otel_ml``.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from . import semconv
from ._aggregate import ModelAggregate, Snapshot, aggregates
from ._config import EXPORTER_CONSOLE, Config, global_sdk_resource, load_config, resolve_resource, with_instance_id
from ._exporter import create_metric_exporter
from ._log import internal_error, log_once

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricExporter, MetricsData
    from opentelemetry.sdk.resources import Resource


class ExportPipeline:
    """One daemon thread exporting every model's counts each interval, and on :meth:`flush`.

    Bounded by construction: counts are cumulative, so a failed export is simply superseded by the next
    one (nothing queues up); at most one export runs at a time; flush waits at most its timeout.
    """

    def __init__(self) -> None:
        self._init_state()
        self._config: Config | None = None
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
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config()
        return self._config

    def configure(self, config: Config) -> None:
        """Replace the configuration; the running thread (if any) is stopped and restarted lazily.

        The last exported snapshots are kept, so delta temporality does not re-send old counts.
        """
        last = self._last
        self.shutdown(timeout_s=1.0, flush=False)
        self._last = last
        self._config = config

    def _make_exporter(self) -> MetricExporter:
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
        from ._otlp import build_metrics_data, model_points, to_metrics

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
        from ._records import counter_points

        record_pts, self._records_token = counter_points(delta)
        for name, pts in record_pts.items():
            points.setdefault(name, []).extend(pts)
        if self._resource is None or self._resource_is_fallback:
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
            from opentelemetry.sdk.metrics.export import MetricExportResult

            result = self._exporter.export(data, timeout_millis=self.config.timeout_s * 1000)
            ok = result == MetricExportResult.SUCCESS
        except Exception as exc:  # never let the export thread die
            internal_error("export", exc)
            ok = False
        self.exports += 1
        if ok:
            for agg, snap in snaps:
                self._last[agg] = snap
            from ._records import counters_exported

            counters_exported(getattr(self, "_records_token", None))
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
