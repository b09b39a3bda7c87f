"""Drift, data quality and mix per segment value: segment streams, judgment, ranking, budget, checkpoint."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy import stats as sps

from otel_ml import semconv
from otel_ml.stats import NO_VERDICT, DriftPolicy, PolicyBook
from otel_ml_processor import _checkpoint
from otel_ml_processor._decode import decode_protobuf
from otel_ml_processor._evaluate import Evaluator
from otel_ml_processor._exporter import build_request, encode_request
from otel_ml_processor._segment_streams import KIND_SEGMENT_PREDICTION, pack_name
from otel_ml_processor._state import State
from otel_ml_processor._store import ReferenceStore
from otel_ml_processor._telemetry import Telemetry

from .payloads import Emitter, SegmentEmitter, segment_reference

T0 = 1_000_000.0
LABELS = ("1m", "10m")


def make_state(budget: int = 2000) -> tuple[ReferenceStore, State]:
    store = ReferenceStore(None)
    store.put(segment_reference())
    state = State(store, windows=(60.0, 600.0), slots_per_window=6, clock=lambda: T0, epoch_ns=0,
                  max_segment_series=budget)
    return store, state


def evaluate(store: ReferenceStore, state: State, book: PolicyBook | None = None):
    return Evaluator(store, book or PolicyBook(), LABELS).evaluate(state, T0)


def send(state: State, emitter) -> object:
    return state.ingest(decode_protobuf(emitter.request(time_ns=emitter.time_ns + 10).SerializeToString()), T0)


def rows_of(seg, window: str = "1m") -> dict[str, int]:
    return {k[4]: i for i, (k, w) in enumerate(zip(seg.pred_keys, seg.pred_windows)) if w == window}


def qrows_of(seg, window: str = "1m") -> dict[str, int]:
    return {k[3]: i for i, (k, w) in enumerate(zip(seg.qual_keys, seg.qual_windows)) if w == window}


def holm(p: list[float]) -> np.ndarray:
    """Holm's step-down adjustment, written out."""
    order = np.argsort(p)
    m = len(p)
    out = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def test_output_drift_matches_scipy_chi_square_with_holm_over_the_segments() -> None:
    store, state = make_state()
    e = SegmentEmitter(segment_reference())
    e.observe("DE", 5000)
    e.observe("FR", 3000, shift=0.05)
    e.observe("US", 2000, shift=0.3)
    send(state, e)
    seg = evaluate(store, state).segments
    idx = rows_of(seg)
    ref = segment_reference().segments["country"].values
    raw = []
    for value in ("DE", "FR", "US"):
        table = np.array([ref[value].outputs["value"], e.outputs[value]], dtype=float)
        table = table[:, table.sum(axis=0) > 0]
        raw.append(sps.chi2_contingency(table, correction=False)[1])
    expected = holm(raw)
    got = [seg.drift_p_adjusted[idx[v]] for v in ("DE", "FR", "US")]
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-12)
    assert seg.drift_detected[idx["DE"]] == 0
    assert seg.drift_detected[idx["US"]] == 1
    # The drift score is the binned Wasserstein distance in the output's reference SDs: ~0.3 / 0.289.
    assert 0.8 < seg.drift_score[idx["US"]] < 1.3


def test_quality_matches_scipy_binomial_with_holm_over_the_segment_tests() -> None:
    store, state = make_state()
    e = SegmentEmitter(segment_reference())
    e.observe("DE", 4000, missing=0.01)
    e.observe("FR", 3000, missing=0.06)
    send(state, e)
    seg = evaluate(store, state).segments
    idx = qrows_of(seg)
    ref = segment_reference().segments["country"].values
    features = len(segment_reference().features)
    p_raw, ratios = [], {}
    for value in ("DE", "FR"):
        n = e.rows[value] * features
        k = e.missing[value]
        p0 = ref[value].quality["missing"] / (ref[value].rows * features)
        ratios[value] = k / n
        p_raw.append(sps.binom.sf(k - 1, n, p0))
    p_raw += [1.0] * 6  # the other kinds: no bad value, p = 1
    expected = holm(p_raw)
    assert seg.quality_ratio[idx["DE"], 0] == pytest.approx(ratios["DE"])
    assert seg.quality_ratio[idx["FR"], 0] == pytest.approx(ratios["FR"])
    np.testing.assert_allclose([seg.quality_p_adjusted[idx["DE"], 0], seg.quality_p_adjusted[idx["FR"], 0]],
                               expected[:2], rtol=1e-6, atol=1e-300)
    assert seg.quality_alarm[idx["FR"]] == 1 and seg.quality_alarm[idx["DE"]] == 0
    assert seg.quality_rank[idx["FR"]] == 1 and seg.quality_rank[idx["DE"]] == 2


