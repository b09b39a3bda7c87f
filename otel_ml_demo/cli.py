"""The ``otel-ml demo`` command (also ``python -m otel_ml_demo``): options, exit code, ``--json``."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import click

from otel_ml import OtelMLError

from .runner import run_demo
from .status import DemoResult
from .traffic import DemoUnavailable, Scenario
from .view import LiveView, PlainView


@click.command()
@click.option("--duration", type=click.FloatRange(min=6.0, max=600.0), default=45.0, show_default=True,
              help="Seconds of replayed traffic (the story's phases scale with it).")
@click.option("--window", type=click.FloatRange(min=2.0), default=None,
              help="Processor window in seconds [default: a third of --duration].")
@click.option("--rate", type=click.IntRange(min=10, max=100_000), default=400, show_default=True,
              help="Rows of traffic per second.")
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of the traffic's randomness.")
@click.option("--live/--no-live", default=None,
              help="Live terminal dashboard, or plain lines for logs and CI [default: live on a terminal].")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Also write the run's result as JSON to this file.")
@click.option("--pipeline", is_flag=True,
              help="Run the story through a real OpenTelemetry Collector and Prometheus (see docs/demo.md).")
@click.option("--keep", is_flag=True, help="With --pipeline: keep Prometheus running after the story (Ctrl-C stops).")
def demo(duration: float, window: float | None, rate: int, seed: int, live: bool | None,
         json_path: str | None, pipeline: bool, keep: bool) -> None:
    """Train a model, monitor it, inject outliers, drift, a segment's degradation, a data-quality incident
    and a concept drift, watch them get caught.

    Needs nothing but the package: the processor runs in-process on loopback ports, the data ships
    with scikit-learn. Exits 0 when everything injected was detected (and no outlier alarm came early).
    """
    _tolerate_narrow_terminals()
    scenario = Scenario.scaled(duration, window=window, rate=rate, seed=seed)
    try:
        result = _run_command(scenario, live, pipeline, keep)
    except (DemoUnavailable, OtelMLError) as exc:
        raise click.ClickException(str(exc)) from None
    if json_path:
        Path(json_path).write_text(json.dumps(result.to_dict(), indent=1) + "\n", encoding="utf-8")
    raise SystemExit(0 if result.ok else 1)


def _tolerate_narrow_terminals() -> None:
    """σ, ✔ and box lines on a terminal that cannot show them: replaced by '?', never a crash."""
    for stream in (sys.stdout, sys.stderr):
        encoding = (getattr(stream, "encoding", None) or "utf-8").lower().replace("_", "-")
        if not encoding.startswith("utf") and hasattr(stream, "reconfigure"):
            with contextlib.suppress(Exception):
                stream.reconfigure(errors="replace")


def _run_command(scenario: Scenario, live: bool | None, pipeline: bool, keep: bool) -> DemoResult:
    if pipeline:
        from .pipeline import run_pipeline_demo

        return run_pipeline_demo(scenario, live=live, keep=keep)
    if live is None:
        live = LiveView().console.is_terminal
    return run_demo(scenario, LiveView() if live else PlainView())
