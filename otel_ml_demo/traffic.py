"""The demo's story: a model trained on a dataset shipped with scikit-learn, and the production
traffic replayed against it, with an outlier burst, a drift, a segment's degradation, a data-quality
incident and a concept drift injected part way. The traffic carries the true class of every row, so
the demo can send the outcomes a little later; in the concept-drift phase the true class flips in one
region of feature space while the inputs the model sees keep their distribution. Every row also comes
from a sales region (the segment column, not a model feature); in the segment phase the true class
changes for some rows of one small region only.

Nothing here touches the network or the disk: the dataset is scikit-learn's bundled breast-cancer
table (``load_breast_cancer``), the model a small imputing logistic-regression pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

MODEL_NAME = "breast-cancer-classifier"
MODEL_VERSION = "1"

#: The ten "mean ..." columns of the breast-cancer dataset: enough for a readable status table.
FEATURES: tuple[str, ...] = (
    "mean radius",
    "mean texture",
    "mean perimeter",
    "mean area",
    "mean smoothness",
    "mean compactness",
    "mean concavity",
    "mean concave points",
    "mean symmetry",
    "mean fractal dimension",
)


#: The segment column: where a request comes from. Not a model feature; the monitor counts per value.
SEGMENT_COLUMN = "region"
#: Its values and their shares of the rows (of the dataset, hence of the traffic resampled from it).
REGIONS: tuple[tuple[str, float], ...] = (
    ("north", 0.32), ("south", 0.26), ("east", 0.20), ("west", 0.12), ("islands", 0.10),
)


class DemoUnavailable(RuntimeError):
    """Something the demo needs is not installed; the message says what to install."""


@dataclass(frozen=True)
class Scenario:
    """Timeline and knobs of one demo run. Times are seconds since the traffic started."""

    duration: float = 45.0
    window: float = 15.0
    evaluation_interval: float = 2.0
    export_interval: float = 1.0
    rate: int = 400
    tick: float = 0.25
    # A burst of implausible rows: each value a real training value, jointly far off the training data
    # (a large tumour's outlier_high features with a small one's outlier_low features).
    outlier_at: float = 5.6
    outlier_for: float = 5.0
    outlier_share: float = 0.03
    outlier_high: tuple[str, ...] = ("mean radius", "mean concave points")
    outlier_low: tuple[str, ...] = ("mean perimeter", "mean concavity")
    outlier_tail: float = 0.03  # the values come from this top (bottom) share of the training values
    drift_feature: str = "mean radius"
    drift_shift: float = 0.6
    drift_at: float = 11.2
    incident_feature: str = "mean texture"
    incident_missing: float = 0.35
    incident_at: float = 22.5
    concept_feature: str = "mean concave points"
    concept_quantile: float = 0.75  # the true class flips where concept_feature is above this quantile
    concept_at: float = 33.8
    # A segment-only degradation: the true class changes for this share of one small region's rows.
    segment_value: str = "islands"
    segment_flip: float = 0.2
    segment_at: float = 16.9
    outcome_delay: float = 1.0  # seconds between a prediction and its outcome
    noise: float = 0.05
    seed: int = 7

    @classmethod
    def scaled(cls, duration: float, **overrides: Any) -> Scenario:
        """A scenario whose phases sit at the same fractions of ``duration`` as the default's.

        The window is about a third of the run (the drift needs most of one window to dominate it);
        an outlier burst at 1/8 lasting a third of a window, drift at 1/4, the segment's degradation at
        3/8, incident at 1/2, concept drift at 3/4.
        """
        window = overrides.pop("window", None) or max(4.0, round(duration / 3.0))
        default_evaluation = 2.0 if window >= 12 else 1.0 if window >= 6 else 0.5
        evaluation = overrides.pop("evaluation_interval", None) or default_evaluation
        export = overrides.pop("export_interval", None) or evaluation / 2.0
        return cls(
            duration=duration,
            window=window,
            outlier_at=round(duration / 8.0, 1),
            outlier_for=round(window / 3.0, 1),
            evaluation_interval=evaluation,
            export_interval=export,
            drift_at=round(duration / 4.0, 1),
            segment_at=round(3.0 * duration / 8.0, 1),
            incident_at=round(duration / 2.0, 1),
            concept_at=round(3.0 * duration / 4.0, 1),
            **overrides,
        )

    def phase(self, t: float) -> str:
        """A one-line description of what the traffic looks like at time ``t``."""
        if t >= self.duration:
            return "traffic stopped; waiting for the last evaluations"
        parts = []
        if self.outlier_at <= t < self.outlier_at + self.outlier_for:
            parts.append(f"outlier burst: {self.outlier_what()}")
        if t >= self.drift_at:
            parts.append(f"drift: {self.drift_feature!r} shifted by +{self.drift_shift:g}σ")
        if t >= self.segment_at:
            parts.append(f"segment: {self.segment_what()}")
        if t >= self.incident_at:
            parts.append(f"incident: {self.incident_feature!r} missing in {self.incident_missing:.0%} of rows")
        if t >= self.concept_at:
            parts.append(f"concept drift: {self.concept_what()}")
        return "; ".join(parts) if parts else "normal traffic"

    def outlier_what(self) -> str:
        high = " and ".join(repr(f) for f in self.outlier_high)
        low = " and ".join(repr(f) for f in self.outlier_low)
        return (f"{self.outlier_share:.0%} of rows implausible: {high} of a large tumour with {low} of a small "
                f"one (each value within its training range)")

    @property
    def segment(self) -> str:
        """The degraded segment as the demo names it: ``region=islands``."""
        return f"{SEGMENT_COLUMN}={self.segment_value}"

    @property
    def segment_min_pairs(self) -> int:
        """The joined outcomes a slice needs for a verdict (the processor's ``outcomes.min_samples``): half of
        what the degraded region brings per window, so its slice is judged all run long (default 500)."""
        share = dict(REGIONS).get(self.segment_value, 0.1)
        return max(50, min(500, int(0.5 * share * self.rate * self.window)))

    def segment_what(self) -> str:
        share = dict(REGIONS).get(self.segment_value)
        of = f" ({share:.0%} of traffic)" if share is not None else ""
        return f"true class changed in {self.segment_flip:.0%} of {self.segment} rows{of}, inputs unchanged"

    def concept_what(self) -> str:
        top = f"top {1.0 - self.concept_quantile:.0%}" if self.concept_quantile >= 0.5 else "upper part"
        return f"true class flipped where {self.concept_feature!r} is in its {top} (inputs unchanged)"


@dataclass
class DemoModel:
    """The trained model, its data and what the reference is built from."""

    model: Any
    data: Any  # pandas DataFrame of FEATURES
    class_names: tuple[str, ...]
    labels: Any = None  # numpy array: the true class name of every row of data
    regions: Any = None  # numpy array: the SEGMENT_COLUMN value of every row of data

    def predict_proba(self, frame: Any) -> Any:
        """The model's probabilities; columns that are not features (the region) are not its input."""
        return self.model.predict_proba(frame[list(FEATURES)])


def train_model(seed: int = 7) -> DemoModel:
    """Train the demo's classifier on a split of scikit-learn's bundled breast-cancer data."""
    try:
        from sklearn.datasets import load_breast_cancer
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import train_test_split
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise DemoUnavailable(
            "the demo needs scikit-learn and pandas: pip install 'otel-ml[demo]'"
        ) from exc

    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.frame[list(FEATURES)].astype("float64")
    target = bunch.target
    x_train, _, y_train, _ = train_test_split(frame, target, test_size=0.25, random_state=seed, stratify=target)
    model = make_pipeline(
        SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression(max_iter=1000)
    )
    model.fit(x_train, y_train)
    names = tuple(str(bunch.target_names[c]) for c in model.classes_)
    labels = np.asarray(names)[np.searchsorted(model.classes_, target.to_numpy())]
    # Regions spread evenly over how hard a row is for the model (its probability of the true class) and
    # over the concept drift's region: each region starts as accurate as the others, as with a real segment
    # column that is not a feature; the story then degrades one.
    p_true = model.predict_proba(frame)[np.arange(len(frame)), np.searchsorted(model.classes_, target.to_numpy())]
    concept = frame["mean concave points"].to_numpy() > np.nanquantile(frame["mean concave points"], 0.75)
    regions = assign_regions(np.lexsort((p_true, concept)))
    return DemoModel(model=model, data=frame, class_names=names, labels=labels, regions=regions)


def assign_regions(order: Any) -> Any:
    """Each row's region with the shares of :data:`REGIONS`, dealt along ``order`` (row numbers) so that every
    run of consecutive rows in ``order`` has the shares too, within a row (each row goes to the region
    furthest behind its share)."""
    names = [name for name, _ in REGIONS]
    shares = np.array([share for _, share in REGIONS])
    counts = np.zeros(len(names))
    regions = np.empty(len(order), dtype=object)
    for i, row in enumerate(np.asarray(order)):
        j = int(np.argmax(shares * (i + 1) - counts))
        counts[j] += 1
        regions[row] = names[j]
    return regions.astype(str)


class Traffic:
    """Production traffic: rows resampled from the data with a little noise, story applied by time.

    Rows are numbered in the order they are made (the batch's index: the prediction ids). With
    ``regions`` (one per data row) each row also carries its :data:`SEGMENT_COLUMN`.
    """

    def __init__(self, data: Any, scenario: Scenario, labels: Any = None, regions: Any = None) -> None:
        import pandas as pd

        self._pd = pd
        self._columns = list(data.columns)
        self._values = data.to_numpy(dtype=np.float64)
        self._std = np.nanstd(self._values, axis=0)
        self._nonneg = np.nanmin(self._values, axis=0) >= 0
        self._scenario = scenario
        self._rng = np.random.default_rng(scenario.seed)
        self._drift_col = self._columns.index(scenario.drift_feature)
        self._incident_col = self._columns.index(scenario.incident_feature)
        self._concept_col = self._columns.index(scenario.concept_feature)
        self._concept_edge = float(np.nanquantile(self._values[:, self._concept_col], scenario.concept_quantile))
        self._outlier_cols = [(self._columns.index(f), high) for high in (True, False)
                              for f in (scenario.outlier_high if high else scenario.outlier_low)]
        self._sorted = np.sort(self._values, axis=0)  # NaN last
        self._labels = None if labels is None else np.asarray(labels)
        self._classes = None if self._labels is None else np.unique(self._labels)
        self._regions = None if regions is None else np.asarray(regions)
        self._next_id = 0

    def batch(self, t: float, n: int) -> Any:
        """``n`` rows of traffic as they look at time ``t`` (a pandas DataFrame)."""
        return self.batch_and_labels(t, n)[0]

    def batch_and_labels(self, t: float, n: int) -> tuple[Any, Any]:
        """``n`` rows of traffic at time ``t`` and their true classes (``None`` without labels).

        From ``concept_at`` on, the true class of a row whose ``concept_feature`` is above the
        scenario's quantile is the other one (binary): the world changed, the inputs did not. From
        ``segment_at`` on, the true class of ``segment_flip`` of the degraded region's rows is the other one.
        """
        s = self._scenario
        picked = self._rng.integers(0, len(self._values), n)
        rows = self._values[picked]
        rows = rows + self._rng.normal(0.0, 1.0, rows.shape) * (s.noise * self._std)
        rows[:, self._nonneg] = np.maximum(rows[:, self._nonneg], 0.0)
        truth = None
        if self._labels is not None and self._classes is not None:
            truth = self._labels[picked]
            if t >= s.concept_at and len(self._classes) == 2:
                flip = rows[:, self._concept_col] > self._concept_edge
                truth = _flipped(truth, flip, self._classes)
            if t >= s.segment_at and self._regions is not None:
                flip = (self._regions[picked] == s.segment_value) & (self._rng.random(n) < s.segment_flip)
                truth = _flipped(truth, flip, self._classes)
        if t >= s.drift_at:
            rows[:, self._drift_col] += s.drift_shift * self._std[self._drift_col]
        if s.outlier_at <= t < s.outlier_at + s.outlier_for:
            self._implausible(rows, self._rng.random(n) < s.outlier_share)
        if t >= s.incident_at:
            rows[self._rng.random(n) < s.incident_missing, self._incident_col] = np.nan
        index = self._pd.RangeIndex(self._next_id, self._next_id + n)
        self._next_id += n
        frame = self._pd.DataFrame(rows, columns=self._columns, index=index)
        if self._regions is not None:
            frame[SEGMENT_COLUMN] = self._regions[picked]
        return frame, truth

    def _implausible(self, rows: Any, which: Any) -> None:
        """Overwrite the ``which`` rows' outlier features with real training values from opposite tails."""
        s, k = self._scenario, int(which.sum())
        for col, high in self._outlier_cols:
            present = self._sorted[:, col][~np.isnan(self._sorted[:, col])]
            q = self._rng.uniform(1.0 - s.outlier_tail, 1.0, k) if high else self._rng.uniform(0.0, s.outlier_tail, k)
            rows[which, col] = present[np.minimum((q * len(present)).astype(int), len(present) - 1)]


def _flipped(truth: Any, which: Any, classes: Any) -> Any:
    """``truth`` with the other class (of two) where ``which``."""
    if len(classes) != 2:
        return truth
    return np.where(which, np.where(truth == classes[0], classes[1], classes[0]), truth)
