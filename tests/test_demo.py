"""The demo: its pieces (receiver, status tracking, traffic) and one fast real run end to end."""

from __future__ import annotations

import io
from typing import Any

import grpc
import numpy as np
import pytest
from click.testing import CliRunner
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2

from otel_ml import semconv
from otel_ml_demo.receiver import GaugeReceiver
from otel_ml_demo.status import MULTIVARIATE, DemoEvent, DemoResult, FeatureStatus, SegmentStatus, StatusTracker
from otel_ml_demo.traffic import FEATURES, REGIONS, SEGMENT_COLUMN, Scenario, Traffic, assign_regions


def _gauge_request(points: list[tuple[str, dict[str, str], float]], t_ns: int = 1) -> Any:
    req = metrics_service_pb2.ExportMetricsServiceRequest()
    sm = req.resource_metrics.add().scope_metrics.add()
    for name, attrs, value in points:
        m = sm.metrics.add(name=name)
        p = m.gauge.data_points.add(as_double=value, time_unix_nano=t_ns)
        for k, v in attrs.items():
            p.attributes.append(common_pb2.KeyValue(key=k, value=common_pb2.AnyValue(string_value=v)))
    return req


def _attrs(feature: str, method: str | None = None, kind: str = "feature") -> dict[str, str]:
    a = {
        semconv.MODEL_NAME: "m",
        semconv.MODEL_VERSION: "1",
        semconv.FEATURE_NAME: feature,
        semconv.DRIFT_KIND: kind,
        semconv.DRIFT_WINDOW: "10s",
    }
    if method:
        a[semconv.DRIFT_METHOD] = method
    return a



def test_receiver_keeps_latest_gauges_sent_over_otlp_grpc() -> None:
    with GaugeReceiver() as rx:
        assert rx.endpoint.startswith("http://127.0.0.1:")
        with grpc.insecure_channel(f"127.0.0.1:{rx.port}") as channel:
            stub = metrics_service_pb2_grpc.MetricsServiceStub(channel)
            stub.Export(_gauge_request([(semconv.DRIFT_SCORE, _attrs("a", "psi"), 0.1)], t_ns=1), timeout=5)
            stub.Export(_gauge_request([(semconv.DRIFT_SCORE, _attrs("a", "psi"), 0.4)], t_ns=2), timeout=5)
        assert rx.store.wait_for_exports(2, timeout=5)
        (point,) = rx.store.snapshot()
    assert point.value == 0.4 and point.feature == "a" and point.method == "psi" and point.window == "10s"


def test_tracker_turns_gauge_changes_into_events() -> None:
    rx_store = GaugeReceiver().store  # not started: used as a plain store
    tracker = StatusTracker(model="m", feature_order=("a", "b"))
    rx_store.add_request(
        _gauge_request(
            [
                (semconv.DRIFT_DETECTED, _attrs("a"), 0.0),
                (semconv.DRIFT_SCORE, _attrs("a", "psi"), 0.02),
                (semconv.QUALITY_ALARM, _attrs("b"), 0.0),
            ],
            t_ns=1,
        )
    )
    assert tracker.update(rx_store.snapshot(), 1.0) == []
    rx_store.add_request(
        _gauge_request(
            [
                (semconv.DRIFT_DETECTED, _attrs("a"), 1.0),
                (semconv.DRIFT_SCORE, _attrs("a", "psi"), 0.41),
                (semconv.QUALITY_ALARM, _attrs("b"), 1.0),
                (semconv.QUALITY_MISSING_RATIO, _attrs("b"), 0.32),
                (semconv.DRIFT_DETECTED, _attrs("proba:x", kind="prediction"), 1.0),
            ],
            t_ns=2,
        )
    )
    events = tracker.update(rx_store.snapshot(), 23.0)
    lines = sorted(e.line() for e in events)
    assert "t=23s drift detected on 'a' (PSI 0.41)" in lines
    assert "t=23s data-quality alarm on 'b' (missing 32%)" in lines
    assert any("output 'proba:x'" in line for line in lines)
    assert [s.name for s in tracker.rows()] == ["a", "b", "proba:x"]
    result = DemoResult("m", "a", 10.0, "b", 20.0, 30.0, 100, 31.0, tuple(tracker.events), tuple(tracker.rows()))
    assert result.ok and result.false_alarms == ()


