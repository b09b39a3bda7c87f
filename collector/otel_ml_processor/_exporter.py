"""Export of drift and quality gauges plus the processor's own telemetry over OTLP.

Each evaluation becomes one ``ExportMetricsServiceRequest`` (resource ``service.name =
otel-ml-processor``), encoded once and put on a bounded queue. A sender task delivers the queue head
over OTLP/gRPC or OTLP/HTTP (protobuf), chosen from the endpoint as the OTel exporters do
(:attr:`~._config.ExportConfig.resolved_protocol`: port 4318 or a ``/v1/metrics`` path is HTTP, else
gRPC; ``export.protocol`` overrides). Retryable failures (gRPC UNAVAILABLE/DEADLINE_EXCEEDED/
RESOURCE_EXHAUSTED, HTTP 429/502/503/504, connection errors) keep the request at the head and back off
exponentially (honouring Retry-After / RetryInfo); other failures drop it. When the queue is full the
oldest request is dropped. Every failed attempt and every dropped request is counted in
``otel_ml.processor.export.failures`` (``error.type`` = ``retryable``, ``rejected`` or ``queue_full``).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import struct
import time
from typing import Any
from urllib.parse import urlparse

import numpy as np
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb

from otel_ml import semconv
from otel_ml.stats import DRIFT_METHODS, NO_VERDICT

from ._config import PROTOCOL_HTTP
from ._estimated import add_estimated, add_holdout
from ._evaluate import Evaluation
from ._segment_drift import METRICS as SEGMENT_METRICS, SegmentEvaluation, add_segment_drift, gauges
from ._telemetry import SCOPE_NAME, Telemetry, add_telemetry, kv, new_metric, resource_attributes
from ._versions import add_versions

log = logging.getLogger("otel_ml_processor")

EXPORT_METHOD = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
_QUALITY_METRICS = tuple(semconv.QUALITY_RATIOS[k] for k in semconv.QUALITY_KINDS)


def build_request(ev: Evaluation | None, tel: Telemetry, now_ns: int | None = None) -> ExportMetricsServiceRequest:
    """The OTLP request for one evaluation's gauges and the self-telemetry."""
    now_ns = now_ns if now_ns is not None else (ev.time_ns if ev is not None else time.time_ns())
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.extend(resource_attributes())
    sm = rm.scope_metrics.add()
    sm.scope.name = SCOPE_NAME
    if ev is not None and ev.rows:
        _add_evaluation(sm, ev, now_ns)
        add_estimated(sm, ev.estimated, now_ns)
        add_versions(sm, ev.versions, now_ns)
    if ev is not None:
        add_holdout(sm, ev.holdout, ev.holdout_windows, now_ns)
        add_segment_drift(sm, ev.segments, now_ns)
    add_telemetry(sm, tel, now_ns)
    return req


