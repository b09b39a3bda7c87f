"""Reference profiles: the training-time distribution of every feature and model output.

A :class:`Reference` is the contract between the edge and the processor: the histogram a monitored
process emits for a numeric feature has exactly the reference's ``edges`` as bucket bounds, and a
categorical feature is counted over the reference's categories plus :data:`semconv.OTHER_CATEGORY`.
Profiles are stored as versioned JSON (``format_version``), never pickle. ``docs/reference-format.md``
describes the file.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import itertools
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeGuard

import numpy as np

from . import _multivariate, semconv
from ._adapters import columns_of
from ._binning import bucket_counts, quantile_edges
from ._errors import ReferenceProfileError
from .semconv import MAX_NAME_LENGTH

if TYPE_CHECKING:
    from .stats.performance import Estimate

FORMAT_VERSION = 1
DEFAULT_BINS = 10
DEFAULT_TOP_K = 50
MAX_FEATURES = 2048
#: Largest count a profile may hold: every count stays exact as a float64 (the statistics' type).
MAX_COUNT = 2**53
#: Largest magnitude of an edge or statistic: far beyond any real feature, and its square (variances,
#: squared distances) is still a finite float64.
MAX_MAGNITUDE = 1e150

#: Output names used by :func:`build_reference` and the decorator to find a model's outputs.
OUTPUT_VALUE = "value"
OUTPUT_LABEL = "label"
PROBA_PREFIX = "proba:"

Kind = Literal["numeric", "categorical"]


@dataclass(frozen=True)
class NumericProfile:
    """Distribution of one numeric column: OTel-style bucket edges and the reference counts."""

    name: str
    edges: tuple[float, ...]
    counts: tuple[int, ...]
    count: int
    missing: int
    invalid: int
    min: float
    max: float
    mean: float
    std: float
    kind: Literal["numeric"] = field(default="numeric", init=False)

    @property
    def rows(self) -> int:
        return self.count + self.missing + self.invalid

    @property
    def missing_ratio(self) -> float:
        return self.missing / self.rows if self.rows else 0.0


@dataclass(frozen=True)
class CategoricalProfile:
    """Frequencies of one categorical column: the top-K categories and the rest as 'other'."""

    name: str
    categories: tuple[str, ...]
    counts: tuple[int, ...]
    other_count: int
    count: int
    missing: int
    kind: Literal["categorical"] = field(default="categorical", init=False)

    @property
    def rows(self) -> int:
        return self.count + self.missing

    @property
    def missing_ratio(self) -> float:
        return self.missing / self.rows if self.rows else 0.0

    @property
    def bucket_labels(self) -> tuple[str, ...]:
        """Categories in count order, then the 'other' bucket: the order of :attr:`bucket_counts`."""
        return (*self.categories, semconv.OTHER_CATEGORY)

    @property
    def bucket_counts(self) -> tuple[int, ...]:
        return (*self.counts, self.other_count)


Profile = NumericProfile | CategoricalProfile


@dataclass(frozen=True)
class MultivariateProfile:
    """The optional "multivariate" section: the PCA summary of the numeric features and the profile of
    the training rows' reconstruction error (a numeric profile named
    :data:`semconv.RECONSTRUCTION_ERROR_FEATURE` whose top edge and ``max`` are the outlier threshold).
    """

    summary: _multivariate.Multivariate
    error: NumericProfile


@dataclass(frozen=True)
class SegmentValueProfile:
    """One segment value's reference rows (the optional "segments" section): how many, the counts of each
    model output over them (per bucket of a numeric output's edges, or per class then ``__other__``) and
    their data-quality counts summed over the features (:data:`semconv.QUALITY_KINDS`)."""

    rows: int
    outputs: Mapping[str, tuple[int, ...] | Mapping[str, int]]
    quality: Mapping[str, int]

    def __hash__(self) -> int:  # a Reference stays hashable
        return hash((self.rows, tuple((k, v if isinstance(v, tuple) else tuple(v.items()))
                                      for k, v in self.outputs.items()), tuple(self.quality.items())))


@dataclass(frozen=True)
class SegmentColumnProfile:
    """A segment column's profiled values: its top values (the rule of categorical features) and
    :data:`semconv.OTHER_CATEGORY` (the rest, and missing values)."""

    values: Mapping[str, SegmentValueProfile]

    def __hash__(self) -> int:
        return hash(tuple(self.values.items()))


@dataclass(frozen=True)
class Reference:
    """A model version's reference profile: one :data:`Profile` per feature and per output.

    Build one with :func:`otel_ml.build_reference`, write it with :meth:`save`, read it with
    :func:`otel_ml.load_reference`.
    """

    model_name: str
    model_version: str
    features: tuple[Profile, ...]
    outputs: tuple[Profile, ...] = ()
    row_count: int = 0
    created_at: str = ""
    performance: ReferencePerformance | None = None
    multivariate: MultivariateProfile | None = None
    #: the optional "segments" section: per segment column, the reference of each of its values
    segments: Mapping[str, SegmentColumnProfile] | None = None

    def __hash__(self) -> int:  # segments is a mapping
        return hash((self.model_name, self.model_version, self.features, self.outputs, self.row_count,
                     self.created_at, self.performance, self.multivariate,
                     None if self.segments is None else tuple(self.segments.items())))

    @property
    def streamed_features(self) -> tuple[Profile, ...]:
        """The features plus, with a "multivariate" section, the reconstruction-error stream: every
        feature stream a monitored process emits and the processor judges."""
        if self.multivariate is None:
            return self.features
        return (*self.features, self.multivariate.error)

    def feature(self, name: str) -> Profile:
        """The profile of feature ``name`` (KeyError if the reference has none)."""
        for p in self.features:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Feature names in column order: the order a 2-D numpy input is read in."""
        return tuple(p.name for p in self.features)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form written by :meth:`save`."""
        return {
            "format_version": FORMAT_VERSION,
            "model": {"name": self.model_name, "version": self.model_version},
            "created_at": self.created_at,
            "row_count": self.row_count,
            "features": [_profile_to_dict(p) for p in self.features],
            "outputs": [_profile_to_dict(p) for p in self.outputs],
            **({"performance": self.performance.to_dict()} if self.performance is not None else {}),
            **({"multivariate": {**_multivariate.to_dict(self.multivariate.summary),
                                 "error": _profile_to_dict(self.multivariate.error)}}
               if self.multivariate is not None else {}),
            **({"segments": _segments_to_dict(self.segments)} if self.segments is not None else {}),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, allow_nan=False)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the profile as JSON, atomically (a reader never sees half a file)."""
        path = os.fspath(path)
        tmp = f"{path}.tmp-{os.getpid()}"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(self.to_json())
            os.replace(tmp, path)
        except BaseException:  # a full disk, an interrupt: leave no partial file behind
            with contextlib.suppress(OSError):
                os.remove(tmp)
            raise

    @classmethod
    def from_dict(cls, doc: Any, *, source: str = "<dict>") -> Reference:
        """Validate a parsed JSON document and build the reference; errors name ``source`` and the field."""
        return _parse(doc, source)


def load_reference(path: str | os.PathLike[str]) -> Reference:
    """Read a reference profile written by :meth:`Reference.save`.

    Raises :class:`ReferenceProfileError` naming the file and the offending field when the file is
    missing, is not JSON, has an unknown ``format_version`` or is inconsistent.
    """
    source = os.fspath(path)
    try:
        with open(source, "rb") as f:
            text = f.read()
    except FileNotFoundError:
        raise ReferenceProfileError(f"{source}: no such reference file") from None
    except OSError as exc:
        raise ReferenceProfileError(f"{source}: cannot read the reference file ({exc.strerror})") from None
    return loads_reference(text, source=source)


def loads_reference(text: str | bytes, *, source: str = "<bytes>") -> Reference:
    """Parse and validate a reference profile from JSON text.

    Any defect - not JSON, nested deeper than the interpreter's recursion limit (json's C decoder
    checks it at every level, so 200,000 brackets fail fast), an integer beyond the interpreter's
    digit limit, a field out of range - raises :class:`ReferenceProfileError` naming ``source`` and the
    field, never the (possibly hostile) value.
    """
    try:
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ReferenceProfileError(f"{source}: not UTF-8 text") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReferenceProfileError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno} "
                                    f"column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer beyond the digit limit
        raise ReferenceProfileError(f"{source}: not a readable JSON reference profile "
                                    f"({type(exc).__name__})") from None
    try:
        return _parse(doc, source)
    except (ArithmeticError, RecursionError, TypeError, ValueError) as exc:
        if isinstance(exc, ReferenceProfileError):
            raise
        raise ReferenceProfileError(f"{source}: not a valid reference profile ({type(exc).__name__})") from None


