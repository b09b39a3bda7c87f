"""The ``otel-ml`` command line. Subcommands live in the module of their concern and load lazily."""

from __future__ import annotations

import importlib

import click

_COMMANDS = {
    "processor": "otel_ml_processor._cli:processor",
    "demo": "otel_ml_demo.cli:demo",
    "drift": "otel_ml._cli_drift:drift",
}
_REFERENCE_COMMANDS = {
    "build": "otel_ml._cli_reference:build",
    "show": "otel_ml._cli_reference:show",
    "push": "otel_ml_processor._cli:push",
}


class _LazyGroup(click.Group):
    def __init__(self, *args: object, lazy: dict[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self._lazy:
            module, attr = self._lazy[name].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)


@click.group(cls=_LazyGroup, lazy=_COMMANDS)
@click.version_option(package_name="otel-ml")
def main() -> None:
    """otel-ml: ML observability on OpenTelemetry."""


@main.group(cls=_LazyGroup, lazy=_REFERENCE_COMMANDS)
def reference() -> None:
    """Build, inspect and publish reference profiles."""