def test_no_verdict_below_min_samples_and_without_a_segment_profile() -> None:
    store, state = make_state()
    e = SegmentEmitter(segment_reference())
    e.observe("DE", 5000)
    e.observe("US", 499, shift=0.5)  # below min_samples (500): no verdict, however shifted
    e.observe("JP", 5000, shift=0.5)  # no profile in the reference: no verdict, never 0
    send(state, e)
    seg = evaluate(store, state).segments
    idx, qidx = rows_of(seg), qrows_of(seg)
    for value in ("US", "JP"):
        assert seg.drift_detected[idx[value]] == NO_VERDICT
        assert seg.drift_rank[idx[value]] == 0
        assert seg.quality_alarm[qidx[value]] == NO_VERDICT
        assert seg.quality_rank[qidx[value]] == 0
    assert seg.drift_detected[idx["DE"]] == 0
    assert ("shop", "1", "country", "JP") in seg.no_profile_listed
    assert ("shop", "1", "country", "US") not in seg.no_profile_listed
    # Exported visibly: detected = NO_VERDICT, no rank point.
    req = build_request(evaluate(store, state), Telemetry())
    points = {m.name: m.gauge.data_points for m in req.resource_metrics[0].scope_metrics[0].metrics}
    jp = [dp for dp in points[semconv.SEGMENT_DRIFT_DETECTED]
          if {a.key: a.value.string_value for a in dp.attributes}[semconv.SEGMENT_VALUE] == "JP"]
    assert [dp.as_int for dp in jp] == [NO_VERDICT, NO_VERDICT]
    ranked = {(a.key, a.value.string_value) for dp in points[semconv.SEGMENT_DRIFT_RANK] for a in dp.attributes}
    assert (semconv.SEGMENT_VALUE, "JP") not in ranked


def test_a_reference_without_segments_section_gives_no_verdict() -> None:
    import dataclasses

    store = ReferenceStore(None)
    store.put(dataclasses.replace(segment_reference(), segments=None))
    state = State(store, windows=(60.0, 600.0), slots_per_window=6, clock=lambda: T0, epoch_ns=0)
    e = SegmentEmitter(segment_reference())
    e.observe("DE", 5000, shift=0.5, missing=0.2)
    send(state, e)
    seg = evaluate(store, state).segments
    assert set(seg.drift_detected.tolist()) == {NO_VERDICT}
    assert set(seg.quality_alarm.tolist()) == {NO_VERDICT}
    assert set(seg.mix_detected.tolist()) == {NO_VERDICT}


def test_segments_form_their_own_family_the_overall_verdicts_do_not_change() -> None:
    ref = segment_reference()

    def overall(with_segments: bool) -> tuple[np.ndarray, np.ndarray]:
        store, state = make_state()
        e = Emitter(ref, start_ns=10)
        e.observe(2000, shift={"f0": 0.12})
        state.ingest(decode_protobuf(e.request(time_ns=20).SerializeToString()), T0)
        if with_segments:
            s = SegmentEmitter(ref)
            for i in range(3):
                s.observe(["DE", "FR", "US"][i], 3000)
            send(state, s)
        ev = evaluate(store, state)
        assert (ev.segments is not None) == with_segments
        assert all(k[2] in (semconv.DRIFT_KIND_FEATURE, semconv.DRIFT_KIND_PREDICTION) for k in ev.keys)
        return ev.p_value, ev.detected

    p0, d0 = overall(False)
    p1, d1 = overall(True)
    np.testing.assert_array_equal(d0, d1)
    np.testing.assert_allclose(p0, p1)


