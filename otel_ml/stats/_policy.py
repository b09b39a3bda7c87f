"""Drift policy: the validated, immutable settings of the verdict (and of the quality alarm).

Build one with keyword arguments, :meth:`DriftPolicy.from_mapping` (YAML / JSON config) or
:meth:`DriftPolicy.merged` (per-model or per-feature overrides). Bad values raise
:class:`otel_ml.ConfigurationError` naming the field at construction, never at evaluation time.
:class:`PolicyBook` holds a default policy plus per-model and per-feature overrides.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import semconv
from .._errors import ConfigurationError
from . import chi_square as _chi, dispersion as _disp, total_variation as _tv, wasserstein as _w
from ._common import DEFAULT_SMOOTHING

CORRECTIONS = ("holm", "bonferroni", "none")
TESTS = ("chi_square", "g_test")


@dataclass(frozen=True)
class DriftPolicy:
    """When a window counts as drifted; the defaults are calibrated in ``benchmarks/drift_calibration.py``.

    A stream is judged only when its window holds at least ``min_samples`` rows (else: no
    verdict). It is then *drifted* when both

    * the homogeneity test of its binned counts against the reference counts (``test``) is
      significant at family-wise level ``alpha`` after ``correction`` across the streams of the
      same model evaluation, and
    * the change is large enough to matter: binned Wasserstein distance of at least
      ``wasserstein_floor`` reference standard deviations or an interquartile range changed by a
      log ratio of at least ``dispersion_floor`` (numeric), or a total variation distance of at
      least ``total_variation_floor`` (categorical).

    ``quality_min_increase`` is the absolute rise of a data-quality ratio (missing, invalid,
    out-of-range, unseen) over its reference ratio that, when also significant at ``alpha``, raises
    the quality alarm.

    Why these defaults (measured by ``benchmarks/drift_calibration.py`` on 20-feature models with
    skewed, heavy-tailed, integer, bimodal and categorical features, 20,000-row references):

    * ``alpha = 0.05`` with Holm's correction: the chi-square homogeneity test is calibrated on
      binned counts (sparse buckets pooled), so at most ~5% of no-drift windows alarm on any of a
      model's features; the floors bring it to ~2% at 1,000 rows and 0% at 10,000 or more.
    * ``min_samples = 500``: with fewer rows the test has little power (a quarter-SD shift is caught
      in under 10% of 200-row windows) and the chi-square tail is less exact (5.5% any-alarm at 200
      rows); a verdict that cannot tell is worse than a visible "no verdict".
    * ``wasserstein_floor = 0.1`` reference SD: a shift of 0.25 SD reads 0.22-0.25 (binned), one of
      0.05 SD reads 0.04-0.06, so large windows on which everything is "significant" stay quiet
      on the latter and small windows still catch the former.
    * ``dispersion_floor = 0.125`` (|log IQR ratio|): a variance 1.5x (0.5x) the reference's moves it by
      +0.20 (-0.35) on any shape, a shift by ~0-0.04; the binned Wasserstein distance alone misses
      variance changes on skewed and heavy-tailed features, whose tails it cannot see.
    * ``total_variation_floor = 0.03``: a new category at 5% moves 0.05 of the mass, a share going
      from 50% to 60% moves 0.10, while sampling noise of a 5-category feature at 1,000 rows is ~0.02.
    * ``quality_min_increase = 0.02``: missing values rising from 1% to 5% alarm in every window of
      1,000 rows; a stable ratio never does.
    """

    alpha: float = _chi.DEFAULT_THRESHOLD
    min_samples: int = 500
    wasserstein_floor: float = _w.DEFAULT_THRESHOLD
    dispersion_floor: float = _disp.DEFAULT_THRESHOLD
    total_variation_floor: float = _tv.DEFAULT_THRESHOLD
    correction: str = "holm"
    test: str = "chi_square"
    pool_expected: float = _chi.DEFAULT_POOL_EXPECTED
    smoothing: float = DEFAULT_SMOOTHING
    quality_min_increase: float = 0.02

    def __post_init__(self) -> None:
        _check_float(self, "alpha", low=0.0, high=1.0, open_low=True, open_high=True)
        if isinstance(self.min_samples, bool) or not isinstance(self.min_samples, int) or self.min_samples < 1:
            raise ConfigurationError(f"drift policy: 'min_samples' must be an integer >= 1, got {self.min_samples!r}")
        _check_float(self, "wasserstein_floor", low=0.0)
        _check_float(self, "dispersion_floor", low=0.0)
        _check_float(self, "total_variation_floor", low=0.0, high=1.0)
        _check_float(self, "pool_expected", low=0.0)
        _check_float(self, "smoothing", low=0.0, open_low=True)
        _check_float(self, "quality_min_increase", low=0.0, high=1.0)
        if self.correction not in CORRECTIONS:
            raise ConfigurationError(
                f"drift policy: 'correction' must be one of {CORRECTIONS}, got {self.correction!r}"
            )
        if self.test not in TESTS:
            raise ConfigurationError(f"drift policy: 'test' must be one of {TESTS}, got {self.test!r}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None, *, source: str = "drift policy") -> DriftPolicy:
        """A policy from a mapping of field names (e.g. parsed YAML); unknown keys are errors."""
        return _from_mapping(cls(), data, source)

    def merged(self, overrides: Mapping[str, Any] | None, *, source: str = "drift policy") -> DriftPolicy:
        """A copy with the fields named in ``overrides`` replaced (validated like :meth:`from_mapping`)."""
        return _from_mapping(self, overrides, source)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_FIELDS = {f.name: f for f in dataclasses.fields(DriftPolicy)}


def _from_mapping(base: DriftPolicy, data: Mapping[str, Any] | None, source: str) -> DriftPolicy:
    if data is None:
        return base
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"{source}: must be a mapping of policy fields, got {type(data).__name__}")
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in _FIELDS:
            raise ConfigurationError(f"{source}: unknown key {key!r} (known: {', '.join(sorted(_FIELDS))})")
        default = getattr(DriftPolicy, key)
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not type(default):
            raise ConfigurationError(
                f"{source}: {key!r} must be of type {type(default).__name__}, got {value!r}"
            )
        values[key] = value
    try:
        return dataclasses.replace(base, **values)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{source}: {exc}".replace("drift policy: ", "")) from None


def _check_float(
    policy: DriftPolicy,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    open_low: bool = False,
    open_high: bool = False,
) -> None:
    value = getattr(policy, name)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if open_low else value >= low
    if ok and high is not None:
        ok = value < high if open_high else value <= high
    if not ok:
        lo = "" if low is None else f"{'>' if open_low else '>='} {low}"
        hi = "" if high is None else f"{'<' if open_high else '<='} {high}"
        bounds = " and ".join(b for b in (lo, hi) if b)
        raise ConfigurationError(f"drift policy: {name!r} must be a finite number {bounds}, got {value!r}")


@dataclass(frozen=True)
class PolicyBook:
    """A default policy plus overrides per model and per feature (the latter win).

    Mapping form (e.g. a YAML file)::

        alpha: 0.05                      # any DriftPolicy field: the default for everything
        features:                        # per feature (or output) name, any model
          income: {wasserstein_floor: 0.2}
        models:                          # per model name
          churn:
            alpha: 0.01
            features:
              plan: {total_variation_floor: 0.05}
    """

    default: DriftPolicy = DriftPolicy()
    features: Mapping[str, DriftPolicy] = dataclasses.field(default_factory=dict)
    models: Mapping[str, PolicyBook] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None, *, source: str = "drift policy") -> PolicyBook:
        return _book(DriftPolicy(), data or {}, source, allow_models=True)

    def policy_for(self, feature: str, *, model: str | None = None) -> DriftPolicy:
        """The policy that applies to ``feature`` (of ``model``, when given)."""
        book = self.models[model] if model is not None and model in self.models else self
        found = book.features.get(feature)
        if found is not None:
            return found
        if feature == semconv.RECONSTRUCTION_ERROR_FEATURE:
            return _outlier_policy(book.default)
        return book.default


#: Default material rise of the outlier share (the reconstruction-error stream's out-of-range
#: ratio): 0.5 points, five times the reference rate of 0.1 %. The data-quality default (2 points)
#: would let a burst of 1 % of rows far outside the training data pass unflagged.
OUTLIER_MIN_INCREASE = 0.005


@functools.lru_cache(maxsize=64)
def _outlier_policy(default: DriftPolicy) -> DriftPolicy:
    """``default`` with the outlier floor, unless it already asks for a smaller one."""
    return dataclasses.replace(default,
                               quality_min_increase=min(default.quality_min_increase, OUTLIER_MIN_INCREASE))


def _book(base: DriftPolicy, data: Mapping[str, Any], source: str, *, allow_models: bool) -> PolicyBook:
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"{source}: must be a mapping, got {type(data).__name__}")
    flat = {k: v for k, v in data.items() if k not in ("features", "models")}
    if "models" in data and not allow_models:
        raise ConfigurationError(f"{source}: unknown key 'models' (models cannot nest)")
    default = base.merged(flat, source=source)
    features_doc = data.get("features") or {}
    if not isinstance(features_doc, Mapping):
        raise ConfigurationError(f"{source}: 'features' must be a mapping of feature name to policy fields")
    features = {
        str(name): default.merged(over, source=f"{source}: features.{name}") for name, over in features_doc.items()
    }
    models: dict[str, PolicyBook] = {}
    models_doc = data.get("models") or {}
    if not isinstance(models_doc, Mapping):
        raise ConfigurationError(f"{source}: 'models' must be a mapping of model name to policy fields")
    for name, doc in models_doc.items():
        if not isinstance(doc or {}, Mapping):
            raise ConfigurationError(f"{source}: models.{name} must be a mapping of policy fields")
        own = dict(doc or {})
        own_features = own.get("features") or {}
        if not isinstance(own_features, Mapping):
            raise ConfigurationError(f"{source}: models.{name}.features must be a mapping")
        # Per-feature overrides of the whole file apply inside the model too, over the model's default.
        own["features"] = {**features_doc, **own_features}
        models[str(name)] = _book(default, own, f"{source}: models.{name}", allow_models=False)
    return PolicyBook(default=default, features=features, models=models)
