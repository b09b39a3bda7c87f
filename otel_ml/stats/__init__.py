"""Drift statistics and verdicts on binned counts, shared by the processor and ``otel-ml drift``.

Every statistic works on bucket counts with the reference's bins (OTel explicit bounds for
numeric features; the reference categories plus ``__other__`` for categorical ones), for a whole
batch of streams at once. One module per statistic, each registered by name with its default
threshold in :data:`STATISTICS`: ``psi``, ``jensen_shannon``, ``ks``, ``wasserstein``,
``chi_square`` (the *reported* ones: :data:`DRIFT_METHODS`, the values of ``ml.drift.method``, which
the verdict, the processor and the dashboards iterate over), then ``total_variation`` and
``dispersion`` (the effect-size floors of the verdict).

The verdict (:func:`evaluate_batch`, :func:`evaluate_profile`) avoids both classic traps: a
p-value alone calls every tiny change "significant" on a large window, a fixed score cut-off misses
changes that matter or cries wolf on small windows. A stream is drifted when the two-sample
chi-square homogeneity test of its window against the reference is significant after Holm's
correction across the model's streams *and* the change exceeds an effect-size floor (Wasserstein
distance in reference standard deviations for numeric features, total variation for categorical
ones). :class:`DriftPolicy` holds the thresholds; ``benchmarks/drift_calibration.py`` measures
the false- and true-alarm rates of the defaults.

Realized performance on joined outcomes (:mod:`otel_ml.stats.performance`): :func:`classification_metrics`,
:func:`regression_metrics` and :func:`reliability` with 95 % intervals, and :func:`degradation_verdicts`
against the reference's holdout performance under a :class:`PerformancePolicy`. Estimated performance
without labels (:mod:`otel_ml.stats.estimated`): :func:`estimate_binary` from a binned probability.

Usage::

    from otel_ml.stats import DriftPolicy, evaluate_profile
    result = evaluate_profile(reference.feature("age"), window_counts, policy=DriftPolicy(alpha=0.01))
    result.detected, result.wasserstein, result.p_value
"""

from __future__ import annotations

# Registration order is the order of DRIFT_METHODS (and of the dashboards' method panels): not sorted.
# isort: off
from . import psi, jensen_shannon, ks, wasserstein, chi_square, total_variation, dispersion  # noqa: F401
# isort: on
from ._policy import DriftPolicy, PolicyBook
from ._quality import quality_alarm, quality_p_value, reference_ratios, segment_quality
from ._registry import STATISTICS, Statistic, drift_methods, get_statistic, register
from ._verdict import (
    NO_VERDICT,
    BatchDrift,
    DriftResult,
    adjust_p_values,
    bucket_positions,
    evaluate_batch,
    evaluate_profile,
    evaluate_profiles,
    profile_arrays,
)
from .effect_bootstrap import effect_interval, effect_size
from .estimated import estimate_binary
from .performance import (
    Estimate,
    PerformancePolicy,
    PerformanceVerdict,
    classification_metrics,
    degradation_verdicts,
    regression_metrics,
    reliability,
)

#: The reported statistics (``ml.drift.method`` values), in registration order.
DRIFT_METHODS: tuple[str, ...] = drift_methods()

__all__ = [
    "DRIFT_METHODS",
    "NO_VERDICT",
    "STATISTICS",
    "BatchDrift",
    "DriftPolicy",
    "DriftResult",
    "Estimate",
    "PerformancePolicy",
    "PerformanceVerdict",
    "PolicyBook",
    "Statistic",
    "adjust_p_values",
    "bucket_positions",
    "classification_metrics",
    "degradation_verdicts",
    "effect_interval",
    "effect_size",
    "estimate_binary",
    "evaluate_batch",
    "evaluate_profile",
    "evaluate_profiles",
    "get_statistic",
    "profile_arrays",
    "quality_alarm",
    "quality_p_value",
    "reference_ratios",
    "register",
    "regression_metrics",
    "reliability",
    "segment_quality",
]