def test_ranking_orders_segments_by_drift_score_per_window() -> None:
    store, state = make_state()
    e = SegmentEmitter(segment_reference())
    e.observe("DE", 5000, shift=0.1)
    e.observe("FR", 3000, shift=0.4)
    e.observe("US", 2000, shift=0.2)
    e.observe(semconv.OTHER_CATEGORY, 2000)
    send(state, e)
    seg = evaluate(store, state).segments
    for window in LABELS:
        idx = rows_of(seg, window)
        ranks = {v: int(seg.drift_rank[i]) for v, i in idx.items()}
        assert ranks == {"FR": 1, "US": 2, "DE": 3, semconv.OTHER_CATEGORY: 4}
        scores = [seg.drift_score[idx[v]] for v in ("FR", "US", "DE", semconv.OTHER_CATEGORY)]
        assert scores == sorted(scores, reverse=True)


def test_segment_mix_is_judged_per_column() -> None:
    store, state = make_state()
    e = SegmentEmitter(segment_reference())
    for value, share in (("DE", 0.5), ("FR", 0.3), ("US", 0.1), (semconv.OTHER_CATEGORY, 0.1)):
        e.observe(value, int(10_000 * share))
    send(state, e)
    seg = evaluate(store, state).segments
    assert seg.mix_keys[0] == ("shop", "1", "country") and seg.mix_detected.tolist() == [0, 0]
    e.observe("US", 5000)  # US goes from 10 % to 40 % of the traffic
    send(state, e)
    assert evaluate(store, state).segments.mix_detected.tolist() == [1, 1]


def test_budget_refuses_streams_beyond_it_counts_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    # 2 windows: a prediction stream costs 6 series, a quality stream 12, a new column 2.
    store, state = make_state(budget=6 + 12 + 2 + 6 + 12)
    e = SegmentEmitter(segment_reference())
    for value in ("DE", "FR", "US"):
        e.observe(value, 1000)
    with caplog.at_level(logging.WARNING, logger="otel_ml_processor"):
        res = send(state, e)
        send(state, e)
    alive = [st for st in state.streams if st.alive]
    assert 0 < len(alive) < 6  # 3 values x (output, quality) would not fit
    cost = sum(6 if st.key[2] == KIND_SEGMENT_PREDICTION else 12 for st in alive) + 2
    assert state.segment_series["shop"] == cost <= 6 + 12 + 2 + 6 + 12
    # Each refused series counted once (its next points meet the cached rejection), its points rejected.
    assert state.segment_overflow[("shop", "1")] == res.rejected["cardinality_limit"] > 0
    assert sum("max_segment_series" in r.message for r in caplog.records) == 1
    seg = evaluate(store, state).segments
    assert len(seg.pred_keys) + len(seg.qual_keys) == 2 * len(alive)


def test_hostile_segment_values_stay_within_the_budget() -> None:
    store, state = make_state()
    e = SegmentEmitter(segment_reference())
    for i in range(5000):
        e.observe(f"v{i}", 1)
    e.observe("x" * (semconv.MAX_NAME_LENGTH + 1), 10)
    e.observe("a\x1fb", 10)
    res = send(state, e)
    streams = [st for st in state.streams if st.alive]
    assert len(streams) <= 2000 // 6
    assert state.segment_series["shop"] <= 2000
    assert state.segment_overflow[("shop", "1")] > 0
    assert res.rejected["missing_attributes"] == 2 * (2 + len(semconv.QUALITY_KINDS))
    assert all(len(st.key[3]) < 3 * semconv.MAX_NAME_LENGTH for st in streams)
    before = state.nbytes()
    for i in range(5000, 10_000):
        e.observe(f"v{i}", 1)
    send(state, e)
    assert state.nbytes() < 2 * before  # refused series are not kept
    assert evaluate(store, state).segments is not None