# --- Building ------------------------------------------------------------------------------------


def build_reference(
    data: Any,
    *,
    model: str,
    version: str,
    predictions: Any = None,
    categorical: Iterable[str] | None = None,
    feature_names: Sequence[str] | None = None,
    class_names: Sequence[Any] | None = None,
    bins: int = DEFAULT_BINS,
    top_k: int = DEFAULT_TOP_K,
    labels: Any = None,
    multivariate: bool = False,
    segments: Sequence[str] | Mapping[str, Any] | None = None,
) -> Reference:
    """Profile training (or validation) data, and optionally the model's predictions on it.

    ``data`` is a pandas or polars DataFrame, a 2-D numpy array (columns named by
    ``feature_names``, else ``x0, x1, ...``), a list of row dicts or a dict of columns. Columns
    named in ``categorical``, and every non-numeric column, are profiled as categories (top
    ``top_k``, the rest as 'other'); the others get about ``bins`` quantile buckets.

    ``predictions`` may be a 1-D array of scores or regression values (output ``value``), of class
    labels (integers, strings or booleans: output ``label``), a 2-D array of class probabilities
    (outputs ``proba:<class>``, classes from ``class_names`` or the column index), or a mapping of
    output name to array.

    ``labels`` (the true classes or values of the same rows: a labelled holdout) adds the model's
    reference performance (:class:`ReferencePerformance`): each metric with its 95 % interval and, for
    class probabilities, the reliability bins. The task follows the predictions: ``proba:<class>``
    outputs or a ``label`` output make a classifier, a ``value`` output with numeric labels a regression.

    ``multivariate=True`` (with a numeric feature and at least two columns) adds the multivariate summary
    (:class:`MultivariateProfile`): a standardised PCA of the numeric features and of indicators of the
    categorical features' most frequent categories (at most 8 per feature, 64 in all), fitted on at most
    100,000 rows, against which each monitored row's reconstruction error is streamed and judged (and
    rows beyond its 99.9th percentile counted as outliers). Opt-in: it adds about 3 µs to a one-row call
    of numbers, about 10 µs with categorical columns.

    ``segments`` (up to 4 column names of ``data``, or a mapping of segment name to one value per row for
    a column that is not a feature) adds the "segments" section (:class:`SegmentColumnProfile`): per
    column, its top values (a categorical feature's categories, else its ``top_k`` most frequent values)
    and ``__other__``, each with its rows, its outputs' counts and its data-quality counts summed over the
    features, so the processor judges drift and quality per segment value. Those values also bound what
    ``monitor(..., segments=[...])`` emits for the column.
    """
    # Every check a loaded file must pass is made here too: what save() writes, load() reads.
    _check_name("model", model)
    if version is None or isinstance(version, bool):
        raise ReferenceProfileError(f"version: must be a non-empty string, got {version!r}")
    _check_name("version", str(version))
    if bins < 2 or bins > 256:
        raise ReferenceProfileError(f"bins must be between 2 and 256, got {bins}")
    if top_k < 1 or top_k > 1000:
        raise ReferenceProfileError(f"top_k must be between 1 and 1000, got {top_k}")
    if feature_names is not None:
        _check_unique("feature", list(feature_names))
    columns = columns_of(data, feature_names)
    if not columns:
        raise ReferenceProfileError("data has no columns to profile")
    _check_unique("feature", list(columns))
    rows = {len(v) for v in columns.values()}
    if len(rows) != 1 or 0 in rows:
        raise ReferenceProfileError("data must have at least one row and columns of equal length")
    cat = set(categorical or ())
    unknown = cat - set(columns)
    if unknown:
        raise ReferenceProfileError(f"categorical names unknown columns: {sorted(unknown)}")
    features = tuple(
        profile_column(name, values, categorical=name in cat, bins=bins, top_k=top_k)
        for name, values in columns.items()
    )
    prediction_columns = _prediction_columns(predictions, class_names)
    _check_unique("output", [name for name, _, _ in prediction_columns])
    outputs = tuple(
        profile_column(name, values, categorical=is_cat, bins=bins, top_k=top_k)
        for name, values, is_cat in prediction_columns
    )
    n_rows = rows.pop()
    numeric = [p for p in features if isinstance(p, NumericProfile)][: _multivariate.MAX_FEATURES]
    encoded = _encoded_levels(features) if numeric else []
    mv = None
    if multivariate and numeric and len(numeric) + sum(len(levels) for _, levels in encoded) >= 2:
        if semconv.RECONSTRUCTION_ERROR_FEATURE in columns:
            raise ReferenceProfileError(f"feature {semconv.RECONSTRUCTION_ERROR_FEATURE!r}: reserved for the "
                                        "multivariate stream (rename it or pass multivariate=False)")
        matrix = np.column_stack([_as_float(columns[p.name]) for p in numeric])
        codes = [_level_codes(p, levels, columns[p.name]) for p, levels in encoded]
        mv = multivariate_profile(matrix, [p.name for p in numeric], bins,
                                  categorical=[(p.name, levels) for p, levels in encoded], codes=codes)
    segment_section = None
    if segments is not None:
        segment_section = segment_profiles(_segment_columns(segments, columns, n_rows), columns, features,
                                           [(p, values) for p, (_, values, _) in zip(outputs, prediction_columns)],
                                           top_k)
    return Reference(
        model_name=model,
        model_version=str(version),
        features=features,
        outputs=outputs,
        row_count=n_rows,
        created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        performance=None if labels is None else performance_of(labels, prediction_columns, n_rows),
        multivariate=mv,
        segments=segment_section,
    )