def test_tracker_keeps_the_multivariate_stream_apart_and_names_its_outlier_alarm() -> None:
    rx_store = GaugeReceiver().store  # not started: used as a plain store
    tracker = StatusTracker(model="m", feature_order=("a", MULTIVARIATE))
    rx_store.add_request(_gauge_request([
        (semconv.QUALITY_ALARM, _attrs(MULTIVARIATE), 0.0),
        (semconv.QUALITY_OUT_OF_RANGE_RATIO, _attrs(MULTIVARIATE), 0.001),
        (semconv.DRIFT_DETECTED, _attrs(MULTIVARIATE), 0.0),
    ], t_ns=1))
    assert tracker.update(rx_store.snapshot(), 1.0) == []
    rx_store.add_request(_gauge_request([
        (semconv.QUALITY_ALARM, _attrs(MULTIVARIATE), 1.0),
        (semconv.QUALITY_OUT_OF_RANGE_RATIO, _attrs(MULTIVARIATE), 0.012),
        (semconv.QUALITY_MISSING_RATIO, _attrs(MULTIVARIATE), 0.0),
        (semconv.DRIFT_DETECTED, _attrs(MULTIVARIATE), 1.0),
        (semconv.DRIFT_SCORE, _attrs(MULTIVARIATE, "psi"), 0.3),
    ], t_ns=2))
    events = {e.kind: e for e in tracker.update(rx_store.snapshot(), 7.0)}
    assert events["quality alarm"].line() == "t=7s outlier alarm (outliers 1.2%)"
    assert events["quality alarm"].measure == "out_of_range_ratio"
    assert events["drift"].line() == "t=7s multivariate drift detected (PSI 0.30)"
    assert [s.name for s in tracker.rows()] == ["a"]  # not a feature row, not a placeholder either
    assert tracker.multivariate is not None and tracker.multivariate.out_of_range_ratio == 0.012
    result = DemoResult("m", "x", 10.0, "y", 20.0, 30.0, 100, 31.0, tuple(tracker.events), (), outlier_at=5.0)
    assert result.outlier_detected is events["quality alarm"] and result.early_outlier_alarm is None
    assert result.flagged_features == () and result.false_alarms == ()  # the stream is not an input feature
    # the same stream alarmed by its missing rows (the incident) is not the outlier alarm
    missing = DemoEvent(7.0, MULTIVARIATE, "quality alarm", "missing 35%", measure="missing_ratio")
    by_missing = DemoResult("m", "x", 10.0, "y", 20.0, 30.0, 100, 31.0, (missing,), (), outlier_at=5.0)
    assert by_missing.outlier_detected is None


def test_outlier_detail_says_when_missing_rows_hold_the_alarm() -> None:
    from otel_ml_demo.status import outlier_detail
    from otel_ml_demo.view import multivariate_text

    burst = FeatureStatus(MULTIVARIATE, out_of_range_ratio=0.011, missing_ratio=0.0, alarm=True, drift=True, psi=0.4)
    incident = FeatureStatus(MULTIVARIATE, out_of_range_ratio=0.001, missing_ratio=0.35, alarm=True)
    assert outlier_detail(burst) == "outliers 1.1%"
    assert outlier_detail(incident) == "missing 35%"
    shown = multivariate_text(burst).plain
    assert "multivariate" in shown and "DRIFT" in shown and "1.1%" in shown and "ALARM" in shown
    assert "rows with a missing value are not scored" in multivariate_text(incident).plain
    assert "no multivariate stream" in multivariate_text(None).plain


@pytest.mark.parametrize("width, height", [(140, 50), (80, 24)])
def test_live_view_shows_the_multivariate_outlier_and_worst_segment_lines(width: int, height: int) -> None:
    from rich.console import Console

    from otel_ml_demo.view import LiveView

    out = io.StringIO()
    view = LiveView(Console(file=out, width=width, height=height, force_terminal=True, color_system=None))
    s = Scenario.scaled(16.0)
    view.start(s)
    mv = FeatureStatus(MULTIVARIATE, psi=0.12, drift=False, out_of_range_ratio=0.011, alarm=True)
    alarm = DemoEvent(s.outlier_at + 1, MULTIVARIATE, "quality alarm", "outliers 1.1%", measure="out_of_range_ratio")
    view.update(s.outlier_at + 1, 1000, [FeatureStatus("mean radius")], [alarm], {}, (), mv)
    view.stop()
    shown = out.getvalue()
    assert "multivariate" in shown and "outliers" in shown and "1.1%" in shown and "ALARM" in shown
    assert "injected: outlier burst" in shown and "outlier alarm (outliers 1.1%)" in shown
    assert "judged yet" in shown  # the segments' place, before any verdict
    out = io.StringIO()
    view = LiveView(Console(file=out, width=width, height=height, force_terminal=True, color_system=None))
    view.start(s)
    worst = SegmentStatus("performance", "region=islands", "accuracy", 0.77, 0.73, 0.80, gap=-0.16, flagged=True,
                          rank=1, samples=600)
    view.update(s.segment_at + 1, 2000, [FeatureStatus("mean radius")], [], {}, (), mv, [worst])
    view.stop()
    shown = out.getvalue()
    assert "injected: segment degradation" in shown
    if width >= 110:
        assert "worst segments now" in shown
        assert "#1 region=islands  accuracy 0.77 [0.73, 0.80], 0.16 below the rest" in shown
    else:
        assert "worst: region=islands  accuracy 0.77 [0.73, 0.80]  gap -0.16  UNDERPERFORMS" in shown


