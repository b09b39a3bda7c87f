"""The ground-truth path: OTLP log records in (both receivers), the join store, performance windows, OTLP out.

:class:`Outcomes` is one service component. A request's records are decoded (:mod:`._records`),
checked against the references (a model with no reference loaded: ``unknown_model``; probabilities
not of the reference's width: ``wrong_width``; an outcome label outside the reference's classes:
``unknown_class``; an outcome older than ``outcomes.ttl``: ``late``), written to the join store in its
worker thread (:mod:`._joins`; the event loop never blocks on SQLite) and acknowledged only after the
commit. Rejected records are counted (``ml.outcome.rejected``, ``error.type``) and reported to the
sender as OTLP partial success. Too many requests waiting for the store: retryable overload.

Receivers: :func:`http_logs` serves ``POST /v1/logs`` and :func:`grpc_logs_handler` the gRPC
``LogsService/Export``, with the same token, TLS, size limits and backpressure as metrics.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from google.rpc import code_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceResponse,
)
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb

from otel_ml import semconv

from ._decode import DecodeError, TooLargeError
from ._ingest import ArrivalOrder, Turn
from ._joins import AddResult, JoinStore, SweepResult
from ._performance import (
    PerformanceWindows,
    TaskSpec,
    WindowResult,
    add_performance,
    task_spec,
)
from ._records import Records, decode_logs, decode_logs_json
from ._registry import VersionRegistry
from ._segment_streams import DEFAULT_MAX_SEGMENT_SERIES
from ._segments import add_segments
from ._store import ReferenceStore
from ._telemetry import SCOPE_NAME, kv, new_metric, resource_attributes
from ._versions import PerformanceGap, VersionPair, add_performance_gaps, performance_gaps

log = logging.getLogger("otel_ml_processor")

LOGS_SERVICE = "opentelemetry.proto.collector.logs.v1.LogsService"
UNKNOWN_MODEL = "unknown_model"
WRONG_WIDTH = "wrong_width"
UNKNOWN_CLASS = "unknown_class"
LATE = "late"
DUPLICATE_PREDICTION = "duplicate_prediction"
#: Label-delay histogram bounds (seconds): 1 s .. 30 d.
DELAY_BUCKETS = (1.0, 10.0, 60.0, 600.0, 3600.0, 21600.0, 86400.0, 604800.0, 2592000.0)
#: Requests allowed to wait for the store before the receivers answer "retry later".
MAX_QUEUED_REQUESTS = 64


@dataclass(frozen=True)
class Outcome:
    """What one request came to: records accepted and the rejections (for OTLP partial success)."""

    accepted: int
    rejected: collections.Counter[str]

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def message(self) -> str:
        return "rejected log records: " + ", ".join(f"{k}={v}" for k, v in sorted(self.rejected.items()))


class Outcomes:
    """Join store + performance windows of one service (see the module docstring)."""

    def __init__(self, store: ReferenceStore, *, directory: str | None, windows: tuple[float, ...],
                 labels: tuple[str, ...], ttl: float, max_pending: int, max_window_pairs: int,
                 synchronous: str, policy: Any, max_segment_series: int = DEFAULT_MAX_SEGMENT_SERIES,
                 segment_overflow: collections.Counter[tuple[str, str]] | None = None) -> None:
        self.references = store
        self.ttl = ttl
        self.policy = policy
        self.joins = JoinStore(directory, ttl=ttl, max_pending=max_pending, synchronous=synchronous)
        self.windows = PerformanceWindows(windows, labels, max_pairs=max_window_pairs,
                                          max_segment_series=max_segment_series)
        #: per (model, version): evaluations x slices left out by ``state.max_segment_series``, plus the
        #: segment streams the state refused (the one ``ml.segment.overflow`` counter, shared with the state)
        self.segments_dropped: collections.Counter[tuple[str, str]] = (
            collections.Counter() if segment_overflow is None else segment_overflow)
        #: model -> exported series its segment streams take (the state's; set by the factory)
        self.segment_series: Callable[[], Mapping[str, int]] = dict
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="otel-ml-joins")
        self.order = ArrivalOrder()
        self.queued = 0
        self.start_ns = time.time_ns()
        self.joined: collections.Counter[tuple[str, str]] = collections.Counter()
        self.duplicates: collections.Counter[tuple[str, str]] = collections.Counter()
        self.unmatched: collections.Counter[tuple[str, str, str]] = collections.Counter()
        self.expired: collections.Counter[tuple[str, str, str]] = collections.Counter()
        self.rejected: collections.Counter[tuple[str, str]] = collections.Counter()
        self.delay: dict[tuple[str, str], np.ndarray] = {}  # bucket counts, then sum, count
        self._specs: dict[tuple[str, str], tuple[int, TaskSpec | None]] = {}
        self._logged: dict[str, float] = {}
        self._restore()

    def _spec(self, model: str, version: str) -> TaskSpec | None:
        gen = self.references.generation
        hit = self._specs.get((model, version))
        if hit is not None and hit[0] == gen:
            return hit[1]
        c = self.references.get(model, version)
        spec = None if c is None else task_spec(c.reference)
        self._specs[(model, version)] = (gen, spec)
        return spec

    def _model_classes(self, model: str) -> set[str] | None:
        """Classes of every loaded version of ``model``; ``None`` without any reference for it."""
        found = None
        for item in self.references.list():
            if item["model"] == model:
                spec = self._spec(model, item["version"])
                found = found or set()
                if spec is not None:
                    found |= set(spec.classes)
        return found

    def _restore(self) -> None:
        since = int((time.time() - max(self.windows.windows)) * 1000)
        pairs = self.joins.recent_pairs(since, self.windows.max_pairs)
        self._feed(pairs)
        if pairs:
            log.info("outcomes: %d joined pairs restored into the performance windows", len(pairs))

    # --- ingest ---------------------------------------------------------------------------------
    def check(self, records: Records) -> None:
        """Move the records that the references refuse into ``records.rejected``."""
        late_ns = (time.time() - self.ttl) * 1e9
        kept_p = []
        roles: dict[tuple[str, str], str] = {}
        for p in records.predictions:
            spec = self._spec(p.model, p.version)
            if spec is None and self.references.get(p.model, p.version) is None:
                records.reject(p.model, UNKNOWN_MODEL)
            elif p.proba is not None and spec is not None and spec.classes and len(p.proba) != len(spec.classes):
                records.reject(p.model, WRONG_WIDTH)
            else:
                kept_p.append(p)
                if p.role:
                    roles[(p.model, p.version)] = p.role
        if self.learn_role is not None:
            for (model, version), role in roles.items():
                self.learn_role(model, version, role)
        kept_o = []
        classes: dict[str, set[str] | None] = {}
        for o in records.outcomes:
            if o.model not in classes:
                classes[o.model] = self._model_classes(o.model)
            known = classes[o.model]
            if known is None:
                records.reject(o.model, UNKNOWN_MODEL)
            elif o.label is not None and known and o.label not in known:
                records.reject(o.model, UNKNOWN_CLASS)
            elif o.time_ns and o.time_ns < late_ns:
                records.reject(o.model, LATE)
            else:
                kept_o.append(o)
        records.predictions, records.outcomes = kept_p, kept_o

    def busy(self) -> bool:
        return self.queued >= MAX_QUEUED_REQUESTS

    async def ingest(self, records: Records, turn: Turn | None = None) -> Outcome:
        """Check, store (committed before this returns), join, feed the windows, count. With ``turn``
        (:class:`~._ingest.ArrivalOrder`), the records reach the store in their requests' arrival order."""
        pending = None
        try:
            if turn is not None:
                await turn.wait()
            self.check(records)
            if records.predictions or records.outcomes:
                loop = asyncio.get_running_loop()
                pending = loop.run_in_executor(self._pool, self.joins.add, records.predictions, records.outcomes)
        finally:
            if turn is not None:
                turn.done()  # queued to the store's thread (in order): the next request may follow
        res = AddResult()
        if pending is not None:
            self.queued += 1
            try:
                res = await pending
            finally:
                self.queued -= 1
        for (model, reason), n in records.rejected.items():
            self.rejected[(model, reason)] += n
        for (model, _version), n in res.duplicate_predictions.items():
            self.rejected[(model, DUPLICATE_PREDICTION)] += n
        self.duplicates.update(res.duplicates)
        self.expired.update({k: v for k, v in res.evicted.items() if k[1]})
        now = time.time()
        for (model, version), n in res.predictions.items():
            spec = self._spec(model, version)
            if spec is not None:
                self.windows.received(model, version, n, now, spec)
        self._feed(res.pairs)
        rejected: collections.Counter[str] = collections.Counter()
        for (_, reason), n in records.rejected.items():
            rejected[reason] += n
        for n in res.duplicate_predictions.values():
            rejected[DUPLICATE_PREDICTION] += n
        if rejected:
            self._log_once(rejected)
        return Outcome(len(records.predictions) + len(records.outcomes), rejected)

    def _feed(self, pairs: list[Any]) -> None:
        """Joined pairs into the performance windows and the label-delay histogram, per model version."""
        groups: dict[tuple[str, str], list[Any]] = collections.defaultdict(list)
        for pair in pairs:
            groups[(pair.model, pair.version)].append(pair)
        for (model, version), group in groups.items():
            spec = self._spec(model, version)
            if spec is None:
                self.rejected[(model, UNKNOWN_MODEL)] += len(group)
                continue
            ok = self.windows.add(model, version, group, spec)
            if not ok.all():
                self.rejected[(model, UNKNOWN_CLASS)] += int((~ok).sum())
            self.joined[(model, version)] += int(ok.sum())
            delays = np.fromiter((p.t_out - p.t_pred for p in group), np.float64, len(group))[ok] / 1000.0
            delays = np.maximum(delays, 0.0)
            h = self.delay.get((model, version))
            if h is None:
                h = self.delay[(model, version)] = np.zeros(len(DELAY_BUCKETS) + 3)
            h[: len(DELAY_BUCKETS) + 1] += np.bincount(np.searchsorted(DELAY_BUCKETS, delays, side="left"),
                                                       minlength=len(DELAY_BUCKETS) + 1)
            h[-2] += delays.sum()
            h[-1] += len(delays)

    def _log_once(self, rejected: collections.Counter[str]) -> None:
        now = time.monotonic()
        for reason in rejected:
            if now - self._logged.get(reason, -1e9) >= 60.0:
                self._logged[reason] = now
                log.warning("rejecting prediction/outcome records: %s (counted in ml.outcome.rejected; "
                            "logged once a minute)", dict(rejected))

    # --- evaluation -----------------------------------------------------------------------------
    async def evaluate(self) -> bytes:
        """Expire, evaluate every window (worker threads) and encode the OTLP request."""
        loop = asyncio.get_running_loop()
        sweep: SweepResult = await loop.run_in_executor(self._pool, self.joins.sweep)
        self.expired.update(sweep.expired)
        self.unmatched.update(sweep.unmatched)
        now = time.time()
        policy = self._policy()
        snapshot = self.windows.snapshot()
        snapshot.segment_series_used = dict(self.segment_series())
        results = [] if policy is None else await loop.run_in_executor(None, snapshot.evaluate, now, policy)
        self.store_bytes = await loop.run_in_executor(self._pool, self.joins.nbytes)
        lineage = None if self.version_registry is None else self.version_registry.lineage()
        gaps = [] if policy is None else performance_gaps(results, self.versions, self.automatic_versions, policy,
                                                          self.roles, lineage)
        return self.encode(results, time.time_ns(), gaps)

    store_bytes = 0
    #: Versions side by side (``versions.*`` of the config; set by the factory).
    versions: tuple[VersionPair, ...] = ()
    automatic_versions = True
    #: The drift state's ``ml.model.role`` per (model, version) and version registry: the same pairs rule.
    roles: Mapping[tuple[str, str], str] | None = None
    version_registry: VersionRegistry | None = None
    #: Teaches the state a version's ``ml.model.role`` from its prediction records (:meth:`._state.State.learn_role`).
    learn_role: Callable[[str, str, str], bool] | None = None

    def _policy(self) -> Any:
        try:
            return self.policy()
        except ImportError as exc:  # otel_ml.stats.performance missing: counters only, said once
            if "policy" not in self._logged:
                self._logged["policy"] = time.monotonic()
                log.error("realized performance is not evaluated: %s", exc)
            return None

    def encode(self, results: list[WindowResult], now_ns: int, gaps: Sequence[PerformanceGap] = ()) -> bytes:
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
            ExportMetricsServiceRequest,
        )

        req = ExportMetricsServiceRequest()
        rm = req.resource_metrics.add()
        rm.resource.attributes.extend(resource_attributes())
        sm = rm.scope_metrics.add()
        sm.scope.name = SCOPE_NAME
        add_performance(sm, results, now_ns)
        add_segments(sm, results, now_ns)
        for r in results:
            if r.segments_dropped:
                self.segments_dropped[(r.model, r.version)] += r.segments_dropped
        add_performance_gaps(sm, gaps, now_ns)
        self._counters(sm, now_ns)
        return req.SerializeToString()

    def _counters(self, sm: pb.ScopeMetrics, now_ns: int) -> None:
        def counter(name: str, items: Mapping[Any, int], extra: str | None = None) -> None:
            if not items:
                return
            m = new_metric(sm, name)
            m.sum.aggregation_temporality = pb.AGGREGATION_TEMPORALITY_CUMULATIVE
            m.sum.is_monotonic = True
            for key, n in sorted(items.items()):
                dp = m.sum.data_points.add(start_time_unix_nano=self.start_ns, time_unix_nano=now_ns, as_int=int(n))
                dp.attributes.append(kv(semconv.MODEL_NAME, key[0]))
                if len(key) > 1 and key[1] and extra != "reason_only":
                    dp.attributes.append(kv(semconv.MODEL_VERSION, key[1]))
                if extra is not None:
                    dp.attributes.append(kv(semconv.ERROR_TYPE, key[-1]))

        counter(semconv.OUTCOMES_JOINED, self.joined)
        counter(semconv.OUTCOMES_DUPLICATES, self.duplicates)
        counter(semconv.OUTCOMES_UNMATCHED, self.unmatched, "reason")
        counter(semconv.PREDICTIONS_EXPIRED, self.expired, "reason")
        counter(semconv.OUTCOMES_REJECTED, self.rejected, "reason_only")
        counter(semconv.SEGMENT_OVERFLOW, self.segments_dropped)
        if self.delay:
            m = new_metric(sm, semconv.LABEL_DELAY)
            m.histogram.aggregation_temporality = pb.AGGREGATION_TEMPORALITY_CUMULATIVE
            for (model, version), h in sorted(self.delay.items()):
                dp = m.histogram.data_points.add(start_time_unix_nano=self.start_ns, time_unix_nano=now_ns,
                                                 count=int(h[-1]), sum=h[-2])
                dp.bucket_counts.extend(int(x) for x in h[:-2])
                dp.explicit_bounds.extend(DELAY_BUCKETS)
                dp.attributes.extend([kv(semconv.MODEL_NAME, model), kv(semconv.MODEL_VERSION, version)])

    def status(self) -> dict[str, Any]:
        return {"pending_predictions": self.joins.pending_predictions,
                "pending_outcomes": self.joins.pending_outcomes, "store_bytes": self.store_bytes,
                "joined": sum(self.joined.values()), "window_bytes": self.windows.nbytes()}

    def close(self) -> None:
        self._pool.submit(self.joins.close).result()
        self._pool.shutdown()