def test_checkpoint_round_trip_keeps_segment_streams(tmp_path) -> None:
    store, state = make_state()
    e = SegmentEmitter(segment_reference())
    e.observe("DE", 5000)
    e.observe("FR", 3000, shift=0.3)
    send(state, e)
    before = evaluate(store, state).segments
    arrays, index = _checkpoint.snapshot(state)
    _checkpoint.write(str(tmp_path), arrays, index)
    _, restored = make_state()
    restored.specs = store
    assert _checkpoint.load(restored, str(tmp_path))
    after = evaluate(store, restored).segments
    assert after.pred_keys == before.pred_keys and after.qual_keys == before.qual_keys
    np.testing.assert_array_equal(after.drift_detected, before.drift_detected)
    np.testing.assert_allclose(after.drift_score, before.drift_score)
    np.testing.assert_allclose(after.quality_ratio, before.quality_ratio)
    assert restored.segment_series == state.segment_series
    # The restored series continue: the next cumulative point adds only its increment.
    e.observe("DE", 100)
    send(restored, e)
    st = restored.streams[restored.stream_index[("shop", "1", KIND_SEGMENT_PREDICTION,
                                                 pack_name("value", "country", "DE"))]]
    assert restored.window_counts(T0)[0][st.cell0: st.cell0 + st.spec.bins].sum() == 5100


def test_export_fast_encoding_equals_the_protobuf_build() -> None:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    store, state = make_state()
    e = SegmentEmitter(segment_reference())
    e.observe("DE", 5000)
    e.observe("FR", 300, shift=0.4)  # below min_samples: ratios but no verdict, no interval
    e.observe("JP", 5000)  # no profile
    send(state, e)
    em = Emitter(segment_reference(), start_ns=10)
    em.observe(1000)
    state.ingest(decode_protobuf(em.request(time_ns=20).SerializeToString()), T0)
    ev = evaluate(store, state)
    tel = Telemetry(start_ns=1)
    fast = ExportMetricsServiceRequest.FromString(encode_request(ev, tel, now_ns=5))
    slow = build_request(ev, tel, now_ns=5)
    assert fast == slow
    names = {m.name for m in slow.resource_metrics[0].scope_metrics[0].metrics}
    assert {semconv.SEGMENT_DRIFT_DETECTED, semconv.SEGMENT_DRIFT_SCORE, semconv.SEGMENT_DRIFT_RANK,
            semconv.SEGMENT_QUALITY_RATIO, semconv.SEGMENT_QUALITY_ALARM, semconv.SEGMENT_QUALITY_RANK,
            semconv.SEGMENT_MIX_DETECTED, semconv.SEGMENT_DRIFT_SCORE_LOWER, semconv.SEGMENT_DRIFT_SCORE_UPPER,
            semconv.SEGMENT_QUALITY_RATIO_LOWER, semconv.SEGMENT_QUALITY_RATIO_UPPER} <= names


def test_min_samples_per_output_policy_applies_to_segment_streams() -> None:
    store, state = make_state()
    e = SegmentEmitter(segment_reference())
    e.observe("DE", 800, shift=0.5)
    send(state, e)
    strict = PolicyBook(default=DriftPolicy(min_samples=1000))
    assert evaluate(store, state, strict).segments.drift_detected[0] == NO_VERDICT
    assert evaluate(store, state).segments.drift_detected[0] == 1