def _perf_attrs(metric: str | None = "accuracy") -> dict[str, str]:
    a = {semconv.MODEL_NAME: "m", semconv.MODEL_VERSION: "1", semconv.DRIFT_WINDOW: "10s"}
    if metric:
        a[semconv.PERFORMANCE_METRIC] = metric
    return a


def test_tracker_turns_performance_verdicts_into_events() -> None:
    rx_store = GaugeReceiver().store  # not started: used as a plain store
    tracker = StatusTracker(model="m", feature_order=("a",))
    # the processor sends the holdout value before any outcome: not a performance row yet
    rx_store.add_request(_gauge_request([(semconv.PERFORMANCE_REFERENCE, _perf_attrs(), 0.94)], t_ns=1))
    assert tracker.update(rx_store.snapshot(), 0.5) == [] and tracker.performance_rows() == []
    no_verdict = [(semconv.PERFORMANCE_DEGRADED, _perf_attrs(), -1.0),
                  (semconv.PERFORMANCE_SAMPLE_COUNT, _perf_attrs(None), 120.0)]
    rx_store.add_request(_gauge_request(no_verdict, t_ns=1))
    assert tracker.update(rx_store.snapshot(), 1.0) == []
    assert tracker.performance_rows()[0].degraded is None  # too few outcomes: no verdict, not "fine"
    rx_store.add_request(_gauge_request([
        (semconv.PERFORMANCE_VALUE, _perf_attrs(), 0.71),
        (semconv.PERFORMANCE_LOWER, _perf_attrs(), 0.69),
        (semconv.PERFORMANCE_UPPER, _perf_attrs(), 0.73),
        (semconv.PERFORMANCE_REFERENCE, _perf_attrs(), 0.94),
        (semconv.PERFORMANCE_DEGRADED, _perf_attrs(), 1.0),
        (semconv.PERFORMANCE_DEGRADED, _perf_attrs("log_loss"), 1.0),  # not a shown metric
        (semconv.PERFORMANCE_SAMPLE_COUNT, _perf_attrs(None), 2400.0),
    ], t_ns=2))
    (event,) = tracker.update(rx_store.snapshot(), 40.0)
    assert event.line() == "t=40s performance degraded: accuracy 0.71 [0.69, 0.73] vs 0.94 on the reference"
    (row,) = tracker.performance_rows()
    assert row.samples == 2400 and row.degraded is True
    assert [s.name for s in tracker.rows()] == ["a"]  # performance points are not feature rows
    found = DemoResult("m", "a", 10.0, "b", 20.0, 30.0, 100, 31.0, (event,), (), concept_at=35.0)
    assert found.concept_detected is event and found.early_degradation is None
    early = DemoResult("m", "a", 10.0, "b", 20.0, 30.0, 100, 31.0, (event,), (), concept_at=45.0)
    assert early.concept_detected is None and early.early_degradation is event


def _seg_attrs(value: str, **extra: str) -> dict[str, str]:
    return {semconv.MODEL_NAME: "m", semconv.MODEL_VERSION: "1", semconv.DRIFT_WINDOW: "10s",
            semconv.SEGMENT_NAME: "region", semconv.SEGMENT_VALUE: value, **extra}


def _slice(value: str, accuracy: float, gap: float, degraded: float, rank: int | None) -> list[Any]:
    a = _seg_attrs(value, **{semconv.PERFORMANCE_METRIC: "accuracy"})
    points = [(semconv.SEGMENT_PERFORMANCE_VALUE, a, accuracy), (semconv.SEGMENT_PERFORMANCE_LOWER, a, accuracy - 0.03),
              (semconv.SEGMENT_PERFORMANCE_UPPER, a, accuracy + 0.03), (semconv.SEGMENT_PERFORMANCE_GAP, a, gap),
              (semconv.SEGMENT_PERFORMANCE_DEGRADED, a, degraded), (semconv.SEGMENT_SAMPLE_COUNT, a, 600.0)]
    return points + ([(semconv.SEGMENT_PERFORMANCE_RANK, a, float(rank))] if rank else [])


