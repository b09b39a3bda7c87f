"""The windows: one ring of time slots per window over every cell, fed by increments.

Each window (default 5 m and 1 h) is a ring of ``slots`` time slots over all cells
(``float64[slots, cells]``). Increments are collected in a ``pending`` vector and added to the
current slot of every window when the slot ends or an evaluation starts; the slot an increment
belongs to is the processor's receive time (robust to clock skew between pods). A window's counts
are the sum of its slots: the last ``window - slot`` to ``window`` seconds of traffic.

Cells are allocated in contiguous ranges (one per stream, see :mod:`._state`); :meth:`Windows.compact`
moves the live ranges together after evictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def capacity(cap: int, n: int) -> int:
    """``cap`` doubled until it holds ``n``: the size every growable array of the state grows to."""
    while cap < n:
        cap *= 2
    return cap


def ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(s, s + l)`` for each pair, vectorised."""
    if len(lengths) == 0:
        return np.empty(0, dtype=np.int64)
    ends = np.cumsum(lengths)
    return np.repeat(starts - ends + lengths, lengths) + np.arange(int(ends[-1]), dtype=np.int64)


class Windows:
    """Slot rings of every window over ``cells_used`` cells, plus the pending increments."""

    def __init__(self, windows: Sequence[float], slots: int, now: float) -> None:
        self.sizes = tuple(float(w) for w in windows)
        self.slots = int(slots)
        self.slot_seconds = tuple(w / self.slots for w in self.sizes)
        self.cells_used = 0
        self._cap = 256
        self.rings = [np.zeros((self.slots, self._cap)) for _ in self.sizes]
        self.pending = np.zeros(self._cap)
        self.current_slot = [int(now // s) for s in self.slot_seconds]

    # --- cells ----------------------------------------------------------------------------------
    def allocate(self, width: int) -> int:
        """A new range of ``width`` cells (zero in every slot); its first cell."""
        cell0 = self.cells_used
        self.ensure_cells(cell0 + width)
        self.cells_used = cell0 + width
        return cell0

    def ensure_cells(self, n: int) -> None:
        if n <= self._cap:
            return
        cap = capacity(self._cap, n)
        for i, ring in enumerate(self.rings):
            new = np.zeros((self.slots, cap))
            new[:, : self._cap] = ring
            self.rings[i] = new
        pend = np.zeros(cap)
        pend[: self._cap] = self.pending
        self.pending = pend
        self._cap = cap

    def add(self, cells: np.ndarray, increments: np.ndarray) -> None:
        """Add ``increments`` to the pending counts of ``cells`` (repeated cells add up)."""
        np.add.at(self.pending, cells, increments)

    def compact(self, cells_from: np.ndarray) -> None:
        """Keep only the cells ``cells_from`` (in that order, now ``0 .. len - 1``); pending is flushed first."""
        self.flush()
        cells = len(cells_from)
        cap = capacity(256, cells)
        rings = []
        for ring in self.rings:
            new_ring = np.zeros((self.slots, cap))
            new_ring[:, :cells] = ring[:, cells_from]
            rings.append(new_ring)
        self.rings = rings
        self.pending = np.zeros(cap)
        self._cap = cap
        self.cells_used = cells

    # --- time -----------------------------------------------------------------------------------
    def advance(self, now: float) -> None:
        """Move every window's current slot to ``now``: flush pending increments, clear reused slots."""
        flushed = False
        for k, slot_s in enumerate(self.slot_seconds):
            cur = int(now // slot_s)
            old = self.current_slot[k]
            if cur <= old:
                continue
            if not flushed:
                self.flush()
                flushed = True
            ring = self.rings[k]
            if cur - old >= self.slots:
                ring[:, : self.cells_used] = 0.0
            else:
                for a in range(old + 1, cur + 1):
                    ring[a % self.slots, : self.cells_used] = 0.0
            self.current_slot[k] = cur

    def flush(self) -> None:
        """Add the pending increments to every window's current slot."""
        n = self.cells_used
        pend = self.pending[:n]
        if not pend.any():
            return
        for k, ring in enumerate(self.rings):
            ring[self.current_slot[k] % self.slots, :n] += pend
        pend[:] = 0.0

    def counts(self, now: float) -> list[np.ndarray]:
        """Per window, the counts of every cell over the window (``float64[cells_used]``)."""
        self.advance(now)
        self.flush()
        n = self.cells_used
        return [ring[:, :n].sum(axis=0) for ring in self.rings]

    # --- size and checkpoints -------------------------------------------------------------------
    @property
    def nbytes(self) -> int:
        return sum(r.nbytes for r in self.rings) + self.pending.nbytes

    def bytes_per_cell(self) -> int:
        """Bytes one cell takes in every ring and in pending."""
        return 8 * (self.slots * len(self.sizes) + 1)

    def snapshot(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Copies of the rings (pending flushed into them) and what they mean."""
        self.flush()
        n = self.cells_used
        arrays = {f"ring{k}": np.ascontiguousarray(r[:, :n]) for k, r in enumerate(self.rings)}
        meta = {"windows": list(self.sizes), "slots": self.slots, "current_slot": list(self.current_slot),
                "cells_used": n}
        return arrays, meta

    def restore(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> bool:
        """Take the cells of a :meth:`snapshot`; its counts only when it had the same windows (else
        the windows start empty). True when the counts were restored."""
        cells = int(meta["cells_used"])
        self.ensure_cells(cells)
        self.cells_used = cells
        same = list(self.sizes) == [float(w) for w in meta["windows"]] and self.slots == int(meta["slots"])
        if same:
            for k in range(len(self.sizes)):
                self.rings[k][:, :cells] = arrays[f"ring{k}"][:, :cells]
            self.current_slot = [int(c) for c in meta["current_slot"]]
        return same
