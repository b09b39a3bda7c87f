"""Bounds against hostile or broken clients: request bytes in flight, cache bytes, key digests.

* :class:`InflightBudget` -- the bytes of OTLP requests received and not yet answered, over gRPC and
  HTTP together (``receivers.max_inflight_bytes``). A request is charged its size before it is
  decoded (HTTP: its ``Content-Length`` before the body is read); one that does not fit is refused
  with the receivers' retryable overload answer and never applied.
* :class:`CacheBudget` -- one byte budget (``state.max_cache_bytes``) shared by the caches that
  attacker-chosen keys can fill: the negative series cache, the structure (template) cache and the
  template -> series-ids cache. Each cache reports its bytes; an insert that does not fit makes its
  cache evict its oldest entries (or not cache at all).
* :func:`digest` / :func:`attributes_key` -- cache and series keys are 16-byte BLAKE2b digests of
  the raw resource and attribute encodings, never the attacker's bytes themselves.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from hashlib import blake2b
from typing import Any

DIGEST_BYTES = 16

#: Rough memory of one cache entry keyed by digests (the key tuple, its bytes objects, a dict slot).
ENTRY_BYTES = 256


def digest(data: bytes) -> bytes:
    """The 16-byte BLAKE2b digest that stands for ``data`` in every key."""
    return blake2b(data, digest_size=DIGEST_BYTES).digest()


def attributes_key(attrs: Iterable[bytes]) -> bytes:
    """The digest of a data point's attribute encodings (length-prefixed, so the split is part of it)."""
    h = blake2b(digest_size=DIGEST_BYTES)
    for a in attrs:
        h.update(len(a).to_bytes(4, "little"))
        h.update(a)
    return h.digest()


class InflightBudget:
    """Bytes of requests in flight, bounded by ``limit`` (see the module docstring)."""

    def __init__(self, limit: int) -> None:
        self.limit = int(limit)
        self.bytes = 0
        self.peak_bytes = 0

    def try_acquire(self, n: int) -> bool:
        """Charge ``n`` bytes; False (nothing charged) when they do not fit."""
        if self.bytes + n > self.limit:
            return False
        self.bytes += n
        self.peak_bytes = max(self.peak_bytes, self.bytes)
        return True

    def release(self, n: int) -> None:
        self.bytes -= n

    def retry_after(self, minimum: float) -> float:
        """The delay announced with a refusal: the minimum, longer the fuller the budget."""
        return float(max(minimum, math.ceil(minimum * 2 * self.bytes / max(self.limit, 1))))

    def status(self) -> dict[str, int]:
        return {"bytes": self.bytes, "peak_bytes": self.peak_bytes, "limit_bytes": self.limit}


class CacheBudget:
    """One byte budget over several caches; each registers a function that reports its bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = int(limit)
        self._parts: dict[str, Callable[[], int]] = {}

    def register(self, name: str, nbytes: Callable[[], int]) -> None:
        self._parts[name] = nbytes

    @property
    def bytes(self) -> int:
        return sum(f() for f in tuple(self._parts.values()))

    def room(self) -> int:
        """Bytes still free under the limit (negative when over)."""
        return self.limit - self.bytes

    def status(self) -> dict[str, Any]:
        return {"bytes": self.bytes, "limit_bytes": self.limit}
