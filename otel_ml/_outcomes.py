"""``otel_ml.record_outcomes``: the actual labels or values of earlier predictions, as ``ml.outcome`` records.

Validation, hashing and sampling happen on the caller's thread (this is not a predict path); the records
then travel through the same queue and sender as prediction records (:mod:`otel_ml._records`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np

from . import _ids, semconv
from ._errors import ConfigurationError
from ._records import (
    DROP_INVALID,
    DROP_NO_SECRET,
    QUEUE,
    RECORDERS,
    OutcomeItem,
    drop,
    no_secret_message,
)
from ._reference import category_key, name_problem

#: Records per queued item: a million outcomes travel as many items, each waiting for room in the queue.
_CHUNK = 10_000
_QUEUE_WAIT_S = 60.0


def record_outcomes(
    *,
    model: str,
    ids: Sequence[Any],
    actuals: Sequence[Any],
    version: str | None = None,
    timestamps: Sequence[Any] | None = None,
    outcome_sample_rate: float | None = None,
    hash_ids: bool | None = None,
) -> int:
    """Send the outcomes (actual labels or values) of earlier predictions; returns how many were queued.

    ``ids`` are the prediction ids the model was monitored with (``monitor(prediction_id=...)``), hashed
    the same way (``configure(id_secret=...)`` or ``OTEL_ML_ID_SECRET``; raw with ``hash_ids=False``).
    ``actuals`` are class labels (str, int, bool: sent as ``ml.outcome.label``) or numbers (floats:
    ``ml.outcome.value``); when ``model`` is monitored in this process its reference decides. ``version``
    is optional (the processor takes it from the joined prediction). ``timestamps`` (datetimes,
    ``datetime64``, ISO strings or Unix seconds; naive ones are UTC) default to now.
    ``outcome_sample_rate`` must be the rate the predictions were sampled at (default: the monitored
    model's in this process, else 1.0), so both sides keep the same ids. Missing ids, missing or
    non-finite actuals and unreadable timestamps are not sent and are counted in ``ml.records.dropped``
    (``error.type=invalid``); without a secret nothing is sent (``no_id_secret``, logged once). Raises
    :class:`ConfigurationError` only for unusable arguments (a bad model name, lengths that differ).
    Call :func:`otel_ml.flush` to send before the process ends (it is also done at exit).
    """
    problem = name_problem(model)
    if problem:
        raise ConfigurationError(f"model {problem}, got {model!r}")
    if version is not None:
        version = str(version)
        problem = name_problem(version)
        if problem:
            raise ConfigurationError(f"version {problem}, got {version!r}")
    id_list = _as_list(ids, "ids")
    actual_arr = _as_array(actuals)
    n = len(id_list)
    if actual_arr.shape[0] != n:
        raise ConfigurationError(f"ids and actuals differ in length: {n} ids, {actual_arr.shape[0]} actuals")
    stamps = None
    if timestamps is not None:
        stamps = _timestamps(timestamps)
        if stamps.shape[0] != n:
            raise ConfigurationError(f"ids and timestamps differ in length: {n} ids, {stamps.shape[0]} timestamps")
    known = RECORDERS.get(model)
    rate = _ids.check_sample_rate(outcome_sample_rate) if outcome_sample_rate is not None else (
        known.rate if known is not None else 1.0)
    if hash_ids is not None and not isinstance(hash_ids, bool):
        raise ConfigurationError(f"hash_ids must be True, False or None, got {hash_ids!r}")
    if n == 0:
        return 0
    if not QUEUE.target().enabled:
        QUEUE.check_target()
        return 0
    hashed = hash_ids if hash_ids is not None else (
        known.hash_ids if known is not None and known.hash_ids is not None else _ids.default_hash_ids())
    key = _ids.secret()
    if hashed and key is None:
        drop(model, version, DROP_NO_SECRET, n, no_secret_message())
        return 0

    kind, values, ok = _actuals(actual_arr, known)
    now = time.time_ns()
    if stamps is None:
        times: list[int] = [now] * n
    else:
        times, ok_t = _times_ns(stamps)
        ok &= ok_t
    positions = np.flatnonzero(ok).tolist()
    bad = n - len(positions)
    keep, wire, missing = _ids.prepare([id_list[i] for i in positions], hashed=hashed, key=key, rate=rate)
    bad += missing
    if bad:
        drop(model, version, DROP_INVALID, bad, f"model {model!r}: outcomes with a missing id, a missing or "
             "non-finite actual or an unreadable timestamp")
    QUEUE._resource()  # resolved here, on the caller's thread (Resource.create() needs one at exit)
    queued = 0
    for lo in range(0, len(keep), _CHUNK):
        part = [positions[i] for i in keep[lo:lo + _CHUNK]]
        item = OutcomeItem(model, version, wire[lo:lo + _CHUNK], kind, [values[i] for i in part],
                           [times[i] for i in part])
        if QUEUE.put_waiting(item, _QUEUE_WAIT_S):
            queued += item.rows
    return queued


def _as_list(values: Any, what: str) -> list[Any]:
    if isinstance(values, (str, bytes)) or values is None:
        raise ConfigurationError(f"{what} must be a sequence (one per outcome), got {type(values).__name__}")
    if hasattr(values, "to_numpy"):
        values = values.to_numpy()
    if isinstance(values, np.ndarray):
        return values.tolist()
    try:
        return list(values)
    except TypeError:
        raise ConfigurationError(f"{what} must be a sequence (one per outcome), got {type(values).__name__}") from None


def _as_array(values: Any) -> np.ndarray:
    if isinstance(values, (str, bytes)) or values is None:
        raise ConfigurationError(f"actuals must be a sequence (one per outcome), got {type(values).__name__}")
    if hasattr(values, "to_numpy"):
        values = values.to_numpy()
    arr = np.asarray(values)
    if arr.ndim != 1:
        arr = np.asarray(list(values), dtype=object)
        if arr.ndim != 1:
            raise ConfigurationError(f"actuals must be one-dimensional, got shape {arr.shape}")
    return arr


def _actuals(arr: np.ndarray, known: Any) -> tuple[str, list[Any], np.ndarray]:
    """(record attribute, one value per outcome, mask of usable ones)."""
    kind = arr.dtype.kind
    if known is not None and (known.label or known.proba):
        as_value = False
    elif known is not None and known.value:
        as_value = True
    else:
        as_value = kind == "f"
    if as_value:
        if kind in "iufb":
            vals = arr.astype(np.float64)
        else:
            vals = np.array([_float(v) for v in arr.tolist()], dtype=np.float64)
        return semconv.OUTCOME_VALUE, vals.tolist(), np.isfinite(vals)
    labels = [category_key(v) for v in arr.tolist()]
    ok = np.array([lab is not None and lab != "" for lab in labels], dtype=bool)
    return semconv.OUTCOME_LABEL, labels, ok


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _timestamps(values: Any) -> np.ndarray:
    if isinstance(values, (str, bytes)):
        raise ConfigurationError("timestamps must be a sequence (one per outcome)")
    if hasattr(values, "to_numpy"):
        values = values.to_numpy()
    arr = np.asarray(values)
    if arr.ndim != 1:
        arr = np.asarray(list(values), dtype=object)
    return arr


def _times_ns(arr: np.ndarray) -> tuple[list[int], np.ndarray]:
    if arr.dtype.kind == "M":
        nat = np.isnat(arr)
        ns = arr.astype("datetime64[ns]").astype(np.int64)
        return np.where(nat, 0, ns).tolist(), ~nat
    values = arr.tolist()
    out = []
    ok = np.ones(len(values), dtype=bool)
    for i, v in enumerate(values):
        t = _time_ns(v)
        if t is None:
            ok[i] = False
            t = 0
        out.append(t)
    return out, ok


def _time_ns(v: Any) -> int | None:
    try:
        if isinstance(v, datetime):
            if v.tzinfo is None:
                v = v.replace(tzinfo=timezone.utc)
            ns = getattr(v, "value", None)  # pandas Timestamp: exact nanoseconds
            if isinstance(ns, int) and hasattr(v, "nanosecond"):
                return ns
            return int(v.timestamp() * 1e9)
        if isinstance(v, np.datetime64):
            if np.isnat(v):
                return None
            return int(v.astype("datetime64[ns]").astype(np.int64))
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return int(v * 1e9) if math.isfinite(v) and v > 0 else None
        if isinstance(v, str) and v.strip():
            return _time_ns(datetime.fromisoformat(v.strip().replace("Z", "+00:00")))
    except (ValueError, OverflowError, OSError):
        return None
    return None
