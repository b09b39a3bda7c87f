"""The reference store: a directory of JSON reference profiles, matched to streams by model name+version.

Every ``*.json`` file in the directory is read with :func:`otel_ml.reference.loads_reference` (JSON
only, schema-validated; never pickle). :meth:`ReferenceStore.poll` compares the files' modification
times and sizes with the last scan and reloads what changed, so dropping a file in the directory (or
``otel-ml reference push``, which writes one through the admin API) takes effect within
``references.poll_interval``. A file that fails for any reason is skipped, logged once and listed in
:attr:`ReferenceStore.errors` (by its name relative to the directory; messages name the field, never a
value from the file); the others keep working, at start too. Two files for the same model version: the one
whose name sorts last wins (logged).

Uploads are validated and compiled before anything is written, then stored as
``ref-<model>@<version>-<digest>.json`` (:func:`file_name`): the model and version reduced to safe
characters for people, and the first 32 hex digits of ``sha256(model NUL version)`` for uniqueness.
Every valid name maps to a short, plain, non-hidden file name (the identity comes from the file's
contents); files with other names (hand-copied, or older ``<model>@<version>.json`` uploads) are read
as before. At start, temporary files of interrupted writes (``*.tmp``, ``*.tmp-<pid>``) are removed.

Without a directory the store lives in memory only (uploads are lost on restart).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from otel_ml import ReferenceProfileError, semconv
from otel_ml.reference import (
    CategoricalProfile,
    NumericProfile,
    Profile,
    Reference,
    SegmentValueProfile,
    loads_reference,
)
from otel_ml.stats import reference_ratios

from ._segment_streams import KIND_SEGMENT_PREDICTION, KIND_SEGMENT_QUALITY, unpack_name
from ._state import KIND_FEATURE, KIND_PREDICTION, StreamSpec

log = logging.getLogger("otel_ml_processor")


@dataclass(frozen=True)
class EvalSpec:
    """The reference side of one stream, as :func:`otel_ml.stats.evaluate_batch` takes it."""

    counts: np.ndarray  # float64[B]
    positions: np.ndarray | None  # float64[B] (numeric) or None
    spread: float
    quality_ratios: np.ndarray  # float64[len(QUALITY_KINDS)]: each kind's ratio in the reference


@dataclass(frozen=True)
class ReferenceShares:
    """What ``ml.drift.reference.ratio`` exports for one reference, computed once when it loads.

    One point per bucket of every feature and output: ``(kind, name, attribute, attribute value)`` and its
    share. Numeric: the cumulative share of reference values ``<=`` each bound (attribute ``ml.bucket.le``,
    the bound spelled as the collector spells Prometheus ``le`` labels, ``+Inf`` last). Categorical: the
    share of each category, ``__other__`` included (attribute ``ml.feature.category``). A profile without
    values has no points.
    """

    points: tuple[tuple[str, str, str, str], ...]
    values: np.ndarray  # float64[P]

    def __len__(self) -> int:
        return len(self.points)


def le_label(bound: float) -> str:
    """``bound`` as the collector writes a Prometheus ``le`` label: Go's ``FormatFloat(bound, 'f', -1, 64)``.

    The shortest decimal that round-trips, never in exponent notation (``0``, ``2.5``, ``0.0000001``),
    and ``+Inf`` for the last bucket.
    """
    if math.isinf(bound):
        return "+Inf" if bound > 0 else "-Inf"
    return np.format_float_positional(bound, unique=True, trim="-")


def reference_shares(ref: Reference) -> ReferenceShares:
    points: list[tuple[str, str, str, str]] = []
    values: list[float] = []
    for kind, items in ((KIND_FEATURE, ref.streamed_features), (KIND_PREDICTION, ref.outputs)):
        for p in items:
            if isinstance(p, NumericProfile):
                counts = np.asarray(p.counts, dtype=np.float64)
                labels = [le_label(e) for e in p.edges] + ["+Inf"]
                key = semconv.BUCKET_LE
                total = counts.sum()
                shares = np.cumsum(counts) / total if total > 0 else counts
                if total > 0:
                    shares[-1] = 1.0  # exactly, whatever the rounding of the sum
            else:
                counts = np.asarray(p.bucket_counts, dtype=np.float64)
                labels = list(p.bucket_labels)
                key = semconv.FEATURE_CATEGORY
                total = counts.sum()
                shares = counts / total if total > 0 else counts
            if total <= 0:
                continue
            points.extend((kind, p.name, key, lab) for lab in labels)
            values.extend(shares.tolist())
    return ReferenceShares(tuple(points), np.asarray(values, dtype=np.float64))


#: The cells of a segment quality stream: the rows, then the quality counters (see :mod:`._segment_streams`).
SEGMENT_QUALITY_SPEC = StreamSpec(KIND_SEGMENT_QUALITY, "", False, 1)


@dataclass
class CompiledReference:
    reference: Reference
    source: str
    fingerprint: str
    specs: dict[tuple[str, str], StreamSpec] = field(default_factory=dict)
    profiles: dict[tuple[str, str], Profile] = field(default_factory=dict)
    shares: ReferenceShares = field(default_factory=lambda: ReferenceShares((), np.zeros(0)))
    _eval: dict[tuple[str, str], EvalSpec] = field(default_factory=dict)

    def segment_spec(self, kind: str, name: str) -> StreamSpec | None:
        """The spec of a segment stream (:mod:`._segment_streams`): its output's buckets, or the rows and
        quality cells; None when the name is not one or names no output of the reference."""
        try:
            output, _, _ = unpack_name(name)
        except ValueError:
            return None
        if kind == KIND_SEGMENT_QUALITY:
            return None if output else SEGMENT_QUALITY_SPEC
        if kind == KIND_SEGMENT_PREDICTION:
            return self.specs.get((KIND_PREDICTION, output))
        return None

    def segment_profile(self, column: str, value: str) -> SegmentValueProfile | None:
        """The reference's profile of one segment value; None when it has none (no verdict)."""
        segments = getattr(self.reference, "segments", None)
        column_profile = None if segments is None else segments.get(column)
        return None if column_profile is None else column_profile.values.get(value)

    def eval_spec(self, kind: str, name: str) -> EvalSpec:
        es = self._eval.get((kind, name))
        if es is None:
            es = self._eval[(kind, name)] = _eval_spec(self.profiles[(kind, name)])
        return es


