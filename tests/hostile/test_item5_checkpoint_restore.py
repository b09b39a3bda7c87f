"""Issue 10 item 5: restoring a checkpoint is all or nothing.

A checkpoint whose loading fails part-way must leave the processor exactly as if there were no
checkpoint (empty windows, no streams, no series), so the next cumulative point counts once; a
checkpoint with a hostile ``cells_used`` is rejected as a whole (and replaced by the next good one),
never left to make every evaluation fail.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from otel_ml import semconv

from .conftest import Proc, Sink, grpc_export, status, wait_for
from processor.payloads import Emitter, make_reference


def _f0_counts(sink: Sink, since: int) -> list[float]:
    return [v for a, v, _ in sink.points(semconv.DRIFT_SAMPLE_COUNT, since=since)
            if a.get(semconv.DRIFT_WINDOW) == "1m" and a.get(semconv.FEATURE_NAME) == "f0"]


def _bad_series_key(index: dict[str, Any]) -> None:
    index["series"][-1][1] = "not hex"  # fails after streams, rings and series columns were applied


def _cells_used_beyond_the_arrays(index: dict[str, Any]) -> None:
    index["cells_used"] = int(index["cells_used"]) + 1000


def _cells_used_zero(index: dict[str, Any]) -> None:
    index["cells_used"] = 0


def _cells_used_negative(index: dict[str, Any]) -> None:
    index["cells_used"] = -1


CORRUPTIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "bad_series_key": _bad_series_key,
    "cells_used_beyond_the_arrays": _cells_used_beyond_the_arrays,
    "cells_used_zero": _cells_used_zero,
    "cells_used_negative": _cells_used_negative,
}

@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_item5_bad_checkpoint_is_restored_all_or_nothing(corruption: str, sink: Sink, start_processor: Any,
                                                          ref_dir: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    args = ("--references", str(ref_dir), "--export-endpoint", sink.endpoint, "--evaluation-interval", "0.3",
            "--window", "60", "--state-dir", str(state))
    proc: Proc = start_processor(*args)
    e = Emitter(make_reference(), "pod-a")
    e.observe(300)
    grpc_export(proc.grpc, e.request())
    wait_for(lambda: 300 in _f0_counts(sink, 0))
    assert proc.stop() == 0
    index_path = state / "state.json"
    index = json.loads(index_path.read_text())
    CORRUPTIONS[corruption](index)
    index_path.write_text(json.dumps(index))
    saved_at = index["saved_at_ns"]

    n_before = len(sink.requests)
    proc2: Proc = start_processor(*args)
    restored = "restored checkpoint" in proc2.log
    if not restored:
        assert "ignoring unreadable checkpoint" in proc2.log
        assert status(proc2)["streams"] == 0 and status(proc2)["series"] == 0  # nothing half-applied
        assert list(state.glob("state.json.bad-*")), list(state.iterdir())  # kept aside for inspection
    # The same pod's next cumulative point: 400 rows in total since it started.
    e.observe(100)
    grpc_export(proc2.grpc, e.request())
    expected = 400  # restored: the window's 300 rows and the pod's baseline, so its 100 new rows count once
    if not restored:
        # Exactly as without a checkpoint: that point only set the baseline of a series that started before
        # this processor (the cumulativetodelta rule); the next 100 rows count once, nothing else does.
        e.observe(100)
        grpc_export(proc2.grpc, e.request())
        expected = 100
    try:
        wait_for(lambda: any(v >= expected for v in _f0_counts(sink, n_before)))
    except AssertionError:
        raise AssertionError(f"no evaluation counted the new rows; status {status(proc2)}; "
                             f"processor log:\n{proc2.log[-3000:]}") from None
    assert max(_f0_counts(sink, n_before)) == expected, _f0_counts(sink, n_before)
    # Evaluations keep working and the bad checkpoint is replaced by a good one.
    # A rejected checkpoint was moved aside: there is no state.json until the next one is written.
    wait_for(lambda: index_path.exists() and json.loads(index_path.read_text())["saved_at_ns"] != saved_at)
    assert "periodic task" not in proc2.log, proc2.log
    assert proc2.stop() == 0
