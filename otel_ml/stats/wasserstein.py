"""Binned Wasserstein-1 (earth mover's) distance, normalised by the reference spread.

Each bucket's mass sits at one representative position (see
:func:`otel_ml.stats.profile_arrays`); the distance between the two discrete distributions is
``sum_i |F_ref(i) - F_cur(i)| * (x[i+1] - x[i])``, divided by the reference's standard deviation so
that it reads in standard deviations: a shift of the whole distribution by ``d`` standard
deviations scores about ``d`` whatever the distribution's shape (slightly less, as mass moving
inside one bucket is not seen). Numeric rows only; NaN for categorical ones. Default threshold 0.1
standard deviation: the numeric effect-size floor of the verdict.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ._common import FloatArray, as_batch, as_positions, cdf_gap, numeric_only
from ._registry import Statistic, register

DEFAULT_THRESHOLD = 0.1


def wasserstein(
    reference: npt.ArrayLike,
    current: npt.ArrayLike,
    *,
    positions: npt.ArrayLike,
    spread: npt.ArrayLike | float = 1.0,
    numeric: npt.ArrayLike | None = None,
    **_: object,
) -> FloatArray:
    """Normalised binned W1 of each row pair (``float64[S]``); NaN where positions are NaN."""
    ref, cur = as_batch(reference, current)
    pos = as_positions(positions, ref.shape)
    if pos.shape != ref.shape:
        raise ValueError(f"positions must have shape {ref.shape}, got {pos.shape}")
    gap = cdf_gap(ref, cur)[:, :-1]
    step = np.diff(pos, axis=1)
    # Padding on the right has NaN (or any) positions, but there both cumulative sums are 1.
    terms = np.where(gap > 1e-15, gap * step, 0.0)
    raw = terms.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = raw / np.asarray(spread, dtype=np.float64)
    first = pos[:, 0] if pos.shape[1] else np.full(ref.shape[0], np.nan)
    out = np.where(np.isnan(first), np.nan, out)
    return numeric_only(out, numeric)


STATISTIC = register(
    Statistic(
        name="wasserstein",
        compute=wasserstein,
        default_threshold=DEFAULT_THRESHOLD,
        kinds=frozenset({"numeric"}),
        description="binned Wasserstein-1 distance in reference standard deviations (numeric only)",
    )
)
