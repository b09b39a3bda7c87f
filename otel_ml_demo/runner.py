"""One run of the demo's story against a backend: train, profile, monitor, replay, collect the result.

A *backend* is where the monitored model exports and where the processor's verdicts are read back
from: :func:`in_process_backend` (the processor in a thread, exporting to the demo's OTLP receiver) or
the pipeline of :mod:`otel_ml_demo.pipeline` (collector -> processor -> collector -> Prometheus). The
story, the status tracking and the views are the same for both.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import otel_ml
from otel_ml import semconv

from .receiver import GaugePoint
from .status import DemoResult, StatusTracker
from .traffic import MODEL_NAME, MODEL_VERSION, SEGMENT_COLUMN, Scenario, Traffic, train_model
from .view import DemoView, PlainView

_RUNS = itertools.count(1)

#: How long, after the traffic stops, the demo waits for the processor's last evaluations.
SETTLE_EVALUATIONS = 2
#: Keys the hash of the demo's prediction ids (``otel_ml.configure(id_secret=...)``); yours comes from a
#: secret store or ``OTEL_ML_ID_SECRET``.
DEMO_ID_SECRET = "otel-ml-demo-only"


def _row_ids(frame: Any) -> Any:
    """The demo's prediction ids: the traffic numbers its rows (the DataFrame index)."""
    return frame.index


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
    from .processor import start_processor
    from .receiver import GaugeReceiver

    refdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="otel-ml-demo-")))
    receiver = stack.enter_context(GaugeReceiver())
    processor = stack.enter_context(
        start_processor(
            references=reference,
            directory=refdir,
            export_endpoint=receiver.endpoint,
            window_s=scenario.window,
            evaluation_interval_s=scenario.evaluation_interval,
            min_samples=scenario.segment_min_pairs,
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
    view = view or PlainView()
    started = clock()
    view.info("training a classifier on scikit-learn's bundled breast-cancer data ...")
    demo = train_model(scenario.seed)
    # A process monitors one model version with one reference: a second run in the same process
    # (the tests) gets its own version, so its counts start from zero.
    run = next(_RUNS)
    version = MODEL_VERSION if run == 1 else f"{MODEL_VERSION}.{run}"
    # The traffic is resampled from these very rows, so their labels give the accuracy to expect
    # while nothing changes (a real model's reference uses a labelled holdout).
    reference = otel_ml.build_reference(
        demo.data,
        model=MODEL_NAME,
        version=version,
        predictions=demo.predict_proba(demo.data),
        class_names=demo.class_names,
        labels=demo.labels,
        multivariate=True,  # the outlier burst is caught by the multivariate stream
        segments={SEGMENT_COLUMN: demo.regions},  # each region's own profile: rows, outputs, quality
    )
    profiled = reference.segments[SEGMENT_COLUMN].values if reference.segments else {}
    view.info(
        f"trained {MODEL_NAME!r} ({len(demo.data)} rows, {len(reference.features)} features); "
        f"reference profile built from its features, predicted probabilities and true classes, "
        f"and per {SEGMENT_COLUMN!r} value ({', '.join(v for v in profiled if v != semconv.OTHER_CATEGORY)})"
    )
    tracker = StatusTracker(model=MODEL_NAME, feature_order=reference.feature_names)
    notes: list[str] = []
    rows_sent = 0
    with contextlib.ExitStack() as stack:
        be = backend(stack, reference, scenario, view)
        stack.enter_context(_monitoring(be.ingest_endpoint, scenario.export_interval))

        @otel_ml.monitor(model=MODEL_NAME, version=version, reference=reference, prediction_id=_row_ids,
                         segments=[SEGMENT_COLUMN])
        def predict(frame: Any) -> Any:
            return demo.predict_proba(frame)

        view.info(
            f"predict_proba wrapped with @otel_ml.monitor(prediction_id=..., segments=[{SEGMENT_COLUMN!r}]), "
            f"exporting to {be.ingest_endpoint} "
            f"every {scenario.export_interval:g}s; true classes sent {scenario.outcome_delay:g}s later with "
            f"otel_ml.record_outcomes"
        )
        traffic = Traffic(demo.data, scenario, labels=demo.labels, regions=demo.regions)
        per_tick = max(1, round(scenario.rate * scenario.tick))
        # Outcomes waiting to "arrive": (due time, prediction ids, true classes).
        waiting: collections.deque[tuple[float, Any, Any]] = collections.deque()

        def send_outcomes(t: float) -> None:
            while waiting and waiting[0][0] <= t:
                _, ids, truth = waiting.popleft()
                otel_ml.record_outcomes(model=MODEL_NAME, ids=ids, actuals=truth)

        def refresh(t: float) -> None:
            new = tracker.update(be.points(), t)
            view.update(t, rows_sent, tracker.rows(), new, tracker.changed_at, tracker.performance_rows(),
                        tracker.multivariate, tracker.worst_segments())

        view.start(scenario, be.source)
        try:
            t0 = clock()
            tick = 0
            while (t := clock() - t0) < scenario.duration:
                frame, truth = traffic.batch_and_labels(t, per_tick)
                predict(frame)
                waiting.append((t + scenario.outcome_delay, frame.index, truth))
                send_outcomes(t)
                rows_sent += per_tick
                refresh(t)
                tick += 1
                _sleep_until(t0 + tick * scenario.tick, clock)
            # Let the last exported counts be evaluated: flush, then wait for a few more evaluations.
            send_outcomes(float("inf"))
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
        elif not tracker.performance:
            notes.append("no realized performance reached the demo: were the prediction and outcome records "
                         "sent (OTEL_LOGS_EXPORTER=none switches them off)?")
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
        concept_at=scenario.concept_at,
        concept_what=scenario.concept_what(),
        performance=tuple(tracker.performance_rows()),
        outlier_at=scenario.outlier_at if reference.multivariate is not None else None,
        outlier_what=scenario.outlier_what(),
        multivariate=tracker.multivariate,
        segment_at=scenario.segment_at,
        segment=scenario.segment,
        segment_what=scenario.segment_what(),
        segments=tuple(tracker.worst_segments()),
    )
    view.finish(result, result.final)
    return result


def _sleep_until(deadline: float, clock: Callable[[], float]) -> None:
    delay = deadline - clock()
    if delay > 0:
        time.sleep(delay)


@contextlib.contextmanager
def _monitoring(endpoint: str, export_interval_s: float) -> Iterator[None]:
    """Point the library's exporter at ``endpoint`` (``host:port`` on loopback, OTLP/gRPC) for the run;
    flush and switch export off after."""
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

    # An explicit exporter, cumulative temporality and disabled=False: OTEL_* variables meant for the
    # user's own services (OTEL_SDK_DISABLED, OTEL_METRICS_EXPORTER=none, delta temporality, endpoints)
    # must not silently turn the demo into a run where nothing is detected.
    # The prediction and outcome records (OTLP logs) go to the same endpoint over gRPC.
    exporter = OTLPMetricExporter(endpoint=endpoint, insecure=True)
    otel_ml.configure(exporter=exporter, export_interval_s=export_interval_s, temporality="cumulative",
                      disabled=False, endpoint=f"http://{endpoint}", protocol="grpc", id_secret=DEMO_ID_SECRET)
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