def test_categorical_output_per_segment_from_class_counts() -> None:
    import dataclasses

    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    from otel_ml import build_reference
    from otel_ml.reference import SegmentColumnProfile, SegmentValueProfile

    from .payloads import kv

    rng = np.random.default_rng(5)
    labels = rng.choice(["a", "b", "c"], size=6000, p=[0.6, 0.3, 0.1])
    base = build_reference({"x": rng.normal(size=6000)}, model="clf", version="1", predictions=list(labels))
    output = base.outputs[0].name
    quality = dict.fromkeys(semconv.QUALITY_KINDS, 0)
    profile = {v: SegmentValueProfile(3000, {output: {"a": 1800, "b": 900, "c": 300, semconv.OTHER_CATEGORY: 0}},
                                      quality) for v in ("DE", "FR")}
    profile[semconv.OTHER_CATEGORY] = SegmentValueProfile(0, {output: dict.fromkeys(("a", "b", "c", "__other__"), 0)},
                                                          quality)
    ref = dataclasses.replace(base, segments={"country": SegmentColumnProfile(profile)})
    assert ref.segments == type(ref).from_dict(ref.to_dict()).segments  # a valid section (loads back the same)
    store = ReferenceStore(None)
    store.put(ref)
    state = State(store, windows=(60.0,), slots_per_window=6, clock=lambda: T0, epoch_ns=0)
    req = ExportMetricsServiceRequest()
    m = req.resource_metrics.add().scope_metrics.add().metrics.add(name=semconv.SEGMENT_PREDICTION_CLASS_COUNT)
    m.sum.aggregation_temporality = 2
    counts = {"DE": {"a": 600, "b": 300, "c": 100}, "FR": {"a": 300, "b": 300, "c": 400, "zzz": 50}}
    for value, per_class in counts.items():
        for cls, n in per_class.items():
            m.sum.data_points.add(start_time_unix_nano=10, time_unix_nano=20, as_int=n).attributes.extend(
                [kv(semconv.MODEL_NAME, "clf"), kv(semconv.MODEL_VERSION, "1"), kv(semconv.PREDICTION_NAME, output),
                 kv(semconv.PREDICTION_CLASS, cls), kv(semconv.SEGMENT_NAME, "country"),
                 kv(semconv.SEGMENT_VALUE, value)])
    res = state.ingest(decode_protobuf(req.SerializeToString()), T0)
    assert res.rejected_total == 0
    seg = Evaluator(store, PolicyBook(), ("1m",)).evaluate(state, T0).segments
    idx = {k[4]: i for i, k in enumerate(seg.pred_keys)}
    assert seg.drift_detected[idx["DE"]] == 0 and seg.drift_detected[idx["FR"]] == 1
    # Total variation of FR (an unknown class counted in the "other" bucket) against the profile's shares.
    cur = np.array([300, 300, 400, 50]) / 1050
    assert seg.drift_score[idx["FR"]] == pytest.approx(0.5 * np.abs(cur - [0.6, 0.3, 0.1, 0.0]).sum())
    assert seg.drift_rank[idx["FR"]] == 1