def _add_evaluation(sm: pb.ScopeMetrics, ev: Evaluation, now_ns: int) -> None:
    base = [
        [kv(semconv.MODEL_NAME, m), kv(semconv.MODEL_VERSION, v), kv(semconv.FEATURE_NAME, n),
         kv(semconv.DRIFT_KIND, k), kv(semconv.DRIFT_WINDOW, w)]
        for (m, v, k, n), w in zip(ev.keys, ev.windows)
    ]
    method_kv = {m: kv(semconv.DRIFT_METHOD, m) for m in DRIFT_METHODS}

    def emit(metric: pb.Metric, values: np.ndarray, rows: np.ndarray, extra: KeyValue | None = None) -> None:
        pts = metric.gauge.data_points
        for r, v in zip(rows.tolist(), values[rows].tolist()):
            dp = pts.add(time_unix_nano=now_ns, as_double=v)
            dp.attributes.extend(base[r])
            if extra is not None:
                dp.attributes.append(extra)

    def emit_int(metric: pb.Metric, values: np.ndarray, rows: np.ndarray) -> None:
        pts = metric.gauge.data_points
        for r, v in zip(rows.tolist(), values[rows].tolist()):
            dp = pts.add(time_unix_nano=now_ns, as_int=int(v))
            dp.attributes.extend(base[r])

    score = new_metric(sm, semconv.DRIFT_SCORE)
    for m in DRIFT_METHODS:
        vals = ev.scores[m]
        emit(score, vals, np.nonzero(np.isfinite(vals))[0], method_kv[m])
    emit(new_metric(sm, semconv.DRIFT_P_VALUE), ev.p_value, np.nonzero(np.isfinite(ev.p_value))[0])
    emit_int(new_metric(sm, semconv.DRIFT_DETECTED), ev.detected, np.nonzero(ev.detected != NO_VERDICT)[0])
    emit_int(new_metric(sm, semconv.DRIFT_SAMPLE_COUNT), ev.sample_count, np.arange(ev.rows))
    for j, name in enumerate(_QUALITY_METRICS):
        vals = ev.quality_ratio[:, j]
        rows = np.nonzero(np.isfinite(vals))[0]
        if len(rows):
            emit(new_metric(sm, name), vals, rows)
    rows = np.nonzero(ev.quality_alarm != NO_VERDICT)[0]
    if len(rows):
        emit_int(new_metric(sm, semconv.QUALITY_ALARM), ev.quality_alarm, rows)
    if any(len(shares) for _, _, shares in ev.references):
        pts = new_metric(sm, semconv.DRIFT_REFERENCE_RATIO).gauge.data_points
        for model, version, shares in ev.references:
            for (kind, name, key, value), share in zip(shares.points, shares.values.tolist()):
                dp = pts.add(time_unix_nano=now_ns, as_double=share)
                dp.attributes.extend([kv(semconv.MODEL_NAME, model), kv(semconv.MODEL_VERSION, version),
                                      kv(semconv.FEATURE_NAME, name), kv(semconv.DRIFT_KIND, kind),
                                      kv(key, value)])


# --- fast encoding ------------------------------------------------------------------------------
# An evaluation of 10,000 streams x 2 windows is ~260,000 gauge points; building them as protobuf
# objects costs seconds. The gauge points are therefore written straight in the protobuf wire format
# (the same bytes the generated classes produce; tests check by parsing them back): each row's
# attributes are encoded once per evaluation from a cache of encoded key-values, and each point is
# that prefix plus a fixed 18-byte tail (time, value).

