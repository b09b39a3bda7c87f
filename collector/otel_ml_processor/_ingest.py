"""The ingest path shared by both receivers: admission (overload), decode, state update, counting.

Overload policy (what makes the receivers answer "retry later" instead of accepting):

* *busy*: the event loop lags more than ``receivers.overload.max_loop_lag`` seconds behind its schedule
  (ingest, evaluation snapshots and admin calls all run on it, so a lagging loop means more arrives
  than it can process), or the service is draining for shutdown. Answer: gRPC ``UNAVAILABLE`` /
  HTTP ``503``, with a delay of ``max(receivers.overload.retry_after, lag)``.
* *in-flight bytes*: the request does not fit in ``receivers.max_inflight_bytes`` (the bytes of
  requests received and not yet answered, both receivers together; :class:`~._limits.InflightBudget`).
  Answer: gRPC ``UNAVAILABLE`` / HTTP ``503``, with a delay that grows with the budget's use.
* *rate*: more than ``receivers.overload.max_points_per_second`` ``ml.*`` points (a token bucket with one
  second of burst; off by default). Answer: gRPC ``UNAVAILABLE`` / HTTP ``429``, with the time until
  the bucket holds enough tokens for the request.

Both carry the delay (gRPC ``google.rpc.RetryInfo`` in the status details, HTTP ``Retry-After``),
so an upstream Collector's exporter retries instead of dropping. Nothing is written to the state for
a refused request.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass

from ._decode import Decoded, SizeLimits, decode_json, decode_protobuf
from ._limits import CacheBudget, InflightBudget
from ._state import IngestResult, State
from ._telemetry import Telemetry
from ._template import TemplateCache

log = logging.getLogger("otel_ml_processor")

BUSY = "busy"
RATE = "rate"


@dataclass(frozen=True)
class Overload:
    reason: str  # BUSY | RATE
    retry_after: float
    message: str


class Ingestor:
    def __init__(self, state: State, telemetry: Telemetry, *, max_points_per_second: float = 0.0,
                 max_loop_lag: float = 2.0, retry_after: float = 1.0, max_inflight_bytes: int = 64 << 20,
                 size_limits: SizeLimits | None = None, cache_budget: CacheBudget | None = None) -> None:
        self.state = state
        self.telemetry = telemetry
        self.rate = float(max_points_per_second)
        self.max_loop_lag = max_loop_lag
        self.retry_after = retry_after
        self.draining = False
        self.lag = 0.0
        self._tokens = self.rate
        self._t_tokens = time.monotonic()
        self.refused = 0
        self._logged: dict[str, float] = {}
        self.size_limits = size_limits or SizeLimits()
        self.inflight = InflightBudget(max_inflight_bytes)
        self.templates = TemplateCache(budget=cache_budget, max_attribute_bytes=self.size_limits.max_attribute_bytes)
        if cache_budget is not None:
            cache_budget.register("templates", self.templates.nbytes)

    # --- admission ------------------------------------------------------------------------------
    def busy(self) -> Overload | None:
        """Overload that is known before reading the request (draining, lagging loop)."""
        if self.draining:
            return Overload(BUSY, self.retry_after, "the processor is shutting down; retry")
        if self.lag > self.max_loop_lag:
            return Overload(BUSY, max(self.retry_after, math.ceil(self.lag)),
                            f"the processor is overloaded (event loop {self.lag:.1f}s behind); retry")
        return None

    def charge(self, nbytes: int) -> Overload | None:
        """Charge a request's ``nbytes`` to the in-flight budget (release with :meth:`release`);
        an :class:`Overload` (nothing charged) when it does not fit now."""
        if self.inflight.try_acquire(nbytes):
            return None
        return Overload(BUSY, self.inflight.retry_after(self.retry_after),
                        f"too many request bytes in flight (limit {self.inflight.limit} bytes); retry")

    def release(self, nbytes: int) -> None:
        self.inflight.release(nbytes)

    def take(self, points: int) -> Overload | None:
        """Charge ``points`` to the rate limit; an :class:`Overload` if they do not fit now."""
        if self.rate <= 0 or points == 0:
            return None
        now = time.monotonic()
        self._tokens = min(self.rate, self._tokens + (now - self._t_tokens) * self.rate)
        self._t_tokens = now
        if points <= self._tokens or (self._tokens >= self.rate and points > self.rate):
            self._tokens -= points  # a request larger than the burst passes when the bucket is full
            return None
        wait = (min(points, self.rate) - self._tokens) / self.rate
        return Overload(RATE, max(self.retry_after, math.ceil(wait)),
                        f"rate limit of {self.rate:g} points/s exceeded; retry")

    async def monitor_lag(self, stop: asyncio.Event, period: float = 0.1) -> None:
        """Measure how late the loop wakes up; keep the worst of the last second."""
        worst: list[tuple[float, float]] = []
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            t0 = loop.time()
            await asyncio.sleep(period)
            late = max(0.0, loop.time() - t0 - period)
            now = loop.time()
            worst.append((now, late))
            worst = [(t, v) for t, v in worst if now - t <= 1.0]
            self.lag = max(v for _, v in worst)

    # --- ingest ---------------------------------------------------------------------------------
    def decode(self, data: bytes, json: bool = False) -> Decoded:
        if json:
            return decode_json(data, self.templates, self.size_limits)
        return decode_protobuf(data, self.templates, self.size_limits)

    def apply(self, decoded: Decoded) -> IngestResult:
        res = self.state.ingest(decoded)
        self.telemetry.received += res.received
        for reason, n in res.rejected.items():
            self.telemetry.rejected[reason] += n
        if res.rejected:
            now = time.monotonic()
            for reason in res.rejected:
                if now - self._logged.get(reason, -1e9) >= 60.0:  # a recurring problem: one line a minute
                    self._logged[reason] = now
                    log.warning("rejecting data points: %s (counted in otel_ml.processor.points.rejected; "
                                "logged once a minute)", res.message())
        return res
