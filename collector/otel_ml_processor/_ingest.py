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

Decoding: a request of at least :data:`OFFLOAD_BYTES` (:data:`OFFLOAD_JSON_BYTES` for OTLP/JSON, which
decodes 5-15x slower per byte; a compressed body from 1/32 of it) is decompressed and decoded in one
decode thread, so the loop keeps answering health checks, other clients and the evaluation while a
16 MiB request decodes (seconds for OTLP/JSON). Smaller ones are decoded inline: below the thresholds a
decode blocks the loop for ~10 ms at worst, and the thread hop (~30 us) would be a noticeable share of
the ~1 ms a cached request of that size takes.
One thread: at most one large request is being decoded at a time (the memory bound of
docs/processor.md), and the structure cache it shares with the loop is locked
(:class:`~._template.TemplateCache`). The state is only ever changed on the loop, in arrival order
(:class:`ArrivalOrder`): a request decoded in the thread is applied after the requests that arrived
before it, and before those that arrived after it, as when everything ran on the loop.

Both carry the delay (gRPC ``google.rpc.RetryInfo`` in the status details, HTTP ``Retry-After``),
so an upstream Collector's exporter retries instead of dropping. Nothing is written to the state for
a refused request.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ._decode import Decoded, SizeLimits, decode_json, decode_protobuf, decompress
from ._limits import CacheBudget, InflightBudget
from ._state import IngestResult, State
from ._telemetry import Telemetry
from ._template import TemplateCache

log = logging.getLogger("otel_ml_processor")

BUSY = "busy"
RATE = "rate"

#: Requests (decompressed) of at least this many bytes are decoded in the decode thread.
OFFLOAD_BYTES = 512 << 10
#: The same for OTLP/JSON.
OFFLOAD_JSON_BYTES = 64 << 10
#: A compressed body is assumed to inflate this much when deciding where to decompress it.
_COMPRESSION_RATIO = 32

T = TypeVar("T")


class Turn:
    """One request's place in :class:`ArrivalOrder`: :meth:`wait` before changing the state, :meth:`done`
    (always, e.g. in ``finally``) once it is changed or the request is answered otherwise."""

    __slots__ = ("_mine", "_prev")

    def __init__(self, prev: asyncio.Future[None] | None, mine: asyncio.Future[None]) -> None:
        self._prev = prev
        self._mine = mine

    async def wait(self) -> None:
        prev = self._prev
        if prev is not None and not prev.done():
            await asyncio.shield(prev)
        self._prev = None

    def done(self) -> None:
        mine, prev = self._mine, self._prev
        if mine.done():
            return
        if prev is None or prev.done():
            mine.set_result(None)
        else:  # answered before its turn (an error): the next request still waits for the earlier ones
            def follow(_: asyncio.Future[None]) -> None:
                if not mine.done():
                    mine.set_result(None)

            prev.add_done_callback(follow)


class ArrivalOrder:
    """Requests change the state in the order they arrived, wherever they were decoded."""

    def __init__(self) -> None:
        self._tail: asyncio.Future[None] | None = None

    def turn(self) -> Turn:
        """A place after every request that arrived before (call on the loop, at arrival)."""
        prev = self._tail
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tail = mine
        return Turn(None if prev is None or prev.done() else prev, mine)


def _inflate_and_decode(decode: Callable[[bytes], T], body: bytes, encoding: str, limit: int) -> T:
    return decode(decompress(body, encoding, limit))


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
        self.order = ArrivalOrder()
        self._decoder = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="otel-ml-decode")
        self.offloaded = 0  # requests decoded in the decode thread

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

    async def decode_body(self, decode: Callable[[bytes], T], body: bytes, *, json: bool = False,
                          encoding: str = "identity", limit: int | None = None) -> T:
        """``decode(decompress(body))``: inline for a small request, in the decode thread for a large one
        (see the module docstring). Raises what ``decode`` and :func:`~._decode.decompress` raise."""
        threshold = OFFLOAD_JSON_BYTES if json else OFFLOAD_BYTES
        limit = len(body) if limit is None else limit
        enc = (encoding or "identity").strip().lower()
        if enc != "identity" and len(body) * _COMPRESSION_RATIO < threshold:
            body, enc = decompress(body, enc, limit), "identity"  # small: inflated inline, then decided on
        if enc == "identity" and len(body) < threshold:
            return decode(decompress(body, enc, limit))
        return await self._off_loop(_inflate_and_decode, decode, body, enc, limit)

    def decode_metrics(self, json: bool = False) -> Callable[[bytes], Decoded]:
        """The metrics decoder for :meth:`decode_body` (``json``: OTLP/JSON)."""
        return lambda data: self.decode(data, json=json)

    async def _off_loop(self, fn: Callable[..., T], *args: object) -> T:
        self.offloaded += 1
        cf = self._decoder.submit(fn, *args)
        fut = asyncio.wrap_future(cf)
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            # The caller gave up. A decode that has started cannot be stopped: wait for it, so that the
            # request's bytes stay charged to the in-flight budget while the thread holds them.
            if not cf.cancel():
                await asyncio.wait([fut])
            raise

    def close(self) -> None:
        """Stop the decode thread (after the receivers stopped)."""
        self._decoder.shutdown(wait=False, cancel_futures=True)

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
