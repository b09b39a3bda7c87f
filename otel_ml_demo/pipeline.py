"""``otel-ml demo --pipeline``: the same story through a real OpenTelemetry Collector and Prometheus.

    app (demo) ──OTLP──► otelcol-ml ──ml.* metrics, prediction/outcome records──► otel-ml processor (in-process)
                            │    ▲                    │ drift / quality / performance gauges
                            │    └────────OTLP────────┘
                            └──remote write──► Prometheus ◄── the demo's status table (PromQL)

The collector runs ``collector/config/otel-ml-collector.yaml`` as it is, and the binaries are those of
the end-to-end tests: the collector built by ``scripts/e2e-components.sh`` (cached) and Debian's
``prometheus``, found and started by :mod:`otel_ml_demo.components` (which the end-to-end tests use
too). This mode needs a checkout of the repository; the plain ``otel-ml demo`` needs nothing but the package.
The verdicts shown live are read back from Prometheus with PromQL, and the queries are printed at the end.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from otel_ml import semconv

from . import components as c
from .processor import start_processor
from .receiver import GaugePoint
from .runner import Backend, run_demo
from .status import SEGMENT_GAUGES, DemoResult
from .traffic import MODEL_NAME, Scenario
from .view import DemoView, LiveView, PlainView

_GAUGES = (
    semconv.DRIFT_SCORE,
    semconv.DRIFT_P_VALUE,
    semconv.DRIFT_DETECTED,
    semconv.DRIFT_SAMPLE_COUNT,
    semconv.QUALITY_MISSING_RATIO,
    semconv.QUALITY_INVALID_RATIO,
    semconv.QUALITY_OUT_OF_RANGE_RATIO,
    semconv.QUALITY_UNSEEN_RATIO,
    semconv.QUALITY_ALARM,
    semconv.PERFORMANCE_VALUE,
    semconv.PERFORMANCE_LOWER,
    semconv.PERFORMANCE_UPPER,
    semconv.PERFORMANCE_REFERENCE,
    semconv.PERFORMANCE_DEGRADED,
    semconv.PERFORMANCE_SAMPLE_COUNT,
    *SEGMENT_GAUGES,
)
_PROM_TO_OTEL = {semconv.prometheus_name(n): n for n in _GAUGES}
_LABEL_TO_ATTRIBUTE = {
    a.replace(".", "_"): a
    for a in (
        semconv.MODEL_NAME,
        semconv.MODEL_VERSION,
        semconv.FEATURE_NAME,
        semconv.DRIFT_KIND,
        semconv.DRIFT_WINDOW,
        semconv.DRIFT_METHOD,
        semconv.PERFORMANCE_METRIC,
        semconv.PREDICTION_NAME,
        semconv.SEGMENT_NAME,
        semconv.SEGMENT_VALUE,
        semconv.QUALITY_KIND,
    )
}


def promql_queries(model: str = MODEL_NAME) -> list[tuple[str, str]]:
    """(PromQL, what it shows) pairs for the demo's model, with names as Prometheus stores them."""
    n = semconv.prometheus_name
    sel = f'ml_model_name="{model}"'
    return [
        (f"{n(semconv.DRIFT_DETECTED)}{{{sel}}} == 1", "features and outputs drifting now"),
        (f'{n(semconv.DRIFT_SCORE)}{{{sel}, ml_drift_method="psi"}}', "PSI per feature, each window"),
        (f'{n(semconv.DRIFT_SCORE)}{{{sel}, ml_drift_method="wasserstein"}}',
         "Wasserstein distance in reference standard deviations"),
        (f"{n(semconv.QUALITY_MISSING_RATIO)}{{{sel}}}", "share of rows missing each feature"),
        (f"{n(semconv.QUALITY_ALARM)}{{{sel}}} == 1", "features with a data-quality alarm"),
        (f'{n(semconv.QUALITY_OUT_OF_RANGE_RATIO)}{{{sel}, ml_feature_name="{semconv.RECONSTRUCTION_ERROR_FEATURE}"}}',
         "outlier share: rows beyond the reference's outlier threshold (the multivariate stream)"),
        (f'{n(semconv.PERFORMANCE_VALUE)}{{{sel}, ml_performance_metric="accuracy"}}',
         "realized accuracy (outcomes joined to predictions), each window"),
        (f"{n(semconv.PERFORMANCE_DEGRADED)}{{{sel}}} == 1", "performance metrics judged degraded"),
        (f"sort({n(semconv.SEGMENT_PERFORMANCE_RANK)}{{{sel}}})",
         "worst segments now by realized performance (1 = worst; the gap: " + n(semconv.SEGMENT_PERFORMANCE_GAP) + ")"),
        (f"{n(semconv.SEGMENT_PERFORMANCE_DEGRADED)}{{{sel}}} == 1", "segments underperforming the rest of the window"),
        (f"sort({n(semconv.SEGMENT_DRIFT_RANK)}{{{sel}}})", "segments whose outputs moved most from their own profile"),
        (f"{n(semconv.SEGMENT_QUALITY_ALARM)}{{{sel}}} == 1", "segments with a data-quality alarm"),
        (
            f'histogram_quantile(0.5, sum by (le) (rate({n(semconv.FEATURE_VALUE)}_bucket{{{sel}, '
            f'ml_feature_name="mean radius"}}[1m])))',
            "median 'mean radius' the model sees (the histogram the library exports)",
        ),
        (f"sum(rate({n(semconv.PREDICT_ROWS)}{{{sel}}}[1m]))", "rows predicted per second"),
    ]