def _as_float(values: Any) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind in "iuf":
        return arr.astype(np.float64)
    numeric = _try_float(arr)
    assert numeric is not None  # profiled as numeric
    return numeric


def _encoded_levels(features: Sequence[Profile]) -> list[tuple[CategoricalProfile, tuple[str, ...]]]:
    """The categorical features the multivariate summary encodes, in column order, each with its most
    frequent reference categories (bounded per feature and in all: :mod:`._multivariate`)."""
    out = []
    room = _multivariate.MAX_CATEGORICAL_COLUMNS
    for p in features:
        if not isinstance(p, CategoricalProfile) or room <= 0:
            continue
        # A category in every row says nothing; when the categories cover every row, the last one is
        # implied by the others (its indicator would be a linear function of theirs).
        present = [c for c, n in zip(p.categories, p.counts) if 0 < n < p.count]
        if p.other_count == 0 and len(present) == len(p.categories):
            present = present[:-1]
        levels = tuple(present[: min(_multivariate.MAX_LEVELS, room)])
        if levels:
            out.append((p, levels))
            room -= len(levels)
    return out


def _level_codes(profile: CategoricalProfile, levels: Sequence[str], values: Any) -> np.ndarray:
    """Each row's level index among ``levels`` (categories of the profile), ``len(levels)`` for another
    value and ``len(levels) + 1`` for a missing one, counted by the predict path's own table."""
    from ._binning import CategoricalTable

    table = CategoricalTable(profile)
    _, buckets = table.stats_and_codes(values)
    index = {c: i for i, c in enumerate(levels)}
    # buckets: the categories, other, then missing (= size)
    lut = np.array([*(index.get(c, len(levels)) for c in table.categories), len(levels), len(levels) + 1],
                   dtype=np.intp)
    return lut[buckets]


def multivariate_profile(matrix: np.ndarray, names: Sequence[str], bins: int = DEFAULT_BINS, *,
                         categorical: Sequence[tuple[str, Sequence[str]]] = (),
                         codes: Sequence[np.ndarray] = ()) -> MultivariateProfile | None:
    """Fit the multivariate summary on ``matrix`` (rows x ``names``) and the ``categorical`` features'
    level ``codes`` (:func:`._multivariate.fit`); None with fewer than two complete rows."""
    try:
        summary, err, skipped = _multivariate.fit(matrix, names, categorical=categorical, codes=codes)
    except ValueError:
        return None
    threshold = summary.threshold
    edges = quantile_edges(err, bins)
    edges = np.append(edges[edges < threshold], threshold)
    error = NumericProfile(
        name=semconv.RECONSTRUCTION_ERROR_FEATURE,
        edges=tuple(float(e) for e in edges),
        counts=tuple(int(c) for c in bucket_counts(err, edges)),
        count=int(err.size),
        missing=skipped,
        invalid=0,
        min=0.0,
        max=threshold,
        mean=float(err.mean()),
        std=float(err.std()),
    )
    return MultivariateProfile(summary, error)


def profile_column(
    name: str, values: Any, *, categorical: bool = False, bins: int = DEFAULT_BINS, top_k: int = DEFAULT_TOP_K
) -> Profile:
    """Profile one column; numeric unless ``categorical`` or its values are not numbers."""
    arr = np.asarray(values)
    if not categorical and arr.dtype.kind in "biuf":
        if arr.dtype.kind == "b":
            categorical = True
    elif not categorical:
        numeric = _try_float(arr)
        if numeric is None:
            categorical = True
        else:
            arr = numeric
    if categorical:
        return _categorical_profile(name, arr, top_k)
    return _numeric_profile(name, arr.astype(np.float64), bins)


def _try_float(arr: np.ndarray) -> np.ndarray | None:
    """Object column to float if every non-missing entry is a real number, else None."""
    out = np.empty(arr.shape, dtype=np.float64)
    for i, v in enumerate(arr.tolist()):
        if v is None:
            out[i] = np.nan
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[i] = v
        else:
            return None
    return out


def _numeric_profile(name: str, values: np.ndarray, bins: int) -> NumericProfile:
    nan = np.isnan(values)
    finite_mask = np.isfinite(values)
    finite = values[finite_mask]
    if finite.size == 0:
        raise ReferenceProfileError(f"feature {name!r}: no finite values to profile")
    edges = quantile_edges(finite, bins)
    counts = bucket_counts(finite, edges)
    return NumericProfile(
        name=name,
        edges=tuple(float(e) for e in edges),
        counts=tuple(int(c) for c in counts),
        count=int(finite.size),
        missing=int(nan.sum()),
        invalid=int((~finite_mask & ~nan).sum()),
        min=float(finite.min()),
        max=float(finite.max()),
        mean=float(finite.mean()),
        std=float(finite.std()),
    )


