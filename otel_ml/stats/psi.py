"""Population Stability Index on binned counts, with explicit smoothing of empty buckets.

``PSI = sum_i (q_i - p_i) * ln(q_i / p_i)`` over the buckets either side has seen, where ``p`` is
the reference and ``q`` the current distribution after adding a pseudo-count (default 0.5, the
Jeffreys rule) to every such bucket on both sides. Without smoothing, a bucket empty on one side
makes PSI infinite; with it, a new category at 5% of traffic scores about 0.35 against a
20,000-row reference. Default threshold 0.2, the industry convention for a "significant" shift;
the verdict does not use it (see :mod:`otel_ml.stats`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ._common import DEFAULT_SMOOTHING, FloatArray, active, as_batch, smoothed_proportions
from ._registry import Statistic, register

DEFAULT_THRESHOLD = 0.2


def psi(
    reference: npt.ArrayLike,
    current: npt.ArrayLike,
    *,
    smoothing: float | FloatArray = DEFAULT_SMOOTHING,
    **_: object,
) -> FloatArray:
    """PSI of each row of ``current`` against the same row of ``reference`` (``float64[S]``).

    ``smoothing`` is one pseudo-count for all rows, or one per row shaped ``[S, 1]``.
    """
    ref, cur = as_batch(reference, current)
    mask = active(ref, cur)
    p = smoothed_proportions(ref, mask, smoothing)
    q = smoothed_proportions(cur, mask, smoothing)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(mask, (q - p) * np.log(q / p), 0.0)
    out = terms.sum(axis=1)
    empty = (ref.sum(axis=1) <= 0) | (cur.sum(axis=1) <= 0)
    out[empty] = np.nan
    return out


STATISTIC = register(
    Statistic(
        name="psi",
        compute=psi,
        default_threshold=DEFAULT_THRESHOLD,
        kinds=frozenset({"numeric", "categorical"}),
        description="Population Stability Index, buckets smoothed with a pseudo-count of 0.5",
    )
)
