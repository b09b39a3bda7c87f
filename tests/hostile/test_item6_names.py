"""Issue 10 item 6: every valid model name and version round-trips through the reference store.

Valid means what the library accepts (non-empty, at most 128 characters): names starting with a dot,
names with slashes, 128 + 128 characters, 128 x ``é``. Upload, list, get, ingest, restart and delete
must all work for each, and nothing may be written outside the references directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from processor.payloads import Emitter, make_reference

from .conftest import Proc, grpc_export, http_json

NAMES = {
    "dot_hidden": (".hidden", "1"),
    "dot_dot": ("..", "1"),
    "traversal": ("../../etc/x", "1"),
    "max_length_ascii": ("m" * 128, "v" * 128),
    "max_length_utf8": ("é" * 128, "1"),
}

def _enc(s: str) -> str:
    """Every byte percent-encoded, so no client or server normalises ``.``, ``..`` or ``/``."""
    return "".join(f"%{b:02X}" for b in s.encode())


def _listed(proc: Proc) -> set[tuple[str, str]]:
    code, body = http_json("GET", f"http://{proc.http}/api/v1/references")
    assert code == 200, body
    return {(r["model"], r["version"]) for r in body["references"]}


@pytest.mark.parametrize("case", list(NAMES))
def test_item6_valid_names_round_trip_through_the_store(case: str, start_processor: Any, ref_dir: Path) -> None:
    model, version = NAMES[case]
    ref = make_reference(model=model, version=version, rows=2000)
    args = ("--references", str(ref_dir), "--export-endpoint", "none")
    proc: Proc = start_processor(*args)
    base = f"http://{proc.http}/api/v1/references"
    code, body = http_json("POST", base, ref.to_json().encode())
    assert code == 201, (code, body)
    assert (model, version) in _listed(proc)
    one = f"{base}/{_enc(model)}/{_enc(version)}"
    code, body = http_json("GET", one)
    assert code == 200 and body["model"] == {"name": model, "version": version}, (code, body)
    e = Emitter(ref, "pod-a")
    e.observe(100)
    assert grpc_export(proc.grpc, e.request()).partial_success.rejected_data_points == 0
    # Everything stays inside the directory, and survives a restart.
    tree = ref_dir.parent
    assert all(p.is_relative_to(ref_dir) for p in tree.rglob("*.json") if p.parent != tree), list(tree.rglob("*"))
    assert proc.stop() == 0
    proc2: Proc = start_processor(*args)
    assert (model, version) in _listed(proc2)
    one = f"http://{proc2.http}/api/v1/references/{_enc(model)}/{_enc(version)}"
    code, body = http_json("DELETE", one)
    assert code == 200, (code, body)
    assert (model, version) not in _listed(proc2)
    assert http_json("GET", one)[0] == 404
