"""Prediction and outcome records: a bounded queue, and a background sender of OTLP logs.

A monitored call with ``prediction_id`` does the least it can: it takes the id column and the output
array, and puts ONE item (with the span's context and the time) into :data:`QUEUE`; when the queue
holds :data:`MAX_QUEUED` records already, the item is dropped and counted (``queue_full``), never waited
for. The sender thread (:class:`~otel_ml._worker.BackgroundWorker`) wakes every
``OTEL_BLRP_SCHEDULE_DELAY`` ms (default 1000) or when a batch is full, hashes and samples the ids
(:mod:`otel_ml._ids`), builds the protobuf records (:mod:`otel_ml._otlp_logs`) and sends them, at most
``OTEL_BLRP_MAX_EXPORT_BATCH_SIZE`` (default 1000) per request (:mod:`otel_ml._logs_exporter`).
Every record is either sent (``ml.prediction.records`` for prediction records) or dropped with a
reason (``ml.records.dropped``, ``error.type``: ``queue_full``, ``no_id_secret``, ``export_failed``,
``invalid``); both counters are exported with the library's metrics.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _ids, semconv
from ._adapters import batch_size, output_array
from ._errors import ConfigurationError
from ._log import internal_error, log_once
from ._segments import Segments

if TYPE_CHECKING:
    from ._config import Config
    from ._logs_exporter import LogsSender, LogsTarget
    from ._reference import Reference

DROP_QUEUE_FULL = "queue_full"
DROP_NO_SECRET = "no_id_secret"
DROP_EXPORT_FAILED = "export_failed"
DROP_INVALID = "invalid"


def _env_int(name: str, default: int, low: int) -> int:
    """An integer variable; a bad value warns once and the default applies (as the OTel SDK does)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
        if value < low:
            raise ValueError(f"must be at least {low}")
    except ValueError as exc:
        from ._config import _warn_bad

        _warn_bad(name, raw, str(exc) if "least" in str(exc) else "not an integer", f"ignored, {default} applies")
        return default
    return value


#: Records waiting in the queue at most (``OTEL_BLRP_MAX_QUEUE_SIZE``; otel-ml's default is larger than
#: the SDK's 2048, because one predict call of a batch model brings thousands).
MAX_QUEUED = _env_int("OTEL_BLRP_MAX_QUEUE_SIZE", 100_000, 1)
#: Records per export request (``OTEL_BLRP_MAX_EXPORT_BATCH_SIZE``).
MAX_BATCH = _env_int("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", 1000, 1)
#: Seconds between two sends (``OTEL_BLRP_SCHEDULE_DELAY``, in ms).
SCHEDULE_DELAY_S = _env_int("OTEL_BLRP_SCHEDULE_DELAY", 1000, 1) / 1000.0


class RecordCounters:
    """Process-wide counts of sent and dropped records, keyed by model (version None: not known)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.start_ns = time.time_ns()
        self.sent: dict[tuple[str, str | None, str], int] = {}  # (model, version, event) -> records
        self.dropped: dict[tuple[str, str | None, str], int] = {}  # (model, version, error.type) -> records

    def add(self, table: dict[tuple[str, str | None, str], int], key: tuple[str, str | None, str], n: int) -> None:
        if n <= 0:
            return
        with self.lock:
            table[key] = table.get(key, 0) + n

    def snapshot(self) -> tuple[int, dict[tuple[str, str | None, str], int], dict[tuple[str, str | None, str], int]]:
        with self.lock:
            return self.start_ns, dict(self.sent), dict(self.dropped)

    def total(self, table: dict[tuple[str, str | None, str], int], **match: Any) -> int:
        """Sum of a table's counts; ``event=``/``error=``/``model=`` narrow it (tests and the CLI)."""
        with self.lock:
            items = list(table.items())
        out = 0
        for (model, _version, what), n in items:
            if match.get("model", model) == model and match.get("what", what) == what:
                out += n
        return out


COUNTERS = RecordCounters()
#: The last Recorder built per model name: record_outcomes() takes its sample rate, hashing and output kind.
RECORDERS: dict[str, Recorder] = {}


def drop(model: str, version: str | None, reason: str, n: int, why: str | None = None) -> None:
    """Count ``n`` dropped records and say why once (per reason and model)."""
    COUNTERS.add(COUNTERS.dropped, (model, version, reason), n)
    if why is not None:
        log_once(f"records:{reason}:{model}", "otel-ml: %s; dropped and counted in %s (error.type=%s)",
                 why, semconv.RECORDS_DROPPED, reason)


