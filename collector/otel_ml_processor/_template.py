"""Structure cache for histogram payloads: decode a pod's repeated exports without a Python loop per point.

An instrumented process exports the same histogram metric every interval with the same series, the
same attributes and the same bounds; only fixed-size numbers change (timestamps, count, sum, min, max
and the packed fixed64 bucket counts). Its ``Histogram`` message therefore has the same length and
the same bytes everywhere except at those numbers' offsets. The first time such a payload is seen twice
with one length, a wire-format walk records where the numbers sit; from then on a payload of that
length whose *other* bytes are the same is decoded by gathering the numbers with numpy, and the
per-point attributes and bounds are the cached ones. The check compares the payload, numbers masked out, with the stored structure (numpy, no
Python loop); identical structure bytes at equal length imply an identical parse, so a hit is exact.
Anything else (different length, changed attributes, exemplars, unpacked encodings) takes the normal
path. Memory: about three times the payload per cached (metric, pod), within a global budget; templates
unused for 10 minutes make room for new ones.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

_MAX_ENTRIES = 4096
_MAX_BYTES = 128 * 1024 * 1024  # rough budget for all templates (about 1.5x the payload sizes)


class _Unsupported(Exception):
    pass


@dataclass(slots=True)
class Template:
    id: int
    structure: np.ndarray  # uint8[len]: the payload with every number's bytes zeroed
    numbers: np.ndarray  # bool[len]: True at the bytes of numbers (8-byte little-endian words)
    keep: np.ndarray  # uint8[len]: 0x00 at numbers, 0xFF elsewhere
    last_hit: float
    fixed_words: np.ndarray  # int64[P, 3]: word index of start_time, time, count
    bucket_words: np.ndarray  # int64[sum widths]: word indices of the bucket counts, point by point
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
    # Number ranges -> 8-byte words (each range is a multiple of 8 bytes long).
    word_of: dict[int, int] = {}
    offsets: list[int] = []
    for st, ln in zip(starts, lengths):
        for o in range(st, st + ln, 8):
            word_of[o] = len(offsets)
            offsets.append(o)
    numbers = np.zeros(n, dtype=bool)
    for o in offsets:
        numbers[o: o + 8] = True
    fixed_words = np.asarray([[word_of[o] for o in row] for row in fixed], dtype=np.int64)
    bucket_words = np.asarray([word_of[b + 8 * i] for b, w in zip(bucket_off, widths) for i in range(w)]
                              if histogram else [], dtype=np.int64)
    structure = np.frombuffer(raw, dtype=np.uint8).copy()
    structure[numbers] = 0
    keep = np.where(numbers, 0, 0xFF).astype(np.uint8)
    return Template(next_id, structure, numbers, keep, time.monotonic(), fixed_words, bucket_words,
                    np.asarray(widths, dtype=np.int64), np.asarray(is_double, dtype=bool), temporality, attrs,
                    bounds, flags)


def _match(raw: bytes, t: Template) -> np.ndarray | None:
    """The numbers (uint64, in payload order) if ``raw`` has ``t``'s structure, else None."""
    arr = np.frombuffer(raw, dtype=np.uint8)
    if not np.array_equal(arr & t.keep, t.structure):
        return None
    return arr[t.numbers].view("<u8")


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

    def lookup(self, name: str, resource: bytes, raw: bytes, histogram: bool = True) -> tuple[Template, np.ndarray] | None:
        """``(template, numbers uint64[words])`` on a hit, else None (and maybe learn the payload)."""
        key = (name, resource, len(raw))
        t = self._entries.get(key)
        if t is None:
            self.misses += 1
            if key in self._seen:
                self._learn(key, raw, histogram)
            else:
                if len(self._seen) >= self.max_entries:
                    self._seen.clear()
                self._seen.add(key)
            return None
        words = _match(raw, t)
        if words is None:
            self.misses += 1
            del self._entries[key]  # the structure changed: learn the new one next time
            self.bytes -= 3 * len(raw)
            return None
        self.hits += 1
        t.last_hit = time.monotonic()
        return t, words

    def _learn(self, key: tuple[str, bytes, int], raw: bytes, histogram: bool) -> None:
        try:
            t = learn(raw, self._next, histogram)
        except (_Unsupported, IndexError, ValueError):
            return
        self._next += 1
        size = 3 * len(raw)
        if len(self._entries) >= self.max_entries or self.bytes + size > self.max_bytes:
            # Over budget: forget templates not used for 10 minutes (pods that went away); if that
            # frees nothing, keep the working set and let this payload take the normal path.
            cutoff = time.monotonic() - 600.0
            for k in [k for k, v in self._entries.items() if v.last_hit < cutoff]:
                self.bytes -= 3 * k[2]
                del self._entries[k]
            if len(self._entries) >= self.max_entries or self.bytes + size > self.max_bytes:
                return
        self._entries[key] = t
        self.bytes += size


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