# --- receivers ----------------------------------------------------------------------------------
def _response(res: Outcome) -> ExportLogsServiceResponse:
    resp = ExportLogsServiceResponse()
    if res.rejected_total:
        resp.partial_success.rejected_log_records = res.rejected_total
        resp.partial_success.error_message = res.message()
    return resp


async def http_logs(server: Any, request: Any) -> Any:
    """``POST /v1/logs`` on the :class:`~._http.HttpServer` (the same checks as ``/v1/metrics``)."""
    from ._http import _status

    as_json, refused = server._refuse_otlp(request)
    if refused is not None:
        return refused
    outcomes: Outcomes | None = server.outcomes
    if outcomes is None:
        return _status(404, code_pb2.UNIMPLEMENTED, "outcomes are not enabled", as_json)
    ov = server.ingestor.busy()
    if ov is not None:
        return server._overload(ov, as_json)
    if outcomes.busy():
        from ._ingest import BUSY, Overload
        return server._overload(Overload(BUSY, server.ingestor.retry_after,
                                         "the join store is busy; retry"), as_json)
    return await server.admit(request, as_json, lambda body: _logs_body(server, outcomes, request, body, as_json))


async def _logs_body(server: Any, outcomes: Outcomes, request: Any, body: bytes, as_json: bool) -> Any:
    from ._http import _status, otlp_response

    turn = outcomes.order.turn()
    try:
        try:
            records = await server.ingestor.decode_body(
                decode_logs_json if as_json else decode_logs, body, json=as_json,
                encoding=request.headers.get("Content-Encoding", ""), limit=server.max_request_bytes)
        except TooLargeError as exc:
            return _status(413, code_pb2.RESOURCE_EXHAUSTED, str(exc), as_json)
        except DecodeError as exc:
            return _status(400, code_pb2.INVALID_ARGUMENT, str(exc), as_json)
        try:
            res = await outcomes.ingest(records, turn)
        except Exception as exc:  # the store failed (disk full, ...): retryable, nothing acknowledged
            log.exception("cannot store prediction/outcome records")
            return _status(503, code_pb2.UNAVAILABLE, f"cannot store the records ({type(exc).__name__}); retry",
                           as_json, headers={"Retry-After": "5"})
    finally:
        turn.done()
    return otlp_response(_response(res), as_json)


