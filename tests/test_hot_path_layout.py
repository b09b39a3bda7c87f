"""The predict path reads from the file names and only runs downhill; importing otel_ml stays light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "otel_ml"
#: The steps of a predict call, in order: a step may import the ones before it, never the ones after.
STEPS = ["_adapters", "_binning", "_aggregate", "_otlp", "_export", "_monitor"]
#: Side modules and what they must never import (that would close a cycle).
NEVER = {
    "_exporter": {"_config", "_export", "_otlp", "_aggregate", "_monitor"},
    "_config": {"_export", "_otlp", "_aggregate", "_monitor"},
    "_patch": {"_adapters", "_binning", "_aggregate", "_otlp", "_export", "_monitor", "_config", "_instrumentor"},
}


def imported_siblings(module: str) -> set[str]:
    """Sibling modules imported anywhere in ``module`` (function-level imports included)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == 1:
                found.update(a.name for a in node.names)
            elif node.module and node.module.startswith("otel_ml."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("otel_ml."))
    return found


@pytest.mark.parametrize("step", STEPS)
def test_each_step_imports_only_the_steps_before_it(step):
    later = set(STEPS[STEPS.index(step) + 1:])
    assert not imported_siblings(step) & later


@pytest.mark.parametrize("module", sorted(NEVER))
def test_configuration_and_exporter_construction_form_no_cycle(module):
    assert not imported_siblings(module) & NEVER[module]


def test_import_otel_ml_leaves_the_sdk_metrics_and_wrapt_for_later():
    code = ("import sys, otel_ml; heavy = [m for m in ('opentelemetry.sdk.metrics', 'opentelemetry.sdk.resources',"
            " 'wrapt', 'otel_ml._otlp') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
