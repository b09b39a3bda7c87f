"""Who may import whom, checked on the source (``ast``) of every module of every package.

The library (``otel_ml``) imports nothing from the demo, the processor or the tests; the demo uses the
library and the processor only through their public modules and names (``otel_ml``, ``otel_ml.stats``,
``otel_ml.semconv``..., never ``otel_ml._export`` or ``from otel_ml import _PIPELINE``). Inside one
package anything goes (``otel_ml.stats`` may use its private helpers): the rules are about crossing a
package boundary. To put another package under the rules, add one :class:`Boundary` to ``BOUNDARIES``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Boundary:
    """The import rules of one package.

    ``forbidden``: packages it must not import at all. ``public_only``: packages it may import only
    through public modules and names (no dotted part and no imported name starting with ``_``).
    """

    package: str  # the import name
    path: str  # its directory, relative to the repository root
    forbidden: tuple[str, ...] = ()
    public_only: tuple[str, ...] = ()


BOUNDARIES = (
    Boundary("otel_ml", "otel_ml", forbidden=("otel_ml_demo", "otel_ml_processor", "tests")),
    Boundary("otel_ml_demo", "otel_ml_demo", forbidden=("tests",), public_only=("otel_ml", "otel_ml_processor")),
)


@dataclass(frozen=True)
class Import:
    line: int
    module: str  # absolute dotted name
    names: tuple[str, ...] = ()  # for ``from module import a, b``

    def __str__(self) -> str:
        return f"from {self.module} import {', '.join(self.names)}" if self.names else f"import {self.module}"


def _module_name(package: str, root: Path, path: Path) -> str:
    parts = [package, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, module: str, *, is_package: bool) -> Iterator[Import]:
    """Every import in ``source`` (module ``module``) with relative imports made absolute; calls
    ``importlib.import_module("...")`` / ``__import__("...")`` with a literal name count too."""
    here = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield Import(node.lineno, target, tuple(a.name for a in node.names))
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (isinstance(node.func, ast.Name) and node.func.id in ("import_module", "__import__"))
            )
        ):
            yield Import(node.lineno, node.args[0].value)


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def violations(boundary: Boundary, root: Path) -> list[str]:
    """``path:line: import ... (why)`` for every import in ``boundary``'s package that breaks its rules."""
    pkg_dir = root / boundary.path
    found: list[str] = []
    for path in sorted(pkg_dir.rglob("*.py")):
        module = _module_name(boundary.package, pkg_dir, path)
        where = path.relative_to(root)
        for imp in imports_of(path.read_text(encoding="utf-8"), module, is_package=path.name == "__init__.py"):
            for other in boundary.forbidden:
                if _within(imp.module, other):
                    found.append(f"{where}:{imp.line}: {imp} ({boundary.package} must not import {other})")
            for other in boundary.public_only:
                if not _within(imp.module, other) or _within(imp.module, boundary.package):
                    continue
                private = [p for p in imp.module.split(".") if _private(p)] + [n for n in imp.names if _private(n)]
                if private:
                    found.append(
                        f"{where}:{imp.line}: {imp} ({boundary.package} may use only the public modules and "
                        f"names of {other}, not {', '.join(private)})"
                    )
    return found


@pytest.mark.parametrize("boundary", BOUNDARIES, ids=lambda b: b.package)
def test_package_imports_respect_its_boundary(boundary: Boundary) -> None:
    pkg_dir = REPO / boundary.path
    modules = list(pkg_dir.rglob("*.py"))
    # A rule over a missing or empty directory would pass without checking anything.
    assert (pkg_dir / "__init__.py").is_file() and len(modules) > 1, f"{pkg_dir}: not the package {boundary.package}"
    found = violations(boundary, REPO)
    assert not found, "imports across a package boundary:\n" + "\n".join(found)


_BAD_TREE = {
    "lib/__init__.py": "from . import _core\nfrom .stats import _helpers  # inside the package: fine\n",
    "lib/_core.py": "import json\nfrom app import cli\n",
    "lib/stats/__init__.py": "from ._helpers import x\nfrom .. import _core\n",
    "lib/stats/_helpers.py": "import importlib\nm = importlib.import_module('tests.e2e')\nx = 1\n",
    "app/__init__.py": "",
    "app/cli.py": "import lib\nfrom lib import stats, _core\nfrom lib.stats._helpers import x\nimport lib.stats\n",
}


@pytest.mark.parametrize(
    "boundary, expected",
    [
        (
            Boundary("lib", "lib", forbidden=("app", "tests")),
            [
                "lib/_core.py:2: from app import cli (lib must not import app)",
                "lib/stats/_helpers.py:2: import tests.e2e (lib must not import tests)",
            ],
        ),
        (
            Boundary("app", "app", public_only=("lib",)),
            [
                "app/cli.py:2: from lib import stats, _core (app may use only the public modules and names of lib, "
                "not _core)",
                "app/cli.py:3: from lib.stats._helpers import x (app may use only the public modules and names of "
                "lib, not _helpers)",
            ],
        ),
    ],
    ids=["forbidden_package", "private_module_across_the_boundary"],
)
def test_checker_names_file_line_and_import(tmp_path: Path, boundary: Boundary, expected: list[str]) -> None:
    for name, text in _BAD_TREE.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert violations(boundary, tmp_path) == expected
