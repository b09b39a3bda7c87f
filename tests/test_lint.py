"""The linter and the type checker, as configured in pyproject.toml, find nothing in the repository.

`make test` (what CI runs) runs them here, so a finding fails one test named for the tool and prints the
findings. ruff covers every Python file (library, processor, demo, dashboards, tests, benchmarks);
mypy the shipped packages and dashboards/ (``[tool.mypy] files``). Both keep caches in the checkout
(``.ruff_cache``, ``.mypy_cache``), so a warm run costs a second or two.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

TOOLS = {
    "ruff": [sys.executable, "-m", "ruff", "check", "--no-fix", "--output-format", "concise", "."],
    "mypy": [sys.executable, "-m", "mypy"],  # files and options: [tool.mypy] in pyproject.toml
}


@pytest.mark.parametrize("tool", list(TOOLS))
def test_tool_reports_no_findings(tool: str) -> None:
    out = subprocess.run(TOOLS[tool], cwd=REPO, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, f"{tool} found problems (exit {out.returncode}):\n{out.stdout}{out.stderr}"