def no_secret_message() -> str:
    return (f"prediction ids are hashed with a secret, and none is set: call otel_ml.configure(id_secret=...) or "
            f"set {_ids.ID_SECRET_ENV} (the same secret wherever predictions and outcomes are recorded), or pass "
            f"hash_ids=False to send raw ids")


# --- items in the queue --------------------------------------------------------------------------
@dataclass(slots=True)
class PredictionItem:
    """One monitored call's ids and outputs, as taken on the predict path (nothing converted yet)."""

    recorder: Recorder
    ids: Any
    rows: int
    outputs: np.ndarray | None
    time_ns: int
    span_context: Any
    segments: dict[str, Any] | None = None  # the call's segment columns, as taken (:mod:`._segments`)


@dataclass(slots=True)
class OutcomeItem:
    """Outcomes already validated, hashed and sampled by :func:`otel_ml.record_outcomes`."""

    model: str
    version: str | None
    wire_ids: list[str]
    kind: str
    actuals: list[Any]
    times_ns: list[int]

    @property
    def rows(self) -> int:
        return len(self.wire_ids)


# --- per monitored function ------------------------------------------------------------------------
class Recorder:
    """How one monitored function's calls become prediction records (built at decoration time)."""

    def __init__(self, model: str, version: str, prediction_id: str | Callable[[Any], Any],
                 sample_rate: float, hash_ids: bool | None, reference: Reference | None,
                 segments: Segments | Sequence[str] | Callable[[Any], Any] | None = None,
                 role: str | None = None) -> None:
        if not (isinstance(prediction_id, str) and prediction_id) and not callable(prediction_id):
            raise ConfigurationError(
                f"prediction_id must be an input column name or a callable(X) returning one id per row, "
                f"got {prediction_id!r}")
        if hash_ids is not None and not isinstance(hash_ids, bool):
            raise ConfigurationError(f"hash_ids must be True, False or None, got {hash_ids!r}")
        self.model = model
        self.version = version
        self.role = role  # ml.model.role on every record (validated by monitor())
        self.column = prediction_id if isinstance(prediction_id, str) else None
        self.func = None if isinstance(prediction_id, str) else prediction_id
        self.rate = _ids.check_sample_rate(sample_rate)
        self.hash_ids = hash_ids
        self.segments = segments if segments is None or isinstance(segments, Segments) else Segments(segments,
                                                                                                     reference)
        self.proba = self.value = self.label = False
        if reference is not None:
            from ._reference import OUTPUT_LABEL, OUTPUT_VALUE, PROBA_PREFIX

            names = [p.name for p in reference.outputs]
            self.proba = any(n.startswith(PROBA_PREFIX) for n in names)
            self.value = OUTPUT_VALUE in names
            self.label = OUTPUT_LABEL in names
        QUEUE.check_target()
        QUEUE._resource()  # resolved on the user's thread
        RECORDERS[model] = self

    # predict path: both never raise
    def take_ids(self, x: Any, taken: Mapping[str, Any] | BaseException | None = None
                 ) -> tuple[Any, int, dict[str, Any] | None] | None:
        """The call's raw ids, their number and its segment columns, or None (counted) when they cannot be
        taken. ``taken``: the call's segment columns (or the error taking them) when the caller took them."""
        where = f"column {self.column!r}" if self.column is not None else "the prediction_id callable"
        try:
            ids = self.func(x) if self.func is not None else _column(x, self.column)
            if hasattr(ids, "to_numpy"):
                ids = ids.to_numpy()
            elif isinstance(ids, list):
                ids = list(ids)  # the caller may reuse its list
            if isinstance(ids, np.ndarray):
                ids = ids.copy()
            segs = None
            if self.segments is not None:
                where = "the segments"
                if isinstance(taken, BaseException):
                    raise taken
                segs = {k: _owned(v) for k, v in (self.segments.take(x) if taken is None else taken).items()}
            return ids, len(ids), segs
        except Exception as exc:
            log_once(f"records:ids:{self.model}", "otel-ml: model %r: cannot take prediction ids or segments "
                     "from %s (%s: %s); "
                     "the call's records are not sent (counted in %s, error.type=%s)", self.model, where,
                     type(exc).__name__, exc, semconv.RECORDS_DROPPED, DROP_INVALID)
            rows = _rows(x)
            COUNTERS.add(COUNTERS.dropped, (self.model, self.version, DROP_INVALID), rows if rows else 1)
            return None

    def submit(self, taken: tuple[Any, int, dict[str, Any] | None] | None, result: Any, span: Any) -> None:
        """Queue one call's records (after the model returned)."""
        if taken is None:
            return
        try:
            arr = output_array(result)
            if arr is not None and (arr is result or arr.base is result):
                arr = arr.copy()  # the caller owns its array and may reuse it
            sc = span.get_span_context() if span is not None else None
            ids, n, segs = taken
            QUEUE.put(PredictionItem(self, ids, n, arr, time.time_ns(), sc, segs), n, self.model, self.version)
        except Exception as exc:
            internal_error("records", exc)

    # sender thread
    def output_kind(self, arr: np.ndarray) -> str | None:
        """The record attribute this call's output array fills (None: not one the reference describes)."""
        from ._otlp_logs import KIND_LABEL, KIND_PROBABILITIES, KIND_VALUE

        if arr.ndim == 2:
            return KIND_PROBABILITIES
        kind = arr.dtype.kind
        if kind == "f":
            return KIND_LABEL if (self.label and not self.value) else KIND_VALUE
        if kind in "iu" and self.value and not (self.label or self.proba):
            return KIND_VALUE
        return KIND_LABEL


