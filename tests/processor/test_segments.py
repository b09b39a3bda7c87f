"""Segmented realized performance: slices from packed segments, per-slice metrics, verdicts, ranking, and a
fast seeded version of benchmarks/segment_calibration.py (bounds looser than the benchmark's 90 % / 5 %)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from otel_ml.stats import NO_VERDICT, PerformancePolicy
from otel_ml.stats.performance import wilson
from otel_ml_processor._segments import pack, segment_verdicts, slices, unpack

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "segment_calibration.py"


@pytest.fixture(scope="module")
def calibration():
    spec = importlib.util.spec_from_file_location("segment_calibration", _PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["segment_calibration"] = module
    spec.loader.exec_module(module)
    return module


def test_pack_round_trips_and_sorts_names() -> None:
    seg = {"country": "FR", "channel": "web=1;x"}
    assert unpack(pack(seg)) == seg
    assert pack(seg) == pack(dict(reversed(seg.items())))
    assert unpack("") == {} and unpack(None) == {}


def test_slices_select_rows_and_count_overflow() -> None:
    packed = np.array([pack({"a": "x", "b": "1"}), pack({"a": "y"}), pack({"a": "x", "b": "2"}), ""], dtype=object)
    masks, overflow = slices(packed, 10)
    assert overflow == 0
    assert masks[("a", "x")].tolist() == [True, False, True, False]
    assert masks[("b", "2")].tolist() == [False, False, True, False]
    masks, overflow = slices(packed, 2)
    assert overflow == 2 and set(masks) == {("a", "x"), ("a", "y")}  # most populated first, then by key


def test_accuracy_per_slice_matches_direct_computation_and_ranks_worst_first() -> None:
    rng = np.random.default_rng(3)
    n = 6_000
    seg = rng.choice(["a", "b", "c"], n, p=[0.2, 0.3, 0.5])
    acc = np.select([seg == "a", seg == "b"], [0.6, 0.85], 0.9)
    correct = (rng.random(n) < acc).astype(float)
    masks = {("s", v): seg == v for v in ("a", "b", "c")}
    res = {v.value: v for v in segment_verdicts(correct, masks, "accuracy", PerformancePolicy(min_samples=100))}
    for v in ("a", "b", "c"):
        m = seg == v
        p, lo, hi = wilson(correct[m].sum(), m.sum())
        assert res[v].n == m.sum()
        assert res[v].estimate == pytest.approx(float(p)) and res[v].lower == pytest.approx(float(lo))
        assert res[v].upper == pytest.approx(float(hi))
        assert res[v].gap == pytest.approx(correct[m].mean() - correct[~m].mean())
        assert res[v].gap_lower < res[v].gap < res[v].gap_upper
    assert res["a"].degraded == 1.0 and res["a"].rank == 1
    assert res["c"].degraded == 0.0 and res["c"].rank == 3
    assert res["a"].p_value < 0.01


def test_below_min_samples_there_is_no_verdict_and_no_rank() -> None:
    correct = np.r_[np.zeros(50), np.ones(950)]
    masks = {("s", "tiny"): np.r_[np.ones(50, bool), np.zeros(950, bool)],
             ("s", "big"): np.r_[np.zeros(50, bool), np.ones(950, bool)]}
    res = {v.value: v for v in segment_verdicts(correct, masks, "accuracy", PerformancePolicy(min_samples=500))}
    assert res["tiny"].degraded == NO_VERDICT and res["tiny"].rank == 0 and math.isnan(res["tiny"].p_value)
    assert res["tiny"].estimate == 0.0  # the value is still reported
    assert res["big"].degraded == 0.0 and res["big"].rank == 1


def test_mae_slices_use_welch_and_the_relative_tolerance() -> None:
    rng = np.random.default_rng(5)
    n = 4_000
    seg = rng.random(n) < 0.25
    err = np.abs(rng.normal(0, 1.0, n)) * np.where(seg, 1.5, 1.0)
    masks = {("s", "hot"): seg, ("s", "cold"): ~seg}
    res = {v.value: v for v in segment_verdicts(err, masks, "mae", PerformancePolicy(min_samples=200))}
    assert res["hot"].estimate == pytest.approx(err[seg].mean())
    assert res["hot"].gap == pytest.approx(err[seg].mean() - err[~seg].mean())
    assert res["hot"].degraded == 1.0 and res["hot"].rank == 1 and res["cold"].degraded == 0.0
    # 3 % worse: significant at this size but within the 10 % relative tolerance.
    err2 = np.abs(rng.normal(0, 1.0, 400_000)) * np.where(np.arange(400_000) % 4 == 0, 1.03, 1.0)
    m = np.arange(400_000) % 4 == 0
    (small,) = segment_verdicts(err2, {("s", "x"): m}, "mae", PerformancePolicy(min_samples=200))
    assert small.p_value < 0.01 and small.degraded == 0.0


def test_unknown_metric_is_refused() -> None:
    with pytest.raises(ValueError, match="accuracy"):
        segment_verdicts([1.0], {}, "roc_auc")


def test_segment_drop_is_found_and_ranked_first_and_quiet_without_effect(calibration) -> None:
    r = calibration.rates(30, 20_000, 20261201)
    assert r["found_and_first"] >= 0.85, r
    assert r["null_alarm"] <= 0.10, r
    assert r["overall_beyond_tolerance"] <= 0.25, r  # the whole-window figure hides it


# --- the processor's record path: decode, join store, windows, export ------------------------------
T = 1_700_000_000_000_000_000


def test_decode_keeps_segment_attributes_packed_and_rejects_unbounded_ones() -> None:
    from otel_ml import semconv
    from otel_ml_processor._records import decode_logs

    from .payloads import hashed_id, logs_request, prediction

    ok = prediction("m", "1", hashed_id(1), T, label="1", segments={"country": "FR", "channel": "web"})
    plain = prediction("m", "1", hashed_id(2), T, label="1")
    too_many = prediction("m", "1", hashed_id(3), T, label="1", segments={f"s{i}": "x" for i in range(5)})
    not_text = prediction("m", "1", hashed_id(4), T, label="1", segments={"country": 7})
    too_long = prediction("m", "1", hashed_id(5), T, label="1", segments={"country": "x" * 129})
    separator = prediction("m", "1", hashed_id(6), T, label="1", segments={"country": "a\x1fb"})
    r = decode_logs(logs_request([ok, plain, too_many, not_text, too_long, separator]))
    assert [unpack(p.segments) for p in r.predictions] == [{"country": "FR", "channel": "web"}, {}]
    assert r.rejected == {("m", "invalid_segment"): 4}
    assert semconv.MAX_SEGMENT_COLUMNS == 4


def test_join_store_keeps_segments_through_the_join_and_a_restart(tmp_path: Path) -> None:
    import sqlite3

    from otel_ml_processor._joins import JoinStore
    from otel_ml_processor._records import Outcome, Prediction, id_key

    from .payloads import hashed_id

    def pred(i: int, seg: str) -> Prediction:
        return Prediction("m", "1", id_key(hashed_id(i)), T + i, "1", None, None, b"", seg)

    def outc(i: int) -> Outcome:
        return Outcome("m", None, id_key(hashed_id(i)), T + 10**9, "0", None)

    seg = pack({"country": "FR"})
    s = JoinStore(str(tmp_path))
    assert s.add([pred(1, seg), pred(2, "")], [], now=T / 1e9).pairs == []
    s.close()
    s = JoinStore(str(tmp_path))
    pairs = s.add([pred(3, seg)], [outc(1), outc(2), outc(3)], now=T / 1e9).pairs
    assert sorted(p.segments for p in pairs) == sorted([seg, "", seg])
    assert sorted(p.segments for p in s.export_rows("m")) == sorted([seg, "", seg])
    s.close()
    # a store written before segments existed gains the column and reads as "no segments"
    old = tmp_path / "old"
    old.mkdir()
    db = sqlite3.connect(old / "joins.sqlite")
    db.execute("CREATE TABLE pred(seq INTEGER PRIMARY KEY, mid INTEGER, id BLOB, vid INTEGER, t INTEGER, lab TEXT, "
               "val REAL, prob BLOB, trace BLOB, t_out INTEGER, t_join INTEGER, alab TEXT, aval REAL)")
    db.commit()
    db.close()
    s = JoinStore(str(old))
    s.add([pred(1, "")], [outc(1)], now=T / 1e9)
    assert [p.segments for p in s.export_rows("m")] == [""]
    s.close()


def test_store_bytes_per_row_with_two_segments_stay_modest(tmp_path: Path) -> None:
    """Measured: the packed text of two short segments adds about its length per row on disk."""
    import os

    from otel_ml_processor._joins import JoinStore
    from otel_ml_processor._records import Prediction, id_key

    from .payloads import hashed_id

    sizes = {}
    for name, seg in (("none", ""), ("two", pack({"country": "FR", "channel": "mobile"}))):
        d = tmp_path / name
        s = JoinStore(str(d))
        s.add([Prediction("m", "1", id_key(hashed_id(i)), T + i, "1", None, (0.2, 0.8), bytes(24), seg)
               for i in range(20_000)], [], now=T / 1e9)
        s.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        s.db.execute("VACUUM")
        s.close()
        sizes[name] = os.path.getsize(d / "joins.sqlite") / 20_000
    assert sizes["two"] - sizes["none"] < 30, sizes


def test_windows_judge_segments_and_export_the_gauges() -> None:
    from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb

    from otel_ml import semconv
    from otel_ml_processor._joins import Pair
    from otel_ml_processor._performance import PerformanceWindows, task_spec
    from otel_ml_processor._segments import add_segments

    from .payloads import classifier_reference

    now = 1_800_000_000.0
    spec = task_spec(classifier_reference())
    assert spec is not None
    rng = np.random.default_rng(7)
    pairs = []
    for i in range(4_000):
        country = "DE" if i % 4 == 0 else "FR"  # DE: 25 %, accuracy 0.6; FR: 0.95
        correct = rng.random() < (0.6 if country == "DE" else 0.95)
        predicted = i % 2
        actual = predicted if correct else 1 - predicted
        pairs.append(Pair("m", "1", bytes(16), 0, 0, int((now - 10) * 1000), str(predicted), None, None,
                          bytes(24), str(actual), None, pack({"country": country, "channel": "web"})))
    # The budget counts exported series per model: 7 per slice and window, after the segment streams' share.
    w = PerformanceWindows((300.0,), ("5m",), max_pairs=10_000, max_segment_series=2 * 7 + 6)
    assert w.add("m", "1", pairs, spec).all()
    (res,) = w.evaluate(now, PerformancePolicy())
    assert res.segments_dropped == 1  # 3 slices (channel=web, country=FR, country=DE), budget 2: DE is smallest
    w.segment_series_used = {"m": 7}
    (res,) = w.evaluate(now, PerformancePolicy())
    assert res.segments_dropped == 2 and [(v.name, v.value) for v in res.segments] == [("channel", "web")]
    w.segment_series_used = {"other model": 10_000}
    w.max_segment_series = 2000
    (res,) = w.evaluate(now, PerformancePolicy())
    by = {(v.name, v.value): v for v in res.segments}
    correct = np.array([p.label == p.actual_label for p in pairs])
    de = np.array([unpack(p.segments)["country"] == "DE" for p in pairs])
    assert by[("country", "DE")].estimate == pytest.approx(correct[de].mean())
    assert by[("country", "DE")].gap == pytest.approx(correct[de].mean() - correct[~de].mean())
    assert by[("country", "DE")].rank == 1 and by[("country", "DE")].degraded == 1.0
    assert by[("channel", "web")].degraded == NO_VERDICT  # the whole window: no rest to compare with
    sm = pb.ScopeMetrics()
    add_segments(sm, [res], 0)
    got = {m.name: m for m in sm.metrics}
    assert set(got) == {semconv.SEGMENT_SAMPLE_COUNT, semconv.SEGMENT_PERFORMANCE_DEGRADED,
                        semconv.SEGMENT_PERFORMANCE_VALUE, semconv.SEGMENT_PERFORMANCE_LOWER,
                        semconv.SEGMENT_PERFORMANCE_UPPER, semconv.SEGMENT_PERFORMANCE_GAP,
                        semconv.SEGMENT_PERFORMANCE_RANK}
    ranks = {tuple(a.value.string_value for a in dp.attributes if a.key.startswith("ml.segment.")): dp.as_int
             for dp in got[semconv.SEGMENT_PERFORMANCE_RANK].gauge.data_points}
    assert ranks == {("country", "DE"): 1, ("country", "FR"): 2}
