"""Unit tests of otel_ml.stats: each statistic against independently computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st
from scipy.spatial.distance import jensenshannon as scipy_js

from otel_ml import ConfigurationError, build_reference, stats
from otel_ml._binning import bucket_counts
from otel_ml.stats import (
    STATISTICS,
    DriftPolicy,
    DriftResult,
    PolicyBook,
    adjust_p_values,
    bucket_positions,
    evaluate_batch,
    evaluate_profile,
    evaluate_profiles,
    get_statistic,
    profile_arrays,
    quality_alarm,
)
from otel_ml.stats.chi_square import chi_square_test
from otel_ml.stats.dispersion import dispersion
from otel_ml.stats.jensen_shannon import jensen_shannon
from otel_ml.stats.ks import ks
from otel_ml.stats.psi import psi
from otel_ml.stats.total_variation import total_variation
from otel_ml.stats.wasserstein import wasserstein


def _integer_samples(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two integer samples binned exactly: every value 0..6 has its own bucket."""
    rng = np.random.default_rng(seed)
    a = rng.poisson(2.0, 3000).clip(0, 6).astype(float)
    b = rng.poisson(2.6, 1000).clip(0, 6).astype(float)
    edges = np.arange(0.0, 6.0)  # buckets (-inf,0], (0,1], ..., (5, +inf) = {0}, {1}, ..., {6}
    return a, b, bucket_counts(a, edges).astype(float), bucket_counts(b, edges).astype(float)


# --- Registry ------------------------------------------------------------------------------------


def test_registry_names_and_default_thresholds() -> None:
    assert {"psi", "jensen_shannon", "ks", "wasserstein", "chi_square", "total_variation", "dispersion"} <= set(
        STATISTICS
    )
    assert get_statistic("psi").default_threshold == 0.2
    assert get_statistic("wasserstein").default_threshold == DriftPolicy().wasserstein_floor
    assert get_statistic("total_variation").default_threshold == DriftPolicy().total_variation_floor
    assert get_statistic("chi_square").higher_is_drift is False
    with pytest.raises(KeyError, match="unknown statistic 'nope'"):
        get_statistic("nope")


def test_drift_methods_are_the_registrys_reported_statistics_in_order() -> None:
    assert stats.DRIFT_METHODS == ("psi", "jensen_shannon", "ks", "wasserstein", "chi_square")
    assert tuple(name for name, s in STATISTICS.items() if s.reported) == stats.DRIFT_METHODS
    assert {"total_variation", "dispersion"} <= set(STATISTICS) - set(stats.DRIFT_METHODS)


def test_drift_result_scores_are_keyed_by_the_drift_methods() -> None:
    res = DriftResult(sample_count=10, psi=0.1, jensen_shannon=0.2, ks=0.3, wasserstein=0.4, chi_square=5.0,
                      p_value=0.5, p_adjusted=0.5, detected=False)
    assert tuple(res.scores()) == stats.DRIFT_METHODS
    assert res.scores()["chi_square"] == 5.0


@pytest.mark.parametrize(
    "field, module_constant",
    [
        ("alpha", "chi_square.DEFAULT_THRESHOLD"),
        ("pool_expected", "chi_square.DEFAULT_POOL_EXPECTED"),
        ("smoothing", "_common.DEFAULT_SMOOTHING"),
        ("wasserstein_floor", "wasserstein.DEFAULT_THRESHOLD"),
        ("dispersion_floor", "dispersion.DEFAULT_THRESHOLD"),
        ("total_variation_floor", "total_variation.DEFAULT_THRESHOLD"),
    ],
)
def test_policy_defaults_are_the_statistics_own_constants(field: str, module_constant: str) -> None:
    import importlib

    module, name = module_constant.split(".")
    constant = getattr(importlib.import_module(f"otel_ml.stats.{module}"), name)
    assert getattr(DriftPolicy(), field) == constant


def test_quality_alarm_without_enough_rows_is_no_verdict() -> None:
    ratio, alarm = quality_alarm(0.0, 5, 10, policy=DriftPolicy(min_samples=500))
    assert (ratio, alarm) == (0.5, stats.NO_VERDICT)


def test_package_docstring_lists_every_registered_statistic() -> None:
    import otel_ml.stats

    listed = otel_ml.stats.__doc__.split("in :data:`STATISTICS`:", 1)[1].split(".\n", 1)[0]
    assert sorted(n for n in STATISTICS if f"``{n}``" not in listed) == []


