"""The multivariate summary of a reference: a standardised PCA of the numeric features.

Per-feature histograms cannot see a change in how features move together (a correlation that flips
while every marginal stays put). A row's *reconstruction error* can: standardise the row with the
training means and standard deviations, project it on the principal components that keep most of the
training variance, and measure the squared distance between the row and its projection. Training rows
lie close to that subspace; rows whose features relate differently lie off it.

The error is streamed as one more numeric feature (:data:`semconv.RECONSTRUCTION_ERROR_FEATURE`) with
bucket edges from the training rows' errors, so the processor judges it with the engine that judges
every other stream. The top edge is the outlier threshold (the training rows' ``outlier_quantile``
quantile of the error) and the profile's ``max`` is that threshold: a row above it is counted as
``out_of_range`` for that stream, i.e. an out-of-distribution row, and the processor's data-quality
alarm compares its share with the training share above the threshold.

Numeric features only in this version: categorical features are left out of the summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Bounds of the summary: features kept (the first numeric ones, in column order), components kept,
#: training rows used for the fit (a seeded uniform sample of larger data).
MAX_FEATURES = 200
MAX_COMPONENTS = 50
MAX_FIT_ROWS = 100_000
#: Share of the standardised variance the kept components explain (at most d - 1 components are kept).
VARIANCE_KEPT = 0.9
#: Quantile of the training rows' error above which a row counts as an outlier.
OUTLIER_QUANTILE = 0.999
SECTION_VERSION = 1
_SLICE = 65_536


@dataclass(frozen=True, eq=False)
class Multivariate:
    """The fitted summary: which numeric features, their scaling, and the kept components.

    ``components`` is ``(n_components, len(features))`` with orthonormal rows; ``threshold`` the
    outlier threshold on :meth:`errors`.
    """

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    components: np.ndarray
    threshold: float
    outlier_quantile: float = OUTLIER_QUANTILE

    def __hash__(self) -> int:  # a Reference stays hashable
        return hash((self.features, self.mean.tobytes(), self.scale.tobytes(), self.components.tobytes()))

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Multivariate) and self.features == other.features
                and np.array_equal(self.mean, other.mean) and np.array_equal(self.scale, other.scale)
                and np.array_equal(self.components, other.components) and self.threshold == other.threshold
                and self.outlier_quantile == other.outlier_quantile)

    def __post_init__(self) -> None:
        # err = |z|^2 - |z C^T|^2 (C has orthonormal rows), z = (x - mean) / scale: one product
        # x @ A - c gives z and z C^T side by side, and the signed sum of their squares is the error.
        b = np.concatenate((np.eye(len(self.features)), self.components.T), axis=1)
        object.__setattr__(self, "_a", b / self.scale[:, None])
        object.__setattr__(self, "_c", (self.mean / self.scale) @ b)
        object.__setattr__(self, "_sign", np.concatenate((np.ones(len(self.features)),
                                                          -np.ones(self.components.shape[0]))))

    def errors(self, x: np.ndarray, *, finite: bool = False) -> np.ndarray:
        """Each row's squared reconstruction error (``x``: rows x :attr:`features`, float64).

        NaN for a row with a missing or non-finite value: such a row is skipped, not guessed.
        ``finite=True`` promises every value is finite (skips the floating-point error guard).
        """
        if finite:
            return self._errors(x)
        with np.errstate(invalid="ignore", over="ignore"):
            err = self._errors(x)
        err[~np.isfinite(err)] = np.nan
        return err

    def _errors(self, x: np.ndarray) -> np.ndarray:
        q = x @ self._a  # type: ignore[attr-defined]
        q -= self._c  # type: ignore[attr-defined]
        q *= q
        err = q @ self._sign  # type: ignore[attr-defined]
        return np.maximum(err, 0.0, out=err)  # rounding can leave a tiny negative


def fit(x: np.ndarray, features: Sequence[str], *, seed: int = 0) -> tuple[Multivariate, np.ndarray, int]:
    """Fit the summary on ``x`` (rows x features, NaN where missing).

    Returns the summary, the errors of the complete rows (for the histogram) and the number of rows
    skipped for a missing or non-finite value. Raises ValueError when fewer than two complete rows remain.
    """
    complete = np.isfinite(x).all(axis=1)
    skipped = int((~complete).sum())
    rows = x[complete]
    if rows.shape[0] < 2:
        raise ValueError("fewer than two rows with every numeric feature present")
    fit_rows = rows
    if rows.shape[0] > MAX_FIT_ROWS:
        pick = np.random.default_rng(seed).choice(rows.shape[0], MAX_FIT_ROWS, replace=False)
        fit_rows = rows[np.sort(pick)]
    mean = fit_rows.mean(axis=0)
    std = fit_rows.std(axis=0)
    scale = np.where(std > 0, std, 1.0)
    z = (fit_rows - mean) / scale
    _, s, vt = np.linalg.svd(z, full_matrices=False)
    var = s**2
    total = var.sum()
    k = int(np.searchsorted(np.cumsum(var) / total, VARIANCE_KEPT) + 1) if total > 0 else 1
    # At least one direction is left out: keeping them all would leave an error of rounding noise.
    k = max(1, min(k, MAX_COMPONENTS, vt.shape[0], len(features) - 1))
    summary = Multivariate(tuple(features), mean, scale, vt[:k].copy(), 0.0)
    # in slices: the product's temporary is rows x (features + components)
    err = np.concatenate([summary.errors(rows[i:i + _SLICE]) for i in range(0, rows.shape[0], _SLICE)])
    threshold = float(np.quantile(err, OUTLIER_QUANTILE, method="inverted_cdf"))
    summary = Multivariate(summary.features, mean, scale, summary.components, threshold)
    return summary, err, skipped


def to_dict(m: Multivariate) -> dict[str, Any]:
    return {
        "section_version": SECTION_VERSION,
        "features": list(m.features),
        "mean": m.mean.tolist(),
        "scale": m.scale.tolist(),
        "components": m.components.tolist(),
        "threshold": m.threshold,
        "outlier_quantile": m.outlier_quantile,
    }


def from_dict(doc: dict[str, Any], known_numeric: Sequence[str]) -> Multivariate:
    """Validate the section (shapes, finiteness, bounds); ValueError names the field."""
    if doc.get("section_version") != SECTION_VERSION:
        raise ValueError(f"'section_version' must be {SECTION_VERSION}")
    features = doc.get("features")
    if not isinstance(features, list) or not 1 <= len(features) <= MAX_FEATURES:
        raise ValueError(f"'features' must list 1 to {MAX_FEATURES} feature names")
    if len(set(features)) != len(features) or not set(features) <= set(known_numeric):
        raise ValueError("'features' must name distinct numeric features of the reference")
    d = len(features)

    def matrix(key: str, shape: tuple[int, ...]) -> np.ndarray:
        value = doc.get(key)
        if not isinstance(value, list) or len(value) > MAX_COMPONENTS * MAX_FEATURES:
            raise ValueError(f"'{key}' must be a list")
        if shape and len(shape) == 2 and not all(isinstance(r, list) and len(r) == d for r in value):
            raise ValueError(f"'{key}' must be a list of rows of {d} numbers")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                   for v in (np.ravel(value) if value else ())):
            raise ValueError(f"'{key}' must hold numbers")
        arr = np.asarray(value, dtype=np.float64)
        if (shape and len(shape) == 1 and arr.shape != shape) or not np.isfinite(arr).all() \
                or (arr.size and np.abs(arr).max() > 1e150):
            raise ValueError(f"'{key}' must hold {shape} finite numbers")
        return arr

    mean = matrix("mean", (d,))
    scale = matrix("scale", (d,))
    if (scale <= 0).any():
        raise ValueError("'scale' must be positive")
    components = matrix("components", (0, d))
    if components.ndim != 2 or not 1 <= components.shape[0] <= min(MAX_COMPONENTS, d):
        raise ValueError(f"'components' must have 1 to {min(MAX_COMPONENTS, d)} rows of {d} numbers")
    if not np.allclose(components @ components.T, np.eye(components.shape[0]), atol=1e-6):
        raise ValueError("'components' must have orthonormal rows")
    threshold = doc.get("threshold")
    quantile = doc.get("outlier_quantile")
    for key, v in (("threshold", threshold), ("outlier_quantile", quantile)):
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not np.isfinite(v) or v < 0:
            raise ValueError(f"'{key}' must be a finite non-negative number")
    if not 0 < quantile < 1:  # type: ignore[operator]
        raise ValueError("'outlier_quantile' must be in (0, 1)")
    return Multivariate(tuple(features), mean, scale, components, float(threshold),  # type: ignore[arg-type]
                        float(quantile))  # type: ignore[arg-type]