def _owned(column: Any) -> Any:
    """A column the caller cannot change after the call returns (numpy arrays and lists are copied)."""
    if hasattr(column, "to_numpy"):
        column = column.to_numpy()
    if isinstance(column, np.ndarray):
        return column.copy()
    return list(column) if isinstance(column, (list, tuple)) else column


def _column(x: Any, name: str | None) -> Any:
    if isinstance(x, np.ndarray):
        raise TypeError(f"a numpy array has no column {name!r}; give prediction_id a callable")
    if isinstance(x, list) and x and isinstance(x[0], Mapping):
        return [row[name] for row in x]
    return x[name]


def _rows(x: Any) -> int:
    try:
        return batch_size(x) or 0
    except Exception:
        return 0


# --- the queue and its sender --------------------------------------------------------------------------
class RecordQueue:
    """Bounded (in records) queue of items, drained by a background sender."""

    def __init__(self) -> None:
        from ._worker import BackgroundWorker

        self._init_state()
        self._args: dict[str, Any] = {}
        self._config: Config | None = None
        self._target: LogsTarget | None = None
        self._sender: LogsSender | None = None
        self._resource_pb: tuple[Any, Any] | None = None
        self.worker = BackgroundWorker("otel-ml-records", self._work, SCHEDULE_DELAY_S)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork_in_child)

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self._items: deque[Any] = deque()
        self._queued = 0
        #: Tests and benchmarks: takes the serialized request instead of the network; returns a SendResult.
        self.transport: Callable[[bytes], Any] | None = None

    def _after_fork_in_child(self) -> None:
        transport = self.transport
        self._init_state()  # the parent sends what it queued
        self.transport = transport
        self._sender = None  # the parent's channel does not work here
        global _exported
        COUNTERS.__init__()  # type: ignore[misc]  # in place: modules hold the object
        _exported = None

    # --- configuration -----------------------------------------------------------------------------
    def configure(self, config: Config, **args: Any) -> None:
        """New settings from :func:`otel_ml.configure` (``endpoint``, ``protocol``, ``headers``): validated now."""
        from ._logs_exporter import logs_target

        target = logs_target(config, **args)  # raises ConfigurationError naming the bad value
        self._args, self._config, self._target = args, config, target
        sender, self._sender = self._sender, None
        if sender is not None:
            sender.close()

    def target(self) -> LogsTarget:
        if self._target is None:
            from ._export import PIPELINE
            from ._logs_exporter import logs_target

            self._config = PIPELINE.config
            self._target = logs_target(self._config, **self._args)
        return self._target

    def check_target(self) -> None:
        """Resolve the destination now (decoration time), so a bad variable raises at set-up."""
        if not self.target().enabled:
            log_once("records:disabled", "otel-ml: OTEL_LOGS_EXPORTER or OTEL_SDK_DISABLED switches OTLP logs "
                     "off: prediction and outcome records are not sent")

    # --- producers ------------------------------------------------------------------------------------
    def put(self, item: Any, rows: int, model: str, version: str | None) -> bool:
        """Queue ``item`` (``rows`` records) unless the queue is full (then counted). Never blocks on I/O."""
        if self._target is not None and not self._target.enabled:
            return False
        with self._lock:
            if self._queued + rows > MAX_QUEUED:
                full = True
            else:
                full = False
                self._items.append(item)
                self._queued += rows
                queued = self._queued
        if full:
            drop(model, version, DROP_QUEUE_FULL, rows, f"the record queue is full ({MAX_QUEUED} records: the "
                 "collector is slow or unreachable)")
            return False
        worker = self.worker
        if not worker.running:
            worker.start()
        if queued >= MAX_BATCH:
            worker.wake()
        return True

    def put_waiting(self, item: OutcomeItem, timeout_s: float) -> bool:
        """Queue ``item``, waiting up to ``timeout_s`` for room (outcome batches, off the predict path)."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                room = self._queued == 0 or self._queued + item.rows <= MAX_QUEUED
            if room or time.monotonic() >= deadline:
                break
            self.worker.start()
            self.worker.wake()
            time.sleep(0.01)
        if room:
            with self._lock:
                self._items.append(item)
                self._queued += item.rows
            self.worker.start()
            if self._queued >= MAX_BATCH:
                self.worker.wake()
            return True
        drop(item.model, item.version, DROP_QUEUE_FULL, item.rows, "the record queue stayed full")
        return False

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Send everything queued so far; True when it all left (or was counted as dropped) in time."""
        if not self.worker.running and not self._items:
            return True
        return self.worker.flush(timeout_s)

    # --- the sender thread ------------------------------------------------------------------------------
    def _take(self) -> list[Any]:
        with self._lock:
            items = list(self._items)
            self._items.clear()
            self._queued = 0
        return items

    def _work(self) -> bool:
        items = self._take()
        if not items:
            return True
        from ._otlp_logs import outcome_records

        batch = _Batch(self)
        key = _ids.secret()
        observed = time.time_ns()
        for item in items:
            try:
                if isinstance(item, PredictionItem):
                    self._predictions(item, key, observed, batch)
                else:
                    records = outcome_records(item.model, item.version, item.wire_ids, item.kind, item.actuals,
                                              item.times_ns, observed)
                    batch.add(records, (item.model, item.version, semconv.EVENT_OUTCOME))
            except Exception as exc:
                internal_error("records", exc)
                drop(getattr(item, "model", None) or item.recorder.model, getattr(item, "version", None),
                     DROP_INVALID, item.rows)
        batch.send_all()
        return batch.ok

    def _predictions(self, item: PredictionItem, key: bytes | None, observed: int, batch: _Batch) -> None:
        from ._otlp_logs import output_columns, prediction_records

        rec = item.recorder
        model, version = rec.model, rec.version
        hashed = rec.hash_ids if rec.hash_ids is not None else _ids.default_hash_ids()
        if hashed and key is None:
            drop(model, version, DROP_NO_SECRET, item.rows, no_secret_message())
            return
        ids = item.ids.tolist() if isinstance(item.ids, np.ndarray) else list(item.ids)
        arr = item.outputs
        if arr is not None and arr.shape[0] != len(ids):
            drop(model, version, DROP_INVALID, len(ids), f"model {model!r}: {len(ids)} prediction ids for "
                 f"{arr.shape[0]} output rows")
            return
        keep, wire, invalid = _ids.prepare(ids, hashed=hashed, key=key, rate=rec.rate)
        if invalid:
            drop(model, version, DROP_INVALID, invalid, f"model {model!r}: missing prediction ids (None, NaN, empty)")
        if not keep:
            return
        kind = outputs = None
        if arr is not None:
            kind = rec.output_kind(arr)
            cols = output_columns(arr, kind) if kind is not None else None
            if cols is not None:
                outputs = cols if len(keep) == len(cols) else [cols[i] for i in keep]
        segments = None
        if item.segments is not None and rec.segments is not None:
            try:
                per = rec.segments.values(item.segments, len(ids))
            except Exception as exc:
                drop(model, version, DROP_INVALID, len(keep), f"model {model!r}: cannot read the segments ({exc})")
                return
            segments = [(name, vals if len(keep) == len(vals) else [vals[i] for i in keep]) for name, vals in per]
        sc = item.span_context
        if sc is not None and sc.is_valid:
            trace_id, span_id = sc.trace_id.to_bytes(16, "big"), sc.span_id.to_bytes(8, "big")
            flags = int(sc.trace_flags)
        else:
            trace_id, span_id, flags = b"", b"", 0
        batch.add(prediction_records(model, version, wire, outputs, kind, item.time_ns, trace_id, span_id, flags,
                                     observed, segments, rec.role), (model, version, semconv.EVENT_PREDICTION))

    def send(self, records: list[bytes]) -> Any:
        """Send one request of ``records`` (serialized); the :class:`~otel_ml._logs_exporter.SendResult`."""
        from . import __version__
        from ._otlp_logs import export_request

        request = export_request(self._resource(), __version__, records)
        if self.transport is not None:
            return self.transport(request)
        if self._sender is None:
            from ._logs_exporter import LogsSender

            self._sender = LogsSender(self.target())
        from opentelemetry import context as otel_context

        from ._export import _suppressed_context

        token = otel_context.attach(_suppressed_context())  # no client spans of our own exports
        try:
            return self._sender.send(request)
        finally:
            otel_context.detach(token)

    def _resource(self) -> Any:
        from ._config import resolve_resource
        from ._export import PIPELINE
        from ._otlp_logs import encode_resource

        resource = getattr(PIPELINE, "_resource", None)  # the metrics' resource (same service.instance.id)
        if resource is None:
            cached = self._resource_pb
            if cached is not None and cached[0] == "own":
                return cached[1]
            resource = resolve_resource(PIPELINE.config)
            PIPELINE._resource = resource  # the metrics then use this one too
            PIPELINE._resource_is_fallback = PIPELINE.config.resource is None
        cached = self._resource_pb
        if cached is None or cached[0] is not resource:
            cached = (resource, encode_resource(resource))
            self._resource_pb = cached
        return cached[1]