def category_key(value: Any) -> str | None:
    """The string a category value is counted under; None for a missing value."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (np.integer, np.floating)):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _categorical_profile(name: str, values: np.ndarray, top_k: int) -> CategoricalProfile:
    # Values are counted as the monitored process counts them: under their first MAX_NAME_LENGTH
    # characters, and a value spelled like the 'other' bucket in that bucket.
    freq: dict[str, int] = {}
    missing = 0
    for v in values.tolist():
        key = category_key(v)
        if key is None:
            missing += 1
        else:
            key = key[:MAX_NAME_LENGTH]
            freq[key] = freq.get(key, 0) + 1
    other = freq.pop(semconv.OTHER_CATEGORY, 0)
    ranked = sorted(freq.items(), key=lambda kv: (-kv[1], kv[0]))
    top = ranked[:top_k]
    return CategoricalProfile(
        name=name,
        categories=tuple(k for k, _ in top),
        counts=tuple(c for _, c in top),
        other_count=other + sum(c for _, c in ranked[top_k:]),
        count=sum(freq.values()) + other,
        missing=missing,
    )


def _prediction_columns(predictions: Any, class_names: Sequence[Any] | None) -> list[tuple[str, Any, bool]]:
    if predictions is None:
        return []
    if isinstance(predictions, Mapping):
        return [(str(k), np.asarray(v), False) for k, v in predictions.items()]
    if hasattr(predictions, "to_numpy"):
        predictions = predictions.to_numpy()
    arr = np.asarray(predictions)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim == 1:
        if arr.dtype.kind == "f":
            return [(OUTPUT_VALUE, arr, False)]
        return [(OUTPUT_LABEL, arr, True)]
    if arr.ndim == 2:
        names = list(class_names) if class_names is not None else list(range(arr.shape[1]))
        if len(names) != arr.shape[1]:
            raise ReferenceProfileError(
                f"class_names has {len(names)} entries but predictions have {arr.shape[1]} columns"
            )
        return [(proba_output_name(c), arr[:, i].astype(np.float64), False) for i, c in enumerate(names)]
    raise ReferenceProfileError(f"predictions must be 1-D or 2-D, got shape {arr.shape}")


def proba_output_name(class_name: Any) -> str:
    """Output name of the probability column for ``class_name``: ``proba:<class>``."""
    return f"{PROBA_PREFIX}{category_key(class_name)}"


# --- JSON (de)serialisation ----------------------------------------------------------------------


def _profile_to_dict(p: Profile) -> dict[str, Any]:
    if isinstance(p, NumericProfile):
        return {
            "name": p.name,
            "kind": "numeric",
            "edges": list(p.edges),
            "counts": list(p.counts),
            "count": p.count,
            "missing": p.missing,
            "invalid": p.invalid,
            "min": p.min,
            "max": p.max,
            "mean": p.mean,
            "std": p.std,
        }
    return {
        "name": p.name,
        "kind": "categorical",
        "categories": list(p.categories),
        "counts": list(p.counts),
        "other_count": p.other_count,
        "count": p.count,
        "missing": p.missing,
    }


def _parse(doc: Any, source: str) -> Reference:
    def fail(where: str, why: str) -> ReferenceProfileError:
        return ReferenceProfileError(f"{source}: {where}: {why}")

    if not isinstance(doc, dict):
        raise fail("document", "must be a JSON object")
    version = doc.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise fail("format_version",
                   f"unsupported value {_excerpt(version)} (this otel-ml reads {FORMAT_VERSION})")
    model = doc.get("model")
    if not isinstance(model, dict):
        raise fail("model", "must be an object with 'name' and 'version'")
    for key in ("name", "version"):
        problem = name_problem(model.get(key))
        if problem:
            raise fail(f"model.{key}", problem)
    features = _parse_profiles(doc.get("features"), "features", fail)
    outputs = _parse_profiles(doc.get("outputs", []), "outputs", fail)
    if not features:
        raise fail("features", "must list at least one feature")
    row_count = doc.get("row_count", 0)
    if not _is_count(row_count):
        raise fail("row_count", "must be a non-negative integer (at most 2**53)")
    created = doc.get("created_at", "")
    if not isinstance(created, str):
        raise fail("created_at", "must be a string")
    performance = _parse_performance(doc.get("performance"), fail)
    multivariate = _parse_multivariate(doc.get("multivariate"), features, fail)
    segments = _parse_segments(doc.get("segments"), len(features), outputs, row_count, fail)
    return Reference(model["name"], model["version"], features, outputs, row_count, created, performance,
                     multivariate, segments)


def _parse_multivariate(section: Any, features: tuple[Profile, ...], fail: Any) -> MultivariateProfile | None:
    """The optional "multivariate" section, validated; a reference without it has none."""
    if section is None:
        return None
    if not isinstance(section, dict):
        raise fail("multivariate", "must be an object")
    numeric = [p.name for p in features if isinstance(p, NumericProfile)]
    categorical = {p.name: p.categories for p in features if isinstance(p, CategoricalProfile)}
    if any(p.name == semconv.RECONSTRUCTION_ERROR_FEATURE for p in features):
        raise fail("multivariate", f"a feature is named {semconv.RECONSTRUCTION_ERROR_FEATURE!r}, "
                                   "the multivariate stream's reserved name")
    try:
        summary = _multivariate.from_dict(section, numeric, categorical)
        error_doc = section["error"]
        if not isinstance(error_doc, dict) or error_doc.get("name") != semconv.RECONSTRUCTION_ERROR_FEATURE:
            raise ValueError(f"'error' must be the numeric profile {semconv.RECONSTRUCTION_ERROR_FEATURE!r}")
        error = _parse_profile(error_doc)
        if not isinstance(error, NumericProfile) or not error.edges or error.edges[-1] != summary.threshold:
            raise ValueError("'error' must be a numeric profile whose top edge is the threshold")
    except KeyError as exc:
        raise fail("multivariate", f"missing field {exc.args[0]!r}") from None
    except (ArithmeticError, TypeError, ValueError) as exc:
        raise fail("multivariate", str(exc)) from None
    return MultivariateProfile(summary, error)


def _parse_profiles(items: Any, section: str, fail: Any) -> tuple[Profile, ...]:
    if not isinstance(items, list):
        raise fail(section, "must be a list")
    if len(items) > MAX_FEATURES:
        raise fail(section, f"has {len(items)} entries, more than the limit of {MAX_FEATURES}")
    seen: set[str] = set()
    out: list[Profile] = []
    for i, item in enumerate(items):
        where = f"{section}[{i}]"
        if not isinstance(item, dict):
            raise fail(where, "must be an object")
        problem = name_problem(item.get("name"))
        if problem:
            raise fail(where, f"'name' {problem}")
        name = item["name"]
        where = f"{section}[{i}] ({_shown(name)})"
        if name in seen:
            raise fail(where, "duplicate name")
        seen.add(name)
        try:
            out.append(_parse_profile(item))
        except KeyError as exc:
            raise fail(where, f"missing field {exc.args[0]!r}") from None
        except (ArithmeticError, TypeError, ValueError) as exc:
            raise fail(where, str(exc)) from None
    return tuple(out)


def _parse_profile(item: dict[str, Any]) -> Profile:
    kind = item.get("kind")
    counts = item["counts"]
    if not isinstance(counts, list) or not all(_is_count(c) for c in counts):
        raise ValueError("'counts' must be a list of non-negative integers (at most 2**53)")
    for key in ("count", "missing") + (("invalid",) if kind == "numeric" else ("other_count",)):
        if not _is_count(item.get(key, 0)):
            raise ValueError(f"'{key}' must be a non-negative integer (at most 2**53)")
    if kind == "numeric":
        edges = item["edges"]
        if not isinstance(edges, list) or not all(_is_finite(e) for e in edges):
            raise ValueError(f"'edges' must be a list of finite numbers of magnitude at most {MAX_MAGNITUDE:g}")
        if any(b <= a for a, b in itertools.pairwise(edges)):
            raise ValueError("'edges' must be strictly increasing")
        if len(counts) != len(edges) + 1:
            raise ValueError(f"'counts' must have len(edges) + 1 = {len(edges) + 1} entries, has {len(counts)}")
        stats = {k: item[k] for k in ("min", "max", "mean", "std")}
        for k, v in stats.items():
            if not _is_finite(v):
                raise ValueError(f"'{k}' must be a finite number of magnitude at most {MAX_MAGNITUDE:g}")
        if stats["min"] > stats["max"] or stats["std"] < 0:
            raise ValueError("'min' must not exceed 'max' and 'std' must be non-negative")
        return NumericProfile(
            name=item["name"],
            edges=tuple(float(e) for e in edges),
            counts=tuple(counts),
            count=item["count"],
            missing=item.get("missing", 0),
            invalid=item.get("invalid", 0),
            **{k: float(v) for k, v in stats.items()},
        )
    if kind == "categorical":
        cats = item["categories"]
        if not isinstance(cats, list) or not all(isinstance(c, str) for c in cats):
            raise ValueError("'categories' must be a list of strings")
        if len(set(cats)) != len(cats) or semconv.OTHER_CATEGORY in cats:
            raise ValueError(f"'categories' must be unique and must not contain {semconv.OTHER_CATEGORY!r}")
        if len(counts) != len(cats):
            raise ValueError("'counts' must have one entry per category")
        return CategoricalProfile(
            name=item["name"],
            categories=tuple(cats),
            counts=tuple(counts),
            other_count=item.get("other_count", 0),
            count=item["count"],
            missing=item.get("missing", 0),
        )
    raise ValueError(f"'kind' must be 'numeric' or 'categorical', got {_excerpt(kind)}")


def name_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a model name, version, feature or output name; None when it can."""
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if not value:
        return "must be a non-empty string"
    if len(value) > MAX_NAME_LENGTH:
        return f"must be at most {MAX_NAME_LENGTH} characters, got {len(value)}"
    return None


