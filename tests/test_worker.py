"""The shared background worker (records sender and metrics export thread): start hook, flush, stop."""

from __future__ import annotations

import threading

from otel_ml._export import PIPELINE
from otel_ml._worker import BackgroundWorker


def test_on_start_runs_on_the_starting_thread_before_the_work_and_flush_reports_the_pass():
    events: list[tuple[str, str]] = []
    results = iter([True, False])

    def on_start() -> None:
        events.append(("start", threading.current_thread().name))

    def work() -> bool:
        events.append(("work", threading.current_thread().name))
        return next(results)

    worker = BackgroundWorker("test-worker", work, 3600, on_start=on_start)
    try:
        assert worker.flush(10.0) is True
        assert worker.flush(10.0) is False  # the result of a pass that started after the call
        worker.start()  # idempotent: no second start hook
        assert events == [("start", threading.current_thread().name), ("work", "test-worker"),
                          ("work", "test-worker")]
    finally:
        worker.stop(5.0, flush=False)
    assert not worker.running


def test_the_export_pipeline_runs_on_the_shared_worker(exporter):
    """ExportPipeline's thread is a BackgroundWorker named otel-ml-export, with the configured interval."""
    PIPELINE.ensure_started()
    assert PIPELINE.running and PIPELINE.worker.running
    assert PIPELINE.worker.interval_s == 3600
    assert any(t.name == "otel-ml-export" for t in threading.enumerate())
    PIPELINE.shutdown(timeout_s=2.0, flush=False)
    assert not PIPELINE.running
