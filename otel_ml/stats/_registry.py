"""The registry of drift statistics: each statistic module registers itself by name, once.

A :class:`Statistic` computes its score for a whole batch of streams at once (``float64[S, B]``
reference and current counts in, ``float64[S]`` scores out) and carries its default threshold, so a
caller can look statistics up by the names the processor exports as ``ml.drift.method``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BatchFunction = Callable[..., FloatArray]


@dataclass(frozen=True)
class Statistic:
    """One registered statistic.

    ``compute(reference, current, **context)`` takes ``float64[S, B]`` count arrays (rows may be
    zero-padded on the right) and returns ``float64[S]``. ``default_threshold`` is the value at or
    above which the statistic alone calls a stream drifted (for ``chi_square`` it is a p-value
    bound: drift below it). ``kinds`` lists the feature kinds the statistic is meaningful for; for
    the others it returns NaN. ``reported`` marks the statistics whose scores the verdict returns
    and the processor exports as ``ml.drift.score`` (attribute ``ml.drift.method`` = ``name``); the
    others serve the verdict's effect-size floors only.
    """

    name: str
    compute: BatchFunction
    default_threshold: float
    kinds: frozenset[str]
    description: str
    higher_is_drift: bool = True
    reported: bool = True


_REGISTRY: dict[str, Statistic] = {}

#: Read-only view of every registered statistic, by name.
STATISTICS: Mapping[str, Statistic] = MappingProxyType(_REGISTRY)


def register(statistic: Statistic) -> Statistic:
    """Add ``statistic`` to the registry (a second registration under the same name is an error)."""
    existing = _REGISTRY.get(statistic.name)
    if existing is not None and existing is not statistic:
        raise ValueError(f"a statistic named {statistic.name!r} is already registered")
    _REGISTRY[statistic.name] = statistic
    return statistic


def drift_methods() -> tuple[str, ...]:
    """The names of the reported statistics, in registration order: the values of ``ml.drift.method``."""
    return tuple(name for name, stat in _REGISTRY.items() if stat.reported)


def get_statistic(name: str) -> Statistic:
    """The statistic registered as ``name``; KeyError naming the known ones otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown statistic {name!r}; known: {sorted(_REGISTRY)}") from None
