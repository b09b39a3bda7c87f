"""Suite-wide rules and fixtures.

In CI (``CI`` set), a skipped test is a failed test.

Every component the tests need is installed by the project's own files (``make test``), so a skip in CI
can only mean something is missing that users would miss too.
The ``exporter`` fixture gives each library test a fresh otel_ml state exporting to memory.
"""

from __future__ import annotations

import os

import pytest

# The library tests' fixture, registered here so that a test module names it as a parameter only.
from _otel_ml_support import exporter  # noqa: F401


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, which counts as a failure: {report.longrepr}"
