"""The drift score's bootstrap interval (otel_ml.stats.effect_interval)."""

from __future__ import annotations

import numpy as np
import pytest

from otel_ml.stats import effect_interval, effect_size, evaluate_batch
from otel_ml.stats.effect_bootstrap import _resampled, resample_proportions

B = 12
POS = np.arange(B, dtype=float)


def windows(rng: np.random.Generator, rows: int, shift: float = 0.0, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    base = np.exp(-0.5 * ((POS - 5.5) / 2.0) ** 2)
    moved = np.exp(-0.5 * ((POS - 5.5 - shift) / 2.0) ** 2)
    ref = np.tile(base / base.sum() * 20_000, (k, 1))
    cur = np.array([rng.multinomial(rows, moved / moved.sum()) for _ in range(k)], dtype=float)
    return ref, cur


def interval(ref: np.ndarray, cur: np.ndarray, numeric: bool = True, **kw):
    s = len(ref)
    return effect_interval(ref, cur, numeric=np.full(s, numeric), positions=np.tile(POS, (s, 1)),
                           spread=np.full(s, 2.0), **kw)


def test_effect_size_is_the_verdicts_effect() -> None:
    ref, cur = windows(np.random.default_rng(1), 800, 0.7, k=4)
    num = np.array([True, False, True, False])
    pos = np.tile(POS, (4, 1))
    pos[~num] = np.nan
    got = effect_size(ref, cur, numeric=num, positions=pos, spread=np.full(4, 2.0))
    batch = evaluate_batch(ref, cur, numeric=num, positions=pos, spread=np.full(4, 2.0), family=np.zeros(4))
    np.testing.assert_allclose(got, batch.effect)


@pytest.mark.parametrize("numeric", [True, False])
def test_resampled_effects_are_the_effect_of_the_resampled_proportions(numeric: bool) -> None:
    ref, cur = windows(np.random.default_rng(2), 700, 0.5, k=3)
    p = cur / cur.sum(axis=1, keepdims=True)
    z = np.random.default_rng(3).standard_normal((50, B))
    draws = resample_proportions(p, cur.sum(axis=1), z)
    weight = np.tile(np.diff(POS) / 2.0, (3, 1)) if numeric else None
    fast = _resampled(ref / ref.sum(axis=1, keepdims=True), p, cur.sum(axis=1), z, weight)
    direct = effect_size(np.repeat(ref, 50, axis=0), draws.reshape(-1, B), numeric=np.full(150, numeric),
                         positions=np.tile(POS, (150, 1)), spread=np.full(150, 2.0)).reshape(3, 50)
    np.testing.assert_allclose(fast, direct, rtol=1e-6, atol=1e-9)  # float32 inside


def test_resampled_proportions_have_the_multinomial_mean_and_covariance() -> None:
    p = np.array([[0.5, 0.3, 0.15, 0.05]])
    n = np.array([400.0])
    z = np.random.default_rng(4).standard_normal((200_000, 4))
    draws = resample_proportions(p, n, z)[0]
    np.testing.assert_allclose(draws.mean(axis=0), p[0], atol=2e-3)
    expected = (np.diag(p[0]) - np.outer(p[0], p[0])) / n[0]
    np.testing.assert_allclose(np.cov(draws.T), expected, atol=2e-5)
    np.testing.assert_allclose(draws.sum(axis=1), 1.0)


@pytest.mark.parametrize("numeric", [True, False])
def test_interval_contains_the_estimate_narrows_with_rows_and_is_seeded(numeric: bool) -> None:
    rng = np.random.default_rng(5)
    ref, small = windows(rng, 500, 1.0)
    _, large = windows(rng, 50_000, 1.0)
    lo, hi = interval(np.vstack([ref, ref]), np.vstack([small, large]), numeric)
    est = effect_size(np.vstack([ref, ref]), np.vstack([small, large]), numeric=np.full(2, numeric),
                      positions=np.tile(POS, (2, 1)), spread=np.full(2, 2.0))
    assert (lo <= est).all() and (est <= hi).all() and (lo < hi).all()
    assert hi[1] - lo[1] < 0.2 * (hi[0] - lo[0])  # 100x the rows: about a tenth of the width
    again = interval(np.vstack([ref, ref]), np.vstack([small, large]), numeric)
    np.testing.assert_array_equal(again[0], lo)
    other = interval(np.vstack([ref, ref]), np.vstack([small, large]), numeric, seed=7)
    assert not np.array_equal(other[0], lo)
    # A stream's interval depends on its own counts only, not on the batch around it.
    alone = interval(ref, small, numeric)
    assert alone[0][0] == pytest.approx(lo[0], rel=1e-6) and alone[1][0] == pytest.approx(hi[0], rel=1e-6)


def test_rows_without_counts_have_no_interval_and_arguments_are_checked() -> None:
    ref, cur = windows(np.random.default_rng(6), 500, 0.0, k=2)
    cur[1] = 0
    lo, hi = interval(ref, cur)
    assert np.isfinite(lo[0]) and np.isnan(lo[1]) and np.isnan(hi[1])
    with pytest.raises(ValueError, match="resamples"):
        interval(ref, cur, resamples=1)
    with pytest.raises(ValueError, match="level"):
        interval(ref, cur, level=1.0)


def test_coverage_of_a_shifted_window_and_the_upward_bias_at_zero() -> None:
    """Seeded generator: a shifted window's interval covers the true distance about 95 % of the time;
    without a shift (true distance 0) it almost never does (docs/statistics.md)."""
    rng = np.random.default_rng(8)
    rows, trials = 2000, 300
    cover = {}
    for shift in (1.0, 0.0):
        ref, cur = windows(rng, rows, shift, k=trials)
        moved = np.exp(-0.5 * ((POS - 5.5 - shift) / 2.0) ** 2)
        truth = effect_size(ref[:1], moved[None, :], numeric=[True], positions=POS[None, :], spread=[2.0])[0]
        lo, hi = interval(ref, cur)
        cover[shift] = float(((lo <= truth) & (truth <= hi)).mean())
    assert 0.88 <= cover[1.0] <= 0.99
    assert cover[0.0] < 0.1
