"""The data-quality alarm: a quality ratio (missing, invalid, out-of-range, unseen) has risen.

The alarm fires when the window's ratio exceeds the reference ratio by at least
``policy.quality_min_increase`` (absolute, default 2 percentage points) *and* the rise is
significant: a one-sided binomial test of ``bad_count`` out of ``total_count`` against the
reference ratio at level ``policy.alpha / n_tests``. The floor keeps large windows from alarming on
a rise too small to matter; the test keeps small windows from alarming on noise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from .. import semconv
from .._reference import CategoricalProfile, NumericProfile
from ._policy import DriftPolicy
from ._verdict import NO_VERDICT

#: The data-quality kinds, in the order every part keeps them (spelled once, in :mod:`otel_ml.semconv`).
QUALITY_KINDS = semconv.QUALITY_KINDS


def reference_ratios(profile: NumericProfile | CategoricalProfile) -> dict[str, float]:
    """The reference's ratio of each quality kind that applies to the profile, in :data:`QUALITY_KINDS` order.

    Numeric: missing, invalid and out_of_range (0: the reference defines the range); categorical:
    missing and unseen (the share of the reference's "other" bucket).
    """
    rows = profile.rows or 1
    if isinstance(profile, NumericProfile):
        # The reconstruction-error stream's range ends at the outlier threshold, its top edge: the
        # reference's out-of-range share is the training share above it (about 1 - outlier_quantile).
        oor = profile.counts[-1] / rows if profile.name == semconv.RECONSTRUCTION_ERROR_FEATURE else 0.0
        return {"missing": profile.missing / rows, "invalid": profile.invalid / rows, "out_of_range": oor}
    return {"missing": profile.missing / rows, "unseen": profile.other_count / rows}


def quality_p_value(
    reference_ratio: npt.ArrayLike, bad_count: npt.ArrayLike, total_count: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """One-sided p-value of ``bad_count`` bad rows out of ``total_count`` given the reference ratio:
    ``P(X >= bad)`` under ``Binomial(total, reference_ratio)`` (1 without bad rows). With a reference
    ratio of 0 any bad row is "significant": the minimum increase decides. Vectorised."""
    p0 = np.clip(np.nan_to_num(np.asarray(reference_ratio, dtype=np.float64), nan=0.0), 0.0, 1.0)
    k = np.rint(np.asarray(bad_count, dtype=np.float64))
    n = np.rint(np.asarray(total_count, dtype=np.float64))
    with np.errstate(invalid="ignore"):
        from scipy import special  # lazily: `import otel_ml.stats` needs numpy only (core install)

        tail = special.bdtrc(np.maximum(k - 1, 0).astype(np.int64), np.maximum(n, k).astype(np.int64), p0)
    return np.asarray(np.where(k > 0, tail, 1.0), dtype=np.float64)


def quality_alarm(
    reference_ratio: npt.ArrayLike,
    bad_count: npt.ArrayLike,
    total_count: npt.ArrayLike,
    *,
    policy: DriftPolicy | Sequence[DriftPolicy] = DriftPolicy(),
    n_tests: int | npt.ArrayLike = 1,
) -> tuple[npt.NDArray[np.float64] | float, npt.NDArray[np.int8] | int]:
    """``(ratio, alarm)``: the window ratio and 1 (alarm), 0 (none) or -1 (fewer than ``min_samples`` rows).

    Vectorised: array arguments give arrays back; scalars give a float and an int. ``policy`` may
    be one policy or one per element; ``n_tests`` (the number of streams judged together, for a
    Bonferroni correction of the test) a scalar or one per element.
    """
    ref = np.asarray(reference_ratio, dtype=np.float64)
    bad = np.asarray(bad_count, dtype=np.float64)
    total = np.asarray(total_count, dtype=np.float64)
    scalar = ref.ndim == 0 and bad.ndim == 0 and total.ndim == 0
    ref, bad, total = np.broadcast_arrays(np.atleast_1d(ref), np.atleast_1d(bad), np.atleast_1d(total))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(total > 0, bad / total, np.nan)
    p0 = np.clip(np.nan_to_num(ref, nan=0.0), 0.0, 1.0)
    p = quality_p_value(p0, bad, total)
    alpha: float | npt.NDArray[np.float64]
    increase: float | npt.NDArray[np.float64]
    min_samples: int | npt.NDArray[np.int64]
    if isinstance(policy, DriftPolicy):
        alpha, increase, min_samples = policy.alpha, policy.quality_min_increase, policy.min_samples
    else:
        policies = list(policy)
        if len(policies) != ratio.shape[0]:
            raise ValueError(f"policy sequence has {len(policies)} entries for {ratio.shape[0]} values")
        alpha = np.array([q.alpha for q in policies], dtype=np.float64)
        increase = np.array([q.quality_min_increase for q in policies], dtype=np.float64)
        min_samples = np.array([q.min_samples for q in policies], dtype=np.int64)
    level = alpha / np.asarray(n_tests, dtype=np.float64)
    alarm = (ratio - p0 >= increase - 1e-12) & (p < level)
    out = np.where(total >= min_samples, alarm.astype(np.int8), np.int8(NO_VERDICT)).astype(np.int8)
    if scalar:
        return float(ratio[0]), int(out[0])
    return ratio, out


def segment_quality(
    reference_ratio: npt.ArrayLike,
    bad_count: npt.ArrayLike,
    rows: npt.ArrayLike,
    features: npt.ArrayLike,
    family: npt.ArrayLike,
    policy: Sequence[DriftPolicy],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int8], npt.NDArray[np.float64]]:
    """The data-quality verdict of ``S`` segment values: ``(ratio, p_adjusted, alarm, excess)``.

    Per value (row) and kind (column of ``reference_ratio`` / ``bad_count``, ``float64[S, K]``): the ratio
    ``bad / (rows x features)``, alarmed when it rises by ``quality_min_increase`` over the reference ratio and
    the one-sided binomial test (:func:`quality_p_value`), Holm-adjusted across the kinds of the values sharing
    a ``family`` id, is below ``alpha``. ``alarm`` is 1, 0, or -1 (fewer than ``min_samples`` rows, or a NaN
    reference ratio: no profile); ``excess`` is the largest ``ratio - reference ratio`` (NaN without verdict).
    The processor (per window) and ``otel-ml drift`` (per file) both judge segments with it.
    """
    from ._verdict import adjust_p_values

    ref = np.asarray(reference_ratio, dtype=np.float64)
    bad = np.asarray(bad_count, dtype=np.float64)
    n = np.asarray(rows, dtype=np.float64)
    k = ref.shape[1] if ref.ndim == 2 else 0
    total = n * np.asarray(features, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(total[:, None] > 0, bad / total[:, None], np.nan)
    policies = list(policy)
    min_samples = np.array([p.min_samples for p in policies], dtype=np.float64)
    alpha = np.array([p.alpha for p in policies], dtype=np.float64)
    increase = np.array([p.quality_min_increase for p in policies], dtype=np.float64)
    judged = (n >= min_samples) & np.isfinite(ref).all(axis=1)
    p_raw = np.where(judged[:, None], quality_p_value(ref, bad, np.repeat(total[:, None], k, axis=1)), np.nan)
    p_adj = adjust_p_values(p_raw.ravel(), np.repeat(np.asarray(family), k), "holm").reshape(-1, k)
    diff = ratio - ref
    kind_alarm = (diff >= increase[:, None] - 1e-12) & (p_adj < alpha[:, None])
    alarm = np.where(judged, kind_alarm.any(axis=1).astype(np.int8), np.int8(NO_VERDICT)).astype(np.int8)
    excess = np.where(judged, np.where(np.isfinite(diff), diff, -np.inf).max(axis=1, initial=-np.inf), np.nan)
    return ratio, p_adj, alarm, excess