def wilson_written_out(k: float, n: float, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval, from its formula: (p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)."""
    p = k / n
    centre = p + z * z / (2 * n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


def test_quality_ratio_interval_is_wilson_on_rows_times_reference_features() -> None:
    store, state = make_state()
    e = SegmentEmitter(segment_reference())
    e.observe("DE", 4000, missing=0.01)
    e.observe("FR", 3000, missing=0.06)
    e.observe("US", 300, missing=0.06)  # below min_samples: no verdict, no interval
    send(state, e)
    seg = evaluate(store, state).segments
    idx = qrows_of(seg)
    features = len(segment_reference().features)
    for value in ("DE", "FR"):
        n = e.rows[value] * features
        lo, hi = wilson_written_out(e.missing[value], n)
        assert seg.quality_lower[idx[value], 0] == pytest.approx(lo, rel=1e-9)
        assert seg.quality_upper[idx[value], 0] == pytest.approx(hi, rel=1e-9)
        assert seg.quality_lower[idx[value], 0] <= seg.quality_ratio[idx[value], 0] <= seg.quality_upper[idx[value], 0]
        # No bad value of the other kinds: the interval starts at 0 and reaches z²/(n + z²).
        assert seg.quality_lower[idx[value], 1] == 0.0
        assert seg.quality_upper[idx[value], 1] == pytest.approx(1.959963984540054**2 / (n + 1.959963984540054**2))
    assert seg.quality_alarm[idx["US"]] == NO_VERDICT
    assert np.isnan(seg.quality_lower[idx["US"]]).all() and np.isnan(seg.quality_upper[idx["US"]]).all()
    assert np.isfinite(seg.quality_ratio[idx["US"], 0])


def test_drift_score_interval_contains_the_score_narrows_with_rows_and_is_seeded() -> None:
    store, state = make_state()
    e = SegmentEmitter(segment_reference())
    e.observe("DE", 600, shift=0.3)
    e.observe("FR", 6000, shift=0.3)
    e.observe("US", 5000)
    send(state, e)
    seg = evaluate(store, state).segments
    again = evaluate(store, state).segments
    np.testing.assert_array_equal(seg.drift_lower, again.drift_lower)  # same counts, same interval
    np.testing.assert_array_equal(seg.drift_upper, again.drift_upper)
    idx = rows_of(seg)
    for value in ("DE", "FR", "US"):
        i = idx[value]
        assert seg.drift_lower[i] <= seg.drift_score[i] <= seg.drift_upper[i]
        assert seg.drift_upper[i] > seg.drift_lower[i]
    width = {v: seg.drift_upper[idx[v]] - seg.drift_lower[idx[v]] for v in ("DE", "FR")}
    assert width["FR"] < 0.6 * width["DE"]  # 10x the rows: about 1/sqrt(10) of the width
    assert seg.drift_lower[idx["FR"]] > 0.5  # a 0.3-unit shift (~1 reference SD) is far from 0


def test_no_verdict_streams_export_no_interval() -> None:
    store, state = make_state()
    e = SegmentEmitter(segment_reference())
    e.observe("DE", 5000, missing=0.02)
    e.observe("US", 499, shift=0.5, missing=0.02)  # below min_samples
    e.observe("JP", 5000, shift=0.5, missing=0.02)  # no profile
    send(state, e)
    req = build_request(evaluate(store, state), Telemetry())
    points = {m.name: m.gauge.data_points for m in req.resource_metrics[0].scope_metrics[0].metrics}

    def values(name: str) -> list[str]:
        return sorted({a.value.string_value for dp in points[name] for a in dp.attributes
                       if a.key == semconv.SEGMENT_VALUE})

    for name in (semconv.SEGMENT_DRIFT_SCORE_LOWER, semconv.SEGMENT_DRIFT_SCORE_UPPER,
                 semconv.SEGMENT_QUALITY_RATIO_LOWER, semconv.SEGMENT_QUALITY_RATIO_UPPER):
        assert values(name) == ["DE"], name
    assert values(semconv.SEGMENT_DRIFT_DETECTED) == ["DE", "JP", "US"]
    # Same series as the point estimates: the ratio's kinds, the score's outputs.
    kinds = {tuple(sorted((a.key, a.value.string_value) for a in dp.attributes))
             for dp in points[semconv.SEGMENT_QUALITY_RATIO_LOWER]}
    ratios = {tuple(sorted((a.key, a.value.string_value) for a in dp.attributes))
              for dp in points[semconv.SEGMENT_QUALITY_RATIO]}
    assert len(kinds) == len(semconv.QUALITY_KINDS) * len(LABELS) and kinds <= ratios


@pytest.mark.parametrize("shift, missing, us_rows, other_rows",
                         [(0.3, 0.06, 2000, 300), (0.0, 0.01, 1000, 1000), (0.05, 0.03, 4500, 1000)])
def test_otel_ml_drift_agrees_with_the_processor_on_the_same_counts(shift: float, missing: float, us_rows: int,
                                                                    other_rows: int) -> None:
    """``otel-ml drift`` judges a file's segment counts as the processor judges a window holding them."""
    from otel_ml._cli_segments import judge_segments
    from otel_ml.reference import SegmentColumnProfile, SegmentValueProfile

    store, state = make_state()
    ref = segment_reference()
    e = SegmentEmitter(ref)
    e.observe("DE", 5000)
    e.observe("FR", 3000, shift=shift, missing=missing)
    e.observe("US", us_rows, shift=shift / 2)
    e.observe(semconv.OTHER_CATEGORY, other_rows)
    send(state, e)
    seg = evaluate(store, state).segments
    current = {"country": SegmentColumnProfile({
        v: SegmentValueProfile(e.rows[v], {"value": tuple(int(x) for x in e.outputs[v])},
                               {k: e.missing[v] if k == "missing" else 0 for k in semconv.QUALITY_KINDS})
        for v in e.rows})}
    cli = {r.value: r for r in judge_segments(ref, current, PolicyBook(), ["value"]).rows}
    pred, qual = rows_of(seg), qrows_of(seg)
    assert set(cli) == set(pred) == set(qual)
    for value, r in cli.items():
        detected, score, p_adjusted, _ = r.outputs["value"]
        assert detected == seg.drift_detected[pred[value]]
        assert r.quality_alarm == seg.quality_alarm[qual[value]]
        np.testing.assert_allclose([score, p_adjusted, r.quality_excess],
                                   [seg.drift_score[pred[value]], seg.drift_p_adjusted[pred[value]],
                                    seg.quality_excess[qual[value]]], rtol=1e-9, equal_nan=True)
    assert {c: d for c, d in judge_segments(ref, current, PolicyBook(), ["value"]).mix.items()} == \
        {"country": int(seg.mix_detected[0])}