def _check_name(what: str, value: Any) -> None:
    problem = name_problem(value)
    if problem:
        raise ReferenceProfileError(f"{what}: {problem}")


def _check_unique(kind: str, names: list[Any]) -> None:
    """Each name valid and not repeated; at most :data:`MAX_FEATURES` of them (what a loaded file allows)."""
    if len(names) > MAX_FEATURES:
        raise ReferenceProfileError(f"{len(names)} {kind}s, more than the limit of {MAX_FEATURES}")
    seen: set[Any] = set()
    for name in names:
        label = f"{kind} {_shown(name)}"
        _check_name(label, name)
        if name in seen:
            raise ReferenceProfileError(f"duplicate {label}")
        seen.add(name)


def _shown(name: Any) -> str:
    """``repr`` of a name, cut short: an error message need not repeat a name hundreds of characters long."""
    if isinstance(name, str) and len(name) > 10:
        return repr(name[:10] + "…")
    return repr(name)


def _excerpt(value: Any, limit: int = 24) -> str:
    """A bounded, escaped stand-in for a value read from an untrusted file: its type, and for a short
    scalar its ``repr``. Error messages show this, never the value itself."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, float) or (isinstance(value, int) and abs(value) < 10**limit):
        text = repr(value)
        if len(text) <= limit:
            return text
    if isinstance(value, str):
        return f"a string of {len(value)} characters"
    return f"a value of type {type(value).__name__}"


def _is_count(v: Any) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_COUNT


def _is_finite(v: Any) -> bool:
    """A real number within :data:`MAX_MAGNITUDE` (compared exactly: a huge int never meets ``float()``)."""
    if isinstance(v, int) and not isinstance(v, bool):
        return -MAX_MAGNITUDE <= v <= MAX_MAGNITUDE
    return isinstance(v, float) and math.isfinite(v) and abs(v) <= MAX_MAGNITUDE


# --- Reference performance (the optional "performance" section) ----------------------------------

TASKS = ("binary", "multiclass", "regression")
#: Bounds of a loaded "performance" section: metric entries, calibration bins, a count.
MAX_METRICS = 4 * MAX_FEATURES
MAX_CALIBRATION_BINS = 1000


@dataclass(frozen=True)
class CalibrationBin:
    """One reliability bin of the holdout: rows whose probability is in ``(upper - width, upper]``."""

    upper: float
    count: int
    mean_predicted: float
    observed: float


@dataclass(frozen=True)
class ReferencePerformance:
    """The model's performance on the labelled holdout ``build_reference(labels=...)`` was given.

    ``metrics`` maps a metric name of :mod:`otel_ml.stats.performance` to its
    :class:`~otel_ml.stats.Estimate` (value and 95 % interval; only finite ones are kept).
    ``classes`` lists a classifier's classes in the order of its ``proba:<class>`` outputs (empty for a
    regression). ``calibration``: the non-empty reliability bins of a probabilistic classifier (binary:
    probability of ``classes[1]``; multiclass: probability of the predicted class against being right).
    """

    task: str
    n: int
    metrics: Mapping[str, Estimate]
    classes: tuple[str, ...] = ()
    calibration: tuple[CalibrationBin, ...] = ()

    def __hash__(self) -> int:  # a Reference stays hashable
        return hash((self.task, self.n, tuple(self.metrics.items()), self.classes, self.calibration))

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"task": self.task, "n": self.n}
        if self.classes:
            doc["classes"] = list(self.classes)
        doc["metrics"] = {k: {"value": e.value, "lower": e.lower, "upper": e.upper, "n": e.n}
                          for k, e in self.metrics.items()}
        if self.calibration:
            doc["calibration"] = {"bins": [dict(vars(b)) for b in self.calibration]}
        return doc


def _labels_array(labels: Any, n_rows: int) -> np.ndarray:
    if hasattr(labels, "to_numpy"):
        labels = labels.to_numpy()
    arr = np.asarray(labels)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1 or arr.shape[0] != n_rows:
        raise ReferenceProfileError(f"labels: must hold one label per row ({n_rows}), got shape {arr.shape}")
    return arr


def performance_of(labels: Any, prediction_columns: Sequence[tuple[str, Any, bool]],
                   n_rows: int) -> ReferencePerformance:
    """The reference performance of the model's outputs (as :func:`build_reference` names them) on ``labels``."""
    from .stats.performance import (
        classification_metrics,
        regression_metrics,
        reliability,
    )

    y = _labels_array(labels, n_rows)
    outputs = {name: values for name, values, _ in prediction_columns}
    proba_names = [n for n in outputs if n.startswith(PROBA_PREFIX)]
    if not outputs:
        raise ReferenceProfileError("labels: the reference performance needs the model's predictions (predictions=)")
    keys = [category_key(v) for v in y.tolist()]
    try:
        if proba_names or OUTPUT_LABEL in outputs:
            missing = sum(k is None for k in keys)
            if missing:
                raise ReferenceProfileError(f"labels: {missing} missing label(s); drop those rows first")
            truth_keys = [k for k in keys if k is not None]
            y_pred: list[str] | None = None
            if OUTPUT_LABEL in outputs:
                pred_keys = [category_key(v) for v in np.asarray(outputs[OUTPUT_LABEL]).tolist()]
                y_pred = [k for k in pred_keys if k is not None]
                if len(y_pred) != len(pred_keys):
                    raise ReferenceProfileError("predictions: the 'label' output has missing values")
            proba = None
            if proba_names:
                if len(proba_names) < 2:
                    raise ReferenceProfileError(
                        "predictions: class probabilities need one column per class (at least 2)")
                classes = [n[len(PROBA_PREFIX):] for n in proba_names]
                proba = np.column_stack([np.asarray(outputs[n], dtype=np.float64) for n in proba_names])
            else:
                classes = sorted(set(truth_keys) | set(y_pred or ()))
                if len(classes) < 2:
                    raise ReferenceProfileError(f"labels: a classifier needs at least two classes, got {classes}")
            metrics = classification_metrics(truth_keys, y_pred, proba, classes)
            task = "binary" if len(classes) == 2 else "multiclass"
            bins: list[dict[str, Any]] = []
            if proba is not None:
                truth = np.array([classes.index(k) for k in truth_keys])
                if task == "binary":
                    bins = reliability(truth == 1, proba[:, 1])
                else:
                    pred = proba.argmax(axis=1) if y_pred is None else np.array([classes.index(k) for k in y_pred])
                    bins = reliability(pred == truth, proba[np.arange(n_rows), pred])
            calibration = tuple(CalibrationBin(b["upper"], b["count"], b["mean_predicted"], b["observed"])
                                for b in bins if b["count"] > 0)
            return ReferencePerformance(task, n_rows, _finite_estimates(metrics), tuple(classes), calibration)
        if OUTPUT_VALUE in outputs:
            numeric = _try_float(y) if y.dtype.kind not in "biuf" else (None if y.dtype.kind == "b" else y)
            if numeric is None or not np.isfinite(numeric.astype(np.float64)).all():
                raise ReferenceProfileError("labels: a 'value' output needs finite numeric labels "
                                            "(for a classifier pass class labels or probabilities as predictions)")
            predicted = np.asarray(outputs[OUTPUT_VALUE], dtype=np.float64)
            metrics = regression_metrics(numeric.astype(np.float64), predicted)
            return ReferencePerformance("regression", n_rows, _finite_estimates(metrics))
    except ValueError as exc:
        raise ReferenceProfileError(f"labels: {exc}") from None
    raise ReferenceProfileError(f"labels: no output to judge (outputs: {', '.join(outputs)})")