def test_tracker_ranks_segments_and_turns_their_verdicts_into_events() -> None:
    rx_store = GaugeReceiver().store  # not started: used as a plain store
    tracker = StatusTracker(model="m", feature_order=("a",))
    out = {semconv.PREDICTION_NAME: "proba:x"}
    rx_store.add_request(_gauge_request([
        *_slice("islands", 0.93, -0.01, 0.0, 2), *_slice("north", 0.94, 0.01, 0.0, 3),
        *_slice("west", 0.90, -0.02, -1.0, None),  # too few outcomes: no verdict, no rank
        (semconv.SEGMENT_DRIFT_DETECTED, _seg_attrs("north", **out), 0.0),
        (semconv.SEGMENT_DRIFT_SCORE, _seg_attrs("north", **out), 0.04),
        (semconv.SEGMENT_DRIFT_RANK, _seg_attrs("north", **out), 2.0),
        (semconv.SEGMENT_QUALITY_RATIO, _seg_attrs("north", **{semconv.QUALITY_KIND: "missing"}), 0.035),
        (semconv.SEGMENT_QUALITY_RATIO_LOWER, _seg_attrs("north", **{semconv.QUALITY_KIND: "missing"}), 0.032),
        (semconv.SEGMENT_QUALITY_RATIO_UPPER, _seg_attrs("north", **{semconv.QUALITY_KIND: "missing"}), 0.038),
        (semconv.SEGMENT_QUALITY_RATIO, _seg_attrs("north", **{semconv.QUALITY_KIND: "invalid"}), 0.0),
        (semconv.SEGMENT_QUALITY_ALARM, _seg_attrs("north"), 1.0),
        (semconv.SEGMENT_QUALITY_RANK, _seg_attrs("north"), 1.0),
    ], t_ns=1))
    assert tracker.update(rx_store.snapshot(), 10.0) == []  # quality per segment shows, but does not page
    rx_store.add_request(_gauge_request([*_slice("islands", 0.77, -0.16, 1.0, 1), *_slice("north", 0.94, 0.02, 0.0, 2),
                                         *_slice("west", 0.90, -0.02, -1.0, None)], t_ns=2))
    (event,) = tracker.update(rx_store.snapshot(), 22.0)
    assert event.kind == "segment degraded" and event.feature == "region=islands" and event.rank == 1
    assert event.line() == ("t=22s segment region=islands underperforms: accuracy 0.77 [0.74, 0.80], 0.16 below "
                            "the rest (600 joined outcomes), rank 1")
    worst = tracker.worst_segments()
    perf = [s for s in worst if s.signal == "performance"]
    assert [(s.segment, s.rank) for s in perf] == [("region=islands", 1), ("region=north", 2)]  # west: no verdict
    (quality,) = [s for s in worst if s.signal == "quality"]
    assert quality.measure == "missing" and quality.detail() == "missing 3.5% [3.2%, 3.8%]" and quality.flagged
    assert [s.segment for s in worst if s.signal == "drift"] == ["region=north"]
    # a later evaluation without north's rank (no verdict any more): it leaves the ranking
    rx_store.add_request(_gauge_request([*_slice("islands", 0.76, -0.17, 1.0, 1),
                                         *_slice("north", 0.94, 0.02, -1.0, None)], t_ns=3))
    assert tracker.update(rx_store.snapshot(), 24.0) == []
    assert [s.segment for s in tracker.worst_segments() if s.signal == "performance"] == ["region=islands"]
    # through Prometheus every point has the query's time: a rank left over beside "no verdict" is stale
    rx_store.add_request(_gauge_request([*_slice("islands", 0.76, -0.17, 1.0, 1),
                                         *_slice("north", 0.94, 0.02, -1.0, 2)], t_ns=4))
    tracker.update(rx_store.snapshot(), 26.0)
    assert [s.segment for s in tracker.worst_segments() if s.signal == "performance"] == ["region=islands"]


def test_segment_incident_needs_its_segment_ranked_first_and_the_overall_verdict_quiet() -> None:
    found = (DemoEvent(12.0, "a", "drift", "PSI 0.4"), DemoEvent(22.0, "b", "quality alarm", "missing 30%"))
    seg = "region=islands"

    def result(*events: DemoEvent) -> DemoResult:
        return DemoResult("m", "a", 10.0, "b", 20.0, 40.0, 100, 41.0, (*found, *events), (FeatureStatus("a"),),
                          segment_at=15.0, segment=seg, segment_what="true class changed in 20% of region=islands")

    hit = DemoEvent(19.0, seg, "segment degraded", "accuracy 0.77, 0.16 below the rest", rank=1)
    assert result(hit).ok and result(hit).segment_detected is hit
    lines = result(hit).summary_lines()
    assert "t=15s injected: true class changed in 20% of region=islands" in lines
    assert any(line.endswith("rank 1, 4s after its degradation began") for line in lines), lines
    assert "the overall performance stayed within tolerance while only region=islands was degraded" in lines
    missed = result()
    assert not missed.ok and any(line.startswith("MISSED: region=islands") for line in missed.summary_lines())
    second = DemoEvent(19.0, seg, "segment degraded", "accuracy 0.85", rank=2)  # flagged, but not the worst
    before = DemoEvent(14.0, seg, "segment degraded", "accuracy 0.80", rank=1)  # before it was injected
    other = DemoEvent(19.0, "region=west", "segment degraded", "accuracy 0.80", rank=1)
    assert not result(second).ok and not result(before).ok and not result(other).ok
    assert result(other).other_segments_flagged == ("region=west",)
    overall = DemoEvent(20.0, "accuracy", "degraded", "accuracy 0.88 vs 0.94 on the reference")
    loud = result(hit, overall)
    assert not loud.ok and loud.overall_alarm_during_segment is overall
    assert any(line.startswith("OVERALL: performance degraded at t=20s while only region=islands was degraded")
               for line in loud.summary_lines())
    doc = result(hit).to_dict()
    assert doc["segment_detected_at"] == 19.0 and doc["overall_alarm_during_segment_at"] is None


