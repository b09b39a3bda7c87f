"""The drift verdict: significance corrected across a model's streams, gated by an effect-size floor.

A stream (one feature or output of one model, over one window) with at least
``policy.min_samples`` rows is *drifted* when

1. the two-sample chi-square homogeneity test of its bucket counts against the reference counts
   (:mod:`.chi_square`; the reference is a finite sample too) has a p-value below ``alpha`` after
   Holm's step-down correction across the streams of the same family (one model evaluation), and
2. the change is large enough to matter: numeric streams need a binned Wasserstein distance of at
   least ``wasserstein_floor`` reference standard deviations *or* an interquartile range changed by
   a log ratio of at least ``dispersion_floor``; categorical streams a total variation distance of
   at least ``total_variation_floor``.

Below ``min_samples`` rows there is no verdict (``detected = -1`` / ``None``), visibly.

:func:`evaluate_batch` judges many streams (model x feature) at once, fully vectorised over the
stream axis; :func:`evaluate_profile` judges one feature against its reference profile and
:func:`evaluate_profiles` a model's features together.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from .._reference import CategoricalProfile, NumericProfile
from ._common import FloatArray, as_batch
from ._policy import DriftPolicy
from ._registry import drift_methods
from .chi_square import chi_square_test
from .dispersion import dispersion
from .jensen_shannon import jensen_shannon
from .ks import ks
from .psi import psi
from .total_variation import total_variation
from .wasserstein import wasserstein

Int8Array = npt.NDArray[np.int8]
#: ``detected`` of a stream that cannot be judged (too few rows, no reference counts): neither drift
#: nor no drift. The processor exports no ``ml.drift.detected`` / ``ml.quality.alarm`` point for it.
NO_VERDICT = -1


@dataclass(frozen=True)
class BatchDrift:
    """Scores and verdicts of ``S`` streams; every field is an array of shape ``[S]``.

    ``wasserstein``, ``ks`` and ``dispersion`` (log ratio of interquartile ranges) are NaN for
    categorical streams. ``detected`` is int8: 1 drift, 0 no drift, -1 no verdict (fewer than
    ``min_samples`` rows in the window, or no reference counts). ``p_adjusted`` is the p-value after
    the family correction (NaN without verdict). ``effect`` is the location statistic the floor was
    applied to (Wasserstein for numeric, total variation for categorical) and ``effect_floor``
    that floor; numeric streams may also pass on ``|dispersion| >= policy.dispersion_floor``.
    """

    sample_count: FloatArray
    psi: FloatArray
    jensen_shannon: FloatArray
    ks: FloatArray
    wasserstein: FloatArray
    chi_square: FloatArray
    p_value: FloatArray
    p_adjusted: FloatArray
    detected: Int8Array
    total_variation: FloatArray
    dof: FloatArray
    effect: FloatArray
    effect_floor: FloatArray
    dispersion: FloatArray

    def __len__(self) -> int:
        return int(self.detected.shape[0])

    def result(self, i: int) -> DriftResult:
        """Stream ``i`` as a :class:`DriftResult`."""
        values = {f.name: float(getattr(self, f.name)[i]) for f in fields(DriftResult) if f.name != "detected"}
        d = int(self.detected[i])
        values["sample_count"] = int(values["sample_count"])
        return DriftResult(detected=None if d == NO_VERDICT else bool(d), **values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class DriftResult:
    """Scores and verdict of one stream; ``detected`` is None when there is no verdict."""

    sample_count: int
    psi: float
    jensen_shannon: float
    ks: float
    wasserstein: float
    chi_square: float
    p_value: float
    p_adjusted: float
    detected: bool | None
    total_variation: float = math.nan
    dof: float = math.nan
    effect: float = math.nan
    effect_floor: float = math.nan
    dispersion: float = math.nan

    def scores(self) -> dict[str, float]:
        """Score per ``ml.drift.method`` name (NaN ones left out)."""
        named = {m: getattr(self, m) for m in drift_methods()}
        return {k: v for k, v in named.items() if not math.isnan(v)}


# --- Reference profiles as arrays ---------------------------------------------------------------


def profile_arrays(profile: NumericProfile | CategoricalProfile) -> tuple[FloatArray, FloatArray | None, float]:
    """``(reference_counts, positions, spread)`` of a profile, as :func:`evaluate_batch` takes them.

    Categorical: the bucket counts (categories, then ``__other__``), ``None``, NaN.

    Numeric: the ``len(edges) + 1`` bucket counts; one position per bucket where its mass is
    taken to sit for the binned Wasserstein distance; and the reference standard deviation as
    the spread. Inner bucket ``(a, b]`` sits at its midpoint (for an integer-valued feature -
    edges, min and max all integers - at the midpoint of the integers ``a+1 .. b`` it holds). The
    outer buckets are closed by the reference minimum and maximum, but sit no further from their
    edge than half the width of their inner neighbour: the midpoint of ``[min, e0]`` would hang
    on one extreme observation, which on heavy-tailed features (Student t, Pareto) both varies
    from reference to reference and inflates the distance of a small shift several-fold.

    Why the standard deviation, not a robust scale: drift that matters is stated in standard
    deviations (the calibration targets are), and with it a shift by ``d`` standard deviations
    scores about ``d`` on any shape; a robust scale (IQR) would make the same shift score 2-2.5x
    more on lognormal or Pareto features than on normal ones. References hold thousands of rows,
    which keeps the standard deviation stable for any feature with a finite variance.
    """
    if isinstance(profile, CategoricalProfile):
        return np.asarray(profile.bucket_counts, dtype=np.float64), None, math.nan
    counts = np.asarray(profile.counts, dtype=np.float64)
    positions = bucket_positions(np.asarray(profile.edges, dtype=np.float64), profile.min, profile.max, profile.mean)
    spread = profile.std if (math.isfinite(profile.std) and profile.std > 0) else 1.0
    return counts, positions, float(spread)


def bucket_positions(edges: FloatArray, vmin: float, vmax: float, mean: float = math.nan) -> FloatArray:
    """Representative position of each OTel explicit bucket (see :func:`profile_arrays`)."""
    n = edges.shape[0]
    if n == 0:
        return np.array([mean if math.isfinite(mean) else 0.5 * (vmin + vmax)], dtype=np.float64)
    vmin = min(vmin, float(edges[0]))
    vmax = max(vmax, float(edges[-1]))
    integer = bool(np.all(np.mod(edges, 1.0) == 0) and float(vmin).is_integer() and float(vmax).is_integer())
    step = 1.0 if integer else 0.0
    lo = np.concatenate(([vmin], edges + step))
    hi = np.concatenate((edges, [vmax]))
    if integer:  # the top bucket (e_last, max] starts at e_last + 1 <= max
        lo[-1] = min(lo[-1], vmax)
    pos = 0.5 * (lo + hi)
    if n >= 2:
        first_width = hi[1] - lo[1]
        last_width = hi[-2] - lo[-2]
        pos[0] = max(pos[0], hi[0] - 0.5 * first_width - 0.5 * step)
        pos[-1] = min(pos[-1], lo[-1] + 0.5 * last_width + 0.5 * step)
    return pos


# --- Multiple testing ---------------------------------------------------------------------------


def adjust_p_values(p: FloatArray, family: npt.ArrayLike, method: str = "holm") -> FloatArray:
    """Family-wise adjusted p-values (Holm step-down or Bonferroni) within each family id.

    NaN p-values take no part (and stay NaN): they are not counted in their family's size.
    """
    p = np.asarray(p, dtype=np.float64)
    fam = np.asarray(family)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if method == "none":
        out[ok] = p[ok]
        return out
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return out
    pv = p[idx]
    fv = fam[idx]
    order = np.lexsort((pv, fv))
    fs = fv[order]
    ps = pv[order]
    _, start, inverse, size = np.unique(fs, return_index=True, return_inverse=True, return_counts=True)
    m = size[inverse].astype(np.float64)
    if method == "bonferroni":
        adj = np.minimum(1.0, ps * m)
    elif method == "holm":
        rank = np.arange(fs.shape[0]) - start[inverse]
        raw = np.minimum(1.0, (m - rank) * ps)
        offset = 2.0 * inverse  # keeps the running maximum inside each (contiguous) family
        adj = np.maximum.accumulate(raw + offset) - offset
    else:
        raise ValueError(f"unknown correction {method!r}")
    res = np.empty_like(adj)
    res[order] = adj
    out[idx] = res
    return out


# --- Verdicts -----------------------------------------------------------------------------------

_POLICY_ARRAYS = (
    "alpha",
    "min_samples",
    "wasserstein_floor",
    "dispersion_floor",
    "total_variation_floor",
    "pool_expected",
    "smoothing",
)


_PolicyArrays = dict[str, "FloatArray | float"]
_PolicyGroups = list[tuple[str, str, npt.NDArray[np.bool_]]]


def _policy_arrays(policy: DriftPolicy | Sequence[DriftPolicy], s: int) -> tuple[_PolicyArrays, _PolicyGroups]:
    if isinstance(policy, DriftPolicy):
        scalars: _PolicyArrays = {k: float(getattr(policy, k)) for k in _POLICY_ARRAYS}
        return scalars, [(policy.correction, policy.test, np.ones(s, dtype=bool))]
    policies = list(policy)
    if len(policies) != s:
        raise ValueError(f"policy sequence has {len(policies)} entries for {s} streams")
    uniq: dict[int, int] = {}
    distinct: list[DriftPolicy] = []
    which = np.empty(s, dtype=np.int64)
    for i, pol in enumerate(policies):
        if not isinstance(pol, DriftPolicy):
            raise TypeError(f"policy[{i}] is not a DriftPolicy")
        j = uniq.get(id(pol))
        if j is None:
            j = uniq[id(pol)] = len(distinct)
            distinct.append(pol)
        which[i] = j
    arrays: _PolicyArrays = {k: np.array([float(getattr(pol, k)) for pol in distinct])[which] for k in _POLICY_ARRAYS}
    groups: dict[tuple[str, str], npt.NDArray[np.bool_]] = {}
    for j, pol in enumerate(distinct):
        key = (pol.correction, pol.test)
        sel = which == j
        groups[key] = groups[key] | sel if key in groups else sel
    return arrays, [(c, t, m) for (c, t), m in groups.items()]


def evaluate_batch(
    reference: npt.ArrayLike,
    current: npt.ArrayLike,
    *,
    numeric: npt.ArrayLike,
    positions: npt.ArrayLike,
    spread: npt.ArrayLike,
    family: npt.ArrayLike,
    policy: DriftPolicy | Sequence[DriftPolicy] = DriftPolicy(),
) -> BatchDrift:
    """Scores and verdicts of ``S`` streams (rows) at once.

    ``reference`` and ``current`` are ``float64[S, B]`` bucket counts (rows zero-padded on the
    right as needed), ``numeric`` ``bool[S]``, ``positions`` ``float64[S, B]`` (NaN rows for
    categorical streams; see :func:`profile_arrays`), ``spread`` ``float64[S]``, ``family``
    ``int64[S]`` (streams of one model evaluation share an id: the multiple-testing correction runs
    across them), ``policy`` one :class:`DriftPolicy` or one per stream.
    """
    ref, cur = as_batch(reference, current)
    s = ref.shape[0]
    num = np.broadcast_to(np.asarray(numeric, dtype=bool), (s,))
    pos = np.asarray(positions, dtype=np.float64)
    if pos.shape != ref.shape:
        raise ValueError(f"positions must have shape {ref.shape}, got {pos.shape}")
    spr = np.broadcast_to(np.asarray(spread, dtype=np.float64), (s,))
    fam = np.broadcast_to(np.asarray(family), (s,))
    pa, groups = _policy_arrays(policy, s)

    n_cur = cur.sum(axis=1)
    n_ref = ref.sum(axis=1)
    stat = np.zeros(s)
    p_value = np.ones(s)
    dof = np.zeros(s)
    for _, test, sel in groups:
        if sel.all():
            stat, p_value, dof = chi_square_test(ref, cur, pool_expected=pa["pool_expected"], method=test)
        else:
            pool = pa["pool_expected"]
            pool_sel = pool[sel] if isinstance(pool, np.ndarray) else pool
            stat[sel], p_value[sel], dof[sel] = chi_square_test(ref[sel], cur[sel], pool_expected=pool_sel, method=test)

    smoothing = pa["smoothing"]
    psi_v = psi(ref, cur, smoothing=smoothing[:, None] if isinstance(smoothing, np.ndarray) else smoothing)
    js_v = jensen_shannon(ref, cur)
    ks_v = ks(ref, cur, numeric=num)
    safe_pos = np.where(num[:, None], pos, np.nan)
    w_v = wasserstein(ref, cur, positions=safe_pos, spread=spr, numeric=num)
    tv_v = total_variation(ref, cur)
    disp_v = dispersion(ref, cur, positions=safe_pos, numeric=num)

    judged = (n_cur >= pa["min_samples"]) & (n_ref > 0)
    p_for_family = np.where(judged, p_value, np.nan)
    p_adj = np.full(s, np.nan)
    for correction, _, sel in groups:
        adj = adjust_p_values(p_for_family, fam, correction)
        p_adj[sel] = adj[sel]

    effect = np.where(num, w_v, tv_v)
    floor = np.where(num, pa["wasserstein_floor"], pa["total_variation_floor"])
    large = (effect >= floor) | (num & (np.abs(disp_v) >= pa["dispersion_floor"]))
    drift = judged & (p_adj < pa["alpha"]) & large
    detected = np.where(judged, drift.astype(np.int8), np.int8(NO_VERDICT)).astype(np.int8)
    return BatchDrift(
        sample_count=n_cur,
        psi=psi_v,
        jensen_shannon=js_v,
        ks=ks_v,
        wasserstein=w_v,
        chi_square=stat,
        p_value=p_value,
        p_adjusted=p_adj,
        detected=detected,
        total_variation=tv_v,
        dof=dof,
        effect=effect,
        effect_floor=np.asarray(floor, dtype=np.float64),
        dispersion=disp_v,
    )


def evaluate_profiles(
    profiles: Sequence[NumericProfile | CategoricalProfile],
    current_counts: Sequence[npt.ArrayLike],
    *,
    policy: DriftPolicy | Sequence[DriftPolicy] = DriftPolicy(),
) -> list[DriftResult]:
    """Judge several features of one model together (one family: Holm/Bonferroni across them)."""
    if len(profiles) != len(current_counts):
        raise ValueError("profiles and current_counts must have the same length")
    if not profiles:
        return []
    arrays = [profile_arrays(p) for p in profiles]
    width = max(a[0].shape[0] for a in arrays)
    s = len(profiles)
    ref = np.zeros((s, width))
    cur = np.zeros((s, width))
    pos = np.full((s, width), np.nan)
    spread = np.full(s, np.nan)
    numeric = np.zeros(s, dtype=bool)
    for i, ((counts, positions, spr), current) in enumerate(zip(arrays, current_counts)):
        c = np.asarray(current, dtype=np.float64)
        if c.shape != counts.shape:
            raise ValueError(
                f"current counts of {profiles[i].name!r} have {c.shape[0] if c.ndim == 1 else c.shape} buckets, "
                f"the reference has {counts.shape[0]}"
            )
        ref[i, : counts.shape[0]] = counts
        cur[i, : counts.shape[0]] = c
        if positions is not None:
            pos[i, : positions.shape[0]] = positions
            numeric[i] = True
            spread[i] = spr
    batch = evaluate_batch(ref, cur, numeric=numeric, positions=pos, spread=spread,
                           family=np.zeros(s, dtype=np.int64), policy=policy)
    return [batch.result(i) for i in range(s)]


def evaluate_profile(
    profile: NumericProfile | CategoricalProfile,
    current_counts: npt.ArrayLike,
    *,
    policy: DriftPolicy = DriftPolicy(),
    n_tests: int = 1,
) -> DriftResult:
    """Judge one feature's window counts against its reference profile.

    ``n_tests`` is the number of streams judged together with this one (Bonferroni across them);
    to judge a model's features together with Holm's correction use :func:`evaluate_profiles`.
    """
    if n_tests < 1:
        raise ValueError(f"n_tests must be >= 1, got {n_tests}")
    result = evaluate_profiles([profile], [current_counts], policy=policy)[0]
    if n_tests == 1 or result.detected is None:
        return result
    p_adj = min(1.0, result.p_value * n_tests)
    large = result.effect >= result.effect_floor or abs(result.dispersion) >= policy.dispersion_floor
    detected = p_adj < policy.alpha and large
    kept = {f.name: getattr(result, f.name) for f in fields(DriftResult)}
    return DriftResult(**{**kept, "p_adjusted": p_adj, "detected": detected})