def _finite_estimates(metrics: Mapping[str, Estimate]) -> dict[str, Estimate]:
    return {k: e for k, e in metrics.items() if all(math.isfinite(v) for v in (e.value, e.lower, e.upper))}


def _parse_performance(section: Any, fail: Any) -> ReferencePerformance | None:
    """The optional "performance" section, validated: finite numbers, bounded sizes, errors naming the field."""
    from .stats.performance import CLASSIFICATION_METRICS, REGRESSION_METRICS, Estimate

    if section is None:
        return None
    where = "performance"
    if not isinstance(section, dict):
        raise fail(where, "must be an object")
    task = section.get("task")
    if task not in TASKS:
        raise fail(f"{where}.task", f"must be one of {', '.join(TASKS)}, got {_shown(task)}")
    n = section.get("n")
    if not _is_count(n) or not 1 <= n <= MAX_COUNT:
        raise fail(f"{where}.n", "must be a positive integer (the holdout's rows)")
    classes = section.get("classes", [])
    if not isinstance(classes, list) or len(classes) > MAX_FEATURES:
        raise fail(f"{where}.classes", f"must be a list of at most {MAX_FEATURES} class names")
    for i, c in enumerate(classes):
        problem = name_problem(c)
        if problem:
            raise fail(f"{where}.classes[{i}]", problem)
    if len(set(classes)) != len(classes):
        raise fail(f"{where}.classes", "must not repeat a class")
    if task == "regression" and classes:
        raise fail(f"{where}.classes", "a regression has no classes")
    if task != "regression" and classes and (len(classes) == 2) != (task == "binary"):
        raise fail(f"{where}.classes", f"a {task} task cannot have {len(classes)} classes")
    metrics_doc = section.get("metrics")
    if not isinstance(metrics_doc, dict) or len(metrics_doc) > MAX_METRICS:
        raise fail(f"{where}.metrics", f"must be an object of at most {MAX_METRICS} metrics")
    known = REGRESSION_METRICS if task == "regression" else CLASSIFICATION_METRICS
    metrics: dict[str, Estimate] = {}
    for name, doc in metrics_doc.items():
        field_name = f"{where}.metrics.{_shown(name)}"
        base, _, cls = name.partition(":")
        if base not in known or (cls and (base not in ("precision", "recall", "f1") or name_problem(cls))):
            raise fail(field_name, f"unknown metric for a {task} task (known: {', '.join(known)}, "
                                   "precision:<class>, recall:<class>, f1:<class>)")
        if not isinstance(doc, dict):
            raise fail(field_name, "must be an object with 'value', 'lower' and 'upper'")
        for key in ("value", "lower", "upper"):
            if not _is_finite(doc.get(key)):
                raise fail(f"{field_name}.{key}", f"must be a finite number, got {_shown(doc.get(key))}")
        if not doc["lower"] <= doc["value"] <= doc["upper"]:
            raise fail(field_name, "must have lower <= value <= upper")
        count = doc.get("n", n)
        if not _is_count(count) or count > MAX_COUNT:
            raise fail(f"{field_name}.n", "must be a non-negative integer")
        metrics[name] = Estimate(float(doc["value"]), float(doc["lower"]), float(doc["upper"]), count)
    bins: list[CalibrationBin] = []
    calibration = section.get("calibration")
    if calibration is not None:
        if task == "regression":
            raise fail(f"{where}.calibration", "a regression has no calibration bins")
        if not isinstance(calibration, dict) or not isinstance(calibration.get("bins"), list):
            raise fail(f"{where}.calibration", "must be an object with a list 'bins'")
        if len(calibration["bins"]) > MAX_CALIBRATION_BINS:
            raise fail(f"{where}.calibration.bins", f"has more than {MAX_CALIBRATION_BINS} bins")
        for i, b in enumerate(calibration["bins"]):
            at = f"{where}.calibration.bins[{i}]"
            if not isinstance(b, dict):
                raise fail(at, "must be an object")
            for key in ("upper", "mean_predicted", "observed"):
                if not _is_finite(b.get(key)) or not 0 <= b[key] <= 1:
                    raise fail(f"{at}.{key}", f"must be a number in [0, 1], got {_shown(b.get(key))}")
            if not _is_count(b.get("count")) or not 1 <= b["count"] <= MAX_COUNT:
                raise fail(f"{at}.count", "must be a positive integer")
            if b["upper"] <= 0 or (bins and b["upper"] <= bins[-1].upper):
                raise fail(f"{at}.upper", "must be > 0 and increase from bin to bin")
            bins.append(CalibrationBin(float(b["upper"]), b["count"], float(b["mean_predicted"]), float(b["observed"])))
    return ReferencePerformance(task, n, metrics, tuple(classes), tuple(bins))


