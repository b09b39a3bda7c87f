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
the processor was down are cleared by the first :meth:`State.advance`). Streams whose reference is
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

from ._state import State, Stream

log = logging.getLogger("otel_ml_processor")

FORMAT_VERSION = 1
INDEX = "state.json"


def save(state: State, directory: str) -> str:
    """Write a checkpoint of ``state`` into ``directory``; returns the index path."""
    return write(directory, *snapshot(state))


def snapshot(state: State) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Copies of everything a checkpoint holds (fast; on the event loop), to :func:`write` elsewhere."""
    state.window_counts()  # flush pending increments into the current slots
    n_cells = state.cells_used
    n = state.n_series
    arrays: dict[str, np.ndarray] = {f"ring{k}": np.ascontiguousarray(r[:, :n_cells]) for k, r in enumerate(state.rings)}
    arrays["last"] = state.last[: state.src_used].copy()
    for name, arr in state.series.cols.items():
        arrays[f"series_{name}"] = arr[:n].copy()
    index: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "epoch_ns": state.epoch_ns,
        "windows": list(state.windows),
        "slots": state.slots,
        "current_slot": list(state.current_slot),
        "cells_used": n_cells,
        "streams": [
            {"key": list(st.key), "cell0": st.cell0, "alive": st.alive, "fingerprint": st.fingerprint}
            for st in state.streams
        ],
        "series": [
            [metric, resource.hex(), [a.hex() for a in attrs], None if b is None else b.hex(), model]
            for (metric, resource, attrs), b, model in zip(state.series_keys, state.series_bounds, state.series_model)
        ],
        "counters": {"resets": state.resets, "duplicates": state.duplicates},
    }
    return arrays, index


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
        _restore(state, index, arrays)
    except Exception as exc:  # a bad checkpoint must not keep the processor from starting
        log.error("ignoring unreadable checkpoint in %s: %s: %s", directory, type(exc).__name__, exc)
        return False
    return True


def _restore(state: State, index: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    if state.streams or state.n_series:
        raise RuntimeError("checkpoint can only be loaded into an empty state")
    state.epoch_ns = int(index["epoch_ns"])
    cells = int(index["cells_used"])
    # Streams: need their spec from the store; a missing or changed reference drops the stream.
    for entry in index["streams"]:
        key = tuple(entry["key"])
        model, version, kind, name = key
        spec = state.specs.spec(model, version, kind, name)
        fp = state.specs.fingerprint(model, version) or ""
        alive = bool(entry["alive"]) and not isinstance(spec, bool) and spec is not None and fp == entry["fingerprint"]
        if spec is None or isinstance(spec, bool):
            from ._state import StreamSpec

            spec = StreamSpec(kind, name, True, 1)
            alive = False
        st = Stream(key, spec, int(entry["cell0"]), alive=alive, fingerprint=entry["fingerprint"])  # type: ignore[arg-type]
        state.streams.append(st)
        if alive:
            state.stream_index[key] = len(state.streams) - 1  # type: ignore[index]
            state.model_counts.setdefault(model, [0, 0])[0] += 1
    # Widths of restored streams must fit their cell ranges.
    for st in state.streams:
        if st.alive and st.cell0 + st.spec.width > cells:
            st.alive = False
    state._ensure_cells(cells)
    state.cells_used = cells
    same_windows = list(state.windows) == [float(w) for w in index["windows"]] and state.slots == int(index["slots"])
    if same_windows:
        for k in range(len(state.windows)):
            ring = arrays[f"ring{k}"]
            state.rings[k][:, :cells] = ring[:, :cells]
        state.current_slot = [int(c) for c in index["current_slot"]]
    else:
        log.warning("checkpoint was taken with other windows; windows start empty, baselines are kept")
    # Series.
    n = len(index["series"])
    state.series.ensure(max(n, 1))
    for name, arr in state.series.cols.items():
        arr[:n] = arrays[f"series_{name}"][:n]
    last = arrays["last"]
    state.src_used = 0
    state._alloc_src(len(last))
    state.last[: len(last)] = last
    for sid, (metric, resource_hex, attrs_hex, bounds_hex, model) in enumerate(index["series"]):
        attrs = tuple(bytes.fromhex(a) for a in attrs_hex)
        resource = bytes.fromhex(resource_hex)
        state.series_keys.append((metric, resource, attrs))
        state.series_bounds.append(None if bounds_hex is None else bytes.fromhex(bounds_hex))
        state.series_model.append(model)
    state.n_series = n
    s = state.series
    for sid in range(n):
        if not s.alive[sid]:
            continue
        st = state.streams[int(s.stream[sid])]
        if not st.alive:
            s.alive[sid] = False
            continue
        metric, resource, attrs = state.series_keys[sid]
        state._lookup.setdefault((metric, resource), {})[attrs] = sid
        st.series += 1
        state.model_counts.setdefault(state.series_model[sid], [0, 0])[1] += 1
    counters = index.get("counters", {})
    state.resets = int(counters.get("resets", 0))
    state.duplicates = int(counters.get("duplicates", 0))
    state.layout_version += 1
    if any(not st.alive for st in state.streams):
        state.compact()
