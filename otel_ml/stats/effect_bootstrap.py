"""A 95 % interval of the drift verdict's effect size, by a seeded parametric bootstrap on binned counts.

The effect size is what :func:`~otel_ml.stats.evaluate_batch` applies its floor to: the binned Wasserstein
distance in reference standard deviations (numeric streams) or the total variation (categorical ones), of a
window's counts against *fixed* reference counts. Its sampling variability comes from the window: each
resample draws the window's bucket proportions again from their multinomial law around the observed ones,
and the interval is the 2.5 and 97.5 percentiles of the resampled effects (percentile bootstrap).

Cost: exact multinomial draws cost tens of nanoseconds per bucket and resample (seconds for the processor's
4,000 segment stream-windows), so a resample uses the multinomial's normal approximation, which has the same
mean and covariance: ``p + (sqrt(p) z - p (sqrt(p) . z)) / sqrt(n)`` with ``z`` standard normal (a bucket the
window never filled stays empty, as a multinomial draw keeps it; a sparse bucket may get a slightly negative
share, which the distances take as it is). A resample is then linear in ``z``, so the resampled gaps between
the (cumulative) proportions and the reference's come out of one batched matrix product per stream
(:func:`_resampled`), about 4 us per stream and 200 resamples. The ``z`` are drawn once per call from
:data:`BOOTSTRAP_SEED` and shared by the streams (common random numbers): a stream's interval depends on its
counts only, not on the batch, and the same counts give the same interval at every evaluation.

Read near 0 with care: a distance cannot be negative and its estimate is biased upward by the window's noise,
and the percentiles of resampled distances are biased upward once more; a window drawn from the reference's
own distribution gets an interval that excludes 0 almost always (``benchmarks/effect_interval_coverage.py``
measures the coverage). The interval is always widened to contain the estimate.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ._common import FloatArray, as_batch, proportions
from .performance import BOOTSTRAP_SEED
from .total_variation import total_variation
from .wasserstein import wasserstein

#: Resamples per stream: percentiles at 2.5 / 97.5 % from 200 draws move by about a tenth of the width.
RESAMPLES = 200
#: Cells (streams x resamples x buckets) resampled at once: bounds the memory (~8 bytes each, a few arrays).
_CHUNK_CELLS = 1 << 20
#: The resamples are float32 (half the memory traffic; percentiles need no more).
_Floats = npt.NDArray[np.floating[Any]]


def effect_size(reference: npt.ArrayLike, current: npt.ArrayLike, *, numeric: npt.ArrayLike,
                positions: npt.ArrayLike, spread: npt.ArrayLike) -> FloatArray:
    """The verdict's effect size of each row: Wasserstein in ``spread`` units if ``numeric``, else total variation."""
    ref, cur = as_batch(reference, current)
    num = np.broadcast_to(np.asarray(numeric, dtype=bool), (ref.shape[0],))
    pos = np.where(num[:, None], np.asarray(positions, dtype=np.float64), np.nan)
    w = wasserstein(ref, cur, positions=pos, spread=spread, numeric=num)
    return np.where(num, w, total_variation(ref, cur))


