"""Issue 10 item 2: memory must not follow attacker-chosen resource and attribute bytes.

The fix caps attribute and resource sizes at the edge (points carrying larger ones are rejected and
counted under ``attributes_too_large``), keys its caches by a digest instead of the raw bytes, and
bounds every cache in bytes. The bound is observable in ``GET /api/v1/status``:

    "caches": {"bytes": <bytes held by every key/template/negative cache>, "limit_bytes": <the bound>}

(the same figure is exported as the self-telemetry gauge ``otel_ml.processor.cache.bytes``). Tests
assert on that accounting, not on RSS (the benchmark ``benchmarks/bench_hostile_memory.py`` measures RSS).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .conftest import MIB, Proc, attacker_request, grpc_export, ml_points, status


@pytest.mark.parametrize("where", ["resource", "attribute"])
def test_item2_oversized_resource_or_attribute_is_rejected_and_counted(where: str, start_processor: Any,
                                                                      ref_dir: Path) -> None:
    proc: Proc = start_processor("--references", str(ref_dir), "--export-endpoint", "none")
    sizes = {"resource_bytes": MIB} if where == "resource" else {"attribute_bytes": MIB}
    req = attacker_request("pod-big", **sizes)
    resp = grpc_export(proc.grpc, req)
    assert resp.partial_success.rejected_data_points == ml_points(req)
    assert "attributes_too_large" in resp.partial_success.error_message
    assert status(proc)["points_rejected"].get("attributes_too_large") == ml_points(req)
    # A normal request still goes through.
    ok = grpc_export(proc.grpc, attacker_request("pod-ok"))
    assert ok.partial_success.rejected_data_points == 0


def test_item2_caches_are_bounded_in_bytes_and_keyed_by_digest(start_processor: Any, ref_dir: Path) -> None:
    proc: Proc = start_processor("--references", str(ref_dir), "--export-endpoint", "none")
    sent = 0
    # 20 unique resources and attributes each, just under any sensible size cap, for an unknown model
    # (rejected points: the negative cache) and for the known one (series lookups and templates).
    for i in range(20):
        for model in ("churn", "no-such-model"):
            req = attacker_request(f"pod-{i}", resource_bytes=2048, attribute_bytes=1024, model=model, tag=f"{i}-{model}-")
            grpc_export(proc.grpc, req)
            sent += 2048 + 1024 * ml_points(req)
    caches = status(proc)["caches"]
    assert 0 < caches["bytes"] <= caches["limit_bytes"], caches
    # Digests, not the attacker's bytes: what the caches hold is a small fraction of what was sent.
    assert caches["bytes"] < sent / 4, (caches, sent)
