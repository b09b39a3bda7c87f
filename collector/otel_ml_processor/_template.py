"""Structure cache for histogram payloads: decode a pod's repeated exports without a Python loop per point.

An instrumented process exports the same histogram metric every interval with the same series, the
same attributes and the same bounds; only fixed-size numbers change (timestamps, count, sum, min, max
and the packed fixed64 bucket counts). Its ``Histogram`` message therefore has the same length and
the same bytes everywhere except at those numbers' offsets. The first time such a payload is seen twice
with one length, a wire-format walk records where the numbers sit; from then on a payload of that
length whose *other* bytes hash the same (SHA-256 over the payload with the number bytes zeroed) is
decoded by gathering the numbers with numpy, and the per-point attributes and bounds are the cached
ones. Identical structure bytes at equal length imply an identical parse, so a hit is exact; anything
else (different length, changed attributes, exemplars, unpacked encodings) takes the normal path.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

_MAX_ENTRIES = 4096
_MAX_BYTES = 128 * 1024 * 1024  # rough budget for all templates (about 1.5x the payload sizes)


class _Unsupported(Exception):
    pass


@dataclass(slots=True)
class Template:
    id: int
    digest: bytes
    size: int
    # Every number is an 8-byte little-endian word; word j sits at byte offset ``word_off[j]``.
    word_off: np.ndarray
    fixed_words: np.ndarray  # int64[P, 3]: word index of start_time, time, count
    bucket_words: np.ndarray  # int64[sum widths]: word indices of the bucket counts, point by point
    widths: np.ndarray  # int64[P]: buckets per point
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


def learn(raw: bytes, next_id: int) -> Template:
    """Walk a ``Histogram`` payload and record where its numbers are (raises ``_Unsupported``)."""
    starts: list[int] = []
    lengths: list[int] = []
    fixed: list[list[int]] = []
    bucket_off: list[int] = []
    widths: list[int] = []
    attrs: list[tuple[bytes, ...]] = []
    bounds: list[bytes] = []
    flags: list[int] = []
    temporality = 0
    pos, n = 0, len(raw)
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
            while pos < end:
                tag, pos = _varint(raw, pos)
                f, w = tag >> 3, tag & 7
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
            if pos != end or min(offs) < 0 or boff < 0:
                raise _Unsupported
            fixed.append(offs)
            bucket_off.append(boff)
            widths.append(bw)
            attrs.append(tuple(p_attrs))
            bounds.append(p_bounds)
            flags.append(p_flags)
        elif field == 2 and wt == 0:
            temporality, pos = _varint(raw, pos)
        else:
            pos = _skip(raw, pos, wt)
    if pos != n or not fixed:
        raise _Unsupported
    # Number ranges -> 8-byte words (each range is a multiple of 8 bytes long).
    word_of: dict[int, int] = {}
    offsets: list[int] = []
    for st, ln in zip(starts, lengths):
        for o in range(st, st + ln, 8):
            word_of[o] = len(offsets)
            offsets.append(o)
    off = np.asarray(offsets, dtype=np.int64)
    fixed_words = np.asarray([[word_of[o] for o in row] for row in fixed], dtype=np.int64)
    bucket_words = np.asarray([word_of[b + 8 * i] for b, w in zip(bucket_off, widths) for i in range(w)],
                              dtype=np.int64)
    t = Template(next_id, b"", n, off, fixed_words, bucket_words,
                 np.asarray(widths, dtype=np.int64), temporality, attrs, bounds, flags)
    t.digest = _digest(raw, t)[0]
    return t


_EIGHT = np.arange(8, dtype=np.int64)


def _digest(raw: bytes, t: Template) -> tuple[bytes, np.ndarray]:
    """SHA-256 of the payload with every number zeroed, and the numbers (uint64[words])."""
    arr = np.frombuffer(raw, dtype=np.uint8)
    byte_idx = (t.word_off[:, None] + _EIGHT).ravel()
    words = arr[byte_idx].view("<u8")
    masked = arr.copy()
    masked[byte_idx] = 0
    return hashlib.sha256(masked).digest(), words


class TemplateCache:
    """Per (metric, resource, payload length): the learned structure of a histogram payload."""

    def __init__(self, max_entries: int = _MAX_ENTRIES, max_bytes: int = _MAX_BYTES) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: dict[tuple[str, bytes, int], Template] = {}
        self._seen: set[tuple[str, bytes, int]] = set()
        self._next = 0
        self.hits = 0
        self.misses = 0

    def lookup(self, name: str, resource: bytes, raw: bytes) -> tuple[Template, np.ndarray, np.ndarray] | None:
        """``(template, fixed int64[P, 3], bucket values float64[sum widths])`` on a hit, else None."""
        key = (name, resource, len(raw))
        t = self._entries.get(key)
        if t is None:
            self.misses += 1
            if key in self._seen:
                self._learn(key, raw)
            else:
                if len(self._seen) >= self.max_entries:
                    self._seen.clear()
                self._seen.add(key)
            return None
        digest, words = _digest(raw, t)
        if digest != t.digest:
            self.misses += 1
            del self._entries[key]  # the structure changed: learn the new one next time
            self.bytes -= len(raw) * 3 // 2
            return None
        self.hits += 1
        fixed = words[t.fixed_words].astype(np.int64)
        buckets = words[t.bucket_words].astype(np.float64)
        return t, fixed, buckets

    def _learn(self, key: tuple[str, bytes, int], raw: bytes) -> None:
        try:
            t = learn(raw, self._next)
        except (_Unsupported, IndexError, ValueError):
            return
        self._next += 1
        size = len(raw) * 3 // 2
        if len(self._entries) >= self.max_entries or self.bytes + size > self.max_bytes:
            self._entries.clear()  # crude but bounded; hot payloads are learned again in two exports
            self.bytes = 0
        self._entries[key] = t
        self.bytes += size
