"""The multivariate summary of a reference: a standardised PCA of the numeric features and of
indicators of the categorical features' most frequent categories.

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

Categorical features enter as indicators of their most frequent reference categories (at most
:data:`MAX_LEVELS` per feature, :data:`MAX_CATEGORICAL_COLUMNS` in all), each standardised like a numeric
column; a value outside the encoded levels sets none of them (as in training), a missing one skips the
row. So a change in how a category relates to a number (the segment that used to earn more now earns
less) moves rows off the subspace even when every marginal stays put. A row's indicators are never
materialised: a categorical value's contribution to the error is looked up (:meth:`Multivariate.errors`).

The error is computed as the squared projection on the directions *left out* (an orthonormal basis of
the complement of the kept components, derived when the summary is loaded), so its cost grows with the
columns left out, not with the columns plus the components kept.

A summary without categorical columns (``section_version`` 1, what references built before categoricals
hold) is read as before and gives the same errors (up to rounding).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
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
#: Categorical encoding bounds: indicators of the most frequent reference categories per feature, and in all.
MAX_LEVELS = 8
MAX_CATEGORICAL_COLUMNS = 64
#: Quantile of the training rows' error above which a row counts as an outlier.
OUTLIER_QUANTILE = 0.999
SECTION_VERSION = 1  # numeric columns only
SECTION_VERSION_CATEGORICAL = 2  # with categorical indicator columns (older readers refuse it, by name)
_SLICE = 65_536


@dataclass(frozen=True, eq=False)
class Multivariate:
    """The fitted summary: which numeric features and categorical levels, their scaling, and the kept
    components.

    The summary's columns are :attr:`features` (numeric) and then, per entry ``(feature, levels)`` of
    :attr:`categorical`, one indicator per level. ``mean`` and ``scale`` have one value per column,
    ``components`` is ``(n_components, columns)`` with orthonormal rows; ``threshold`` the outlier
    threshold on :meth:`errors`.
    """

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    components: np.ndarray
    threshold: float
    outlier_quantile: float = OUTLIER_QUANTILE
    categorical: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def __hash__(self) -> int:  # a Reference stays hashable
        return hash((self.features, self.categorical, self.mean.tobytes(), self.scale.tobytes(),
                     self.components.tobytes()))

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Multivariate) and self.features == other.features
                and self.categorical == other.categorical
                and np.array_equal(self.mean, other.mean) and np.array_equal(self.scale, other.scale)
                and np.array_equal(self.components, other.components) and self.threshold == other.threshold
                and self.outlier_quantile == other.outlier_quantile)

    def __post_init__(self) -> None:
        # The error is the squared norm of z's part outside the kept components, z = (x - mean) / scale:
        # |z D^T|^2 with D an orthonormal basis of the directions left out (the complement of the
        # components' rows; at least one). One product x @ A - c gives z D^T, A and c folding in the scaling.
        d = len(self.features)
        k = self.components.shape[0]
        _, _, vt = np.linalg.svd(self.components, full_matrices=True)
        left_out = vt[k:]
        a = left_out[:, :d].T / self.scale[:d, None]
        object.__setattr__(self, "_a", a)
        object.__setattr__(self, "_c", (self.mean[:d] / self.scale[:d]) @ left_out[:, :d].T)
        table = np.concatenate((a, self._level_table(d, left_out)))
        missing = ~np.isfinite(table).all(axis=1)
        object.__setattr__(self, "_levels", table)
        # one row: the numeric values and a 1 per category state in one product, over the table with its
        # (NaN) missing rows zeroed; a row that selects one of those is skipped before
        object.__setattr__(self, "_levels0", np.where(missing[:, None], 0.0, table))
        object.__setattr__(self, "_missing_rows", frozenset(np.flatnonzero(missing).tolist()))

    def _level_table(self, d: int, left_out: np.ndarray) -> np.ndarray:
        """Per categorical feature, what each of its states adds to ``z D^T``: one row per level, then one
        for any other value (no indicator set) and one for a missing value (NaN: the row is skipped).

        A feature's standardised indicators are a function of its state alone, so its part of the
        product is looked up, never computed from a dense indicator matrix. (The table's rows follow the
        numeric weights' ``d`` rows: :meth:`level_rows` counts from there.)"""
        rows = []
        col = d
        for _, levels in self.categorical:
            sl = slice(col, col + len(levels))
            states = np.vstack((np.eye(len(levels)), np.zeros(len(levels))))  # each level, then none
            rows += [(states - self.mean[sl]) / self.scale[sl] @ left_out[:, sl].T,
                     np.full((1, left_out.shape[0]), np.nan)]
            col += len(levels)
        return np.concatenate(rows) if rows else np.zeros((0, left_out.shape[0]))

    def level_rows(self, j: int, categories: Sequence[str]) -> np.ndarray:
        """For categorical feature ``j`` of :attr:`categorical`, whose values are coded as indices into
        ``categories`` (then ``len(categories)``: any other value, ``len(categories) + 1``: missing, as
        :class:`otel_ml._binning.CategoricalTable` codes them), the row of the level table each code
        selects: the argument :meth:`errors` takes per categorical feature, after indexing by the codes."""
        offset = len(self.features) + sum(len(levels) + 2 for _, levels in self.categorical[:j])
        levels = self.categorical[j][1]
        index = {level: offset + i for i, level in enumerate(levels)}
        other, missing = offset + len(levels), offset + len(levels) + 1
        return np.array([*(index.get(c, other) for c in categories), other, missing], dtype=np.intp)

    def errors(self, x: np.ndarray, cats: Sequence[np.ndarray] = (), *, finite: bool = False) -> np.ndarray:
        """Each row's squared reconstruction error (``x``: rows x :attr:`features`, float64).

        ``cats`` (a summary with :attr:`categorical` only): per categorical feature, in order, each
        row's level-table row (:meth:`level_rows` indexed by the row's code).
        NaN for a row with a missing or non-finite value: such a row is skipped, not guessed.
        ``finite=True`` promises every value is finite and none missing (skips the error guard).
        """
        if finite:
            return self._errors(x, cats)
        with np.errstate(invalid="ignore", over="ignore"):
            err = self._errors(x, cats)
        err[~np.isfinite(err)] = np.nan
        return err

    def row_error(self, v: np.ndarray, cats: Sequence[int] = ()) -> float:
        """:meth:`errors` of one row of finite numbers (1-D float64; ``cats``: its level-table rows): the
        online-serving case, in fewer numpy calls."""
        if cats:
            if not self._missing_rows.isdisjoint(cats):  # type: ignore[attr-defined]
                return math.nan
            table = self._levels0  # type: ignore[attr-defined]
            u = np.zeros(table.shape[0])
            u[: len(v)] = v
            u[cats] = 1.0
            q = u @ table
        else:
            q = v @ self._a  # type: ignore[attr-defined]
        q -= self._c  # type: ignore[attr-defined]
        return float(np.dot(q, q))

    def _errors(self, x: np.ndarray, cats: Sequence[np.ndarray]) -> np.ndarray:
        q = x @ self._a  # type: ignore[attr-defined]
        q -= self._c  # type: ignore[attr-defined]
        if len(cats) != len(self.categorical):  # a column the caller could not read: every row skipped
            q[:] = np.nan
        for rows in cats:
            q += self._levels[rows]  # type: ignore[attr-defined]
        q *= q
        return q.sum(axis=1)


def fit(x: np.ndarray, features: Sequence[str], *, seed: int = 0,
        categorical: Sequence[tuple[str, Sequence[str]]] = (),
        codes: Sequence[np.ndarray] = ()) -> tuple[Multivariate, np.ndarray, int]:
    """Fit the summary on ``x`` (rows x numeric ``features``, NaN where missing) and the ``categorical``
    features' ``(name, levels)`` with ``codes``: per feature, each row's level index (``len(levels)``:
    another value, ``len(levels) + 1``: missing).

    Returns the summary, the errors of the complete rows (for the histogram) and the number of rows
    skipped for a missing or non-finite value. Raises ValueError when fewer than two complete rows remain.
    """
    cat = tuple((name, tuple(levels)) for name, levels in categorical)
    complete = np.isfinite(x).all(axis=1)
    for (_, levels), code in zip(cat, codes):
        complete &= code <= len(levels)
    skipped = int((~complete).sum())
    rows = x[complete]
    row_codes = [code[complete] for code in codes]
    if rows.shape[0] < 2:
        raise ValueError("fewer than two rows with every feature present")
    pick = np.arange(rows.shape[0])
    if rows.shape[0] > MAX_FIT_ROWS:
        pick = np.sort(np.random.default_rng(seed).choice(rows.shape[0], MAX_FIT_ROWS, replace=False))
    fit_rows = rows[pick] if len(pick) < rows.shape[0] else rows
    if cat:  # the indicator columns of the fit rows (dense only here, bounded by MAX_FIT_ROWS x columns)
        blocks = [fit_rows]
        for (_, levels), code in zip(cat, row_codes):
            block = np.zeros((len(pick), len(levels) + 1))
            block[np.arange(len(pick)), code[pick]] = 1.0
            blocks.append(block[:, :-1])
        fit_rows = np.concatenate(blocks, axis=1)
    columns = fit_rows.shape[1]
    mean = fit_rows.mean(axis=0)
    std = fit_rows.std(axis=0)
    scale = np.where(std > 0, std, 1.0)
    z = (fit_rows - mean) / scale
    _, s, vt = np.linalg.svd(z, full_matrices=False)
    var = s**2
    total = var.sum()
    k = int(np.searchsorted(np.cumsum(var) / total, VARIANCE_KEPT) + 1) if total > 0 else 1
    # At least one direction is left out: keeping them all would leave an error of rounding noise.
    k = max(1, min(k, MAX_COMPONENTS, vt.shape[0], columns - 1))
    summary = Multivariate(tuple(features), mean, scale, vt[:k].copy(), 0.0, categorical=cat)
    cols = [summary.level_rows(j, levels)[code] for j, ((_, levels), code) in enumerate(zip(cat, row_codes))]
    # in slices: the product's temporary is rows x (features + components)
    err = np.concatenate([summary.errors(rows[i:i + _SLICE], [c[i:i + _SLICE] for c in cols])
                          for i in range(0, rows.shape[0], _SLICE)])
    threshold = float(np.quantile(err, OUTLIER_QUANTILE, method="inverted_cdf"))
    summary = Multivariate(summary.features, mean, scale, summary.components, threshold, categorical=cat)
    return summary, err, skipped


def to_dict(m: Multivariate) -> dict[str, Any]:
    cat = {"categorical": [{"feature": name, "levels": list(levels)} for name, levels in m.categorical]}
    return {
        "section_version": SECTION_VERSION_CATEGORICAL if m.categorical else SECTION_VERSION,
        "features": list(m.features),
        **(cat if m.categorical else {}),
        "mean": m.mean.tolist(),
        "scale": m.scale.tolist(),
        "components": m.components.tolist(),
        "threshold": m.threshold,
        "outlier_quantile": m.outlier_quantile,
    }


def from_dict(doc: dict[str, Any], known_numeric: Sequence[str],
              known_categorical: Mapping[str, Sequence[str]] | None = None) -> Multivariate:
    """Validate the section (shapes, finiteness, bounds) against the reference's numeric features and
    categorical features (name -> categories); ValueError names the field."""
    version = doc.get("section_version")
    if version not in (SECTION_VERSION, SECTION_VERSION_CATEGORICAL):
        raise ValueError(f"'section_version' must be {SECTION_VERSION} or {SECTION_VERSION_CATEGORICAL}")
    features = doc.get("features")
    if not isinstance(features, list) or not 1 <= len(features) <= MAX_FEATURES:
        raise ValueError(f"'features' must list 1 to {MAX_FEATURES} feature names")
    if len(set(features)) != len(features) or not set(features) <= set(known_numeric):
        raise ValueError("'features' must name distinct numeric features of the reference")
    categorical = _categorical(doc, version, known_categorical or {})
    d = len(features) + sum(len(levels) for _, levels in categorical)

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
                        float(quantile), categorical)  # type: ignore[arg-type]