class _Batch:
    """Records of one sender pass, sent :data:`MAX_BATCH` at a time; counts sent and dropped per model."""

    def __init__(self, queue: RecordQueue) -> None:
        self.queue = queue
        self.records: list[Any] = []
        self.owners: list[list[Any]] = []  # [model, version, event, count] runs, in record order
        self.ok = True

    def add(self, records: list[Any], owner: tuple[str, str | None, str]) -> None:
        if not records:
            return
        if self.owners and tuple(self.owners[-1][:3]) == owner:
            self.owners[-1][3] += len(records)
        else:
            self.owners.append([*owner, len(records)])
        self.records.extend(records)
        while len(self.records) >= MAX_BATCH:
            self._send(MAX_BATCH)

    def send_all(self) -> None:
        while self.records:
            self._send(min(MAX_BATCH, len(self.records)))

    def _send(self, n: int) -> None:
        chunk, self.records = self.records[:n], self.records[n:]
        runs: list[tuple[str, str | None, str, int]] = []
        left = n
        while left:
            run = self.owners[0]
            take = min(left, run[3])
            runs.append((run[0], run[1], run[2], take))
            run[3] -= take
            left -= take
            if run[3] == 0:
                self.owners.pop(0)
        try:
            result = self.queue.send(chunk)
            ok, rejected, error = result.ok, result.rejected, result.error
        except Exception as exc:
            internal_error("records-export", exc)
            ok, rejected, error = False, 0, type(exc).__name__
        if not ok:
            self.ok = False
            rejected = n
            log_once("records:export-failed", "otel-ml: sending %d records over OTLP failed (%s); dropped and "
                     "counted in %s (error.type=%s)", n, error, semconv.RECORDS_DROPPED, DROP_EXPORT_FAILED)
        for model, version, event, count in runs:
            lost = min(rejected, count)
            rejected -= lost
            if lost:
                COUNTERS.add(COUNTERS.dropped, (model, version, DROP_EXPORT_FAILED), lost)
            COUNTERS.add(COUNTERS.sent, (model, version, event), count - lost)