def test_segments_text_shows_the_worst_segments_with_effect_and_interval() -> None:
    from otel_ml_demo.view import segments_text

    worst = [SegmentStatus("performance", "region=islands", "accuracy", 0.77, 0.73, 0.80, gap=-0.16, flagged=True,
                           rank=1, samples=600),
             SegmentStatus("drift", "region=west", "proba:x", 0.05, 0.02, 0.09, flagged=False, rank=1)]
    shown = segments_text(worst).plain
    assert "#1 region=islands  accuracy 0.77 [0.73, 0.80], 0.16 below the rest  UNDERPERFORMS" in shown
    assert "output 'proba:x' drift 0.05 [0.02, 0.09]  ok" in shown
    compact = segments_text(worst, compact=True).plain
    assert "\n" not in compact and len(compact) <= 80 and "region=islands" in compact and "region=west" not in compact
    assert "none judged yet" in segments_text((), compact=True).plain


def test_regions_are_dealt_evenly_along_the_given_order() -> None:
    order = np.random.default_rng(0).permutation(1000)
    regions = assign_regions(order)
    shares = dict(REGIONS)
    for name, share in REGIONS:
        assert (regions == name).mean() == pytest.approx(share, abs=0.002), name
        head = regions[order[:100]]  # any run along the order has the shares too (the hardest rows, say)
        assert (head == name).sum() == pytest.approx(100 * shares[name], abs=1), name


def test_traffic_segment_degradation_changes_labels_in_its_region_only() -> None:
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    data = pd.DataFrame(rng.normal(10.0, 2.0, (500, len(FEATURES))), columns=list(FEATURES))
    labels = np.full(500, "a")
    labels[0] = "b"
    regions = assign_regions(np.arange(500))
    s = Scenario.scaled(40.0)
    assert s.drift_at < s.segment_at < s.incident_at < s.concept_at
    traffic = Traffic(data, s, labels=labels, regions=regions)
    before, truth_before = traffic.batch_and_labels(s.segment_at - 0.1, 20000)
    after, truth_after = traffic.batch_and_labels(s.segment_at + 0.1, 20000)
    assert set(after[SEGMENT_COLUMN]) == {name for name, _ in REGIONS}
    mine = (after[SEGMENT_COLUMN] == s.segment_value).to_numpy()
    assert mine.mean() == pytest.approx(dict(REGIONS)[s.segment_value], abs=0.01)
    assert (truth_before == "b").mean() < 0.01
    assert (truth_after[mine] == "b").mean() == pytest.approx(s.segment_flip, abs=0.03)
    assert (truth_after[~mine] == "b").mean() < 0.01  # the other regions keep their labels
    for f in FEATURES:
        if f not in (s.drift_feature, s.incident_feature):
            was = before[f][(before[SEGMENT_COLUMN] == s.segment_value).to_numpy()]
            assert abs(after[f][mine].mean() - was.mean()) < 0.3, f  # and its inputs did not move


def test_traffic_labels_change_only_in_the_concept_region_while_inputs_do_not() -> None:
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    data = pd.DataFrame(rng.normal(10.0, 2.0, (500, len(FEATURES))), columns=list(FEATURES))
    labels = np.where(np.arange(500) == 0, "b", "a")  # (almost) everything is "a"
    s = Scenario.scaled(40.0)
    traffic = Traffic(data, s, labels=labels)
    before, truth_before = traffic.batch_and_labels(s.concept_at - 1, 8000)
    after, truth_after = traffic.batch_and_labels(s.concept_at + 1, 8000)
    assert (truth_before == "b").mean() < 0.01
    flipped = truth_after == "b"
    assert flipped.mean() == pytest.approx(1 - s.concept_quantile, abs=0.03)
    edge = data[s.concept_feature].quantile(s.concept_quantile)
    assert (after[s.concept_feature][flipped] > edge).all()  # only in the region
    for f in FEATURES:
        if f not in (s.drift_feature, s.incident_feature):
            assert abs(after[f].mean() - before[f].mean()) < 0.15, f  # the inputs did not move
    assert after.index[0] == before.index[-1] + 1  # rows are numbered: the prediction ids


