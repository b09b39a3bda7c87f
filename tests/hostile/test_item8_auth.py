"""Issue 10 item 8: with a token configured, every admin endpoint needs it; errors leak no paths or values.

Health endpoints stay open (probes carry no token). ``Bearer`` is matched case-insensitively
(RFC 6750 section 2.1 via RFC 7235: the auth-scheme is case-insensitive), over HTTP and gRPC.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from processor.payloads import Emitter, make_reference

from .conftest import TOKEN, Proc, grpc_export, http, http_json


def test_item8_admin_reads_need_the_token(start_processor: Any, ref_dir: Path, token_file: Path) -> None:
    proc: Proc = start_processor("--references", str(ref_dir), "--export-endpoint", "none",
                                 "--token-file", str(token_file))
    base = f"http://{proc.http}"
    for path in ("/healthz", "/readyz"):
        assert http("GET", base + path)[0] == 200, path
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for path in ("/api/v1/references", "/api/v1/references/churn/1", "/api/v1/status"):
        assert http("GET", base + path, headers=auth)[0] == 200, path
        status, headers, _ = http("GET", base + path)
        assert status == 401 and headers.get("WWW-Authenticate", "").startswith("Bearer"), (path, status)
        assert http("GET", base + path, headers={"Authorization": "Bearer wrong"})[0] == 401, path


@pytest.mark.parametrize("scheme", ["bearer", "BEARER"])
def test_item8_bearer_scheme_is_case_insensitive(scheme: str, start_processor: Any, ref_dir: Path,
                                                 token_file: Path) -> None:
    proc: Proc = start_processor("--references", str(ref_dir), "--export-endpoint", "none",
                                 "--token-file", str(token_file))
    auth = f"{scheme} {TOKEN}"
    ref = make_reference(model="other", version="1", rows=2000)
    code, body = http_json("PUT", f"http://{proc.http}/api/v1/references/other/1", ref.to_json().encode(),
                           headers={"Authorization": auth})
    assert code == 201, (code, body)
    e = Emitter(make_reference(), "pod-a")
    e.observe(10)
    status, _, _ = http("POST", f"http://{proc.http}/v1/metrics", e.request().SerializeToString(),
                        {"Content-Type": "application/x-protobuf", "Authorization": auth})
    assert status == 200
    e.observe(10)
    resp = grpc_export(proc.grpc, e.request(), metadata=(("authorization", auth),))
    assert resp.partial_success.rejected_data_points == 0


def test_item8_errors_name_files_relative_and_copy_no_values(start_processor: Any, ref_dir: Path,
                                                             token_file: Path) -> None:
    secret = "SECRET-from-the-file"
    doc = make_reference(model="bad", version="1", rows=2000).to_dict()
    doc["features"][0]["kind"] = secret
    (ref_dir / "bad.json").write_text(json.dumps(doc))
    proc: Proc = start_processor("--references", str(ref_dir), "--export-endpoint", "none",
                                 "--token-file", str(token_file))
    code, body = http_json("GET", f"http://{proc.http}/api/v1/references",
                           headers={"Authorization": f"Bearer {TOKEN}"})
    assert code == 200
    assert list(body["errors"]) == ["bad.json"], body
    message = body["errors"]["bad.json"]
    assert message.startswith("bad.json"), message
    assert str(ref_dir) not in json.dumps(body) and secret not in json.dumps(body), message
    # An upload's error names the field, not the value.
    code, body = http_json("POST", f"http://{proc.http}/api/v1/references", json.dumps(doc).encode(),
                           headers={"Authorization": f"Bearer {TOKEN}"})
    assert code == 400 and "kind" in body["error"] and secret not in body["error"], body