def effect_interval(
    reference: npt.ArrayLike,
    current: npt.ArrayLike,
    *,
    numeric: npt.ArrayLike,
    positions: npt.ArrayLike,
    spread: npt.ArrayLike,
    resamples: int = RESAMPLES,
    level: float = 0.95,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[FloatArray, FloatArray]:
    """``(lower, upper)`` of each row's effect size (module docstring); NaN for rows without current counts.

    Arguments as :func:`~otel_ml.stats.evaluate_batch` takes them: ``float64[S, B]`` counts, ``numeric``
    ``bool[S]``, ``positions`` ``float64[S, B]``, ``spread`` ``float64[S]``.
    """
    if resamples < 2:
        raise ValueError(f"resamples must be >= 2, got {resamples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    ref, cur = as_batch(reference, current)
    s, b = ref.shape
    num = np.broadcast_to(np.asarray(numeric, dtype=bool), (s,))
    pos = np.broadcast_to(np.asarray(positions, dtype=np.float64), (s, b))
    spr = np.broadcast_to(np.asarray(spread, dtype=np.float64), (s,))
    lower = np.full(s, np.nan)
    upper = np.full(s, np.nan)
    n = cur.sum(axis=1)
    rows = np.flatnonzero(n > 0)
    if not len(rows) or b == 0:
        return lower, upper
    z = np.random.default_rng(seed).standard_normal((resamples, b)).astype(np.float32)
    tail = 50.0 * (1.0 - level)
    estimate = effect_size(ref[rows], cur[rows], numeric=num[rows], positions=pos[rows], spread=spr[rows])
    ref_p = proportions(ref)
    with np.errstate(invalid="ignore", divide="ignore"):
        # Numeric: W = sum_i |F_ref(i) - F(i)| * (x[i+1] - x[i]) / spread (as :mod:`.wasserstein` defines it).
        weight = np.nan_to_num(np.diff(pos, axis=1) / spr[:, None]).astype(np.float32)
    step = max(1, _CHUNK_CELLS // (resamples * b))
    for numeric_rows in (True, False):
        part = rows[num[rows] == numeric_rows]
        for start in range(0, len(part), step):
            sel = part[start: start + step]
            effects = _resampled(ref_p[sel], proportions(cur[sel]).astype(np.float32), n[sel], z,
                                 weight[sel] if numeric_rows else None)
            lo, hi = np.percentile(effects, [tail, 100.0 - tail], axis=1)
            lower[sel] = lo
            upper[sel] = hi
    lower[rows] = np.minimum(lower[rows], estimate)
    upper[rows] = np.maximum(upper[rows], estimate)
    return lower, upper


def resample_proportions(p: _Floats, n: FloatArray, z: _Floats) -> _Floats:
    """``[k, R, B]`` resampled bucket proportions of ``k`` windows with proportions ``p`` ``[k, B]`` and ``n``
    rows, from standard normals ``z`` ``[R, B]``: ``p + (sqrt(p) z - p (sqrt(p) . z)) / sqrt(n)`` (module
    docstring). :func:`effect_interval` computes the effects of these without building them."""
    root_n = np.sqrt(n).astype(p.dtype)[:, None, None]
    rz = np.sqrt(p)[:, None, :] * z[None, :, :]
    return p[:, None, :] + (rz - p[:, None, :] * rz.sum(axis=2, keepdims=True)) / root_n


def _resampled(ref_p: FloatArray, p: _Floats, n: FloatArray, z: _Floats, weight: _Floats | None) -> FloatArray:
    """``[k, R]`` effect sizes of the resampled windows (:func:`resample_proportions`) against the reference
    proportions ``ref_p``, in one batched product: a resample is linear in ``z``.

    Total variation compares the proportions, ``p* - p_ref = z M + (p - p_ref)`` with
    ``M[j, i] = sqrt(p_j / n) (delta_ji - p_i)``; Wasserstein the cumulative ones, ``F* - F_ref = z M + (F - F_ref)``
    with ``M[j, i] = sqrt(p_j / n) ([j <= i] - F_i)``; then ``0.5 sum |.|`` or ``sum |.| x weight``.
    """
    b = p.shape[1]
    if weight is None:
        kernel, level, ref_level = np.eye(b, dtype=p.dtype), p, ref_p
    else:
        kernel = np.triu(np.ones((b, b), dtype=p.dtype))
        level, ref_level = np.cumsum(p, axis=1), np.cumsum(ref_p, axis=1)
    scale = np.sqrt(p / np.asarray(n, dtype=p.dtype)[:, None])
    gap = np.matmul(z[None, :, :], scale[:, :, None] * (kernel[None, :, :] - level[:, None, :]))  # [k, R, B]
    gap += (level - ref_level.astype(p.dtype))[:, None, :]
    np.abs(gap, out=gap)
    if weight is None:
        return 0.5 * gap.sum(axis=2, dtype=np.float64)
    return np.matmul(gap[:, :, :-1], weight[:, :, None])[:, :, 0].astype(np.float64)