def test_registered_functions_compute_batches() -> None:
    ref = np.array([[10.0, 20.0, 30.0], [5.0, 5.0, 0.0]])
    cur = np.array([[12.0, 18.0, 30.0], [4.0, 6.0, 0.0]])
    pos = np.array([[0.0, 1.0, 2.0], [0.0, 1.0, np.nan]])
    for stat in STATISTICS.values():
        out = stat.compute(ref, cur, positions=pos, spread=np.ones(2), numeric=np.array([True, True]))
        assert out.shape == (2,)


# --- PSI -----------------------------------------------------------------------------------------


def test_psi_hand_computed_without_smoothing() -> None:
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert psi([50, 50], [25, 75], smoothing=1e-12)[0] == pytest.approx(expected, rel=1e-9)


def test_psi_smooths_an_empty_reference_bucket_to_a_finite_value() -> None:
    p = np.array([100.5, 0.5]) / 101.0
    q = np.array([95.5, 5.5]) / 101.0
    expected = float(((q - p) * np.log(q / p)).sum())
    value = psi([100, 0], [95, 5])[0]
    assert math.isfinite(value) and value == pytest.approx(expected)
    assert value > 0.1  # 5% in a never-seen bucket is a large PSI


def test_psi_ignores_padding_and_is_zero_for_identical_distributions() -> None:
    assert psi([10, 20, 0, 0], [10, 20, 0, 0])[0] == pytest.approx(0.0, abs=1e-12)
    assert psi([1000, 2000], [2000, 4000])[0] == pytest.approx(0.0, abs=1e-6)
    assert psi([10, 20, 0], [10, 25, 0])[0] == pytest.approx(psi([10, 20], [10, 25])[0])


# --- Jensen-Shannon ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "cur"),
    [
        pytest.param([1, 2, 3, 4], [4, 3, 2, 1], id="reversed"),
        pytest.param([10, 0, 5], [0, 10, 5], id="swapped_with_empty_bucket"),
        pytest.param([1, 0], [0, 1], id="disjoint"),
        pytest.param([3, 3], [3, 3], id="identical"),
    ],
)
def test_jensen_shannon_matches_scipy_base_2(ref: list[int], cur: list[int]) -> None:
    expected = scipy_js(np.array(ref, float), np.array(cur, float), base=2)
    assert jensen_shannon(ref, cur)[0] == pytest.approx(expected, abs=1e-9)


def test_jensen_shannon_of_disjoint_distributions_is_one() -> None:
    assert jensen_shannon([5, 0], [0, 7])[0] == pytest.approx(1.0)


# --- KS ------------------------------------------------------------------------------------------


def test_binned_ks_equals_scipy_ks_when_each_value_has_its_bucket() -> None:
    a, b, ca, cb = _integer_samples()
    assert ks(ca, cb)[0] == pytest.approx(st.ks_2samp(a, b).statistic, abs=1e-12)


def test_ks_is_nan_for_categorical_rows() -> None:
    out = ks([[1, 2], [1, 2]], [[2, 1], [2, 1]], numeric=[True, False])
    assert out[0] == pytest.approx(1 / 3) and math.isnan(out[1])


# --- Wasserstein ---------------------------------------------------------------------------------


def test_integer_positions_sit_on_the_values() -> None:
    np.testing.assert_allclose(bucket_positions(np.arange(0.0, 6.0), 0.0, 6.0), np.arange(0.0, 7.0))


def test_binned_wasserstein_equals_scipy_when_binning_is_exact() -> None:
    a, b, ca, cb = _integer_samples(1)
    pos = bucket_positions(np.arange(0.0, 6.0), 0.0, 6.0)
    expected = st.wasserstein_distance(a, b)
    assert wasserstein(ca, cb, positions=pos, spread=1.0)[0] == pytest.approx(expected, abs=1e-12)
    assert wasserstein(ca, cb, positions=pos, spread=2.0)[0] == pytest.approx(expected / 2, abs=1e-12)


def test_wasserstein_of_a_shift_reads_in_standard_deviations() -> None:
    rng = np.random.default_rng(2)
    ref = build_reference({"x": rng.normal(10, 3, 20_000)}, model="m", version="1").feature("x")
    counts, pos, spread = profile_arrays(ref)
    assert spread == pytest.approx(3.0, rel=0.03)
    shifted = bucket_counts(rng.normal(10 + 0.5 * 3, 3, 200_000), np.asarray(ref.edges))
    w = wasserstein(counts, shifted, positions=pos, spread=spread)[0]
    assert 0.4 < w < 0.55  # a half-SD shift, slightly under-read by the binning


