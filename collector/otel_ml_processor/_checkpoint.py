"""Checkpoints of the window state under ``--state-dir``: numpy ``.npz`` arrays plus a JSON index.

Files: ``state-<generation>.npz`` holds the numbers (each window's ring of slots, every series'
last cumulative values and its per-series columns), written with ``allow_pickle=False`` semantics
(plain numeric arrays only; loaded with ``allow_pickle=False``); ``state.json`` holds everything
else (format version, the processor's epoch, the windows and each ring's current slot, stream keys
and cell offsets, series keys as hex of their raw OTLP encodings) and names the ``.npz`` it belongs
to. Both are written to temporary files and renamed, index last, so a crash mid-write leaves the
previous checkpoint intact. Never pickle.

On start the service loads the checkpoint before opening its receivers: series keep their baselines
(no double counting after a restart) and windows continue where they were (slots that expired while
the processor was down are cleared by the first :meth:`State.advance`). The state itself says what
it holds (:meth:`State.snapshot`, :meth:`State.restore`); this module owns the files. Streams whose reference is
gone or changed layout are dropped. A checkpoint taken with other windows keeps the baselines but
starts the windows empty. An unreadable checkpoint is logged and ignored (the processor starts empty).
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

import numpy as np

from ._state import State

log = logging.getLogger("otel_ml_processor")

FORMAT_VERSION = 1
INDEX = "state.json"


def save(state: State, directory: str) -> str:
    """Write a checkpoint of ``state`` into ``directory``; returns the index path."""
    return write(directory, *snapshot(state))


def snapshot(state: State) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Copies of everything a checkpoint holds (fast; on the event loop), to :func:`write` elsewhere."""
    arrays, meta = state.snapshot()
    return arrays, {"format_version": FORMAT_VERSION, **meta}


def write(directory: str, arrays: dict[str, np.ndarray], index: dict[str, Any]) -> str:
    """Write a :func:`snapshot` atomically (arrays first, index last); safe to run in a worker thread."""
    os.makedirs(directory, exist_ok=True)
    generation = time.time_ns()
    npz_name = f"state-{generation}.npz"
    npz_path = os.path.join(directory, npz_name)
    with open(npz_path + ".tmp", "wb") as f:
        np.savez(f, **arrays)
    os.replace(npz_path + ".tmp", npz_path)
    index = {**index, "arrays": npz_name, "saved_at_ns": generation}
    index_path = os.path.join(directory, INDEX)
    with open(index_path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(index, f, separators=(",", ":"))
    os.replace(index_path + ".tmp", index_path)
    for name in os.listdir(directory):
        if name.startswith("state-") and name.endswith(".npz") and name != npz_name:
            try:
                os.remove(os.path.join(directory, name))
            except OSError:
                pass
    return index_path


def load(state: State, directory: str) -> bool:
    """Restore ``state`` (fresh, same reference store) from ``directory``; False if there is nothing usable."""
    index_path = os.path.join(directory, INDEX)
    if not os.path.exists(index_path):
        return False
    try:
        with open(index_path, encoding="utf-8") as f:
            index = json.load(f)
        if index.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"unsupported checkpoint format {index.get('format_version')!r}")
        with np.load(os.path.join(directory, os.path.basename(index["arrays"])), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        if not state.restore(arrays, index):
            log.warning("checkpoint was taken with other windows; windows start empty, baselines are kept")
    except Exception as exc:  # a bad checkpoint must not keep the processor from starting
        log.error("ignoring unreadable checkpoint in %s: %s: %s", directory, type(exc).__name__, exc)
        return False
    return True
