"""``otel-ml demo``: the project's main job, end to end, on one machine and nothing but the package.

What happens, in order:

1. a classifier is trained on scikit-learn's bundled breast-cancer data (no download);
2. its reference profile (features + predicted probabilities) is built with
   :func:`otel_ml.build_reference` and written into a temporary references directory;
3. the otel-ml processor starts in-process on free loopback ports with short windows, exporting its
   drift and quality gauges over OTLP/gRPC to a tiny receiver the demo runs;
4. the model's ``predict_proba`` is wrapped with :func:`otel_ml.monitor`, exporting to the processor
   every second or so;
5. production traffic is replayed: rows resampled from the data with a little noise, then one feature
   shifted (drift), then another going missing for a third of the rows (a data-quality incident);
6. the terminal shows what an ops team would see, live, and a summary of what was detected and when.

The exit code is 0 when both the drift and the incident were detected, 1 otherwise. Everything binds
to 127.0.0.1; nothing is downloaded. ``--pipeline`` runs the same story through a real OpenTelemetry
Collector and Prometheus (see ``docs/demo.md``).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ._demo_receiver import GaugePoint
from ._demo_status import DemoResult, StatusTracker
from ._demo_traffic import MODEL_NAME, MODEL_VERSION, DemoUnavailable, Scenario, Traffic, train_model
from ._demo_view import DemoView, LiveView, PlainView
from ._errors import OtelMLError

_RUNS = itertools.count(1)

#: How long, after the traffic stops, the demo waits for the processor's last evaluations.
SETTLE_EVALUATIONS = 2


@dataclass(frozen=True)
class Backend:
    """Where the demo's library exports, and where it reads the processor's verdicts back from."""

    ingest_endpoint: str  # OTLP/gRPC host:port the monitored model exports to
    points: Callable[[], list[GaugePoint]]  # latest drift/quality gauges
    evaluations: Callable[[], int]  # how many batches of gauges have arrived so far
    settle_s: float = 0.0  # extra wait after the traffic (pipeline hops)
    source: str = "processor → OTLP"  # where the status table's numbers come from (panel title)


#: Starts a backend inside the ExitStack: (stack, reference, scenario, view) -> Backend.
BackendFactory = Callable[[contextlib.ExitStack, Any, Scenario, DemoView], Backend]


def in_process_backend(stack: contextlib.ExitStack, reference: Any, scenario: Scenario, view: DemoView) -> Backend:
    """The processor in a thread on free loopback ports, exporting to the demo's OTLP receiver."""
    from ._demo_processor import start_processor
    from ._demo_receiver import GaugeReceiver

    refdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="otel-ml-demo-")))
    receiver = stack.enter_context(GaugeReceiver())
    processor = stack.enter_context(
        start_processor(
            references=reference,
            directory=refdir,
            export_endpoint=receiver.endpoint,
            window_s=scenario.window,
            evaluation_interval_s=scenario.evaluation_interval,
        )
    )
    view.info(
        f"processor running in-process: OTLP gRPC {processor.grpc_endpoint}, "
        f"{scenario.window:g}s window, evaluation every {scenario.evaluation_interval:g}s; "
        f"drift gauges exported over OTLP to the demo's receiver at {receiver.endpoint}"
    )
    return Backend(processor.grpc_endpoint, receiver.store.snapshot, lambda: receiver.store.exports)