def test_outer_positions_do_not_hang_on_one_extreme_value() -> None:
    edges = np.array([-1.0, 0.0, 1.0])
    pos = bucket_positions(edges, -1000.5, 1000.5)
    np.testing.assert_allclose(pos, [-1.5, -0.5, 0.5, 1.5])
    pos = bucket_positions(edges, -1.2, 1.1)  # min/max closer than half a neighbour: they close it
    np.testing.assert_allclose(pos, [-1.1, -0.5, 0.5, 1.05])


def test_wasserstein_is_nan_for_categorical_rows_and_ignores_padding() -> None:
    ref = np.array([[10.0, 10.0, 0.0], [10.0, 10.0, 0.0]])
    cur = np.array([[5.0, 15.0, 0.0], [5.0, 15.0, 0.0]])
    pos = np.array([[0.0, 1.0, np.nan], [np.nan, np.nan, np.nan]])
    out = wasserstein(ref, cur, positions=pos, spread=np.array([1.0, np.nan]))
    assert out[0] == pytest.approx(0.25) and math.isnan(out[1])


# --- Chi-square ----------------------------------------------------------------------------------


def test_chi_square_matches_scipy_contingency() -> None:
    ref, cur = np.array([120.0, 300.0, 80.0, 500.0]), np.array([30.0, 70.0, 35.0, 90.0])
    stat, p, dof = chi_square_test(ref, cur, pool_expected=0.0)
    res = st.chi2_contingency(np.vstack([ref, cur]), correction=False)
    assert stat[0] == pytest.approx(res.statistic) and p[0] == pytest.approx(res.pvalue) and dof[0] == res.dof


def test_g_test_matches_scipy_log_likelihood() -> None:
    ref, cur = np.array([120.0, 300.0, 80.0, 500.0]), np.array([30.0, 70.0, 35.0, 90.0])
    stat, p, _ = chi_square_test(ref, cur, pool_expected=0.0, method="g_test")
    res = st.chi2_contingency(np.vstack([ref, cur]), correction=False, lambda_="log-likelihood")
    assert stat[0] == pytest.approx(res.statistic) and p[0] == pytest.approx(res.pvalue)


def test_chi_square_pools_sparse_buckets_and_skips_padding() -> None:
    ref = np.array([500.0, 480.0, 3.0, 2.0, 0.0])
    cur = np.array([50.0, 45.0, 1.0, 0.0, 0.0])
    stat, p, dof = chi_square_test(ref, cur)
    pooled = np.array([[500.0, 480.0, 5.0], [50.0, 45.0, 1.0]])
    res = st.chi2_contingency(pooled, correction=False)
    assert dof[0] == 2 and stat[0] == pytest.approx(res.statistic) and p[0] == pytest.approx(res.pvalue)


def test_chi_square_detects_a_bucket_the_reference_never_saw() -> None:
    _, p, _ = chi_square_test([5000.0, 5000.0, 0.0], [475.0, 475.0, 50.0])
    assert p[0] < 1e-10


def test_chi_square_of_empty_or_single_bucket_rows_is_not_significant() -> None:
    stat, p, dof = chi_square_test([[10.0, 0.0], [10.0, 5.0]], [[7.0, 0.0], [0.0, 0.0]])
    assert list(p) == [1.0, 1.0] and list(dof) == [0.0, 0.0] and list(stat) == [0.0, 0.0]


# --- Total variation and dispersion ---------------------------------------------------------------


def test_total_variation_hand_computed() -> None:
    assert total_variation([40, 60], [48, 52])[0] == pytest.approx(0.08)
    assert total_variation([95, 5, 0], [90, 5, 5])[0] == pytest.approx(0.05)


def test_dispersion_reads_a_scale_change_and_ignores_a_shift() -> None:
    rng = np.random.default_rng(3)
    ref = build_reference({"x": rng.standard_t(3, 20_000)}, model="m", version="1").feature("x")
    counts, pos, _ = profile_arrays(ref)
    edges = np.asarray(ref.edges)
    x = rng.standard_t(3, 200_000)
    wider = bucket_counts(1.5 * x, edges)
    shifted = bucket_counts(x + 0.3, edges)
    assert dispersion(counts, wider, positions=pos)[0] == pytest.approx(math.log(1.5), abs=0.04)
    assert abs(dispersion(counts, shifted, positions=pos)[0]) < 0.03