class PromPoller:
    """Reads the processor's gauges back from Prometheus once a second, in a thread."""

    def __init__(self, prometheus: Any, model: str, interval: float = 1.0) -> None:
        self._prom = prometheus
        self._query = '{__name__=~"%s", ml_model_name="%s"}' % ("|".join(_PROM_TO_OTEL), model)
        self._interval = interval
        self._lock = threading.Lock()
        self._points: list[GaugePoint] = []
        self._stamps: set[float] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="otel-ml-demo-promql", daemon=True)

    def __enter__(self) -> PromPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            with contextlib.suppress(Exception):
                self.poll()

    def poll(self) -> None:
        points = []
        for r in self._prom.promql(self._query):
            labels = r["metric"]
            metric = _PROM_TO_OTEL.get(labels.get("__name__", ""))
            if metric is None:
                continue
            attrs = {_LABEL_TO_ATTRIBUTE[k]: v for k, v in labels.items() if k in _LABEL_TO_ATTRIBUTE}
            ts, value = r["value"]
            points.append(GaugePoint(metric, attrs, float(value), int(float(ts) * 1e9)))
        with self._lock:
            self._points = points
            if points:
                self._stamps.add(max(p.time_unix_nano for p in points))

    def points(self) -> list[GaugePoint]:
        with self._lock:
            return list(self._points)

    def evaluations(self) -> int:
        with self._lock:
            return len(self._stamps)


def run_pipeline_demo(
    scenario: Scenario, view: DemoView | None = None, *, live: bool | None = None, keep: bool = False
) -> DemoResult:
    """Run the demo's story through otelcol-ml and Prometheus; print the PromQL to look at."""
    try:
        c.require_checkout()
        c.otelcol_binary()
        c.prometheus_binary()
    except c.ComponentMissing as exc:
        raise click.ClickException(f"{exc}") from None

    if view is None:
        if live is None:
            live = LiveView().console.is_terminal
        view = LiveView() if live else PlainView()
    with _terminate_cleanly():
        return _run(scenario, view, keep)


def _run(scenario: Scenario, view: DemoView, keep: bool) -> DemoResult:
    workdir = Path(tempfile.mkdtemp(prefix="otel-ml-demo-pipeline-"))
    view.info(f"starting Prometheus and the OpenTelemetry Collector (logs in {workdir})")
    prom = c.start_prometheus(workdir / "prometheus")
    ok = False
    try:

        def backend(stack: contextlib.ExitStack, reference: Any, sc: Scenario, v: DemoView) -> Backend:
            refdir = workdir / "references"
            refdir.mkdir(exist_ok=True)
            collector_grpc = f"127.0.0.1:{c.free_port()}"
            processor_grpc = f"127.0.0.1:{c.free_port()}"
            # The collector first, so that it stops last: the processor's final export needs it.
            # Until the processor listens, the collector's exporter retries (it never gives up).
            collector = c.start_collector(
                c.COLLECTOR_CONFIG,
                workdir / "collector",
                env={
                    c.ENV_OTLP_GRPC: collector_grpc,
                    c.ENV_PROCESSOR: processor_grpc,
                    c.ENV_REMOTE_WRITE: prom.remote_write_url,
                },
            )
            stack.callback(collector.stop)
            processor = stack.enter_context(
                start_processor(
                    references=reference,
                    directory=refdir,
                    export_endpoint=f"http://{collector.otlp_grpc}",
                    window_s=sc.window,
                    evaluation_interval_s=sc.evaluation_interval,
                    grpc_endpoint=processor_grpc,
                    min_samples=sc.segment_min_pairs,
                )
            )
            poller = stack.enter_context(PromPoller(prom, MODEL_NAME))
            v.info(
                f"otelcol-ml on {collector.otlp_grpc} ({c.COLLECTOR_CONFIG.relative_to(c.REPO)}) -> "
                f"processor on {processor.grpc_endpoint} ({sc.window:g}s window) -> back to the collector -> "
                f"Prometheus at {prom.url}"
            )
            # Two more hops (collector batches of 1s, remote write) before a verdict is queryable.
            return Backend(collector.otlp_grpc, poller.points, poller.evaluations, settle_s=4.0,
                           source="Prometheus, by PromQL")

        result = run_demo(scenario, view, backend=backend)
        _print_queries(view, prom.url, keep)
        ok = True
        if keep:
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(1)
        return result
    finally:
        prom.stop()
        if ok:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"logs kept in {workdir}", file=sys.stderr)


@contextlib.contextmanager
def _terminate_cleanly() -> Iterator[None]:
    """SIGTERM (and SIGINT, even when a shell started us in the background) unwinds through the
    ``finally`` blocks, so the collector and Prometheus never outlive the demo. Handlers restored after."""

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _print_queries(view: DemoView, url: str, keep: bool) -> None:
    lines = [f"Prometheus: {url}/graph" + ("  (kept running; Ctrl-C to stop)" if keep else
                                           "  (stopped now; run with --keep to explore)"), "PromQL to look at:"]
    for expr, what in promql_queries():
        lines += [f"  {expr}", f"      {what}"]
    console = getattr(view, "console", None)
    for line in lines:
        if console is not None:
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            print(line)
