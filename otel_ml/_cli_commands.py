"""The ``otel-ml`` console script: its table of subcommands and its entry point (standard library only).

Each subcommand is listed with where it lives, the extra it needs and its one-line help. ``otel-ml
--help`` lists them from this table without importing any (the processor alone takes a second to
import), and a command whose extra is not installed says in one line which ``pip install`` to run,
even when click itself is missing (the core install has none of the command-line dependencies).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """A subcommand: ``target`` is the click command as ``module:attribute``; ``extra`` the extra it needs."""

    target: str
    extra: str
    help: str


#: ``otel-ml <name>``; ``help`` is the first sentence of the command's docstring (a test keeps them equal).
COMMANDS: dict[str, Command] = {
    "demo": Command(
        "otel_ml_demo.cli:demo", "demo",
        "Train a model, monitor it, inject outliers, drift, a segment's degradation, a data-quality incident "
        "and a concept drift, watch them get caught.",
    ),
    "drift": Command(
        "otel_ml._cli_drift:drift", "cli",
        "Judge a file of current data against a reference profile: the release gate.",
    ),
    "performance": Command(
        "otel_ml._cli_performance:performance", "cli",
        "Judge a model's outputs on labelled data against its reference performance: the release gate.",
    ),
    "processor": Command(
        "otel_ml_processor._cli:processor", "processor",
        "Run the otel-ml drift processor: OTLP in, drift and quality gauges out.",
    ),
}

#: ``otel-ml reference <name>``.
REFERENCE_COMMANDS: dict[str, Command] = {
    "build": Command(
        "otel_ml._cli_reference:build", "cli", "Build a reference profile from a CSV or Parquet file of training data."
    ),
    "push": Command(
        "otel_ml_processor._cli:push", "processor",
        "Upload a reference profile to a running processor (validated locally first).",
    ),
    "show": Command("otel_ml._cli_reference:show", "cli", "Print a human-readable summary of a reference profile."),
}

#: ``otel-ml outcomes <name>``: one entry per line (the commands come from different modules).
OUTCOMES_COMMANDS: dict[str, Command] = {
    "push": Command("otel_ml._cli_outcomes:push", "cli", "Send the outcomes in a CSV or Parquet file as OTLP logs."),
    "export": Command(
        "otel_ml_processor._cli_outcomes:export", "processor",
        "Write the joined predictions and outcomes of a model from a processor's state directory to Parquet or CSV.",
    ),
}

#: Subcommand groups: ``otel-ml <group> <name>``.
GROUPS: dict[str, dict[str, Command]] = {"reference": REFERENCE_COMMANDS, "outcomes": OUTCOMES_COMMANDS}

#: The packages of this distribution: a missing module of theirs is a broken install, not a missing extra.
OWN_PACKAGES = frozenset({"otel_ml", "otel_ml_processor", "otel_ml_demo"})


def missing_extra(command: str, extra: str, module: str | None) -> str:
    """The one line that says which extra ``command`` (``"otel-ml drift"``, say) needs and how to install it."""
    because = f" (no module named {module!r})" if module else ""
    return f"{command} needs the {extra!r} extra{because}: {_install_hint(extra)}"


def _install_hint(extra: str) -> str:
    """``pip install 'otel-ml[extra]'``, or the clone's path when otel-ml was installed from one."""
    try:
        from importlib.metadata import distribution

        origin = json.loads(distribution("otel-ml").read_text("direct_url.json") or "{}")
    except Exception:  # not installed as a distribution, or no PEP 610 record: the published name
        origin = {}
    url = str(origin.get("url", ""))
    if url.startswith("file://"):
        editable = "-e " if origin.get("dir_info", {}).get("editable") else ""
        return f"pip install {editable}'{url[len('file://'):]}[{extra}]'"
    return f"pip install 'otel-ml[{extra}]'"


def _command_named(argv: Sequence[str]) -> tuple[str, Command | None]:
    """The subcommand ``argv`` asks for (``"reference build"``, say) and its table entry, if any."""
    words = [a for a in argv if not a.startswith("-")]
    group = GROUPS.get(words[0]) if words else None
    if group is not None and len(words) > 1 and words[1] in group:
        return f"{words[0]} {words[1]}", group[words[1]]
    if words and words[0] in COMMANDS:
        return words[0], COMMANDS[words[0]]
    return "", None


def main(argv: Sequence[str] | None = None) -> None:
    """Run ``otel-ml``; without click (a core install), say which extra to install and exit 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        import click  # noqa: F401
    except ModuleNotFoundError as exc:
        name, command = _command_named(args)
        if command is None:
            print(missing_extra("otel-ml", "cli", exc.name), file=sys.stderr)
        else:
            print(missing_extra(f"otel-ml {name}", command.extra, exc.name), file=sys.stderr)
        raise SystemExit(2) from None
    from ._cli import main as group

    group(args=args, prog_name="otel-ml")