# --- Segments (the optional "segments" section) -------------------------------------------------

#: Values a loaded segment column may list: the largest ``top_k`` and ``__other__``.
MAX_SEGMENT_VALUES = 1001
#: Rows counted at once when profiling segments (bounded temporaries on big data).
_SEGMENT_CHUNK_ROWS = 1 << 16


def _segment_columns(segments: Sequence[str] | Mapping[str, Any], columns: Mapping[str, Any],
                     n_rows: int) -> dict[str, Any]:
    """The segment columns ``build_reference(segments=...)`` names, validated (ReferenceProfileError)."""
    if isinstance(segments, Mapping):
        named = {k: v for k, v in segments.items()}
    elif isinstance(segments, (list, tuple)) and all(isinstance(s, str) for s in segments):
        unknown = [s for s in segments if s not in columns]
        if unknown:
            raise ReferenceProfileError(f"segments names unknown columns: {unknown} (pass a mapping of name to "
                                        "values for a column that is not a feature)")
        named = {s: columns[s] for s in segments}
        if len(named) != len(segments):
            raise ReferenceProfileError(f"segments: a column is named twice in {list(segments)!r}")
    else:
        raise ReferenceProfileError("segments must be a list of column names of data or a mapping of segment "
                                    f"name to one value per row, got {type(segments).__name__}")
    if not named or len(named) > semconv.MAX_SEGMENT_COLUMNS:
        raise ReferenceProfileError(f"segments: 1 to {semconv.MAX_SEGMENT_COLUMNS} columns, got {len(named)}")
    out = {}
    for name, values in named.items():
        _check_name(f"segment {_shown(name)}", name)
        if hasattr(values, "to_numpy"):
            values = values.to_numpy()
        arr = np.asarray(values) if not isinstance(values, np.ndarray) else values
        if arr.ndim != 1 or arr.shape[0] != n_rows:
            raise ReferenceProfileError(f"segment {_shown(name)}: must hold one value per row ({n_rows}), "
                                        f"got shape {arr.shape}")
        out[name] = arr
    return out


def _quality_rows(profile: Profile, values: Any, out: np.ndarray) -> None:
    """Add each row's data-quality counts of one feature to ``out`` (rows x QUALITY_KINDS), counted as a
    monitored process counts them (:mod:`otel_ml._adapters`, :mod:`otel_ml._binning`)."""
    from ._adapters import numeric_cells
    from ._binning import CategoricalTable

    if isinstance(profile, NumericProfile):
        v, wrong = numeric_cells(values)
        nan = np.isnan(v)
        finite = np.isfinite(v)
        if wrong is not None:
            nan &= ~wrong
        out[:, 0] += nan
        out[:, 1] += ~finite & ~nan
        with np.errstate(invalid="ignore"):
            out[:, 2] += finite & ((v < profile.min) | (v > profile.max))
        return
    table = CategoricalTable(profile)
    idx = table.row_buckets(values)
    out[:, 0] += idx == table.missing_bucket
    out[:, 3] += idx == table.other


def segment_profiles(segments: Mapping[str, Any], columns: Mapping[str, Any], features: Sequence[Profile],
                     outputs: Sequence[tuple[Profile, Any]], top_k: int,
                     chunk_rows: int = _SEGMENT_CHUNK_ROWS,
                     allowed: Mapping[str, Sequence[str]] | None = None) -> dict[str, SegmentColumnProfile]:
    """The "segments" section: per segment column, its top values (a categorical feature's categories, else
    the column's ``top_k`` most frequent values; ``allowed[name]`` when given: a reference's bound, as
    ``otel-ml drift`` counts a file) and ``__other__``, each with its rows, its outputs' counts and its
    quality counts. Counted chunk by chunk, with the predict path's own bounding and binning."""
    from ._adapters import numeric_cells
    from ._binning import CategoricalTable, bucket_index
    from ._segments import SegmentValues, _usable, sum_by_code

    n_rows = len(next(iter(segments.values())))
    by_name = {p.name: p for p in features}
    coders: dict[str, SegmentValues] = {}
    for name, values in segments.items():
        if allowed is not None and name in allowed:
            coders[name] = SegmentValues(name, tuple(allowed[name]))
            continue
        p = by_name.get(name)
        if not isinstance(p, CategoricalProfile):
            p = _categorical_profile(name, values, top_k)
        cats = p.categories
        coders[name] = SegmentValues(name, _usable(cats))
    out_tables = [(p, CategoricalTable(p) if isinstance(p, CategoricalProfile) else None, values)
                  for p, values in outputs]
    rows = {n: np.zeros(c.capacity + 1, dtype=np.int64) for n, c in coders.items()}
    quality = {n: np.zeros((c.capacity + 1, len(semconv.QUALITY_KINDS)), dtype=np.int64) for n, c in coders.items()}
    counts: dict[str, list[np.ndarray]] = {n: [] for n in coders}
    widths = [table.size if table is not None else len(p.edges) + 1  # type: ignore[union-attr]
              for p, table, _ in out_tables]
    for n, c in coders.items():
        counts[n] = [np.zeros((c.capacity + 1) * w, dtype=np.int64) for w in widths]
    for lo in range(0, n_rows, chunk_rows):
        hi = min(lo + chunk_rows, n_rows)
        q = np.zeros((hi - lo, len(semconv.QUALITY_KINDS)), dtype=np.int64)
        for p in features:
            _quality_rows(p, columns[p.name][lo:hi], q)
        buckets = []
        for p, table, values in out_tables:
            if table is not None:
                idx = table.row_buckets(values[lo:hi])
                buckets.append((idx, idx != table.missing_bucket, table.size))
            elif isinstance(p, NumericProfile):
                v, _ = numeric_cells(values[lo:hi])
                fin = np.isfinite(v)
                idx = np.zeros(hi - lo, dtype=np.int64)
                idx[fin] = bucket_index(v[fin], np.asarray(p.edges, dtype=np.float64))
                buckets.append((idx, fin, len(p.edges) + 1))
        for name, coder in coders.items():
            codes = coder.codes(segments[name][lo:hi], hi - lo)
            size = coder.capacity + 1
            rows[name] += np.bincount(codes, minlength=size)
            quality[name] += sum_by_code(codes, q, size)
            for acc, (idx, keep, width) in zip(counts[name], buckets):
                acc += np.bincount(codes[keep] * width + idx[keep], minlength=size * width)
    section = {}
    for name, coder in coders.items():
        labels = [*coder.labels, semconv.OTHER_CATEGORY]
        values_doc: dict[str, SegmentValueProfile] = {}
        for code, label in enumerate(labels):
            outs: dict[str, tuple[int, ...] | Mapping[str, int]] = {}
            for acc, (p, table, _) in zip(counts[name], out_tables):
                per = acc.reshape(coder.capacity + 1, -1)[code].tolist()
                outs[p.name] = dict(zip(table.labels, per)) if table is not None else tuple(per)
            values_doc[label] = SegmentValueProfile(
                int(rows[name][code]), outs, dict(zip(semconv.QUALITY_KINDS, quality[name][code].tolist())))
        section[name] = SegmentColumnProfile(values_doc)
    return section