_TAIL_DOUBLE = struct.Struct("<BQBd")  # field 3 fixed64 time_unix_nano, field 4 double as_double
_TAIL_INT = struct.Struct("<BQBq")  # field 3 fixed64 time_unix_nano, field 6 sfixed64 as_int


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _ld(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


class _KVCache(dict):
    """(key, value) -> encoded ``NumberDataPoint.attributes`` entry (field 7)."""

    def __missing__(self, item: tuple[str, str]) -> bytes:
        key, value = item
        enc = _ld(7, _ld(1, key.encode()) + _ld(2, _ld(1, value.encode())))
        self[item] = enc
        return enc


def _gauge_points(prefixes: list[bytes], rows: np.ndarray, values: np.ndarray, time_ns: int,
                  extra: bytes = b"", as_int: bool = False) -> bytes:
    """Encoded ``Gauge.data_points`` entries (field 1) for ``rows``."""
    pack = (_TAIL_INT if as_int else _TAIL_DOUBLE).pack
    t2 = 0x31 if as_int else 0x21
    vals = values[rows]
    vals = vals.astype(np.int64).tolist() if as_int else vals.tolist()
    parts: list[bytes] = []
    append = parts.append
    for r, v in zip(rows.tolist(), vals):
        body = prefixes[r] + extra
        append(b"\x0a")
        append(_varint(len(body) + 18))
        append(body)
        append(pack(0x19, time_ns, t2, v))
    return b"".join(parts)


def _metric(name: str, gauge_points: bytes) -> bytes:
    unit = semconv.PROCESSOR_METRICS[name][1]
    return _ld(1, name.encode()) + (_ld(3, unit.encode()) if unit else b"") + _ld(5, gauge_points)


def _encoded_gauge(name: str, prefixes: list[bytes], rows: np.ndarray, values: np.ndarray, time_ns: int,
                   as_int: bool = False) -> bytes:
    return _metric(name, _gauge_points(prefixes, rows, values, time_ns, as_int=as_int))


def _encoded_versions(ev: Evaluation, kvs: _KVCache, now_ns: int) -> list[bytes]:
    """``ml.version.drift.*`` encoded as :func:`._versions.add_versions` builds them (same points, same order)."""
    vc = ev.versions
    if vc is None or vc.drift is None or not vc.rows:
        return []
    prefixes = [
        b"".join((kvs[(semconv.MODEL_NAME, m)], kvs[(semconv.MODEL_VERSION, c)],
                  kvs[(semconv.MODEL_BASELINE_VERSION, b)], kvs[(semconv.FEATURE_NAME, n)],
                  kvs[(semconv.DRIFT_KIND, k)], kvs[(semconv.DRIFT_WINDOW, w)]))
        for (m, c, b, k, n), w in zip(vc.keys, vc.windows)
    ]
    detected = vc.drift.detected
    out = [_encoded_gauge(semconv.VERSION_DRIFT_DETECTED, prefixes, np.nonzero(detected != NO_VERDICT)[0], detected,
                          now_ns, as_int=True)]
    parts = []
    for meth in DRIFT_METHODS:
        vals = np.asarray(getattr(vc.drift, meth), dtype=np.float64)
        parts.append(_gauge_points(prefixes, np.nonzero(np.isfinite(vals))[0], vals, now_ns,
                                   extra=kvs[(semconv.DRIFT_METHOD, meth)]))
    out.append(_metric(semconv.VERSION_DRIFT_SCORE, b"".join(parts)))
    return out


def _encoded_segment_drift(seg: SegmentEvaluation, now_ns: int) -> list[bytes]:
    """The segment gauges encoded as :func:`._segment_drift.add_segment_drift` builds them (same order)."""
    kvs = _KVCache()
    table = gauges(seg)
    encoded: dict[int, list[bytes]] = {}  # attribute lists are shared between gauges: encode each once
    out = []
    for name in SEGMENT_METRICS:
        attrs, rows, values, as_int = table[name]
        if not len(rows):
            continue
        prefixes = encoded.get(id(attrs))
        if prefixes is None:
            prefixes = encoded[id(attrs)] = [b"".join(kvs[a] for a in row) for row in attrs]
        out.append(_encoded_gauge(name, prefixes, rows, values, now_ns, as_int=as_int))
    return out


def encode_request(ev: Evaluation | None, tel: Telemetry, now_ns: int | None = None) -> bytes:
    """The same request as :func:`build_request`, encoded directly (fast path used by the service)."""
    now_ns = now_ns if now_ns is not None else (ev.time_ns if ev is not None else time.time_ns())
    metrics: list[bytes] = []
    if ev is not None and ev.rows:
        kvs = _KVCache()
        prefixes = [
            b"".join((kvs[(semconv.MODEL_NAME, m)], kvs[(semconv.MODEL_VERSION, v)], kvs[(semconv.FEATURE_NAME, n)],
                      kvs[(semconv.DRIFT_KIND, k)], kvs[(semconv.DRIFT_WINDOW, w)]))
            for (m, v, k, n), w in zip(ev.keys, ev.windows)
        ]
        parts = []
        for meth in DRIFT_METHODS:
            vals = ev.scores[meth]
            parts.append(_gauge_points(prefixes, np.nonzero(np.isfinite(vals))[0], vals, now_ns,
                                       extra=kvs[(semconv.DRIFT_METHOD, meth)]))
        metrics.append(_metric(semconv.DRIFT_SCORE, b"".join(parts)))
        metrics.append(_encoded_gauge(semconv.DRIFT_P_VALUE, prefixes, np.nonzero(np.isfinite(ev.p_value))[0],
                                      ev.p_value, now_ns))
        metrics.append(_encoded_gauge(semconv.DRIFT_DETECTED, prefixes, np.nonzero(ev.detected != NO_VERDICT)[0],
                                      ev.detected, now_ns, as_int=True))
        metrics.append(_encoded_gauge(semconv.DRIFT_SAMPLE_COUNT, prefixes, np.arange(ev.rows), ev.sample_count,
                                      now_ns, as_int=True))
        for j, name in enumerate(_QUALITY_METRICS):
            vals = ev.quality_ratio[:, j]
            rows = np.nonzero(np.isfinite(vals))[0]
            if len(rows):
                metrics.append(_encoded_gauge(name, prefixes, rows, vals, now_ns))
        rows = np.nonzero(ev.quality_alarm != NO_VERDICT)[0]
        if len(rows):
            metrics.append(_encoded_gauge(semconv.QUALITY_ALARM, prefixes, rows, ev.quality_alarm, now_ns,
                                          as_int=True))
        if any(len(shares) for _, _, shares in ev.references):
            # The reference's shares (ml.drift.reference.ratio): no window, one point per reference bucket.
            ref_parts = []
            for model, version, shares in ev.references:
                head = kvs[(semconv.MODEL_NAME, model)] + kvs[(semconv.MODEL_VERSION, version)]
                ref_prefixes = [b"".join((head, kvs[(semconv.FEATURE_NAME, n)], kvs[(semconv.DRIFT_KIND, k)],
                                          kvs[(key, value)])) for k, n, key, value in shares.points]
                ref_parts.append(_gauge_points(ref_prefixes, np.arange(len(ref_prefixes)), shares.values, now_ns))
            metrics.append(_metric(semconv.DRIFT_REFERENCE_RATIO, b"".join(ref_parts)))
        if ev.estimated:
            est = pb.ScopeMetrics()
            add_estimated(est, ev.estimated, now_ns)
            metrics.extend(m.SerializeToString() for m in est.metrics)
        metrics.extend(_encoded_versions(ev, kvs, now_ns))
    if ev is not None and ev.holdout:
        hold = pb.ScopeMetrics()
        add_holdout(hold, ev.holdout, ev.holdout_windows, now_ns)
        metrics.extend(m.SerializeToString() for m in hold.metrics)
    if ev is not None and ev.segments is not None:
        metrics.extend(_encoded_segment_drift(ev.segments, now_ns))
    tele = pb.ScopeMetrics()
    add_telemetry(tele, tel, now_ns)
    metrics.extend(m.SerializeToString() for m in tele.metrics)
    resource = pb.ResourceMetrics()
    resource.resource.attributes.extend(resource_attributes())
    scope = pb.ScopeMetrics()
    scope.scope.name = SCOPE_NAME
    scope_bytes = _ld(1, scope.scope.SerializeToString()) + b"".join(_ld(2, m) for m in metrics)
    rm_bytes = _ld(1, resource.resource.SerializeToString()) + _ld(2, scope_bytes)
    return _ld(1, rm_bytes)


class _RetryableError(Exception):
    def __init__(self, msg: str, delay: float | None = None) -> None:
        super().__init__(msg)
        self.delay = delay


class Exporter:
    """A bounded queue of encoded requests and the task that delivers them."""

    def __init__(self, endpoint: str | None, *, protocol: str = "grpc", headers: tuple[tuple[str, str], ...] = (),
                 timeout: float = 10.0, queue_size: int = 16, telemetry: Telemetry | None = None) -> None:
        self.endpoint = endpoint
        self.protocol = protocol if endpoint else ""
        self.headers = tuple(headers)
        self.timeout = timeout
        self.queue: collections.deque[bytes] = collections.deque()
        self.queue_size = queue_size
        self.telemetry = telemetry or Telemetry()
        self.sent = 0
        self._wake = asyncio.Event()
        self._channel: Any = None
        self._stub: Any = None
        self._session: Any = None
        self._backoff = 0.0
        self._last_warning = -1e9

    # --- queue ----------------------------------------------------------------------------------
    def submit(self, payload: bytes) -> None:
        if not self.endpoint:
            return
        if len(self.queue) >= self.queue_size:
            self.queue.popleft()
            self.telemetry.export_failures["queue_full"] += 1
            log.warning("export queue full (%d requests): dropped the oldest", self.queue_size)
        self.queue.append(payload)
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver queued requests until ``stop`` is set."""
        while not stop.is_set():
            if not self.queue:
                self._wake.clear()
                waiter = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
                continue
            ok = await self._send_head()
            if not ok:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=self._backoff)
                except asyncio.TimeoutError:
                    pass

    async def flush(self, deadline_s: float) -> bool:
        """Try to deliver everything queued within ``deadline_s`` seconds (at shutdown)."""
        end = time.monotonic() + deadline_s
        while self.queue and time.monotonic() < end:
            if not await self._send_head(timeout=max(0.1, min(self.timeout, end - time.monotonic()))):
                await asyncio.sleep(min(self._backoff, max(0.0, end - time.monotonic())))
        return not self.queue

    async def _send_head(self, timeout: float | None = None) -> bool:
        payload = self.queue[0]
        try:
            await self._send(payload, timeout or self.timeout)
        except _RetryableError as exc:
            self.telemetry.export_failures["retryable"] += 1
            self._backoff = min(30.0, max(exc.delay or 0.0, self._backoff * 2 or 0.5))
            now = time.monotonic()
            if now - self._last_warning >= 60.0:  # a down endpoint: one line a minute, all counted
                self._last_warning = now
                log.warning("export to %s failed (retrying with backoff, %d queued; failures are counted in "
                            "otel_ml.processor.export.failures): %s", self.endpoint, len(self.queue), exc)
            return False
        except Exception as exc:
            self.telemetry.export_failures["rejected"] += 1
            if self.queue and self.queue[0] is payload:
                self.queue.popleft()
            log.error("export to %s rejected, request dropped: %s", self.endpoint, exc)
            return True
        if self.queue and self.queue[0] is payload:
            self.queue.popleft()
        self._backoff = 0.0
        self.sent += 1
        return True

    async def _send(self, payload: bytes, timeout: float) -> None:
        if self.protocol == PROTOCOL_HTTP:
            await self._send_http(payload, timeout)
        else:
            await self._send_grpc(payload, timeout)

    async def _send_grpc(self, payload: bytes, timeout: float) -> None:
        import grpc

        if self._stub is None:
            assert self.endpoint is not None
            parsed = urlparse(self.endpoint if "://" in self.endpoint else f"http://{self.endpoint}")
            target = parsed.netloc or parsed.path
            if parsed.scheme == "https":
                self._channel = grpc.aio.secure_channel(target, grpc.ssl_channel_credentials())
            else:
                self._channel = grpc.aio.insecure_channel(target)
            self._stub = self._channel.unary_unary(
                EXPORT_METHOD, request_serializer=None, response_deserializer=ExportMetricsServiceResponse.FromString
            )
        try:
            resp = await self._stub(payload, timeout=timeout, metadata=self.headers or None)
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                        grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ABORTED, grpc.StatusCode.CANCELLED):
                raise _RetryableError(f"{code.name}: {exc.details()}", _retry_info_delay(exc)) from None
            raise RuntimeError(f"{code.name}: {exc.details()}") from None
        if resp.partial_success.rejected_data_points:
            log.warning("export partially rejected: %d points (%s)", resp.partial_success.rejected_data_points,
                        resp.partial_success.error_message)

    async def _send_http(self, payload: bytes, timeout: float) -> None:
        import aiohttp

        assert self.endpoint is not None
        url = self.endpoint if "://" in self.endpoint else f"http://{self.endpoint}"
        if not urlparse(url).path.rstrip("/").endswith("/v1/metrics"):
            url = url.rstrip("/") + "/v1/metrics"
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {"Content-Type": "application/x-protobuf", **dict(self.headers)}
        try:
            async with self._session.post(url, data=payload, headers=headers,
                                          timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                body = await resp.read()
                if resp.status in (429, 502, 503, 504):
                    raise _RetryableError(f"HTTP {resp.status}", _retry_after(resp.headers.get("Retry-After")))
                if resp.status >= 300:
                    raise RuntimeError(f"HTTP {resp.status}: {body[:200]!r}")
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise _RetryableError(f"{type(exc).__name__}: {exc}") from None

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = self._stub = None
        if self._session is not None:
            await self._session.close()
            self._session = None


def _retry_after(value: str | None) -> float | None:
    try:
        v = float(value) if value else None
    except ValueError:
        return None
    return v if v is not None and math.isfinite(v) and v >= 0 else None


def _retry_info_delay(exc: object) -> float | None:
    try:
        from google.rpc import error_details_pb2, status_pb2

        for key, value in exc.trailing_metadata() or ():  # type: ignore[attr-defined]
            if key == "grpc-status-details-bin":
                st = status_pb2.Status.FromString(value)
                for d in st.details:
                    if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                        ri = error_details_pb2.RetryInfo()
                        d.Unpack(ri)
                        return ri.retry_delay.seconds + ri.retry_delay.nanos / 1e9
    except Exception:
        return None
    return None
