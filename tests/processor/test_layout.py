"""The processor uses only the library's public API and its explicitly shared modules.

Allowed from ``otel_ml``: the package itself (its ``__all__``) and the shared public modules
``otel_ml.stats``, ``otel_ml.semconv`` and ``otel_ml.reference``. A private module (``otel_ml._*``,
``otel_ml.stats._*``) is an implementation detail of the library that may change under the processor.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "collector" / "otel_ml_processor"
MODULES = sorted(PACKAGE.glob("*.py"))


def private_library_imports(path: Path) -> list[str]:
    """``file:line: module`` for every import of a private ``otel_ml`` module in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in targets:
            parts = name.split(".")
            if parts[0] == "otel_ml" and any(p.startswith("_") for p in parts[1:]):
                found.append(f"{path.name}:{node.lineno}: {name}")
                break
    return found


def test_the_processor_package_has_modules() -> None:
    assert {"_config.py", "_factory.py", "_service.py", "_state.py"} <= {p.name for p in MODULES}


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_processor_module_imports_no_private_library_module(path: Path) -> None:
    assert private_library_imports(path) == []


def test_the_check_names_file_and_import(tmp_path: Path) -> None:
    bad = tmp_path / "_bad.py"
    bad.write_text("import otel_ml\nfrom otel_ml._errors import ConfigurationError\n"
                   "from otel_ml.stats._quality import reference_ratios\nfrom otel_ml import _reference\n"
                   "from otel_ml.stats import evaluate_batch\n")
    assert private_library_imports(bad) == [
        "_bad.py:2: otel_ml._errors",
        "_bad.py:3: otel_ml.stats._quality",
        "_bad.py:4: otel_ml._reference",
    ]


def test_every_module_is_in_the_code_layout_table_of_the_docs() -> None:
    docs = (PACKAGE.parents[1] / "docs" / "processor.md").read_text(encoding="utf-8")
    table = docs.split("## Code layout", 1)[1].split("\n## ", 1)[0]
    listed = {name for row in table.splitlines() if row.startswith("| `")
              for name in row.split("|")[1].replace("`", "").replace(",", " ").split()}
    missing = [p.name for p in MODULES if p.name not in ("__init__.py", "__main__.py") and p.name not in listed]
    assert not missing, f"docs/processor.md 'Code layout' does not list {missing}"
