"""Performance windows: pairs enter at join time, windows select by it, memory is bounded, the export."""

from __future__ import annotations

import numpy as np
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb

from otel_ml import semconv
from otel_ml.stats.performance import PerformancePolicy
from otel_ml_processor._joins import Pair
from otel_ml_processor._performance import PerformanceWindows, add_performance, task_spec

from .payloads import classifier_reference, make_reference

NOW = 1_800_000_000.0


def pair(i: int, joined_s_ago: float, correct: bool, p_true: float = 0.9) -> Pair:
    predicted = i % 2
    actual = predicted if correct else 1 - predicted
    p1 = p_true if actual == 1 else 1 - p_true
    return Pair("fraud", "1", bytes(16), 0, 0, int((NOW - joined_s_ago) * 1000), str(predicted), None,
                np.array([1 - p1, p1], np.float32).tobytes(), (i + 1).to_bytes(24, "big"), str(actual), None)


def test_performance_task_specs_come_from_the_reference() -> None:
    spec = task_spec(classifier_reference())
    assert spec is not None and (spec.task, spec.classes) == ("binary", ("0", "1"))
    assert spec.reference is not None and spec.reference["accuracy"].value == 0.95
    reg = task_spec(make_reference())  # outputs: "value" only, no performance section
    assert reg is not None and (reg.task, reg.classes, reg.reference) == ("regression", (), None)


def test_performance_windows_select_pairs_by_join_time_and_stay_bounded() -> None:
    spec = task_spec(classifier_reference())
    assert spec is not None
    w = PerformanceWindows((300.0, 3600.0), ("5m", "1h"), max_pairs=1000)
    old = [pair(i, 1000, correct=i % 4 != 0) for i in range(400)]  # joined 1000 s ago: only in 1h; 75 % right
    new = [pair(i, 10, correct=i % 10 != 0) for i in range(400, 1000)]  # joined 10 s ago: both; 90 % right
    assert w.add("fraud", "1", old, spec).all() and w.add("fraud", "1", new, spec).all()
    res = {r.window: r for r in w.evaluate(NOW, PerformancePolicy())}
    assert (res["5m"].n, res["1h"].n) == (600, 1000)
    assert res["5m"].metrics["accuracy"].value == 0.9
    assert res["1h"].metrics["accuracy"].value == (540 + 300) / 1000
    assert res["5m"].verdicts["accuracy"].degraded == 1  # 0.90 vs the holdout's 0.95
    # a full ring keeps the newest max_pairs: the old pairs are gone
    w.add("fraud", "1", [pair(i, 5, correct=True) for i in range(2000, 2400)], spec)
    res = {r.window: r for r in w.evaluate(NOW, PerformancePolicy())}
    assert res["1h"].n == 1000 and res["1h"].metrics["accuracy"].value == (400 + 540) / 1000
    assert w.nbytes() < 1000 * 72  # 56 bytes of columns + an 8-byte reference to the (interned) packed segments


def test_coverage_counts_the_predictions_that_came_before_any_outcome() -> None:
    """Predictions arrive first (labels come later): they count towards coverage from the start; a
    version with predictions and no joined outcome yet shows coverage 0, not nothing."""
    spec = task_spec(classifier_reference())
    assert spec is not None
    w = PerformanceWindows((300.0,), ("5m",))
    w.received("fraud", "1", 1000, NOW - 20, spec)
    (waiting,) = w.evaluate(NOW, PerformancePolicy())
    assert (waiting.n, waiting.coverage) == (0, 0.0)
    w.add("fraud", "1", [pair(i, 5, correct=True) for i in range(600)], spec)
    (res,) = w.evaluate(NOW, PerformancePolicy())
    assert (res.n, res.coverage) == (600, 0.6)


def test_performance_rejects_labels_outside_the_classes_and_exports_exemplars_of_the_worst() -> None:
    spec = task_spec(classifier_reference())
    assert spec is not None
    w = PerformanceWindows((300.0,), ("5m",))
    bad = Pair("fraud", "1", bytes(16), 0, 0, int(NOW * 1000), "1", None, None, b"", "7", None)
    pairs = [pair(i, 1, correct=i >= 3, p_true=0.8 if i >= 3 else 0.1) for i in range(600)]
    ok = w.add("fraud", "1", [bad, *pairs], spec)
    assert not ok[0] and ok[1:].all()
    sm = pb.ScopeMetrics()
    add_performance(sm, w.evaluate(NOW, PerformancePolicy()), 1)
    metrics = {m.name: m for m in sm.metrics}
    ll = [dp for dp in metrics[semconv.PERFORMANCE_VALUE].gauge.data_points
          if any(a.value.string_value == "log_loss" for a in dp.attributes)]
    assert len(ll) == 1
    worst = sorted(ll[0].exemplars, key=lambda e: -e.as_double)[:3]
    assert sorted(int.from_bytes(e.trace_id + e.span_id, "big") - 1 for e in worst) == [0, 1, 2]
    assert all(abs(e.as_double + np.log(0.1)) < 1e-6 for e in worst)
    assert {semconv.PERFORMANCE_SAMPLE_COUNT, semconv.PERFORMANCE_LOWER, semconv.PERFORMANCE_UPPER,
            semconv.PERFORMANCE_DEGRADED} <= set(metrics)
    # The holdout value comes from the drift evaluation only (one series per version, window and metric).
    assert semconv.PERFORMANCE_REFERENCE not in metrics


def test_live_versions_are_those_with_records_within_the_longest_window() -> None:
    """The versions whose holdout value the drift evaluation exports without live streams (records only)."""
    spec = task_spec(classifier_reference())
    assert spec is not None
    w = PerformanceWindows((300.0, 3600.0), ("5m", "1h"))
    w.add("fraud", "1", [pair(i, 1000, correct=True) for i in range(10)], spec)  # joined 1000 s ago
    w.add("fraud", "old", [pair(i, 4000, correct=True) for i in range(10)], spec)  # before the longest window
    w.received("fraud", "2", 5, NOW - 60, spec)  # predictions only, a minute ago
    w.received("fraud", "3", 5, NOW - 7200, spec)  # predictions only, two hours ago
    assert sorted(w.live(NOW)) == [("fraud", "1"), ("fraud", "2")]