def _profile_arrays(profile: Profile) -> tuple[np.ndarray, np.ndarray | None, float]:
    from otel_ml.stats import profile_arrays
    counts, positions, spread = profile_arrays(profile)
    return np.asarray(counts, dtype=np.float64), None if positions is None else np.asarray(positions, np.float64), \
        float(spread)


def _eval_spec(p: Profile) -> EvalSpec:
    counts, positions, spread = _profile_arrays(p)
    ratios = reference_ratios(p)  # the kinds that apply to the profile; the others are 0
    return EvalSpec(counts, positions, spread, np.array([ratios.get(k, 0.0) for k in semconv.QUALITY_KINDS]))


def _spec(kind: str, p: Profile) -> StreamSpec:
    if isinstance(p, NumericProfile):
        return StreamSpec(kind, p.name, True, len(p.edges) + 1,
                          edges_bytes=struct.pack(f"<{len(p.edges)}d", *p.edges))
    assert isinstance(p, CategoricalProfile)
    labels = p.bucket_labels
    return StreamSpec(kind, p.name, False, len(labels), category_index={c: i for i, c in enumerate(labels)})


def compile_reference(ref: Reference, source: str) -> CompiledReference:
    layout = []
    specs: dict[tuple[str, str], StreamSpec] = {}
    profiles: dict[tuple[str, str], Profile] = {}
    for kind, items in ((KIND_FEATURE, ref.streamed_features), (KIND_PREDICTION, ref.outputs)):
        for p in items:
            specs[(kind, p.name)] = _spec(kind, p)
            profiles[(kind, p.name)] = p
            layout.append([kind, p.name, list(p.edges) if isinstance(p, NumericProfile) else list(p.categories)])
    fp = hashlib.sha256(json.dumps(layout).encode()).hexdigest()[:16]
    return CompiledReference(ref, source, fp, specs, profiles, reference_shares(ref))


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
#: Temporary files of an interrupted write: ``Reference.save``'s ``<name>.tmp-<pid>``, or ``<name>.tmp``.
TEMP_FILE = re.compile(r".*\.tmp(-\d+)?$")