def test_traffic_applies_the_story_by_time() -> None:
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    data = pd.DataFrame(rng.normal(10.0, 2.0, (500, len(FEATURES))), columns=list(FEATURES))
    s = Scenario.scaled(30.0)
    traffic = Traffic(data, s)
    before = traffic.batch(0.0, 4000)
    after = traffic.batch(s.incident_at + 1, 4000)
    shift = after[s.drift_feature].mean() - before[s.drift_feature].mean()
    assert shift == pytest.approx(s.drift_shift * 2.0, rel=0.25)
    assert before.isna().to_numpy().sum() == 0
    assert after[s.incident_feature].isna().mean() == pytest.approx(s.incident_missing, abs=0.05)
    others = [f for f in FEATURES if f not in (s.drift_feature, s.incident_feature)]
    assert after[others].isna().to_numpy().sum() == 0
    assert abs(after[others[0]].mean() - before[others[0]].mean()) < 0.3


def test_traffic_outlier_burst_rows_are_in_range_but_jointly_implausible() -> None:
    pd = pytest.importorskip("pandas")
    otel_ml = pytest.importorskip("otel_ml")
    rng = np.random.default_rng(0)
    # correlated columns, as in the real data: everything follows one latent size
    size = rng.normal(0.0, 1.0, (2000, 1))
    data = pd.DataFrame(10.0 + 2.0 * (size + 0.2 * rng.normal(0.0, 1.0, (2000, len(FEATURES)))),
                        columns=list(FEATURES))
    s = Scenario.scaled(40.0)
    assert 0 < s.outlier_at < s.outlier_at + s.outlier_for <= s.drift_at  # the burst ends before the drift
    traffic = Traffic(data, s)
    before = traffic.batch(s.outlier_at - 0.1, 20000)
    during = traffic.batch(s.outlier_at + 0.1, 20000)
    after = traffic.batch(s.outlier_at + s.outlier_for + 0.01, 20000)
    assert "outlier burst" in s.phase(s.outlier_at) and "outlier burst" not in s.phase(s.outlier_at + s.outlier_for)
    high, low = during[s.outlier_high[0]], during[s.outlier_low[0]]
    odd = (high > data[s.outlier_high[0]].quantile(0.95)) & (low < data[s.outlier_low[0]].quantile(0.05))
    assert odd.mean() == pytest.approx(s.outlier_share, abs=0.005)  # a large tumour's radius, a small one's perimeter
    lo, hi = data.min(), data.max()
    for f in (*s.outlier_high, *s.outlier_low):
        assert during[f][odd].between(lo[f], hi[f]).all(), f  # every burst value within its training range
        assert abs(during[f].mean() - before[f].mean()) < 0.1 * data[f].std(), f  # marginals barely move
    summary = otel_ml.build_reference(data, model="m", version="1", multivariate=True).multivariate.summary
    def outliers(frame: Any) -> float:
        return float((summary.errors(frame[list(summary.features)].to_numpy()) > summary.threshold).mean())

    assert outliers(before) < 0.005 and outliers(after) < 0.005
    assert outliers(during) == pytest.approx(s.outlier_share, abs=0.01)


def test_cli_help_lists_the_options() -> None:
    from otel_ml._cli import main

    out = CliRunner().invoke(main, ["demo", "--help"])
    assert out.exit_code == 0
    for opt in ("--duration", "--no-live", "--pipeline", "--json"):
        assert opt in out.output


