"""Input adapters: turn what a model is given (DataFrames, arrays, dicts) into named columns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def columns_of(data: Any, feature_names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Named 1-D columns of a table-like object, in column order.

    Accepts pandas and polars DataFrames, 2-D (or 1-D, one row) numpy arrays and nested lists, a
    list of row dicts, or a dict of columns. Used for reference building, where speed is secondary.
    """
    if hasattr(data, "columns") and hasattr(data, "to_numpy") and not isinstance(data, np.ndarray):
        names = [str(c) for c in data.columns]
        if hasattr(data, "get_column"):  # polars
            return {n: data.get_column(n).to_numpy() for n in names}
        return {n: data[c].to_numpy() for n, c in zip(names, data.columns)}
    if isinstance(data, Mapping):
        return {str(k): np.asarray(v) for k, v in data.items()}
    if isinstance(data, Sequence) and data and all(isinstance(r, Mapping) for r in data):
        names = list(dict.fromkeys(str(k) for r in data for k in r))
        return {n: np.array([r.get(n) for r in data], dtype=object) for n in names}
    arr = np.asarray(data)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D table, got an array of shape {arr.shape}")
    names = list(feature_names) if feature_names is not None else [f"x{i}" for i in range(arr.shape[1])]
    if len(names) != arr.shape[1]:
        raise ValueError(f"feature_names has {len(names)} names for {arr.shape[1]} columns")
    return {n: arr[:, i] for i, n in enumerate(names)}