# --- Multiple testing ----------------------------------------------------------------------------


def test_holm_and_bonferroni_hand_computed_per_family() -> None:
    p = np.array([0.01, 0.5, 0.04, 0.03, 0.2, 0.005])
    fam = np.array([0, 1, 0, 0, 1, 0])
    holm = adjust_p_values(p, fam, "holm")
    np.testing.assert_allclose(holm, [0.03, 0.5, 0.06, 0.06, 0.4, 0.02])
    bonf = adjust_p_values(p, fam, "bonferroni")
    np.testing.assert_allclose(bonf, [0.04, 1.0, 0.16, 0.12, 0.4, 0.02])
    np.testing.assert_allclose(adjust_p_values(p, fam, "none"), p)


def test_nan_p_values_do_not_count_in_the_family() -> None:
    out = adjust_p_values(np.array([0.01, np.nan, 0.02]), np.zeros(3), "bonferroni")
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == pytest.approx(0.04)


# --- Verdicts ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference():
    rng = np.random.default_rng(4)
    data = {
        "x": rng.normal(0, 1, 20_000),
        "n": rng.poisson(3, 20_000),
        "c": rng.choice(["a", "b", "c"], 20_000, p=[0.5, 0.3, 0.2]),
    }
    return build_reference(data, model="m", version="1", categorical=["c"])


def _window(reference, rng, n, shift=0.0, new_share=0.0):
    x = bucket_counts(rng.normal(shift, 1, n), np.asarray(reference.feature("x").edges))
    k = bucket_counts(rng.poisson(3, n).astype(float), np.asarray(reference.feature("n").edges))
    shares = np.array([0.5, 0.3, 0.2]) * (1 - new_share)
    c = rng.multinomial(n, [*shares, new_share])
    return [x, k, c]


def test_evaluate_profile_flags_a_shift_and_not_the_same_distribution(reference) -> None:
    rng = np.random.default_rng(5)
    same = evaluate_profile(reference.feature("x"), _window(reference, rng, 5000)[0])
    moved = evaluate_profile(reference.feature("x"), _window(reference, rng, 5000, shift=0.5)[0])
    assert same.detected is False and moved.detected is True
    assert moved.wasserstein > 0.4 and moved.p_value < 1e-10 and moved.ks > 0.1
    assert set(moved.scores()) == {"psi", "jensen_shannon", "ks", "wasserstein", "chi_square"}


def test_new_category_is_detected(reference) -> None:
    rng = np.random.default_rng(6)
    res = evaluate_profile(reference.feature("c"), _window(reference, rng, 2000, new_share=0.05)[2])
    assert res.detected is True and math.isnan(res.wasserstein) and math.isnan(res.ks)
    assert math.isfinite(res.psi) and res.total_variation == pytest.approx(0.05, abs=0.015)


def test_below_min_samples_there_is_no_verdict(reference) -> None:
    rng = np.random.default_rng(7)
    res = evaluate_profile(reference.feature("x"), _window(reference, rng, 150, shift=2.0)[0])
    assert res.detected is None and res.sample_count == 150 and math.isnan(res.p_adjusted)


def test_effect_floor_keeps_a_tiny_shift_quiet_on_a_huge_window(reference) -> None:
    rng = np.random.default_rng(8)
    res = evaluate_profile(reference.feature("x"), _window(reference, rng, 1_000_000, shift=0.05)[0])
    assert res.p_value < 1e-3 and res.detected is False  # significant, but too small to matter


def test_n_tests_applies_bonferroni(reference) -> None:
    rng = np.random.default_rng(9)
    counts = _window(reference, rng, 3000, shift=0.1)[0]
    one = evaluate_profile(reference.feature("x"), counts, policy=DriftPolicy(wasserstein_floor=0.0))
    many = evaluate_profile(reference.feature("x"), counts, n_tests=20, policy=DriftPolicy(wasserstein_floor=0.0))
    assert many.p_adjusted == pytest.approx(min(1.0, 20 * one.p_value))