@pytest.mark.timeout(90)
def test_demo_detects_the_injected_drift_and_incident() -> None:
    """A real, shortened run: library -> OTLP -> processor (in-process) -> OTLP -> demo receiver."""
    pytest.importorskip("sklearn")
    from otel_ml_demo.runner import run_demo
    from otel_ml_demo.view import PlainView

    out = io.StringIO()
    result = run_demo(Scenario.scaled(16.0), PlainView(out))
    log = out.getvalue()
    assert result.evaluations_received > 0, log
    assert result.drift_detected is not None, log
    assert result.drift_detected.t >= result.drift_at
    assert result.incident_detected is not None, log
    assert result.incident_detected.t >= result.incident_at
    assert result.ok
    assert len(result.false_alarms) <= 2, log  # unshifted features mostly not flagged
    final = {s.name: s for s in result.final}
    assert final[result.incident_feature].missing_ratio is not None
    assert final[result.incident_feature].missing_ratio > 0.1
    assert "summary:" in log and "drift detected on 'mean radius'" in log
    assert result.concept_detected is not None and result.concept_detected.t >= result.concept_at, log
    assert result.early_degradation is None, log  # the input drift and incident alone do not page
    accuracy = {p.metric: p for p in result.performance}["accuracy"]
    assert accuracy.reference is not None and accuracy.value is not None
    assert accuracy.reference - accuracy.value > 0.1, log
    assert "performance degraded: accuracy" in log and "concept drift" in log
    assert result.outlier_detected is not None and result.outlier_detected.t >= result.outlier_at, log
    assert result.early_outlier_alarm is None, log
    assert "outlier alarm (outliers" in log and "multivariate drift and outliers:" in log
    # the segment-only degradation: found by the segment verdict, ranked first, the overall verdict quiet
    assert result.segment_detected is not None and result.segment_detected.t >= result.segment_at, log
    assert result.overall_alarm_during_segment is None, log
    worst = [s for s in result.segments if s.signal == "performance"]
    assert worst and worst[0].segment == result.segment == "region=islands" and worst[0].gap is not None, log
    assert "worst segments" in log and "underperforms" in log
    assert result.elapsed < 60  # a hang, not a slow machine


def test_prometheus_results_become_the_same_gauge_points() -> None:
    from otel_ml_demo.pipeline import PromPoller, promql_queries

    class FakeProm:
        def promql(self, query: str) -> list[dict[str, Any]]:
            assert 'ml_model_name="m"' in query and "ml_drift_detected" in query
            return [
                {"metric": {"__name__": "ml_drift_detected", "ml_model_name": "m", "ml_feature_name": "a",
                            "ml_drift_kind": "feature", "ml_drift_window": "10s", "job": "x"},
                 "value": [1700000000.5, "1"]},
                {"metric": {"__name__": "ml_drift_score", "ml_model_name": "m", "ml_feature_name": "a",
                            "ml_drift_kind": "feature", "ml_drift_window": "10s", "ml_drift_method": "psi"},
                 "value": [1700000000.5, "0.41"]},
                {"metric": {"__name__": "ml_quality_missing_ratio", "ml_model_name": "m", "ml_feature_name": "b",
                            "ml_drift_kind": "feature", "ml_drift_window": "10s"},
                 "value": [1700000000.5, "0.3"]},
            ]

    poller = PromPoller(FakeProm(), "m")
    poller.poll()
    tracker = StatusTracker(model="m", feature_order=("a", "b"))
    events = tracker.update(poller.points(), 5.0)
    assert [e.line() for e in events] == ["t=5s drift detected on 'a' (PSI 0.41)"]
    assert {s.name: s.missing_ratio for s in tracker.rows()}["b"] == 0.3
    assert poller.evaluations() == 1
    for expr, _ in promql_queries():
        assert "breast-cancer-classifier" in expr


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_pipeline_demo_through_the_real_collector_and_prometheus() -> None:
    """``otel-ml demo --pipeline``: the same story via otelcol-ml and Prometheus (make components)."""
    pytest.importorskip("sklearn")
    from otel_ml_demo.pipeline import run_pipeline_demo
    from otel_ml_demo.view import PlainView

    out = io.StringIO()
    result = run_pipeline_demo(Scenario.scaled(12.0), PlainView(out))
    log = out.getvalue()
    assert result.ok, log
    assert result.drift_detected is not None and result.drift_detected.t >= result.drift_at, log
    assert result.concept_detected is not None and result.concept_detected.t >= result.concept_at, log
    assert "PromQL to look at:" in log and "ml_drift_detected" in log and "ml_performance_degraded" in log
    assert result.outlier_detected is not None and result.early_outlier_alarm is None, log
    assert result.segment_detected is not None and result.segment_detected.t >= result.segment_at, log
    assert "ml_segment_performance_rank" in log


def test_result_without_detections_is_not_ok_and_says_what_was_missed() -> None:
    early = DemoEvent(3.0, "a", "drift", "PSI 0.30")  # before the shift: does not count
    other = DemoEvent(12.0, "c", "drift", "PSI 0.25")
    final = (FeatureStatus("a"), FeatureStatus("b"), FeatureStatus("c"))
    result = DemoResult("m", "a", 10.0, "b", 20.0, 30.0, 100, 31.0, (early, other), final)
    assert not result.ok
    assert result.false_alarms == ("c",)
    lines = result.summary_lines()
    assert "MISSED: no drift detected on 'a'" in lines
    assert "MISSED: no data-quality alarm on 'b'" in lines
    assert "also flagged, though not shifted (1 of 2): 'c'" in lines
    found = (DemoEvent(12.0, "a", "drift", "PSI 0.4"), DemoEvent(22.0, "b", "quality alarm", "missing 30%"))
    unseen_concept = DemoResult("m", "a", 10.0, "b", 20.0, 40.0, 100, 41.0, found, final, concept_at=30.0)
    assert not unseen_concept.ok
    assert "MISSED: no performance degradation after the concept drift" in unseen_concept.summary_lines()
    caught = DemoEvent(33.0, "accuracy", "degraded", "accuracy 0.70 vs 0.94 on the reference")
    assert DemoResult("m", "a", 10.0, "b", 20.0, 40.0, 100, 41.0, (*found, caught), final, concept_at=30.0).ok