def run_demo(
    scenario: Scenario,
    view: DemoView | None = None,
    *,
    backend: BackendFactory = in_process_backend,
    clock: Callable[[], float] = time.monotonic,
) -> DemoResult:
    """Run the whole story once and return what was injected and detected (the CLI wraps this)."""
    import otel_ml

    view = view or PlainView()
    started = clock()
    view.info("training a classifier on scikit-learn's bundled breast-cancer data ...")
    demo = train_model(scenario.seed)
    # A process monitors one model version with one reference: a second run in the same process
    # (the tests) gets its own version, so its counts start from zero.
    run = next(_RUNS)
    version = MODEL_VERSION if run == 1 else f"{MODEL_VERSION}.{run}"
    reference = otel_ml.build_reference(
        demo.data,
        model=MODEL_NAME,
        version=version,
        predictions=demo.predict_proba(demo.data),
        class_names=demo.class_names,
    )
    view.info(
        f"trained {MODEL_NAME!r} ({len(demo.data)} rows, {len(reference.features)} features); "
        f"reference profile built from its features and predicted probabilities"
    )
    tracker = StatusTracker(model=MODEL_NAME, feature_order=reference.feature_names)
    notes: list[str] = []
    rows_sent = 0
    with contextlib.ExitStack() as stack:
        be = backend(stack, reference, scenario, view)
        stack.enter_context(_monitoring(be.ingest_endpoint, scenario.export_interval))

        @otel_ml.monitor(model=MODEL_NAME, version=version, reference=reference)
        def predict(frame: Any) -> Any:
            return demo.predict_proba(frame)

        view.info(
            f"predict_proba wrapped with @otel_ml.monitor, exporting to {be.ingest_endpoint} "
            f"every {scenario.export_interval:g}s"
        )
        traffic = Traffic(demo.data, scenario)
        per_tick = max(1, round(scenario.rate * scenario.tick))

        def refresh(t: float) -> None:
            new = tracker.update(be.points(), t)
            view.update(t, rows_sent, tracker.rows(), new, tracker.changed_at)

        view.start(scenario, be.source)
        try:
            t0 = clock()
            tick = 0
            while (t := clock() - t0) < scenario.duration:
                predict(traffic.batch(t, per_tick))
                rows_sent += per_tick
                refresh(t)
                tick += 1
                _sleep_until(t0 + tick * scenario.tick, clock)
            # Let the last exported counts be evaluated: flush, then wait for a few more evaluations.
            otel_ml.flush(timeout_s=2.0)
            settle = SETTLE_EVALUATIONS * scenario.evaluation_interval + scenario.export_interval + be.settle_s
            settle_until = clock() + settle
            while clock() < settle_until:
                refresh(clock() - t0)
                time.sleep(min(0.25, scenario.tick))
        finally:
            view.stop()
        evaluations = be.evaluations()
        if evaluations == 0:
            notes.append("no drift evaluation reached the demo: is the processor exporting?")
    result = DemoResult(
        model=MODEL_NAME,
        drift_feature=scenario.drift_feature,
        drift_at=scenario.drift_at,
        incident_feature=scenario.incident_feature,
        incident_at=scenario.incident_at,
        duration=scenario.duration,
        rows_sent=rows_sent,
        elapsed=clock() - started,
        events=tuple(tracker.events),
        final=tuple(tracker.rows()),
        evaluations_received=evaluations,
        notes=tuple(notes),
        drift_shift=scenario.drift_shift,
        incident_missing=scenario.incident_missing,
        peaks={k: dict(v) for k, v in tracker.peaks.items()},
    )
    view.finish(result, result.final)
    return result


def _sleep_until(deadline: float, clock: Callable[[], float]) -> None:
    delay = deadline - clock()
    if delay > 0:
        time.sleep(delay)


@contextlib.contextmanager
def _monitoring(endpoint: str, export_interval_s: float) -> Iterator[None]:
    """Point the library's exporter at ``endpoint`` for the run; flush and switch export off after."""
    import otel_ml

    from ._export import create_metric_exporter

    # An explicit exporter, cumulative temporality and disabled=False: OTEL_* variables meant for the
    # user's own services (OTEL_SDK_DISABLED, OTEL_METRICS_EXPORTER=none, delta temporality, headers)
    # must not silently turn the demo into a run where nothing is detected.
    exporter = create_metric_exporter(endpoint, protocol="grpc")
    otel_ml.configure(exporter=exporter, export_interval_s=export_interval_s, temporality="cumulative",
                      disabled=False)
    try:
        yield
    finally:
        # Export what is left, then switch the library's export off: the processor is about to stop,
        # and an export at interpreter exit would only retry against a closed port.
        with contextlib.suppress(Exception):
            otel_ml.flush(timeout_s=2.0)
        with contextlib.suppress(Exception):
            otel_ml.configure(disabled=True)
        with contextlib.suppress(Exception):
            exporter.shutdown()


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
    """Train a model, monitor it, inject drift and a data-quality incident, watch them get caught.

    Needs nothing but the package: the processor runs in-process on loopback ports, the data ships
    with scikit-learn. Exits 0 when the injected drift and incident were both detected.
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
        from ._demo_pipeline import run_pipeline_demo

        return run_pipeline_demo(scenario, live=live, keep=keep)
    if live is None:
        live = LiveView().console.is_terminal
    return run_demo(scenario, LiveView() if live else PlainView())
