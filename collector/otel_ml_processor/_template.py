"""Structure cache for histogram payloads: decode a pod's repeated exports without a Python loop per point.

An instrumented process exports the same histogram metric every interval with the same series, the
same attributes and the same bounds; only fixed-size numbers change (timestamps, count, sum, min, max
and the packed fixed64 bucket counts). Its ``Histogram`` message therefore has the same length and
the same bytes everywhere except at those numbers' offsets. The first time such a payload is seen twice
with one length, a wire-format walk records where the numbers sit; from then on a payload of that
length whose *other* bytes are the same is decoded by gathering the numbers with numpy, and the
per-point attributes and bounds are the cached ones. The check compares the payload, numbers masked out,
with the stored structure (numpy, no Python loop); identical structure bytes at equal length imply an
identical parse, so a hit is exact. Anything else (different length, changed attributes, exemplars,
unpacked encodings) takes the normal path. Memory: about three times the payload per cached (metric, pod),
within a byte budget (the shared :class:`~._limits.CacheBudget` when given, which counts the keys seen
once too); templates unused for 10 minutes make room for new ones. Keys hold the resource's digest, not
its bytes; a payload with an attribute over ``max_attribute_bytes`` is never learned (the decoder rejects its points).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from ._limits import ENTRY_BYTES, CacheBudget

_MAX_ENTRIES = 4096
_MAX_BYTES = 128 * 1024 * 1024  # rough budget for all templates (about 1.5x the payload sizes)


class _Unsupported(Exception):
    pass


@dataclass(slots=True)
class Template:
    id: int
    structure: np.ndarray  # uint64[len // 8]: the payload's whole 8-byte words, every number's bytes zeroed
    keep: np.ndarray  # uint64[len // 8]: 0x00 bytes at numbers, 0xFF elsewhere
    tail: tuple[int, int]  # (keep, structure) of the payload's last 8 bytes, as integers
    last_hit: float
    fixed_words: np.ndarray  # int64[P, 3]: byte offset of start_time, time, count
    bucket_words: np.ndarray  # int64[sum widths]: byte offsets of the bucket counts, point by point
    widths: np.ndarray  # int64[P]: buckets per point (1 for sums)
    is_double: np.ndarray  # bool[P]: sums: the value is as_double (else as_int)
    temporality: int
    attrs: list[tuple[bytes, ...]]
    bounds: list[bytes]
    flags: list[int]


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise _Unsupported
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise _Unsupported


def _skip(buf: bytes, pos: int, wt: int) -> int:
    if wt == 0:
        return _varint(buf, pos)[1]
    if wt == 1:
        return pos + 8
    if wt == 2:
        n, pos = _varint(buf, pos)
        return pos + n
    if wt == 5:
        return pos + 4
    raise _Unsupported


def learn(raw: bytes, next_id: int, histogram: bool = True) -> Template:
    """Walk a ``Histogram`` (or ``Sum``) payload and record where its numbers are (raises ``_Unsupported``)."""
    starts: list[int] = []
    lengths: list[int] = []
    fixed: list[list[int]] = []
    bucket_off: list[int] = []
    widths: list[int] = []
    attrs: list[tuple[bytes, ...]] = []
    bounds: list[bytes] = []
    flags: list[int] = []
    is_double: list[bool] = []
    temporality = 0
    pos, n = 0, len(raw)
    # Field numbers of the data point: (attributes, flags); numbers with wire type 1.
    attr_f, flags_f = (9, 10) if histogram else (7, 8)
    while pos < n:
        tag, pos = _varint(raw, pos)
        field, wt = tag >> 3, tag & 7
        if field == 1 and wt == 2:
            length, pos = _varint(raw, pos)
            end = pos + length
            if end > n:
                raise _Unsupported
            offs = [-1, -1, -1]
            p_attrs: list[bytes] = []
            p_bounds = b""
            p_flags = 0
            boff, bw = -1, 0
            dbl = False
            while pos < end:
                tag, pos = _varint(raw, pos)
                f, w = tag >> 3, tag & 7
                if not histogram:
                    if f in (2, 3, 4, 6) and w == 1:
                        if f >= 4:
                            if offs[2] >= 0:
                                raise _Unsupported
                            dbl = f == 4
                        offs[min(f, 4) - 2] = pos
                        starts.append(pos)
                        lengths.append(8)
                        pos += 8
                    elif f == attr_f and w == 2:
                        ln, pos = _varint(raw, pos)
                        p_attrs.append(raw[pos: pos + ln])
                        pos += ln
                    elif f == flags_f and w == 0:
                        p_flags, pos = _varint(raw, pos)
                    elif f in (2, 3, 4, 5, 6, 7, 8):
                        raise _Unsupported
                    else:
                        pos = _skip(raw, pos, w)
                    continue
                if f in (2, 3, 4) and w == 1:
                    offs[f - 2] = pos
                    starts.append(pos)
                    lengths.append(8)
                    pos += 8
                elif f in (5, 11, 12) and w == 1:  # sum, min, max: numbers that change
                    starts.append(pos)
                    lengths.append(8)
                    pos += 8
                elif f == 6 and w == 2:
                    ln, pos = _varint(raw, pos)
                    if ln % 8 or boff >= 0:
                        raise _Unsupported
                    boff, bw = pos, ln // 8
                    starts.append(pos)
                    lengths.append(ln)
                    pos += ln
                elif f == 7 and w == 2:
                    ln, pos = _varint(raw, pos)
                    p_bounds += raw[pos: pos + ln]
                    pos += ln
                elif f == 9 and w == 2:
                    ln, pos = _varint(raw, pos)
                    p_attrs.append(raw[pos: pos + ln])
                    pos += ln
                elif f == 10 and w == 0:
                    p_flags, pos = _varint(raw, pos)
                elif f in (6, 7, 8) or (f in (2, 3, 4, 5, 11, 12)):
                    raise _Unsupported  # unpacked numbers, exemplars, odd wire types
                else:
                    pos = _skip(raw, pos, w)
            if histogram and boff < 0:
                raise _Unsupported
            if pos != end or min(offs) < 0:
                raise _Unsupported
            fixed.append(offs)
            bucket_off.append(boff if histogram else 0)
            widths.append(bw if histogram else 1)
            is_double.append(dbl)
            attrs.append(tuple(p_attrs))
            bounds.append(p_bounds)
            flags.append(p_flags)
        elif field == 2 and wt == 0:
            temporality, pos = _varint(raw, pos)
        else:
            pos = _skip(raw, pos, wt)
    if pos != n or not fixed:
        raise _Unsupported
    if n < 8:
        raise _Unsupported
    numbers = np.zeros(n, dtype=bool)
    for st, ln in zip(starts, lengths):  # each range is a multiple of 8 bytes long
        numbers[st: st + ln] = True
    # Numbers are gathered straight from the payload by byte offset (see _match).
    fixed_words = np.asarray(fixed, dtype=np.int64).reshape(-1, 3)
    bucket_words = np.asarray([b + 8 * i for b, w in zip(bucket_off, widths) for i in range(w)]
                              if histogram else [], dtype=np.int64)
    keep_bytes = np.where(numbers, 0, 0xFF).astype(np.uint8)
    masked = np.frombuffer(raw, dtype=np.uint8) & keep_bytes
    n8 = n - n % 8
    keep = keep_bytes[:n8].view("<u8").copy()
    structure = masked[:n8].view("<u8").copy()
    tail = (int.from_bytes(keep_bytes[n - 8:].tobytes(), "little"),
            int.from_bytes(masked[n - 8:].tobytes(), "little"))
    return Template(next_id, structure, keep, tail, time.monotonic(), fixed_words, bucket_words,
                    np.asarray(widths, dtype=np.int64), np.asarray(is_double, dtype=bool), temporality, attrs,
                    bounds, flags)


def _match(raw: bytes, t: Template) -> np.ndarray | None:
    """If ``raw`` has ``t``'s structure: a uint64 view of ``raw`` at every byte offset (the template's
    offsets index it; no copy), else None. The structure check compares 8-byte words (the last
    ``len % 8`` bytes through the payload's final 8 bytes)."""
    n = len(raw)
    words = np.frombuffer(raw, dtype="<u8", count=n // 8)
    if not ((words & t.keep) == t.structure).all():
        return None
    keep, structure = t.tail
    if int.from_bytes(raw[n - 8:], "little") & keep != structure:
        return None
    return np.ndarray((n - 7,), dtype="<u8", buffer=raw, strides=(1,))


class TemplateCache:
    """Per (metric, resource, payload length): the learned structure of a histogram payload."""

    def __init__(self, max_entries: int = _MAX_ENTRIES, max_bytes: int = _MAX_BYTES,
                 budget: CacheBudget | None = None, max_attribute_bytes: int = 4096) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.budget = budget
        self.max_attribute_bytes = max_attribute_bytes
        self.bytes = 0
        self._entries: dict[tuple[str, bytes, int], Template] = {}
        self._seen: set[tuple[str, bytes, int]] = set()
        self._next = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def lookup(
        self, name: str, resource: bytes, raw: bytes, histogram: bool = True
    ) -> tuple[Template, np.ndarray] | None:
        """``(template, words)`` on a hit (``words``: see :func:`_match`), else None (and maybe learn the payload).

        Thread-safe: the decode thread and the event loop share one cache. The lock covers the cache's
        own bookkeeping only; matching and learning a payload run outside it."""
        key = (name, resource, len(raw))
        with self._lock:
            t = self._entries.get(key)
            if t is None:
                self.misses += 1
                seen = key in self._seen
                if not seen:
                    if len(self._seen) >= self.max_entries or not self._fits(ENTRY_BYTES):
                        self._seen.clear()
                    self._seen.add(key)
        if t is None:
            if seen:
                self._learn(key, raw, histogram)
            return None
        words = _match(raw, t)
        with self._lock:
            if words is None:
                self.misses += 1
                if self._entries.get(key) is t:  # the structure changed: learn the new one next time
                    del self._entries[key]
                    self.bytes -= 3 * len(raw)
                return None
            self.hits += 1
            t.last_hit = time.monotonic()
        return t, words

    def _learn(self, key: tuple[str, bytes, int], raw: bytes, histogram: bool) -> None:
        with self._lock:
            tid = self._next  # ids stay unique across threads (the series registry keys by them)
            self._next += 1
        try:
            t = learn(raw, tid, histogram)
        except (_Unsupported, IndexError, ValueError):
            return
        if any(len(a) > self.max_attribute_bytes for p in t.attrs for a in p):
            return
        size = 3 * len(raw)
        with self._lock:
            if key in self._entries:  # learned by another thread meanwhile
                return
            if len(self._entries) >= self.max_entries or not self._fits(size):
                # Over budget: forget templates not used for 10 minutes (pods that went away); if that
                # frees nothing, keep the working set and let this payload take the normal path.
                cutoff = time.monotonic() - 600.0
                for k in [k for k, v in self._entries.items() if v.last_hit < cutoff]:
                    self.bytes -= 3 * k[2]
                    del self._entries[k]
                if len(self._entries) >= self.max_entries or not self._fits(size):
                    return
            self._entries[key] = t
            self.bytes += size

    def _fits(self, size: int) -> bool:
        if self.budget is not None:
            return self.budget.room() >= size
        return self.nbytes() + size <= self.max_bytes

    def nbytes(self) -> int:
        """Bytes held: the templates (about three times each payload) and every key, learned or seen once."""
        return self.bytes + ENTRY_BYTES * (len(self._entries) + len(self._seen))


def histogram_columns(t: Template, words: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """start, time, count (int64[P]) and the bucket counts of every point (float64)."""
    fixed = words[t.fixed_words].astype(np.int64)
    return fixed[:, 0], fixed[:, 1], fixed[:, 2], words[t.bucket_words].astype(np.float64)


def sum_columns(t: Template, words: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """start, time (int64[P]) and the value of every point (float64, from as_int or as_double)."""
    fixed = words[t.fixed_words]
    raw_value = np.ascontiguousarray(fixed[:, 2])
    value = np.where(t.is_double, raw_value.view(np.float64), raw_value.view(np.int64).astype(np.float64))
    return fixed[:, 0].astype(np.int64), fixed[:, 1].astype(np.int64), value