def _segments_to_dict(segments: Mapping[str, SegmentColumnProfile]) -> dict[str, Any]:
    return {col: {"values": {value: {"rows": vp.rows,
                                     "outputs": {k: dict(c) if isinstance(c, Mapping) else list(c)
                                                 for k, c in vp.outputs.items()},
                                     "quality": dict(vp.quality)}
                             for value, vp in cp.values.items()}}
            for col, cp in segments.items()}


def _parse_segments(section: Any, n_features: int, outputs: tuple[Profile, ...], row_count: int,
                    fail: Any) -> dict[str, SegmentColumnProfile] | None:
    """The optional "segments" section, validated against the outputs and the row count; errors name the field."""
    if section is None:
        return None
    if not isinstance(section, dict) or not 1 <= len(section) <= semconv.MAX_SEGMENT_COLUMNS:
        raise fail("segments", f"must be an object of 1 to {semconv.MAX_SEGMENT_COLUMNS} segment columns")
    kinds = set(semconv.QUALITY_KINDS)
    out: dict[str, SegmentColumnProfile] = {}
    for col, cdoc in section.items():
        where = f"segments.{_shown(col)}"
        problem = name_problem(col)
        if problem:
            raise fail(where, f"column name {problem}")
        if not isinstance(cdoc, dict) or set(cdoc) != {"values"}:
            raise fail(where, "must be an object with the one field 'values'")
        values = cdoc["values"]
        if not isinstance(values, dict) or not 1 <= len(values) <= MAX_SEGMENT_VALUES:
            raise fail(f"{where}.values", f"must be an object of 1 to {MAX_SEGMENT_VALUES} values")
        if semconv.OTHER_CATEGORY not in values:
            raise fail(f"{where}.values", f"must hold {semconv.OTHER_CATEGORY!r} (the other values and missing ones)")
        parsed: dict[str, SegmentValueProfile] = {}
        total = 0
        for value, vdoc in values.items():
            vwhere = f"{where}.values.{_shown(value)}"
            problem = name_problem(value)
            if problem:
                raise fail(vwhere, f"value {problem}")
            if not isinstance(vdoc, dict) or set(vdoc) != {"rows", "outputs", "quality"}:
                raise fail(vwhere, "must be an object with the fields 'rows', 'outputs' and 'quality'")
            n = vdoc["rows"]
            if not _is_count(n):
                raise fail(f"{vwhere}.rows", "must be a non-negative integer (at most 2**53)")
            total += n
            odoc = vdoc["outputs"]
            if not isinstance(odoc, dict) or set(odoc) != {p.name for p in outputs}:
                raise fail(f"{vwhere}.outputs", "must be an object with one entry per output of the reference: "
                           + (", ".join(_shown(p.name) for p in outputs[:8]) or "none"))
            outs: dict[str, tuple[int, ...] | Mapping[str, int]] = {}
            for p in outputs:
                counts = odoc[p.name]
                owhere = f"{vwhere}.outputs.{_shown(p.name)}"
                if isinstance(p, NumericProfile):
                    if not (isinstance(counts, list) and len(counts) == len(p.edges) + 1
                            and all(_is_count(c) for c in counts)):
                        raise fail(owhere, f"must be a list of {len(p.edges) + 1} non-negative integers "
                                           "(one per bucket of the output's edges)")
                    outs[p.name] = tuple(counts)
                    got = sum(counts)
                else:
                    if not (isinstance(counts, dict) and list(counts) == list(p.bucket_labels)
                            and all(_is_count(c) for c in counts.values())):
                        raise fail(owhere, "must map each class of the output, then "
                                           f"{semconv.OTHER_CATEGORY!r}, to a non-negative integer")
                    outs[p.name] = dict(counts)
                    got = sum(counts.values())
                if got > n:
                    raise fail(owhere, f"counts {got} rows, more than the value's {n}")
            qdoc = vdoc["quality"]
            if not isinstance(qdoc, dict) or set(qdoc) != kinds:
                raise fail(f"{vwhere}.quality", f"must map each of {', '.join(semconv.QUALITY_KINDS)} to a count")
            for kind in semconv.QUALITY_KINDS:
                if not _is_count(qdoc[kind]) or qdoc[kind] > n * n_features:
                    raise fail(f"{vwhere}.quality.{kind}",
                               "must be a non-negative integer of at most rows × features")
            parsed[value] = SegmentValueProfile(n, outs, {k: qdoc[k] for k in semconv.QUALITY_KINDS})
        if total != row_count:
            raise fail(f"{where}.values", f"rows add up to {total}, not the reference's row_count {row_count}")
        out[col] = SegmentColumnProfile(parsed)
    return out