def test_evaluate_batch_is_row_wise_and_padding_invariant(reference) -> None:
    rng = np.random.default_rng(10)
    profiles = list(reference.features)
    windows = [_window(reference, rng, 3000, shift=s, new_share=ns) for s, ns in ((0.0, 0.0), (0.4, 0.05))]
    results = [evaluate_profiles(profiles, w) for w in windows]
    arrays = [profile_arrays(p) for p in profiles]
    width = max(a[0].size for a in arrays) + 3  # extra padding
    s = len(profiles) * 2
    ref = np.zeros((s, width))
    cur = np.zeros((s, width))
    pos = np.full((s, width), np.nan)
    spread = np.full(s, np.nan)
    numeric = np.zeros(s, dtype=bool)
    for w, window in enumerate(windows):
        for i, ((c, ps, sp), current) in enumerate(zip(arrays, window)):
            r = w * len(profiles) + i
            ref[r, : c.size] = c
            cur[r, : c.size] = current
            if ps is not None:
                pos[r, : ps.size], spread[r], numeric[r] = ps, sp, True
    batch = evaluate_batch(
        ref, cur, numeric=numeric, positions=pos, spread=spread, family=np.repeat([0, 1], len(profiles))
    )
    assert batch.detected.dtype == np.int8 and batch.psi.shape == (s,)
    for w in range(2):
        for i in range(len(profiles)):
            got = batch.result(w * len(profiles) + i)
            want = results[w][i]
            for name in ("psi", "jensen_shannon", "ks", "wasserstein", "chi_square", "p_value", "p_adjusted"):
                a, b = getattr(got, name), getattr(want, name)
                assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b), name
            assert got.detected == want.detected
    assert [r.detected for r in results[0]] == [False, False, False]
    assert [r.detected for r in results[1]] == [True, False, True]


def test_per_stream_policies(reference) -> None:
    rng = np.random.default_rng(11)
    profiles = [reference.feature("x"), reference.feature("x")]
    counts = _window(reference, rng, 3000, shift=0.3)[0]
    strict = DriftPolicy(wasserstein_floor=0.5)
    res = evaluate_profiles(profiles, [counts, counts], policy=[DriftPolicy(), strict])
    assert res[0].detected is True and res[1].detected is False


def test_profile_arrays_of_a_categorical_profile(reference) -> None:
    counts, pos, spread = profile_arrays(reference.feature("c"))
    assert pos is None and math.isnan(spread)
    assert counts.tolist() == [*reference.feature("c").counts, 0]


def test_current_counts_of_the_wrong_width_are_an_error(reference) -> None:
    with pytest.raises(ValueError, match="buckets"):
        evaluate_profile(reference.feature("c"), [1, 2])


# --- Policy --------------------------------------------------------------------------------------


def test_policy_defaults_and_validation() -> None:
    p = DriftPolicy()
    assert p.alpha == 0.05 and p.correction == "holm" and p.min_samples >= 100
    with pytest.raises(ConfigurationError, match="'alpha'"):
        DriftPolicy(alpha=1.5)
    with pytest.raises(ConfigurationError, match="'min_samples'"):
        DriftPolicy(min_samples=0)
    with pytest.raises(ConfigurationError, match="'correction'"):
        DriftPolicy(correction="fdr")
    with pytest.raises(ConfigurationError, match="'wasserstein_floor'"):
        DriftPolicy(wasserstein_floor=float("nan"))


def test_policy_from_mapping_and_merged() -> None:
    p = DriftPolicy.from_mapping({"alpha": 0.01, "wasserstein_floor": 1})
    assert p.alpha == 0.01 and p.wasserstein_floor == 1.0
    assert p.merged({"min_samples": 500}).min_samples == 500 and p.merged({}).alpha == 0.01
    with pytest.raises(ConfigurationError, match="unknown key 'alfa'"):
        DriftPolicy.from_mapping({"alfa": 0.01})
    with pytest.raises(ConfigurationError, match="'min_samples' must be of type int"):
        DriftPolicy.from_mapping({"min_samples": 1.5})
    with pytest.raises(ConfigurationError, match=r"policy\.yaml.*'alpha'"):
        DriftPolicy.from_mapping({"alpha": 0}, source="policy.yaml")


