"""Segment columns of prediction records (``monitor(..., segments=[...])``), with bounded cardinality.

Each segment is an input column (or a name the ``segments`` callable returns) whose value rides on the
row's prediction record as ``ml.segment.<name>`` (a string), so the processor can judge realized
performance per slice. The number of values per segment is bounded, so the processor's slices are:

* when the reference profiles the column as categorical: its categories (the reference's top ones);
* else (no reference, not profiled, or numeric): the first :data:`MAX_VALUES_SEEN` distinct values this
  process sees, in order of arrival;

every other value, and a missing one, becomes ``__other__`` (:data:`otel_ml.semconv.OTHER_CATEGORY`).
At most :data:`otel_ml.semconv.MAX_SEGMENT_COLUMNS` segments per model. On the predict path the columns
are only taken (references, like the ids); the mapping to strings runs in the background sender.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import semconv
from ._errors import ConfigurationError
from ._log import log_once
from ._reference import CategoricalProfile, Reference, category_key, name_problem

#: Distinct values kept per segment column the reference does not profile as categorical (first seen).
MAX_VALUES_SEEN = 20
#: Characters the processor's packing reserves; a value holding one becomes ``__other__``.
_RESERVED = ("\x1e", "\x1f")


class Segments:
    """The segment columns of one monitored function, built at decoration time (validated here)."""

    def __init__(self, segments: Sequence[str] | Callable[[Any], Mapping[str, Any]],
                 reference: Reference | None) -> None:
        self.func: Callable[[Any], Mapping[str, Any]] | None = None
        self.columns: tuple[str, ...] = ()
        if callable(segments):
            self.func = segments
        elif isinstance(segments, (list, tuple)) and segments and all(isinstance(s, str) for s in segments):
            if len(set(segments)) != len(segments):
                raise ConfigurationError(f"segments: a column is named twice in {list(segments)!r}")
            for s in segments:
                _check_name(s)
            if len(segments) > semconv.MAX_SEGMENT_COLUMNS:
                raise ConfigurationError(f"segments: at most {semconv.MAX_SEGMENT_COLUMNS} columns, "
                                         f"got {len(segments)}")
            self.columns = tuple(segments)
        else:
            raise ConfigurationError("segments must be a non-empty list of input column names or a callable(X) "
                                     f"returning a mapping of segment name to one value per row, got {segments!r}")
        self.reference = reference
        self._allowed: dict[str, frozenset[str] | None] = {}
        self._seen: dict[str, dict[str, None]] = {}
        self._lock = threading.Lock()

    # predict path: never raises (the caller counts a failure)
    def take(self, x: Any) -> dict[str, Any]:
        """The call's segment columns, as given (converted later, in the sender)."""
        if self.func is not None:
            got = self.func(x)
            if not isinstance(got, Mapping):
                raise TypeError(f"the segments callable returned {type(got).__name__}, not a mapping")
            return dict(got)
        from ._records import _column

        return {name: _column(x, name) for name in self.columns}

    # sender thread
    def values(self, taken: Mapping[str, Any], rows: int) -> list[tuple[str, list[str]]]:
        """Per segment (at most four, in order): one bounded string per row. Raises ValueError when a
        column's length differs from the call's rows."""
        out = []
        if len(taken) > semconv.MAX_SEGMENT_COLUMNS:
            log_once("segments:too_many", "otel-ml: the segments callable returned %d segments; only the first %d "
                     "are sent (%s)", len(taken), semconv.MAX_SEGMENT_COLUMNS, ", ".join(map(str, list(taken)[:8])))
        for name, column in list(taken.items())[: semconv.MAX_SEGMENT_COLUMNS]:
            if not isinstance(name, str) or name_problem(name) or any(c in name for c in _RESERVED):
                raise ValueError(f"segment name {name!r} is not a name of 1 to {semconv.MAX_NAME_LENGTH} characters")
            items = column.tolist() if hasattr(column, "tolist") else list(column)
            if len(items) != rows:
                raise ValueError(f"segment {name!r} has {len(items)} values for {rows} rows")
            out.append((name, self._bound(name, items)))
        return out

    def _bound(self, name: str, items: list[Any]) -> list[str]:
        if name not in self._allowed:
            self._allowed[name] = _reference_categories(self.reference, name)
        allowed = self._allowed[name]
        keys = [category_key(v) for v in items]
        if allowed is not None:
            return [k if k in allowed else semconv.OTHER_CATEGORY for k in keys]
        with self._lock:
            seen = self._seen.setdefault(name, {})
            out = []
            for k in keys:
                if k is None or any(c in k for c in _RESERVED) or len(k) > semconv.MAX_NAME_LENGTH or not k:
                    out.append(semconv.OTHER_CATEGORY)
                elif k in seen:
                    out.append(k)
                elif len(seen) < MAX_VALUES_SEEN:
                    seen[k] = None
                    out.append(k)
                else:
                    out.append(semconv.OTHER_CATEGORY)
            return out


def _check_name(name: str) -> None:
    problem = name_problem(name)
    if problem or any(c in name for c in _RESERVED):
        raise ConfigurationError(f"segments: column name {problem or 'holds a reserved control character'}, "
                                 f"got {name!r}")


def _reference_categories(reference: Reference | None, name: str) -> frozenset[str] | None:
    """The categories the reference profiles for ``name`` (its top ones), or None."""
    if reference is None:
        return None
    for p in reference.features:
        if p.name == name and isinstance(p, CategoricalProfile):
            return frozenset(c for c in p.categories if c != semconv.OTHER_CATEGORY
                             and len(c) <= semconv.MAX_NAME_LENGTH and not any(r in c for r in _RESERVED))
    return None


__all__ = ["MAX_VALUES_SEEN", "Segments"]