def grpc_logs_handler(receiver: Any) -> Any:
    """The generic handler of ``LogsService/Export`` on the :class:`~._grpc.GrpcReceiver`."""
    import grpc

    async def export(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        outcomes: Outcomes | None = receiver.outcomes
        if outcomes is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "outcomes are not enabled")
        assert outcomes is not None  # abort raises
        ov = receiver.ingestor.busy()
        if ov is not None:
            await receiver._abort_overload(context, ov)
        if outcomes.busy():
            from ._ingest import BUSY, Overload
            await receiver._abort_overload(context, Overload(BUSY, receiver.ingestor.retry_after,
                                                             "the join store is busy; retry"))
        size = len(request)
        ov = receiver.ingestor.charge(size)
        if ov is not None:
            await receiver._abort_overload(context, ov)
        turn = outcomes.order.turn()
        try:
            try:
                records = await receiver.ingestor.decode_body(decode_logs, request)
            except DecodeError as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            try:
                res = await outcomes.ingest(records, turn)
            except Exception as exc:
                log.exception("cannot store prediction/outcome records")
                await context.abort(grpc.StatusCode.UNAVAILABLE, f"cannot store the records ({type(exc).__name__})")
        finally:
            turn.done()
            receiver.ingestor.release(size)
        return _response(res).SerializeToString()

    return grpc.method_handlers_generic_handler(
        LOGS_SERVICE, {"Export": grpc.unary_unary_rpc_method_handler(export)})

