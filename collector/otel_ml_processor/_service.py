"""The service: starts the components the factory built and runs them on one event loop.

Lifecycle: build the components (:mod:`._factory`: load references, ...) -> restore the checkpoint ->
open the receivers -> every
``evaluation.interval``: snapshot the windows (on the loop), evaluate them (in a worker thread, so
ingest keeps flowing), queue the export, evict stale series, write the checkpoint. On SIGTERM or
SIGINT: refuse new data (UNAVAILABLE / 503, ``/readyz`` turns 503), stop the receivers, run a final
evaluation, deliver the export queue (bounded by ``export.timeout``), write the checkpoint, exit 0.

When ready, the service logs one line ``otel-ml processor ready grpc=HOST:PORT http=HOST:PORT``
(ports resolved, so port 0 works).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

from . import _checkpoint
from ._config import Config
from ._evaluate import Evaluation
from ._exporter import encode_request
from ._factory import Components, build
from ._grpc import GrpcReceiver
from ._http import HttpServer
from ._logformat import configure_logging, log_format

log = logging.getLogger("otel_ml_processor")


class Service:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.stop_event: asyncio.Event | None = None
        self.grpc_endpoint: str | None = None
        self.http_endpoint: str | None = None
        self.last_evaluation: Evaluation | None = None
        self.evaluations = 0
        self.components: Components | None = None
        self.outcomes: Any = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._grpc: GrpcReceiver | None = None
        self._http: HttpServer | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._eval_lock: asyncio.Lock | None = None

    # --- start ----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Build the components (:func:`~._factory.build`), restore the checkpoint, open the receivers,
        start the periodic tasks."""
        cfg = self.config
        self._loop = asyncio.get_running_loop()
        self.stop_event = asyncio.Event()
        self._eval_lock = asyncio.Lock()
        c = self.components = build(cfg, status=self.status)
        self.store, self.state, self.telemetry = c.store, c.state, c.telemetry
        self.exporter, self.ingestor, self.evaluator = c.exporter, c.ingestor, c.evaluator
        self._grpc, self._http = c.grpc, c.http
        self.outcomes = c.outcomes
        if cfg.state.directory is not None and _checkpoint.load(self.state, cfg.state.directory):
            log.info("restored checkpoint: %d streams, %d series", self.state.stream_count, self.state.series_count)
        grpc_address = cfg.receivers.grpc_address()
        if self._grpc is not None and grpc_address is not None:
            port = await self._grpc.start()
            self.grpc_endpoint = f"{grpc_address[0]}:{port}"
        if self._http is not None:
            port = await self._http.start()
            self.http_endpoint = f"{self._http.host}:{port}"
        stop = self.stop_event
        self._tasks = [
            asyncio.create_task(self.ingestor.monitor_lag(stop)),
            asyncio.create_task(self.exporter.run(stop)),
            asyncio.create_task(self._every(cfg.evaluation.interval, self.evaluate_once)),
            asyncio.create_task(self._every(cfg.references.poll_interval, self._poll_references)),
        ]
        if self._http is not None:
            self._http.ready = True
        log.info("otel-ml processor ready grpc=%s http=%s export=%s windows=%s", self.grpc_endpoint,
                 self.http_endpoint, cfg.export.endpoint, ",".join(cfg.windows.labels))
        self._ready.set()

    async def _every(self, period: float, fn: Any) -> None:
        assert self.stop_event is not None
        while not self.stop_event.is_set():
            try:
                await asyncio.wait_for(self.stop_event.wait(), timeout=period)
                return
            except asyncio.TimeoutError:
                pass
            try:
                await fn()
            except Exception:  # a failing round must not end the loop
                log.exception("periodic task %s failed", getattr(fn, "__name__", fn))

    async def _poll_references(self) -> None:
        if self.store.poll():
            log.info("references reloaded: %d", len(self.store))

    # --- evaluation -----------------------------------------------------------------------------
    async def evaluate_once(self) -> Evaluation:
        """Snapshot, evaluate (worker thread), export, evict, checkpoint."""
        assert self._eval_lock is not None
        async with self._eval_lock:
            now = time.time()
            layout, counts, lineage = self.evaluator.prepare(self.state, now)
            # Versions with recent prediction or outcome records (a copy, on the loop): their holdout
            # performance is exported with the drift evaluation, streams or not.
            records = () if self.outcomes is None else tuple(self.outcomes.windows.live(now))
            loop = asyncio.get_running_loop()
            ev = await loop.run_in_executor(None, functools.partial(
                self.evaluator.evaluate_counts, layout, counts, now, lineage=lineage, also_live=records))
            tel = self.telemetry
            tel.record_evaluation(ev.duration_s)
            self.state.evict(time.time())
            tel.streams = self.state.stream_count
            tel.series = self.state.series_count
            tel.state_bytes = self.state.nbytes()
            tel.cache_bytes = self.components.caches.bytes if self.components is not None else 0
            tel.inflight_bytes = self.ingestor.inflight.bytes
            if self.exporter.endpoint:
                payload = await loop.run_in_executor(None, encode_request, ev, tel.snapshot())
                self.exporter.submit(payload)
            if self.outcomes is not None:
                await self._evaluate_outcomes()
            self.last_evaluation = ev
            self.evaluations += 1
            state_dir = self.config.state.directory
            if state_dir is not None:
                arrays, index = _checkpoint.snapshot(self.state)  # copies, on the loop
                try:
                    await loop.run_in_executor(None, _checkpoint.write, state_dir, arrays, index)
                except OSError as exc:
                    log.error("cannot write checkpoint to %s: %s", state_dir, exc)
            log.debug("evaluation %d: %d rows in %.3fs", self.evaluations, ev.rows, ev.duration_s)
            return ev

    async def _evaluate_outcomes(self) -> None:
        """Expire waiting records, judge the performance windows, export (see :mod:`._outcomes`)."""
        assert self.outcomes is not None
        payload = await self.outcomes.evaluate()
        tel = self.telemetry
        tel.pending_predictions = self.outcomes.joins.pending_predictions
        tel.pending_outcomes = self.outcomes.joins.pending_outcomes
        tel.join_store_bytes = self.outcomes.store_bytes
        if self.exporter.endpoint:
            self.exporter.submit(payload)

    def status(self) -> dict[str, Any]:
        ev = self.last_evaluation
        return {
            "streams": self.state.stream_count,
            "series": self.state.series_count,
            "state_bytes": self.state.nbytes(),
            "points_received": self.telemetry.received,
            "points_rejected": dict(self.telemetry.rejected),
            "resets": self.state.resets,
            "duplicates": self.state.duplicates,
            "evaluations": self.evaluations,
            "last_evaluation_seconds": None if ev is None else ev.duration_s,
            "export_queue": len(self.exporter.queue),
            "exports_sent": self.exporter.sent,
            "export_failures": dict(self.telemetry.export_failures),
            "refused_requests": self.ingestor.refused,
            "caches": self.components.caches.status() if self.components is not None else None,
            "inflight": self.ingestor.inflight.status(),
            "windows": list(self.config.windows.labels),
            "reference_errors": sorted(self.store.errors),  # files skipped; why: GET /api/v1/references
            "outcomes": None if self.outcomes is None else self.outcomes.status(),
            "segments": None if ev is None or ev.segments is None else {
                # Segment values judged NO_VERDICT because the reference has no profile of them.
                "without_profile": ev.segments.no_profile,
                "listed": [list(k) for k in ev.segments.no_profile_listed],
            },
        }

    # --- stop -----------------------------------------------------------------------------------
    def request_stop(self) -> None:
        if self.stop_event is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self.stop_event.set)

    async def wait_stopped(self) -> None:
        assert self.stop_event is not None
        await self.stop_event.wait()
        await self.shutdown()

    async def shutdown(self) -> None:
        log.info("draining: refusing new data, final evaluation, export, checkpoint")
        self.ingestor.draining = True
        if self.stop_event is not None:
            self.stop_event.set()
        if self._grpc is not None:
            await self._grpc.stop(grace=1.0)
        if self._http is not None:
            await self._http.stop()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.ingestor.close()
        try:
            await self.evaluate_once()
        except Exception:
            log.exception("final evaluation failed")
        if self.exporter.endpoint and not await self.exporter.flush(self.config.export.timeout):
            log.warning("export queue not delivered before shutdown: %d requests dropped", len(self.exporter.queue))
        await self.exporter.close()
        if self.outcomes is not None:
            self.outcomes.close()
        log.info("stopped")


