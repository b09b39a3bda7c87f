"""The ``otel-ml`` click group. Subcommands live in the module of their concern, listed in
:mod:`otel_ml._cli_commands`, and are imported only when run (``otel-ml --help`` imports none)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping

import click

from ._cli_commands import COMMANDS, OUTCOMES_COMMANDS, OWN_PACKAGES, REFERENCE_COMMANDS, Command, missing_extra


class MissingExtra(click.ClickException):
    """A subcommand whose optional dependencies are not installed: one line, exit status 2."""

    exit_code = 2


class _LazyGroup(click.Group):
    def __init__(self, *args: object, lazy: Mapping[str, Command], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        entry = self._lazy.get(name)
        if entry is None:
            return super().get_command(ctx, name)
        module, attr = entry.target.split(":")
        try:
            command: click.Command = getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as exc:
            if exc.name is None or exc.name.split(".")[0] in OWN_PACKAGES:
                raise  # part of otel-ml itself is missing: a broken install, not an extra
            raise MissingExtra(missing_extra(f"{_root_path(ctx)} {name}", entry.extra, exc.name)) from None
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list, with the table's one-line help for the lazy commands (nothing imported)."""
        rows = []
        for name in self.list_commands(ctx):
            if name in self._lazy:
                rows.append((name, self._lazy[name].help))
                continue
            command = super().get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=formatter.width)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _root_path(ctx: click.Context) -> str:
    """``otel-ml`` or ``otel-ml reference`` (whatever name the test runner gives the root)."""
    parts = []
    while ctx.parent is not None:
        parts.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(["otel-ml", *reversed(parts)])


@click.group(cls=_LazyGroup, lazy=COMMANDS)
@click.version_option(package_name="otel-ml")
def main() -> None:
    """otel-ml: ML observability on OpenTelemetry."""


@main.group(cls=_LazyGroup, lazy=REFERENCE_COMMANDS)
def reference() -> None:
    """Build, inspect and publish reference profiles."""


@main.group(cls=_LazyGroup, lazy=OUTCOMES_COMMANDS)
def outcomes() -> None:
    """Send outcomes (actual labels or values) of monitored predictions; export the joined records."""