QUEUE = RecordQueue()


def flush(timeout_s: float = 5.0) -> bool:
    """Send the queued records now (used by :func:`otel_ml.flush`)."""
    return QUEUE.flush(timeout_s)


# --- the counters, exported with the library's metrics (hooks of otel_ml._export) -------------------------
_exported: tuple[Any, Any, int] | None = None  # (sent, dropped, time) of the last successful export (delta)


def counter_points(delta: bool) -> tuple[dict[str, list[Any]], Any]:
    """Data points of the record counters, and a token to pass to :func:`counters_exported` on success."""
    start, sent, dropped = COUNTERS.snapshot()
    if not sent and not dropped:
        return {}, None
    from ._otlp import record_points

    now = time.time_ns()
    base = _exported if delta else None
    if delta and base is not None:
        start = base[2]
    return record_points(start, now, sent, dropped, base[:2] if base else None), (sent, dropped, now)


def counters_exported(token: Any) -> None:
    global _exported
    if token is not None:
        _exported = token


def _reset() -> None:
    """Back to a fresh process's state (tests): no thread, empty queue, zero counts, default settings."""
    global _exported
    QUEUE.worker.stop(timeout_s=2.0, flush=False)
    QUEUE._init_state()
    if QUEUE._sender is not None:
        QUEUE._sender.close()
    QUEUE._sender = None
    QUEUE._args, QUEUE._config, QUEUE._target, QUEUE._resource_pb = {}, None, None, None
    COUNTERS.__init__()  # type: ignore[misc]
    _exported = None
    RECORDERS.clear()
    _ids._reset()