def file_name(model: str, version: str) -> str:
    """The file an uploaded reference is stored in: ``ref-<model>@<version>-<digest>.json``.

    ``model`` and ``version`` appear cut to 48 and 24 characters with anything but ``A-Z a-z 0-9 _ . -``
    replaced by ``_`` (for people reading the directory); the digest (32 hex digits of
    ``sha256(model NUL version)``) makes the name unique. At most 115 ASCII bytes, never hidden, never
    a path: every valid model name and version has one.
    """
    digest = hashlib.sha256(f"{model}\0{version}".encode()).hexdigest()[:32]
    return f"ref-{_UNSAFE.sub('_', model[:48])}@{_UNSAFE.sub('_', version[:24])}-{digest}.json"


def remove_temporary_files(directory: str) -> list[str]:
    """Delete the temporary files interrupted writes left in ``directory`` (see :data:`TEMP_FILE`); their names.

    Only at start: a writer running at the same time would lose its file.
    """
    removed: list[str] = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        if TEMP_FILE.fullmatch(name):
            try:
                os.remove(os.path.join(directory, name))
                removed.append(name)
            except OSError as exc:
                log.warning("cannot remove temporary file %s: %s", name, exc.strerror)
    if removed:
        log.info("removed %d temporary files left by interrupted writes in %s: %s", len(removed), directory,
                 ", ".join(sorted(removed)))
    return removed


