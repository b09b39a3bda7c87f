"""Total variation distance on binned counts: the share of traffic that moved between buckets.

``TV = 0.5 * sum_i |p_i - q_i|``, in [0, 1]. A new category taking 5% of traffic scores 0.05; a
category whose share goes from 40% to 48% scores 0.08. Default threshold 0.03: the categorical
effect-size floor of the verdict.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ._common import FloatArray, as_batch, proportions
from ._registry import Statistic, register

DEFAULT_THRESHOLD = 0.03


def total_variation(reference: npt.ArrayLike, current: npt.ArrayLike, **_: object) -> FloatArray:
    """Half the L1 distance between the row proportions (``float64[S]``)."""
    ref, cur = as_batch(reference, current)
    return 0.5 * np.abs(proportions(ref) - proportions(cur)).sum(axis=1)


STATISTIC = register(
    Statistic(
        name="total_variation",
        compute=total_variation,
        default_threshold=DEFAULT_THRESHOLD,
        reported=False,
        kinds=frozenset({"numeric", "categorical"}),
        description="total variation distance: share of the mass that moved",
    )
)