async def _main(config: Config) -> int:
    svc = Service(config)
    try:
        await svc.start()
    except OSError as exc:  # a port in use, an unreadable certificate, ...
        log.error("cannot start: %s", exc)
        if svc._grpc is not None:
            await svc._grpc.stop(grace=0)
        if svc._http is not None:
            await svc._http.stop()
        return 1
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, svc.request_stop)
    await svc.wait_stopped()
    return 0


def run(config: Config) -> int:
    """Run until SIGTERM/SIGINT; the exit status."""
    configure_logging(config.log_level, log_format())
    return asyncio.run(_main(config))


@contextlib.contextmanager
def run_in_thread(config: Config, timeout: float = 30.0) -> Iterator[Service]:
    """Run a service on a background thread (tests, the demo); stops it (drain included) on exit."""
    svc = Service(config)
    errors: list[BaseException] = []

    def target() -> None:
        async def main() -> None:
            await svc.start()
            await svc.wait_stopped()

        try:
            asyncio.run(main())
        except BaseException as exc:  # surfaced to the caller below
            errors.append(exc)
            svc._ready.set()

    thread = threading.Thread(target=target, name="otel-ml-processor", daemon=True)
    thread.start()
    if not svc._ready.wait(timeout) or errors:
        raise RuntimeError(f"the otel-ml processor did not start: {errors[0] if errors else 'timeout'}")
    try:
        yield svc
    finally:
        svc.request_stop()
        thread.join(timeout)