def _load_file(directory: str, name: str) -> CompiledReference:
    """Read, validate and compile one file; any failure is a :class:`ReferenceProfileError` naming ``name``
    (relative to the directory, so no server path reaches an API client)."""
    try:
        with open(os.path.join(directory, name), "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ReferenceProfileError(f"{name}: cannot read the file ({exc.strerror})") from None
    return compile_checked(loads_reference(data, source=name), name)


def compile_checked(ref: Reference, source: str) -> CompiledReference:
    """:func:`compile_reference`, with any failure a :class:`ReferenceProfileError` naming ``source``."""
    try:
        return compile_reference(ref, source)
    except ReferenceProfileError:
        raise
    except Exception as exc:  # a value no validation foresaw must not escape as a crash
        raise ReferenceProfileError(f"{source}: cannot be compiled ({type(exc).__name__})") from None


class ReferenceStore:
    """References by ``(model name, version)``; implements the state's spec lookup."""

    def __init__(self, directory: str | None = None) -> None:
        self.directory = directory
        self.generation = 0
        self._by_key: dict[tuple[str, str], CompiledReference] = {}
        self._files: dict[str, tuple[int, int]] = {}
        self._file_refs: dict[str, CompiledReference] = {}
        self._memory: dict[tuple[str, str], CompiledReference] = {}
        self.errors: dict[str, str] = {}
        if directory is not None:
            os.makedirs(directory, exist_ok=True)
            remove_temporary_files(directory)
            self.poll()

    @classmethod
    def reader(cls, directory: str) -> ReferenceStore:
        """The references of a directory another process may own (the processor's), read only: nothing
        created, no temporary file removed; a missing directory holds no references."""
        store = cls()
        store.directory = directory
        if os.path.isdir(directory):
            store.poll()
        return store

    # --- lookups (SpecSource) -------------------------------------------------------------------
    def get(self, model: str, version: str) -> CompiledReference | None:
        return self._by_key.get((model, version))

    def spec(self, model: str, version: str, kind: str, name: str) -> StreamSpec | bool | None:
        c = self._by_key.get((model, version))
        if c is None:
            return False
        if kind in (KIND_SEGMENT_PREDICTION, KIND_SEGMENT_QUALITY):
            return c.segment_spec(kind, name)
        return c.specs.get((kind, name))

    def fingerprint(self, model: str, version: str) -> str | None:
        c = self._by_key.get((model, version))
        return None if c is None else c.fingerprint

    def __len__(self) -> int:
        return len(self._by_key)

    def list(self) -> list[dict[str, Any]]:
        out = []
        for (model, version), c in sorted(self._by_key.items()):
            out.append({
                "model": model,
                "version": version,
                "features": [p.name for p in c.reference.features],
                "outputs": [p.name for p in c.reference.outputs],
                "created_at": c.reference.created_at,
                "row_count": c.reference.row_count,
                "source": c.source,
                "fingerprint": c.fingerprint,
            })
        return out

    # --- changes --------------------------------------------------------------------------------
    def poll(self) -> bool:
        """Rescan the directory; True if the set of references changed."""
        if self.directory is None:
            return False
        try:
            names = sorted(n for n in os.listdir(self.directory) if n.endswith(".json") and not n.startswith("."))
        except OSError as exc:
            log.error("references.directory %s cannot be read: %s", self.directory, exc)
            return False
        seen: dict[str, tuple[int, int]] = {}
        changed = False
        for name in names:
            path = os.path.join(self.directory, name)
            try:
                st = os.stat(path)
            except OSError:
                continue
            sig = (st.st_mtime_ns, st.st_size)
            seen[name] = sig
            if self._files.get(name) == sig:
                continue
            changed = True
            try:
                compiled = _load_file(self.directory, name)
            except Exception as exc:  # one bad file must never stop the others, nor the processor
                message = str(exc) if isinstance(exc, ReferenceProfileError) else \
                    f"{name}: cannot be loaded ({type(exc).__name__})"
                self._file_refs.pop(name, None)
                if self.errors.get(name) != message:
                    log.error("skipping reference file: %s", message)
                self.errors[name] = message
                continue
            self.errors.pop(name, None)
            self._file_refs[name] = compiled
        for name in set(self._files) - set(seen):
            changed = True
            self._file_refs.pop(name, None)
            self.errors.pop(name, None)
        self._files = seen
        if changed:
            self._rebuild()
        return changed

    def _rebuild(self) -> None:
        new: dict[tuple[str, str], CompiledReference] = dict(self._memory)
        for name in sorted(self._file_refs):
            c = self._file_refs[name]
            key = (c.reference.model_name, c.reference.model_version)
            if key in new and new[key].source != name and key not in self._memory:
                log.warning("reference %s@%s is in both %s and %s; using %s", key[0], key[1], new[key].source,
                            name, name)
            new[key] = c
        self._by_key = new
        self.generation += 1  # the state re-checks fingerprints and forgets its negative lookups

    def put(self, ref: Reference, *, source: str = "uploaded reference") -> str:
        """Store ``ref`` (replacing the same model version); returns where it was written.

        The reference is compiled first: one that cannot be (:class:`ReferenceProfileError` naming
        ``source``) leaves the store and the directory as they were.
        """
        key = (ref.model_name, ref.model_version)
        compiled = compile_checked(ref, source)
        if self.directory is None:
            compiled.source = "<memory>"
            self._memory[key] = compiled
            self._rebuild()
            return "<memory>"
        name = file_name(*key)
        ref.save(os.path.join(self.directory, name))  # atomic; on failure nothing changed
        for other, c in list(self._file_refs.items()):  # one file per model version
            if other != name and (c.reference.model_name, c.reference.model_version) == key:
                self._remove_file(other)
        self.poll()
        return name

    def delete(self, model: str, version: str) -> bool:
        key = (model, version)
        found = self._memory.pop(key, None) is not None
        for name, c in list(self._file_refs.items()):
            if (c.reference.model_name, c.reference.model_version) == key:
                self._remove_file(name)
                found = True
        if found:
            if self.directory is not None:
                self.poll()
            self._rebuild()
        return found

    def _remove_file(self, name: str) -> None:
        try:
            os.remove(os.path.join(self.directory or "", name))
        except FileNotFoundError:
            pass
        self._file_refs.pop(name, None)


__all__ = [
    "CompiledReference",
    "EvalSpec",
    "ReferenceShares",
    "ReferenceStore",
    "compile_checked",
    "compile_reference",
    "file_name",
    "le_label",
    "reference_shares",
    "remove_temporary_files",
]
