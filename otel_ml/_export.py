"""The library's export loop: a daemon thread that exports every monitored model's counts.

Every ``OTEL_METRIC_EXPORT_INTERVAL`` (and on :meth:`ExportPipeline.flush`) the thread snapshots each
model's aggregate (:mod:`otel_ml._aggregate`), encodes the snapshots as OTLP data points
(:mod:`otel_ml._otlp`) and hands them to the configured exporter (:mod:`otel_ml._exporter`).

Predict calls never wait for it, nor for what it needs: the encoding module, the OTel SDK's metrics
package and the exporter (with its modules) are imported and built, and the resource resolved, when the
pipeline starts (``monitor()`` decorating, ``configure()``), on the caller's thread, not with ``import
otel_ml`` and not at the first export. Exports run with OpenTelemetry instrumentation suppressed (no
HTTP- or gRPC-client spans of our own exports). A failed export writes one line (at most one a
minute) instead of the exporters' per-retry messages, and counts ``ml.instrumentation.errors`` per model.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from opentelemetry import context as otel_context

from . import semconv
from ._aggregate import ModelAggregate, Snapshot, aggregates
from ._config import (
    DEFAULT_EXPORT_INTERVAL_S,
    EXPORTER_CONSOLE,
    Config,
    global_sdk_resource,
    load_config,
    resolve_resource,
    with_instance_id,
)
from ._exporter import (
    DEFAULT_ENDPOINTS,
    PROTOCOL_GRPC,
    PROTOCOL_HTTP,
    SDK_VARIABLE_LOGGERS,
    create_metric_exporter,
    import_exporter,
    quiet_sdk_logs,
)
from ._log import internal_error, log_once
from ._worker import EXIT_FLUSH_S, BackgroundWorker

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
        # The thread's lifecycle (interval, flush with timeout, at-exit flush, fork reset) is the worker's.
        self.worker = BackgroundWorker("otel-ml-export", self.export_once, DEFAULT_EXPORT_INTERVAL_S,
                                       on_start=self._before_start, at_exit=self._at_exit)

    def _init_state(self) -> None:
        self._exporter: MetricExporter | None = None
        self._last: dict[ModelAggregate, Snapshot] = {}  # last exported snapshot per aggregate (delta)
        self._resource: Resource | None = None
        self._resource_is_fallback = False
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
        with quiet_sdk_logs(SDK_VARIABLE_LOGGERS):  # _config judged (and warned about) those variables once
            return self._new_exporter()

    def _new_exporter(self) -> MetricExporter:
        cfg = self.config
        if cfg.exporter is not None:
            return cfg.exporter
        if cfg.exporter_kind == EXPORTER_CONSOLE:
            from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

            return ConsoleMetricExporter()
        return create_metric_exporter(cfg.endpoint, protocol=cfg.protocol, headers=dict(cfg.headers),
                                      timeout_s=cfg.timeout_s, compression=cfg.compression)

    def _prepare(self) -> None:
        """Import and build everything an export needs, on the calling thread (set-up, not a predict call).

        Importing the encoder and the exporter modules takes 0.1-0.4 s; done lazily on the export thread it
        would compete with predict calls for the GIL and the import lock. Each step runs once; a failure is
        counted and logged once, and the export thread tries again at its next export.
        """
        cfg = self.config
        try:
            from . import _otlp  # noqa: F401  (the encoder, and the SDK's metrics package with it)

            if cfg.exporter is None and cfg.exporter_kind != EXPORTER_CONSOLE:
                import_exporter(cfg.protocol)
            if self._resource is None:
                self._set_resource(resolve_resource(cfg), fallback=cfg.resource is None)
            if self._exporter is None:
                self._exporter = self._make_exporter()
        except Exception as exc:
            internal_error("export set-up", exc)

    def _set_resource(self, resource: Resource, *, fallback: bool, redraw: bool = False) -> None:
        self._resource = with_instance_id(resource, redraw=redraw)
        self._resource_is_fallback = fallback

    # --- thread ----------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.worker.running

    def ensure_started(self) -> None:
        """Start the export thread if metrics are enabled and it is not running (idempotent)."""
        if self.worker.running or not self.config.metrics_enabled:
            return
        self.worker.start()

    def _before_start(self) -> None:
        # On this (user) thread: Resource.create() needs a thread pool, which is gone at interpreter
        # exit. A global SDK provider set later still wins at the first export.
        self.worker.interval_s = self.config.export_interval_s
        self._prepare()

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
                self._set_resource(g, fallback=False)
            elif self._resource is None:
                self._set_resource(resolve_resource(self.config), fallback=False)
        assert self._resource is not None
        from . import __version__

        data = build_metrics_data(self._resource, semconv.INSTRUMENTATION_SCOPE, to_metrics(points, delta),
                                  scope_version=__version__)
        return data, snaps

    def export_once(self) -> bool:
        """Collect and export now, on the calling thread. True on success (or nothing to export).

        The export runs with instrumentation suppressed and the exporters' own log records dropped; a
        failure is counted in every exported model's ``ml.instrumentation.errors`` and logged once a minute.
        """
        snaps: list[tuple[ModelAggregate, Snapshot]] = []
        reason: list[str] = []
        try:
            data, snaps = self.collect()
            if data is None:
                return True
            if self._exporter is None:
                self._exporter = self._make_exporter()
            from opentelemetry.sdk.metrics.export import MetricExportResult

            token = otel_context.attach(_suppressed_context())
            try:
                with quiet_sdk_logs() as reason:
                    result = self._exporter.export(data, timeout_millis=self.config.timeout_s * 1000)
            finally:
                otel_context.detach(token)
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
                agg.count_error()
            self._log_failure(reason[0] if reason else None)
        return ok

    def _log_failure(self, reason: str | None) -> None:
        cfg = self.config
        where = "the configured exporter"
        hint = ""
        if cfg.exporter is None and cfg.exporter_kind != EXPORTER_CONSOLE:
            where = f"{cfg.endpoint} over {cfg.protocol}"
            port = _port(cfg.endpoint)
            other = PROTOCOL_GRPC if cfg.protocol == PROTOCOL_HTTP else PROTOCOL_HTTP
            if port is not None and port == _port(DEFAULT_ENDPOINTS[other]):
                hint = (f"; port {port} is the usual OTLP {other} port: set OTEL_EXPORTER_OTLP_PROTOCOL={other} "
                        "if the collector expects it")
        log_once("export-failed", "otel-ml: metrics export to %s failed (%s)%s; the counts are kept for the "
                 "next export, failures are counted in ml.instrumentation.errors and logged at most once a "
                 "minute", where, (reason or "no detail")[:300], hint)

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Export everything now; True when the export finished successfully within ``timeout_s``."""
        if not self.config.metrics_enabled:
            return True
        if not aggregates():
            return True
        self.ensure_started()
        return self.worker.flush(timeout_s)

    def shutdown(self, timeout_s: float = 5.0, flush: bool = True) -> None:
        """Optionally flush, stop the thread and shut the exporter down (a user-supplied one is left open)."""
        if flush and self.running:
            self.flush(timeout_s)
        self.worker.stop(timeout_s, flush=False)
        exporter = self._exporter
        if exporter is not None and (self._config is None or exporter is not self._config.exporter):
            try:
                exporter.shutdown()
            except Exception:
                pass
        self._init_state()

    def _at_exit(self) -> None:
        self.flush(EXIT_FLUSH_S)  # bounded: an unreachable collector costs at most this at exit
        self.shutdown(timeout_s=0.5, flush=False)

    def _after_fork_in_child(self) -> None:
        base, fallback = self._resource, self._resource_is_fallback
        self._init_state()  # the parent's gRPC channel does not exist here (the worker resets its thread)
        if base is not None:  # a fresh service.instance.id now, so the first predict call resolves nothing
            try:
                self._set_resource(base, fallback=fallback, redraw=True)
            except Exception:
                pass


def _suppressed_context() -> Any:
    """The current context with OpenTelemetry instrumentation suppressed, as the SDK's own readers do."""
    ctx = otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True)
    return otel_context.set_value("suppress_instrumentation", True, ctx)  # older instrumentations' plain key


def _port(url: str) -> int | None:
    try:
        return urlparse(url if "://" in url else f"//{url}").port
    except ValueError:
        return None


PIPELINE = ExportPipeline()

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=PIPELINE._after_fork_in_child)
