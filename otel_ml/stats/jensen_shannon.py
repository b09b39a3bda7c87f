"""Jensen-Shannon distance on binned counts (base-2 logarithms, so it lies in [0, 1]).

The square root of the Jensen-Shannon divergence between the reference and current bucket
proportions. It is finite without smoothing (the mixture is never zero where either side is not),
so none is applied. Matches ``scipy.spatial.distance.jensenshannon(p, q, base=2)``.
Default threshold 0.1.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ._common import FloatArray, as_batch, proportions
from ._registry import Statistic, register

DEFAULT_THRESHOLD = 0.1


def _kl_terms(a: FloatArray, m: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(a > 0, a * np.log2(a / m), 0.0)


def jensen_shannon(reference: npt.ArrayLike, current: npt.ArrayLike, **_: object) -> FloatArray:
    """Jensen-Shannon distance of each row pair (``float64[S]``; NaN for an empty row)."""
    ref, cur = as_batch(reference, current)
    p = proportions(ref)
    q = proportions(cur)
    m = 0.5 * (p + q)
    divergence = 0.5 * (_kl_terms(p, m).sum(axis=1) + _kl_terms(q, m).sum(axis=1))
    return np.sqrt(np.clip(divergence, 0.0, 1.0))


STATISTIC = register(
    Statistic(
        name="jensen_shannon",
        compute=jensen_shannon,
        default_threshold=DEFAULT_THRESHOLD,
        kinds=frozenset({"numeric", "categorical"}),
        description="Jensen-Shannon distance, base 2, in [0, 1]",
    )
)