def test_policy_book_per_model_and_feature() -> None:
    book = PolicyBook.from_mapping(
        {
            "alpha": 0.02,
            "features": {"age": {"wasserstein_floor": 0.3}},
            "models": {"churn": {"min_samples": 1000, "features": {"plan": {"alpha": 0.001}}}},
        }
    )
    assert book.policy_for("x").alpha == 0.02
    assert book.policy_for("age").wasserstein_floor == 0.3
    churn_age = book.policy_for("age", model="churn")
    assert churn_age.min_samples == 1000 and churn_age.wasserstein_floor == 0.3 and churn_age.alpha == 0.02
    assert book.policy_for("plan", model="churn").alpha == 0.001
    with pytest.raises(ConfigurationError, match=r"models\.churn.*unknown key 'bogus'"):
        PolicyBook.from_mapping({"models": {"churn": {"bogus": 1}}})


# --- Quality -------------------------------------------------------------------------------------


def test_quality_alarm_scalar_and_vector() -> None:
    assert quality_alarm(0.01, 50, 1000) == (0.05, 1)
    assert quality_alarm(0.01, 15, 1000) == (0.015, 0)
    assert quality_alarm(0.01, 50, 100) == (0.5, -1)  # below min_samples
    ratio, alarm = quality_alarm(np.array([0.01, 0.0, 0.3]), np.array([50, 25, 3150]), np.array([1000, 1000, 10000]))
    np.testing.assert_allclose(ratio, [0.05, 0.025, 0.315])
    assert alarm.dtype == np.int8 and alarm.tolist() == [1, 1, 0]


def test_quality_alarm_needs_significance_on_small_windows() -> None:
    policy = DriftPolicy(min_samples=10)
    assert quality_alarm(0.01, 1, 20, policy=policy)[1] == 0  # 5% of 20 rows is one row: noise
    assert quality_alarm(0.01, 1, 20, policy=DriftPolicy(min_samples=10, alpha=0.5))[1] == 1
    ratio, alarm = quality_alarm(0.01, 0, 0)
    assert math.isnan(ratio) and alarm == -1


def test_quality_alarm_with_one_policy_per_value() -> None:
    policies = [DriftPolicy(), DriftPolicy(quality_min_increase=0.1)]
    _, alarm = quality_alarm(np.array([0.01, 0.01]), np.array([50, 50]), np.array([1000, 1000]), policy=policies)
    assert alarm.tolist() == [1, 0]


# --- Edge cases ----------------------------------------------------------------------------------


def test_empty_batch() -> None:
    empty = np.zeros((0, 5))
    batch = evaluate_batch(
        empty, empty, numeric=np.zeros(0, bool), positions=empty, spread=np.zeros(0), family=np.zeros(0, np.int64)
    )
    assert len(batch) == 0 and batch.p_adjusted.shape == (0,)


def test_constant_reference_single_bucket() -> None:
    ref = build_reference({"k": np.full(1000, 3.0)}, model="m", version="1").feature("k")
    counts, pos, spread = profile_arrays(ref)
    assert counts.tolist() == [1000.0] and pos.tolist() == [3.0] and spread == 1.0
    res = evaluate_profile(ref, [500.0])
    assert res.detected is False and res.wasserstein == 0.0 and res.p_value == 1.0


def test_empty_current_window_has_no_verdict(reference) -> None:
    res = evaluate_profile(reference.feature("x"), np.zeros(len(reference.feature("x").counts)))
    assert res.detected is None and res.sample_count == 0


def test_public_surface() -> None:
    import otel_ml.stats as stats

    assert {
        "DriftPolicy",
        "DriftResult",
        "BatchDrift",
        "PolicyBook",
        "evaluate_batch",
        "evaluate_profile",
        "evaluate_profiles",
        "quality_alarm",
        "profile_arrays",
        "STATISTICS",
        "DRIFT_METHODS",
        "NO_VERDICT",
        "reference_ratios",
    } <= set(stats.__all__)
    assert all(hasattr(stats, name) for name in stats.__all__)


def test_chi_square_is_calibrated_under_no_drift_with_sparse_buckets() -> None:
    """p < alpha in about alpha of the windows, even with rare categories and a padded row."""
    rng = np.random.default_rng(12)
    shares = np.array([0.4, 0.3, 0.2, 0.05, 0.03, 0.015, 0.004, 0.001])
    ref = rng.multinomial(20_000, shares).astype(float)
    windows = 4000
    cur = rng.multinomial(1000, shares, size=windows).astype(float)
    refs = np.broadcast_to(ref, cur.shape)
    _, p, _ = chi_square_test(np.pad(refs, ((0, 0), (0, 2))), np.pad(cur, ((0, 0), (0, 2))))
    for alpha in (0.05, 0.01):
        assert abs(np.mean(p < alpha) - alpha) < 0.5 * alpha + 0.005
