"""The demo's story: a model trained on a dataset shipped with scikit-learn, and the production
traffic replayed against it, with a drift and a data-quality incident injected part way.

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
    drift_feature: str = "mean radius"
    drift_shift: float = 0.6
    drift_at: float = 15.0
    incident_feature: str = "mean texture"
    incident_missing: float = 0.35
    incident_at: float = 30.0
    noise: float = 0.05
    seed: int = 7

    @classmethod
    def scaled(cls, duration: float, **overrides: Any) -> Scenario:
        """A scenario whose phases sit at the same fractions of ``duration`` as the default's.

        The window is about a third of the run (the drift needs most of one window to dominate it);
        drift at 1/3, incident at 2/3.
        """
        window = overrides.pop("window", None) or max(4.0, round(duration / 3.0))
        default_evaluation = 2.0 if window >= 12 else 1.0 if window >= 6 else 0.5
        evaluation = overrides.pop("evaluation_interval", None) or default_evaluation
        export = overrides.pop("export_interval", None) or evaluation / 2.0
        return cls(
            duration=duration,
            window=window,
            evaluation_interval=evaluation,
            export_interval=export,
            drift_at=round(duration / 3.0, 1),
            incident_at=round(2.0 * duration / 3.0, 1),
            **overrides,
        )

    def phase(self, t: float) -> str:
        """A one-line description of what the traffic looks like at time ``t``."""
        if t >= self.duration:
            return "traffic stopped; waiting for the last evaluations"
        parts = []
        if t >= self.drift_at:
            parts.append(f"drift: {self.drift_feature!r} shifted by +{self.drift_shift:g}σ")
        if t >= self.incident_at:
            parts.append(f"incident: {self.incident_feature!r} missing in {self.incident_missing:.0%} of rows")
        return "; ".join(parts) if parts else "normal traffic"


@dataclass
class DemoModel:
    """The trained model, its data and what the reference is built from."""

    model: Any
    data: Any  # pandas DataFrame of FEATURES
    class_names: tuple[str, ...]

    def predict_proba(self, frame: Any) -> Any:
        return self.model.predict_proba(frame)


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
    return DemoModel(model=model, data=frame, class_names=names)


class Traffic:
    """Production traffic: rows resampled from the data with a little noise, story applied by time."""

    def __init__(self, data: Any, scenario: Scenario) -> None:
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

    def batch(self, t: float, n: int) -> Any:
        """``n`` rows of traffic as they look at time ``t`` (a pandas DataFrame)."""
        s = self._scenario
        rows = self._values[self._rng.integers(0, len(self._values), n)]
        rows = rows + self._rng.normal(0.0, 1.0, rows.shape) * (s.noise * self._std)
        rows[:, self._nonneg] = np.maximum(rows[:, self._nonneg], 0.0)
        if t >= s.drift_at:
            rows[:, self._drift_col] += s.drift_shift * self._std[self._drift_col]
        if t >= s.incident_at:
            rows[self._rng.random(n) < s.incident_missing, self._incident_col] = np.nan
        return self._pd.DataFrame(rows, columns=self._columns)
