"""The version registry: per model, the versions seen, in the order they appeared, and each one's baseline.

Versions side by side (:mod:`._versions`) compares each new version with "the one that served most traffic
before it". The windows keep no history, so this registry remembers, per model, every version in the order
it first carried traffic (its first-seen time, the evaluation's clock) and the baseline fixed at that moment:
the already-known version with the most rows in the *longest window* then (ties: the most recently
first-seen one). Recent traffic, not lifetime traffic: during a rollout (v1 for months, then v2 at 90 %),
a v3 is meant to be judged against v2, which lifetime counts would not pick. The baseline stays fixed
when traffic moves later (a canary taking over does not flip its own comparison).

A version is registered at the first evaluation where it has rows in the longest window (a series' first
cumulative point is only a baseline and carries none), so first-seen is known to one evaluation interval.
Versions that appear in the same evaluation are registered most rows first (ties: the greater version
string), each with the best already-registered one as its baseline; the very first version of a model has
none. On a processor without history (a first start, an old checkpoint) this reduces to the old rule: the
version with the most rows is the baseline of the others.

Bounded: at most :data:`MAX_VERSIONS_PER_MODEL` versions per model and :data:`MAX_MODELS` models; beyond
that the least recently seen ones are forgotten (a version still serving is seen at every evaluation).
Version strings are attribute values, each at most ``receivers.max_attribute_bytes`` (decoder), and only
versions whose reference is loaded ever have streams. Checkpointed with the state (:meth:`snapshot`,
:meth:`restore`; a checkpoint without it restores to an empty registry). Not thread-safe: the service uses
it from its event loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_MODELS", "MAX_VERSIONS_PER_MODEL", "Lineage", "VersionEntry", "VersionRegistry"]

#: Versions remembered per model (the least recently seen beyond it are forgotten).
MAX_VERSIONS_PER_MODEL = 32
#: Models remembered (the least recently seen beyond it are forgotten).
MAX_MODELS = 4096


@dataclass(frozen=True, slots=True)
class VersionEntry:
    """One version of a model: when it first and last carried traffic (ns) and its fixed baseline."""

    first_seen_ns: int
    last_seen_ns: int
    baseline: str | None  # None: the model's first version, no baseline
    order: int  # position in the order of appearance within its model (0 = oldest remembered)


#: (model, version) -> its entry: what :func:`._versions.choose_pairs` reads (a copy, safe in a worker thread).
Lineage = Mapping[tuple[str, str], VersionEntry]


class VersionRegistry:
    """Per model, the versions in the order they appeared, and each version's baseline."""

    def __init__(self, max_versions: int = MAX_VERSIONS_PER_MODEL, max_models: int = MAX_MODELS) -> None:
        self.max_versions = max_versions
        self.max_models = max_models
        # model -> version -> [first_seen_ns, last_seen_ns, baseline], in order of appearance.
        self._models: dict[str, dict[str, list[Any]]] = {}
        self._model_seen: dict[str, int] = {}

    def observe(self, rows: Mapping[str, Mapping[str, float]], now_ns: int) -> None:
        """Note one evaluation's traffic: ``rows`` maps model -> version -> rows in the longest window."""
        for model, per_version in rows.items():
            active = {v: float(r) for v, r in per_version.items() if r > 0}
            if not active:
                continue
            known = self._models.setdefault(model, {})
            self._model_seen[model] = now_ns
            new = sorted((v for v in active if v not in known), reverse=True)  # ties: the greater version first
            for v in sorted(new, key=lambda v: -active[v]):
                order = {u: i for i, u in enumerate(known)}
                baseline = max(known, key=lambda u: (active.get(u, 0.0), order[u]), default=None)
                known[v] = [now_ns, now_ns, baseline]
            for v in active:
                known[v][1] = now_ns
            if len(known) > self.max_versions:
                self._forget(known, len(known) - self.max_versions)
        self._trim_models()

    def _trim_models(self) -> None:
        excess = len(self._models) - self.max_models
        if excess > 0:
            for model in sorted(self._model_seen, key=self._model_seen.__getitem__)[:excess]:
                del self._models[model], self._model_seen[model]

    @staticmethod
    def _forget(known: dict[str, list[Any]], n: int) -> None:
        order = {v: i for i, v in enumerate(known)}
        for v in sorted(known, key=lambda v: (known[v][1], order[v]))[:n]:
            del known[v]

    def lineage(self) -> dict[tuple[str, str], VersionEntry]:
        """A copy of every entry, keyed by (model, version)."""
        return {(m, v): VersionEntry(e[0], e[1], e[2], i)
                for m, known in self._models.items() for i, (v, e) in enumerate(known.items())}

    def baseline(self, model: str, version: str) -> str | None:
        """The baseline fixed when ``version`` first appeared (None: unknown, or the model's first)."""
        entry = self._models.get(model, {}).get(version)
        return None if entry is None else entry[2]

    def __len__(self) -> int:
        return sum(len(k) for k in self._models.values())

    # --- checkpoints ----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """JSON-able copy: model -> ``[[version, first_seen_ns, last_seen_ns, baseline or null], ...]``."""
        return {"models": {m: [[v, *e] for v, e in known.items()] for m, known in self._models.items()}}

    def restore(self, data: Any) -> None:
        """Load a :meth:`snapshot` into this empty registry; ``None`` (an older checkpoint) leaves it empty.

        Raises ``ValueError`` on anything malformed (the checkpoint is then rejected as a whole).
        """
        if data is None:
            return
        models = data.get("models") if isinstance(data, dict) else None
        if not isinstance(models, dict):
            raise ValueError("versions: not a mapping of models")
        for model, entries in models.items():
            if not isinstance(entries, list) or not entries:
                raise ValueError(f"versions of {model!r}: not a non-empty list")
            known: dict[str, list[Any]] = {}
            for e in entries:
                if not (isinstance(e, list) and len(e) == 4 and isinstance(e[0], str) and e[0]
                        and type(e[1]) is int and type(e[2]) is int and (e[3] is None or isinstance(e[3], str))):
                    raise ValueError(f"versions of {model!r}: malformed entry")
                if e[0] in known or e[3] == e[0]:
                    raise ValueError(f"versions of {model!r}: {e[0]!r} twice or its own baseline")
                known[e[0]] = [e[1], e[2], e[3]]
            if len(known) > self.max_versions:
                self._forget(known, len(known) - self.max_versions)
            self._models[model] = known
            self._model_seen[model] = max(e[1] for e in known.values())
        self._trim_models()

    def take(self, other: VersionRegistry) -> None:
        """Take over ``other``'s entries (a restored staging registry), keeping this object (others hold it)."""
        self._models = other._models
        self._model_seen = other._model_seen

