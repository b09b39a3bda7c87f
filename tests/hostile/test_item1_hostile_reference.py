"""Issue 10 item 1: one hostile reference file must never brick the processor or crash the library.

Each case is a reference profile that is valid JSON in shape but carries numbers no float can hold,
a 5,000-digit integer, JSON nested 200,000 deep, or ``format_version: true``. Wherever a reference is
read - ``otel_ml.load_reference``, ``otel_ml.monitor(reference=...)``, ``otel-ml reference show``,
``otel-ml drift``, the admin API, the ``--references`` directory - the answer is a clear
``ReferenceProfileError`` (exit 2, HTTP 400, a reported and skipped file), never a raw
OverflowError/ValueError/RecursionError, a 500 or a processor that cannot start.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import otel_ml
from otel_ml import ReferenceProfileError
from otel_ml._cli import main

from .conftest import Proc, http_json, status
from processor.payloads import make_reference

BIG = 10**400
DIGITS = "9" * 5000


def _doc() -> dict[str, Any]:
    return make_reference(model="evil", version="1", rows=2000).to_dict()


def _counts_too_large() -> str:
    d = _doc()
    d["features"][0]["counts"][0] = BIG
    d["features"][0]["count"] = BIG
    return json.dumps(d)


def _count_beyond_float_precision() -> str:
    d = _doc()
    d["features"][0]["counts"][0] = 2**53 + 1  # a float64 no longer holds it exactly
    return json.dumps(d)


def _edge_too_large() -> str:
    d = _doc()
    d["features"][0]["edges"][-1] = BIG
    return json.dumps(d)


def _stat_too_large() -> str:
    d = _doc()
    d["features"][0]["max"] = BIG
    return json.dumps(d)


def _integer_of_5000_digits() -> str:
    d = _doc()
    d["row_count"] = "__DIGITS__"
    return json.dumps(d).replace('"__DIGITS__"', DIGITS)


def _nested_200000_deep() -> str:
    d = _doc()
    d["created_at"] = "__NEST__"
    return json.dumps(d).replace('"__NEST__"', "[" * 200_000 + "]" * 200_000)


def _format_version_true() -> str:
    d = _doc()
    d["format_version"] = True
    return json.dumps(d)


CASES = {
    "counts_10e400": _counts_too_large,
    "count_2e53_plus_1": _count_beyond_float_precision,
    "edge_10e400": _edge_too_large,
    "stat_10e400": _stat_too_large,
    "integer_5000_digits": _integer_of_5000_digits,
    "json_nested_200000_deep": _nested_200000_deep,
    "format_version_true": _format_version_true,
}

def _write(tmp_path: Path, case: str, name: str = "evil.json") -> Path:
    p = tmp_path / name
    p.write_text(CASES[case](), encoding="utf-8")
    return p


@pytest.mark.parametrize("case", list(CASES))
def test_item1_library_rejects_hostile_reference(case: str, tmp_path: Path) -> None:
    path = _write(tmp_path, case)
    with pytest.raises(ReferenceProfileError, match=r"evil\.json"):
        otel_ml.load_reference(path)
    with pytest.raises(ReferenceProfileError, match=r"evil\.json"):
        otel_ml.monitor(model="evil", version="1", reference=path)(lambda x: x)


@pytest.mark.parametrize("case", list(CASES))
def test_item1_cli_rejects_hostile_reference_with_exit_2(case: str, tmp_path: Path) -> None:
    path = _write(tmp_path, case)
    data = tmp_path / "current.csv"
    data.write_text("f0,f1,f2,plan\n0.1,0.2,0.3,basic\n")
    runner = CliRunner()
    for args in (["reference", "show", str(path)], ["drift", "--reference", str(path), "--data", str(data)]):
        r = runner.invoke(main, args)
        assert r.exit_code == 2, (args, r.exit_code, r.output, r.exception)
        assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
        assert "evil.json" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("case", list(CASES))
def test_item1_admin_upload_rejects_hostile_reference_with_400(case: str, tmp_path: Path, start_processor: Any,
                                                              ref_dir: Path) -> None:
    proc: Proc = start_processor("--references", str(ref_dir), "--export-endpoint", "none")
    base = f"http://{proc.http}/api/v1/references"
    code, body = http_json("POST", base, CASES[case]().encode())
    assert code == 400, (code, body)
    assert isinstance(body, dict) and "uploaded reference" in body["error"], body
    assert sorted(p.name for p in ref_dir.iterdir()) == ["churn.json"]  # nothing stored
    # Later uploads still work, and a restart with the same directory still starts.
    good = make_reference(model="good", version="1", rows=2000).to_dict()
    code, body = http_json("PUT", f"{base}/good/1", good)
    assert code == 201, (code, body)
    assert proc.stop() == 0
    proc2: Proc = start_processor("--references", str(ref_dir), "--export-endpoint", "none")
    code, body = http_json("GET", f"http://{proc2.http}/api/v1/references")
    assert code == 200 and sorted(r["model"] for r in body["references"]) == ["churn", "good"], body


@pytest.mark.parametrize("case", list(CASES))
def test_item1_bad_file_in_references_dir_is_reported_and_skipped(case: str, tmp_path: Path, start_processor: Any,
                                                                 ref_dir: Path) -> None:
    # Named to sort first, so a scan that stops at it would also lose the files after it.
    _write(ref_dir.parent, case, "evil.json")
    shutil.move(ref_dir.parent / "evil.json", ref_dir / "0-evil.json")
    make_reference(model="zz-later", version="1", rows=2000).save(ref_dir / "zz-later.json")
    proc: Proc = start_processor("--references", str(ref_dir), "--export-endpoint", "none")
    code, body = http_json("GET", f"http://{proc.http}/api/v1/references")
    assert code == 200, body
    assert sorted(r["model"] for r in body["references"]) == ["churn", "zz-later"], body
    assert "0-evil.json" in body["errors"], body
    assert "0-evil.json" in proc.log  # reported
    assert status(proc)["reference_errors"] == ["0-evil.json"]
    assert proc.alive()
