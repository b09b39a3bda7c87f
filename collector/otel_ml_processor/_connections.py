"""A guard over the HTTP listener's connections: read deadlines and a connection limit.

aiohttp alone waits forever for a request head and keeps idle keep-alive connections for an hour, so
slow or idle clients can hold every file descriptor. The guard wraps each connection's protocol:

* a connection that is not serving a request (the head not complete yet, or idle between keep-alive
  requests) for longer than ``read_timeout`` is aborted (body reads have their own per-chunk deadline
  in the handlers, :func:`read_body`);
* beyond ``limit()`` connections (``receivers.max_connections``, capped by the open-file limit) the
  oldest connection that is not serving a request is aborted to make room -- so a new client, such
  as a health check, gets in at once -- or, when every connection is busy, the new one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web


class _Conn:
    __slots__ = ("busy", "closing", "since", "transport")

    def __init__(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.since = time.monotonic()
        self.busy = 0
        self.closing = False


class _GuardedProtocol(asyncio.Protocol):
    """Forwards every event to aiohttp's protocol; tells the guard when the connection opens and closes."""

    def __init__(self, guard: ConnectionGuard, inner: Any) -> None:
        self._guard = guard
        self._inner = inner
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._inner.connection_made(transport)
        self._guard.opened(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._guard.closed(self._transport)
        self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        result: bool | None = self._inner.eof_received()
        return result

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class ConnectionGuard:
    """See the module docstring. ``limit`` is called at every accept (the file limit may change)."""

    def __init__(self, read_timeout: float, limit: Callable[[], int]) -> None:
        self.read_timeout = read_timeout
        self.limit = limit
        self.closed_slow = 0  # aborted: no request head / idle past the read timeout
        self.closed_over_limit = 0  # aborted: beyond the connection limit
        self._conns: dict[asyncio.BaseTransport, _Conn] = {}  # oldest first

    def protocol_factory(self, inner_factory: Callable[[], Any]) -> Callable[[], asyncio.Protocol]:
        return lambda: _GuardedProtocol(self, inner_factory())

    @property
    def open(self) -> int:
        return sum(1 for c in self._conns.values() if not c.closing)

    def opened(self, transport: asyncio.BaseTransport) -> None:
        self._conns[transport] = _Conn(transport)
        if self.open <= self.limit():
            return
        victim = next((c for c in self._conns.values() if not c.busy and not c.closing
                       and c.transport is not transport), None)
        self._abort(victim or self._conns[transport])
        self.closed_over_limit += 1

    def closed(self, transport: asyncio.BaseTransport) -> None:
        self._conns.pop(transport, None)

    def _abort(self, c: _Conn) -> None:
        c.closing = True
        abort = getattr(c.transport, "abort", None)
        (abort or c.transport.close)()

    def sweep(self, now: float | None = None) -> int:
        """Abort the connections that sat without serving a request for longer than the read timeout."""
        now = time.monotonic() if now is None else now
        late = [c for c in self._conns.values()
                if not c.busy and not c.closing and now - c.since > self.read_timeout]
        for c in late:
            self._abort(c)
        self.closed_slow += len(late)
        return len(late)

    async def run(self) -> None:
        """Sweep periodically until cancelled."""
        period = min(1.0, self.read_timeout / 4)
        while True:
            await asyncio.sleep(period)
            self.sweep()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Callable[[web.Request], Any]) -> Any:
        """Marks the connection busy while a request is served; its idle time starts when it ends."""
        c = self._conns.get(request.transport) if request.transport is not None else None
        if c is None:
            return await handler(request)
        c.busy += 1
        try:
            return await handler(request)
        finally:
            c.busy -= 1
            c.since = time.monotonic()


class BodyTimeout(Exception):
    """No body bytes arrived within the read timeout."""


async def read_body(request: web.Request, limit: int, timeout: float) -> bytes:
    """The request body, each chunk within ``timeout`` seconds (:class:`BodyTimeout`), at most ``limit``
    bytes (``web.HTTPRequestEntityTooLarge``)."""
    chunks: list[bytes] = []
    total = 0
    while True:
        try:
            chunk = await asyncio.wait_for(request.content.readany(), timeout)
        except TimeoutError:
            raise BodyTimeout from None
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=total)
        chunks.append(chunk)