def _categorical(doc: dict[str, Any], version: Any,
                 known: Mapping[str, Sequence[str]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The section's ``categorical`` list (section version 2 only), validated against the reference."""
    items = doc.get("categorical")
    if version == SECTION_VERSION:
        if items is not None:
            raise ValueError(f"'categorical' needs 'section_version' {SECTION_VERSION_CATEGORICAL}")
        return ()
    if not isinstance(items, list) or not items:
        raise ValueError("'categorical' must list the encoded categorical features")
    out = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("feature"), str) \
                or not isinstance(item.get("levels"), list):
            raise ValueError("'categorical' entries must be objects with 'feature' and 'levels'")
        levels = item["levels"]
        if not 1 <= len(levels) <= MAX_LEVELS or not all(isinstance(v, str) for v in levels) \
                or len(set(levels)) != len(levels):
            raise ValueError(f"'categorical' levels must be 1 to {MAX_LEVELS} distinct strings")
        out.append((item["feature"], tuple(levels)))
    names = [name for name, _ in out]
    if len(set(names)) != len(names) or not set(names) <= set(known):
        raise ValueError("'categorical' must name distinct categorical features of the reference")
    for name, levels in out:
        if not set(levels) <= set(known[name]):
            raise ValueError(f"'categorical' levels of {name!r} must be categories of its profile")
    if sum(len(levels) for _, levels in out) > MAX_CATEGORICAL_COLUMNS:
        raise ValueError(f"'categorical' encodes more than {MAX_CATEGORICAL_COLUMNS} levels")
    return tuple(out)
