"""Binned Kolmogorov-Smirnov statistic: the largest gap between the two cumulative distributions.

Evaluated at the bucket edges only, so it is a lower bound of the raw-sample KS statistic and
equals it when every distinct value has its own bucket. Meaningful for ordered (numeric) buckets
only: the caller passes ``numeric`` and gets NaN for categorical rows. Default threshold 0.1.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ._common import FloatArray, as_batch, cdf_gap, numeric_only
from ._registry import Statistic, register

DEFAULT_THRESHOLD = 0.1


def ks(
    reference: npt.ArrayLike, current: npt.ArrayLike, *, numeric: npt.ArrayLike | None = None, **_: object
) -> FloatArray:
    """max_i |F_ref(i) - F_cur(i)| for each row (``float64[S]``); NaN where ``numeric`` is False."""
    ref, cur = as_batch(reference, current)
    gap = cdf_gap(ref, cur)
    out = gap.max(axis=1) if gap.shape[1] else np.zeros(gap.shape[0])
    return numeric_only(out, numeric)


STATISTIC = register(
    Statistic(
        name="ks",
        compute=ks,
        default_threshold=DEFAULT_THRESHOLD,
        kinds=frozenset({"numeric"}),
        description="largest gap between the cumulative bucket distributions (numeric only)",
    )
)