def test_outlier_alarm_is_required_after_the_burst_and_forbidden_before() -> None:
    found = (DemoEvent(12.0, "a", "drift", "PSI 0.4"), DemoEvent(22.0, "b", "quality alarm", "missing 30%"))
    alarm = DemoEvent(6.0, MULTIVARIATE, "quality alarm", "outliers 1.0%", measure="out_of_range_ratio")
    early = DemoEvent(3.0, MULTIVARIATE, "quality alarm", "outliers 0.8%", measure="out_of_range_ratio")
    by_missing = DemoEvent(22.0, MULTIVARIATE, "quality alarm", "missing 35%", measure="missing_ratio")
    mv_drift = DemoEvent(13.0, MULTIVARIATE, "drift", "PSI 0.9")  # the shift of one of correlated columns

    def result(*events: DemoEvent) -> DemoResult:
        return DemoResult("m", "a", 10.0, "b", 20.0, 30.0, 100, 31.0, (*found, *events), (FeatureStatus("a"),),
                          outlier_at=5.0, outlier_what="3% of rows implausible")

    assert result(alarm, mv_drift).ok and result(alarm, mv_drift).false_alarms == ()
    missed = result(by_missing)
    assert not missed.ok and "MISSED: no outlier alarm after the outlier burst began" in missed.summary_lines()
    too_early = result(early, alarm)
    assert not too_early.ok and too_early.outlier_detected is alarm
    assert "EARLY: outlier alarm at t=3s, before the outlier burst" in too_early.summary_lines()
    lines = result(alarm).summary_lines()
    assert "t=5s injected: outlier burst, 3% of rows implausible" in lines
    assert "t=6s outlier alarm (outliers 1.0%), 1s after the burst began" in lines
    doc = result(alarm).to_dict()
    assert doc["outlier_at"] == 5.0 and doc["outlier_detected_at"] == 6.0 and doc["early_outlier_alarm_at"] is None


@pytest.mark.parametrize("ok, code", [(True, 0), (False, 1)])
def test_cli_exit_code_and_json_follow_the_result(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, ok: bool, code: int
) -> None:
    import json

    import otel_ml_demo.cli as demo_mod
    from otel_ml._cli import main
    seen: dict[str, Any] = {}

    def fake_run(scenario: Scenario, view: Any) -> DemoResult:
        seen["scenario"] = scenario
        events = (DemoEvent(15.0, "a", "drift", "PSI 0.5"), DemoEvent(25.0, "b", "quality alarm", "missing 30%"))
        return DemoResult("m", "a", 10.0, "b", 20.0, 30.0, 100, 31.0, events if ok else (), ())

    monkeypatch.setattr(demo_mod, "run_demo", fake_run)
    out = tmp_path / "r.json"
    res = CliRunner().invoke(main, ["demo", "--duration", "30", "--no-live", "--json", str(out)])
    assert res.exit_code == code, res.output
    assert seen["scenario"].duration == 30 and seen["scenario"].drift_at == 7.5
    assert seen["scenario"].incident_at == 15 and seen["scenario"].concept_at == 22.5
    doc = json.loads(out.read_text())
    assert doc["ok"] is ok
    assert doc["drift_detected_at"] == (15.0 if ok else None)


def test_pipeline_without_components_fails_with_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from otel_ml._cli import main

    monkeypatch.setenv("OTEL_ML_OTELCOL", str(tmp_path / "no-such-otelcol"))
    res = CliRunner().invoke(main, ["demo", "--pipeline", "--no-live"])
    assert res.exit_code == 1
    assert "OTEL_ML_OTELCOL" in res.output


def test_pipeline_outside_a_checkout_says_it_needs_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from otel_ml._cli import main
    from otel_ml_demo import components

    monkeypatch.delenv("OTEL_ML_OTELCOL", raising=False)
    monkeypatch.setattr(components, "MANIFEST", tmp_path / "collector" / "builder" / "manifest.yaml")
    with pytest.raises(components.ComponentMissing, match="checkout of the otel-ml repository"):
        components.otelcol_binary()
    res = CliRunner().invoke(main, ["demo", "--pipeline", "--no-live"])
    assert res.exit_code == 1
    assert "checkout of the otel-ml repository" in res.output and "pip install -e ." in res.output
