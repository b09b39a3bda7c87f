"""Checkpoints of the window state under ``--state-dir``: numpy ``.npz`` arrays plus a JSON index.

Files: ``state-<generation>.npz`` holds the numbers (each window's ring of slots, every series'
last cumulative values and its per-series columns), written with ``allow_pickle=False`` semantics
(plain numeric arrays only; loaded with ``allow_pickle=False``); ``state.json`` holds everything
else (format version, the processor's epoch, the windows and each ring's current slot, stream keys
and cell offsets, series keys as hex of their raw OTLP encodings, the version registry of
:mod:`._registry`; an index without it restores with an empty one) and names the ``.npz`` it belongs
to. Both are written to temporary files and renamed, index last, so a crash mid-write leaves the
previous checkpoint intact. Never pickle.

On start the service loads the checkpoint before opening its receivers: series keep their baselines
(no double counting after a restart) and windows continue where they were (slots that expired while
the processor was down are cleared by the first :meth:`State.advance`). The state itself says what
it holds (:meth:`State.snapshot`, :meth:`State.restore`); this module owns the files. Streams whose reference is
gone or changed layout are dropped. A checkpoint taken with other windows keeps the baselines but
starts the windows empty.

Restoring is all or nothing: :meth:`State.restore` fills a staging state and checks it before the
live state takes it over. A checkpoint that cannot be read or fails a check is logged ("ignoring
unreadable checkpoint"), its files are moved aside as ``<name>.bad-<unix ns>`` (the newest
:data:`KEEP_BAD` sets are kept for inspection) and the processor starts empty, as without a checkpoint;
the next evaluation writes a good one. Temporary files of interrupted writes (``*.tmp``) and arrays the
index does not name are removed when the checkpoint is loaded; a write that fails removes its own.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np

from ._state import State

log = logging.getLogger("otel_ml_processor")

FORMAT_VERSION = 1
INDEX = "state.json"
KEEP_BAD = 3
_ARRAYS = re.compile(r"state-\d+\.npz")
_BAD = re.compile(r"(.+)\.bad-(\d+)")


def save(state: State, directory: str) -> str:
    """Write a checkpoint of ``state`` into ``directory``; returns the index path."""
    return write(directory, *snapshot(state))


def snapshot(state: State) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Copies of everything a checkpoint holds (fast; on the event loop), to :func:`write` elsewhere."""
    arrays, meta = state.snapshot()
    return arrays, {"format_version": FORMAT_VERSION, **meta}


def write(directory: str, arrays: dict[str, np.ndarray], index: dict[str, Any]) -> str:
    """Write a :func:`snapshot` atomically (arrays first, index last); safe to run in a worker thread.

    On failure (a full disk) nothing of this write is left behind and the previous checkpoint stays.
    """
    os.makedirs(directory, exist_ok=True)
    generation = time.time_ns()
    npz_name = f"state-{generation}.npz"
    npz_path = os.path.join(directory, npz_name)
    index = {**index, "arrays": npz_name, "saved_at_ns": generation}
    index_path = os.path.join(directory, INDEX)
    _write_atomically(npz_path, lambda f: np.savez(f, allow_pickle=False, **arrays))
    try:
        _write_atomically(index_path, lambda f: f.write(json.dumps(index, separators=(",", ":")).encode()))
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(npz_path)
        raise
    for name in os.listdir(directory):
        if _ARRAYS.fullmatch(name) and name != npz_name:
            with contextlib.suppress(OSError):
                os.remove(os.path.join(directory, name))
    return index_path


def _write_atomically(path: str, fill: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` through ``path.tmp`` and a rename; the temporary file never survives a failure."""
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as f:
            fill(f)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def load(state: State, directory: str) -> bool:
    """Restore ``state`` (fresh, same reference store) from ``directory``, all or nothing; False if there
    is nothing usable (then ``state`` is untouched and a bad checkpoint has been moved aside)."""
    _remove_litter(directory, keep=None)
    index_path = os.path.join(directory, INDEX)
    if not os.path.exists(index_path):
        _remove_litter(directory, keep="")
        return False
    arrays_name = ""
    try:
        with open(index_path, encoding="utf-8") as f:
            index = json.load(f)
        if not isinstance(index, dict) or type(index.get("format_version")) is not int \
                or index["format_version"] != FORMAT_VERSION:
            raise ValueError("unsupported checkpoint format")
        named = index.get("arrays")
        if not isinstance(named, str) or not _ARRAYS.fullmatch(named):
            raise ValueError("the index names no arrays file")
        arrays_name = named
        with np.load(os.path.join(directory, arrays_name), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        if not state.restore(arrays, index):
            log.warning("checkpoint was taken with other windows; windows start empty, baselines are kept")
    except Exception as exc:  # a bad checkpoint must not keep the processor from starting
        moved = _move_aside(directory, [INDEX, arrays_name] if arrays_name else [INDEX])
        log.error("ignoring unreadable checkpoint in %s: %s: %s; moved aside: %s; starting empty", directory,
                  type(exc).__name__, str(exc)[:200], ", ".join(moved) or "nothing")
        _remove_litter(directory, keep="")
        return False
    _remove_litter(directory, keep=arrays_name)
    return True


def _move_aside(directory: str, names: list[str]) -> list[str]:
    """Rename ``names`` to ``<name>.bad-<ns>``; keep the newest :data:`KEEP_BAD` such sets. The new names."""
    stamp = time.time_ns()
    moved = []
    for name in names:
        try:
            os.replace(os.path.join(directory, name), os.path.join(directory, f"{name}.bad-{stamp}"))
            moved.append(f"{name}.bad-{stamp}")
        except OSError:
            pass
    bad = [(int(m.group(2)), name) for name in os.listdir(directory) if (m := _BAD.fullmatch(name))]
    stamps = sorted({ts for ts, _ in bad}, reverse=True)[:KEEP_BAD]
    for ts, name in bad:
        if ts not in stamps:
            with contextlib.suppress(OSError):
                os.remove(os.path.join(directory, name))
    return moved


def _remove_litter(directory: str, keep: str | None) -> None:
    """Remove ``*.tmp`` files, and unless ``keep`` is None every ``state-*.npz`` but ``keep`` (at start,
    so no writer of this process runs; the files of a killed one are litter)."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    litter = [n for n in names if n.endswith(".tmp") or (keep is not None and _ARRAYS.fullmatch(n) and n != keep)]
    for name in litter:
        with contextlib.suppress(OSError):
            os.remove(os.path.join(directory, name))
    if litter:
        log.info("removed %d files left by interrupted checkpoint writes: %s", len(litter), ", ".join(sorted(litter)))
