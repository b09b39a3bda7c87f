"""Shared helpers of the statistic modules: batch shapes, proportions and explicit smoothing."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Pseudo-count added to every active bucket of both distributions before a logarithm is taken
#: (PSI): the "add one half" (Jeffreys) rule. A bucket the reference never saw but the current
#: window fills (a new category in ``__other__``) then gives a large, finite term.
DEFAULT_SMOOTHING = 0.5


def as_batch(reference: npt.ArrayLike, current: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Both count arrays as ``float64[S, B]`` (a 1-D pair becomes one row); shapes must agree."""
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    if ref.ndim == 1:
        ref = ref[None, :]
    if cur.ndim == 1:
        cur = cur[None, :]
    if ref.shape != cur.shape or ref.ndim != 2:
        raise ValueError(
            f"reference and current counts must have the same [S, B] shape, got {ref.shape} and {cur.shape}"
        )
    return ref, cur


def active(ref: FloatArray, cur: FloatArray) -> BoolArray:
    """Buckets that take part in a comparison: those with a count on either side (padding is not)."""
    return (ref > 0) | (cur > 0)


def proportions(counts: FloatArray) -> FloatArray:
    """Row-normalised counts; a row with no counts gives NaN."""
    total = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return counts / total


def cdf_gap(ref: FloatArray, cur: FloatArray) -> FloatArray:
    """``|F_ref(i) - F_cur(i)|`` per bucket: the gap between the cumulative bucket distributions."""
    return np.abs(np.cumsum(proportions(ref), axis=1) - np.cumsum(proportions(cur), axis=1))


def as_positions(positions: npt.ArrayLike, shape: tuple[int, ...]) -> FloatArray:
    """Bucket positions as ``float64``; one 1-D row serves every row of a batch of ``shape``."""
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim == 1:
        pos = np.broadcast_to(pos, shape)
    return pos


def numeric_only(out: FloatArray, numeric: npt.ArrayLike | None) -> FloatArray:
    """``out`` with NaN for the rows ``numeric`` marks categorical (unordered buckets); all rows if None."""
    if numeric is None:
        return out
    return np.where(np.asarray(numeric, dtype=bool), out, np.nan)


def smoothed_proportions(counts: FloatArray, mask: BoolArray, pseudo_count: float | FloatArray) -> FloatArray:
    """Proportions after adding ``pseudo_count`` to every active bucket; inactive buckets stay 0."""
    padded = np.where(mask, counts + pseudo_count, 0.0)
    return proportions(padded)
