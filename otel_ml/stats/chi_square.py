"""Chi-square test of homogeneity between the current window and the reference counts.

Both the reference and the window are finite samples, so the test is the two-sample one: a
``2 x B`` contingency table (reference row, current row) over the buckets either side has seen,
expected counts from the margins, ``B_active - 1`` degrees of freedom. Buckets whose smaller
expected count is below ``pool_expected`` (default 5, Cochran's rule) are pooled into one bucket
first, so sparse categories do not inflate the statistic's tail. ``method="g_test"`` uses the
likelihood-ratio (G) statistic on the same table instead.

Returns the statistic and its p-value. Default threshold: the p-value 0.05 (drift below it).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ._common import FloatArray, active, as_batch
from ._registry import Statistic, register

DEFAULT_THRESHOLD = 0.05
DEFAULT_POOL_EXPECTED = 5.0


def chi_square_test(
    reference: npt.ArrayLike,
    current: npt.ArrayLike,
    *,
    pool_expected: float | npt.ArrayLike = DEFAULT_POOL_EXPECTED,
    method: str = "chi_square",
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Homogeneity test of each row pair: ``(statistic, p_value, dof)``, each ``float64[S]``.

    A row where either side has no counts, or with fewer than two (pooled) buckets, gets
    statistic 0, p-value 1 and 0 degrees of freedom.
    """
    if method not in ("chi_square", "g_test"):
        raise ValueError(f"method must be 'chi_square' or 'g_test', got {method!r}")
    ref, cur = as_batch(reference, current)
    n_ref = ref.sum(axis=1, keepdims=True)
    n_cur = cur.sum(axis=1, keepdims=True)
    total = n_ref + n_cur
    col = ref + cur
    with np.errstate(divide="ignore", invalid="ignore"):
        e_ref = col * (n_ref / total)
        e_cur = col * (n_cur / total)
    mask = active(ref, cur)
    threshold = np.asarray(pool_expected, dtype=np.float64)
    if threshold.ndim == 1:
        threshold = threshold[:, None]
    small = mask & (np.minimum(e_ref, e_cur) < threshold)
    big = mask & ~small
    # One pooled bucket per row gathers the small ones.
    pooled_ref = np.where(small, ref, 0.0).sum(axis=1)
    pooled_cur = np.where(small, cur, 0.0).sum(axis=1)
    pooled_e_ref = np.where(small, e_ref, 0.0).sum(axis=1)
    pooled_e_cur = np.where(small, e_cur, 0.0).sum(axis=1)
    has_pool = (pooled_ref + pooled_cur) > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "chi_square":
            cells = np.where(big, (ref - e_ref) ** 2 * (1.0 / e_ref + 1.0 / e_cur), 0.0).sum(axis=1)
            pool = np.where(
                has_pool, (pooled_ref - pooled_e_ref) ** 2 * (1.0 / pooled_e_ref + 1.0 / pooled_e_cur), 0.0
            )
        else:
            cells = 2.0 * (_g_terms(ref, e_ref, big) + _g_terms(cur, e_cur, big)).sum(axis=1)
            pool = 2.0 * (_g_terms(pooled_ref, pooled_e_ref, has_pool) + _g_terms(pooled_cur, pooled_e_cur, has_pool))
    stat = cells + pool
    dof = big.sum(axis=1) + has_pool - 1.0
    valid = (dof >= 1) & (n_ref[:, 0] > 0) & (n_cur[:, 0] > 0) & np.isfinite(stat)
    stat = np.where(valid, np.maximum(stat, 0.0), 0.0)
    dof = np.where(valid, dof, 0.0)
    p_value = np.ones_like(stat)
    if valid.any():
        from scipy import special  # lazily: `import otel_ml.stats` needs numpy only (core install)

        p_value[valid] = special.chdtrc(dof[valid], stat[valid])
    return stat, p_value, dof


def _g_terms(observed: FloatArray, expected: FloatArray, mask: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(mask & (observed > 0), observed * np.log(observed / expected), 0.0)


def chi_square(reference: npt.ArrayLike, current: npt.ArrayLike, **context: object) -> FloatArray:
    """The homogeneity statistic of each row pair (``float64[S]``)."""
    kwargs = {k: context[k] for k in ("pool_expected", "method") if k in context}
    return chi_square_test(reference, current, **kwargs)[0]  # type: ignore[arg-type]


STATISTIC = register(
    Statistic(
        name="chi_square",
        compute=chi_square,
        default_threshold=DEFAULT_THRESHOLD,
        kinds=frozenset({"numeric", "categorical"}),
        description="two-sample chi-square homogeneity statistic; threshold is on its p-value",
        higher_is_drift=False,
    )
)
