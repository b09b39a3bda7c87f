"""Issue 10 item 7: temporary checkpoint and upload files never outlive the process that wrote them.

Left over by ``kill -9`` mid-write: removed when the processor starts. Left over by a failed write (a
full disk, here the file-size limit ``RLIMIT_FSIZE``, which fails writes with ``EFBIG`` just like
``ENOSPC``): removed by the writer at once.
"""

from __future__ import annotations

import resource
from pathlib import Path
from typing import Any

from processor.payloads import Emitter, make_reference

from .conftest import Proc, grpc_export, http_json, set_limit, wait_for


def test_item7_temporary_files_left_by_kill_9_are_removed_at_start(start_processor: Any, ref_dir: Path,
                                                                   tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    litter = [state / "state.json.tmp", state / "state-1764600000000000000.npz.tmp",
              ref_dir / "churn.json.tmp-4242", ref_dir / "other@1.json.tmp-77"]
    for p in litter:
        p.write_bytes(b"\x00" * 147_000)  # partial files
    proc: Proc = start_processor("--references", str(ref_dir), "--state-dir", str(state),
                                 "--export-endpoint", "none")
    assert [p.name for p in litter if p.exists()] == []
    code, body = http_json("GET", f"http://{proc.http}/api/v1/references")
    assert code == 200 and [r["model"] for r in body["references"]] == ["churn"]


def test_item7_failed_checkpoint_write_leaves_no_partial_file(start_processor: Any, ref_dir: Path,
                                                              tmp_path: Path) -> None:
    state = tmp_path / "state"
    proc: Proc = start_processor("--references", str(ref_dir), "--state-dir", str(state),
                                 "--export-endpoint", "none", "--evaluation-interval", "0.3")
    set_limit(proc, resource.RLIMIT_FSIZE, 2048)  # smaller than the window rings' arrays
    e = Emitter(make_reference(), "pod-a")
    e.observe(100)
    grpc_export(proc.grpc, e.request())
    wait_for(lambda: "cannot write checkpoint" in proc.log)
    assert proc.alive()
    assert sorted(p.name for p in state.iterdir() if ".tmp" in p.name) == []
