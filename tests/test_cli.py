"""The ``otel-ml`` console script: its command table, lazy subcommands and missing-extra messages."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap

import click
import pytest
from click.testing import CliRunner

from otel_ml._cli import main
from otel_ml._cli_commands import COMMANDS, GROUPS, REFERENCE_COMMANDS

ALL_COMMANDS = [(f"{name}", entry) for name, entry in COMMANDS.items()] + [
    (f"{group} {name}", entry) for group, table in GROUPS.items() for name, entry in table.items()
]


def _python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                          timeout=120)


def test_help_lists_every_command_without_importing_any() -> None:
    run = _python("""
        import json, sys
        from otel_ml._cli_commands import main
        try:
            main(["--help"])
        except SystemExit as exc:
            assert not exc.code, exc.code
        print(json.dumps(sorted(sys.modules)))
    """)
    assert run.returncode == 0, run.stderr
    help_text, modules = run.stdout.rsplit("\n", 2)[0], set(json.loads(run.stdout.rsplit("\n", 2)[1]))
    for name in ("demo", "drift", "outcomes", "processor", "reference"):
        assert f"  {name} " in help_text, help_text
    loaded = {m for m in modules if m.split(".")[0] in ("otel_ml_processor", "otel_ml_demo", "pandas", "scipy",
                                                         "rich", "aiohttp", "yaml", "sklearn", "pyarrow")}
    lazy = ("otel_ml._cli_drift", "otel_ml._cli_reference", "otel_ml._cli_outcomes", "otel_ml.stats")
    loaded |= {m for m in modules if m.startswith(lazy)}
    assert not loaded, sorted(loaded)


def test_reference_help_lists_its_commands_without_importing_them() -> None:
    run = _python("""
        import sys
        from otel_ml._cli_commands import main
        try:
            main(["reference", "--help"])
        except SystemExit:
            pass
        print("processor imported" if "otel_ml_processor" in sys.modules else "processor not imported")
    """)
    for name, entry in REFERENCE_COMMANDS.items():
        assert f"  {name} " in run.stdout and entry.help.split()[0] in run.stdout, run.stdout
    assert run.stdout.rstrip().endswith("processor not imported"), run.stdout + run.stderr


@pytest.mark.parametrize(("name", "entry"), ALL_COMMANDS, ids=[n for n, _ in ALL_COMMANDS])
def test_table_help_is_the_commands_own_first_sentence(name: str, entry: object) -> None:
    module, attr = entry.target.split(":")  # type: ignore[attr-defined]
    command = getattr(importlib.import_module(module), attr)
    assert isinstance(command, click.Command)
    assert entry.help == command.get_short_help_str(limit=10_000), name  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["drift", "--help"], "otel-ml drift needs the 'cli' extra (no module named 'click')"),
        (["reference", "build", "x.csv"], "otel-ml reference build needs the 'cli' extra (no module named 'click')"),
        (["processor"], "otel-ml processor needs the 'processor' extra (no module named 'click')"),
        (["--help"], "otel-ml needs the 'cli' extra (no module named 'click')"),
    ],
)
def test_without_click_one_line_names_the_extra(argv: list[str], message: str) -> None:
    run = _python("""
        import sys
        sys.modules["click"] = None  # as in a core install: no click
        from otel_ml._cli_commands import main
        main(sys.argv[1:])
    """, *argv)
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith(message) and run.stderr.count("\n") == 1, run.stderr
    assert "pip install " in run.stderr and "[" in run.stderr.split("pip install ")[1]


def test_without_scipy_drift_names_the_cli_extra() -> None:
    run = _python("""
        import sys
        sys.modules["scipy"] = None  # click is there (say, the processor extra's), the cli extra's scipy is not
        from otel_ml._cli_commands import main
        main(["drift", "--help"])
    """)
    assert run.returncode == 2, run.stderr
    line = run.stderr.strip()
    assert "\n" not in line and "otel-ml drift needs the 'cli' extra (no module named 'scipy')" in line, run.stderr
    assert "pip install" in line and "[cli]'" in line


def test_install_hint_points_at_the_clone_it_came_from() -> None:
    from importlib.metadata import distribution

    from otel_ml._cli_commands import missing_extra

    origin = json.loads(distribution("otel-ml").read_text("direct_url.json") or "{}")
    line = missing_extra("otel-ml drift", "cli", "scipy")
    if origin.get("url", "").startswith("file://"):
        assert f"{origin['url'][len('file://'):]}[cli]'" in line, line
    else:
        assert line.endswith("pip install 'otel-ml[cli]'"), line


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and "0.1.0" in result.output
