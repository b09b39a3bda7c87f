"""The join store: either order, TTL, cap, duplicates, restart."""

from __future__ import annotations

from pathlib import Path

from otel_ml_processor._joins import CAP, TTL, JoinStore
from otel_ml_processor._records import Outcome, Prediction, id_key, id_text

from .payloads import hashed_id

T0 = 1_700_000_000.0


def pred(i: int, model: str = "m", version: str = "1", label: str = "1") -> Prediction:
    return Prediction(model, version, id_key(hashed_id(i)), int(T0 * 1e9) + i, label, None, (0.25, 0.75),
                      bytes(range(1, 25)))


def outc(i: int, model: str = "m", label: str = "1") -> Outcome:
    return Outcome(model, None, id_key(hashed_id(i)), int((T0 + 60) * 1e9), label, None)


def test_joins_prediction_first_then_outcome() -> None:
    s = JoinStore(None)
    assert s.add([pred(i) for i in range(10)], [], now=T0).pairs == []
    res = s.add([], [outc(i) for i in range(5, 15)], now=T0 + 60)
    assert sorted(id_text(p.key) for p in res.pairs) == sorted(hashed_id(i) for i in range(5, 10))
    p = res.pairs[0]
    assert (p.version, p.actual_label, p.label, p.t_out - p.t_pred) == ("1", "1", "1", 60_000 - 0)
    assert list(p.proba) == [0.25, 0.75] and p.trace == bytes(range(1, 25))
    assert (s.pending_predictions, s.pending_outcomes) == (5, 5)


def test_joins_outcome_first_then_prediction_and_takes_the_version_from_the_prediction() -> None:
    s = JoinStore(None)
    s.add([], [outc(i) for i in range(3)], now=T0)
    res = s.add([pred(i, version="7") for i in range(3)], [], now=T0 + 1)
    assert len(res.pairs) == 3 and {p.version for p in res.pairs} == {"7"}
    assert (s.pending_predictions, s.pending_outcomes) == (0, 0)


def test_joins_counts_duplicates_and_a_million_outcomes_for_one_id_stay_one_row() -> None:
    s = JoinStore(None)
    s.add([pred(1)], [], now=T0)
    res = s.add([], [outc(1)] * 1000, now=T0)
    assert len(res.pairs) == 1 and sum(res.duplicates.values()) == 999
    for _ in range(1000):  # 1,000 more requests of 1,000 outcomes each for the same, joined id
        res = s.add([], [outc(1)] * 1000, now=T0)
        assert res.pairs == [] and sum(res.duplicates.values()) == 1000
    s.add([], [outc(2)] * 1000, now=T0)  # waiting outcome: the first one is kept, the rest are duplicates
    assert s.pending_outcomes == 1
    assert sum(s.add([pred(1)], [], now=T0).duplicate_predictions.values()) == 1
    assert s.db.execute("SELECT count(*) FROM pred WHERE t_join IS NOT NULL").fetchone()[0] == 1


def test_joins_ttl_expires_waiting_records_and_counts_them() -> None:
    s = JoinStore(None, ttl=3600)
    s.add([pred(i) for i in range(4)], [outc(100)], now=T0)
    s.add([pred(i) for i in range(4, 6)], [], now=T0 + 3000)
    res = s.sweep(now=T0 + 3601)
    assert res.expired == {("m", "1", TTL): 4} and res.unmatched == {("m", "", TTL): 1}
    assert (s.pending_predictions, s.pending_outcomes) == (2, 0)
    assert s.add([], [outc(0)], now=T0 + 3602).pairs == []  # expired: no join
    assert len(s.add([], [outc(5)], now=T0 + 3602).pairs) == 1


def test_joins_cap_evicts_the_oldest_and_counts_them() -> None:
    s = JoinStore(None, max_pending=100)
    s.add([pred(i) for i in range(80)], [], now=T0)
    res = s.add([pred(i) for i in range(80, 130)], [], now=T0 + 1)
    assert res.evicted == {("m", "1", CAP): 30} and s.pending_predictions == 100
    # the oldest request loses 30 of its 80 (within one request the order is not kept); the newest none
    assert len(s.add([], [outc(i) for i in range(80, 130)], now=T0 + 2).pairs) == 50
    assert len(s.add([], [outc(i) for i in range(80)], now=T0 + 2).pairs) == 50


def test_joins_restart_keeps_waiting_predictions(tmp_path: Path) -> None:
    s = JoinStore(str(tmp_path))
    s.add([pred(i) for i in range(50)], [], now=T0)
    s.close()
    s = JoinStore(str(tmp_path))
    assert s.pending_predictions == 50
    assert len(s.add([], [outc(i) for i in range(50)], now=T0 + 1).pairs) == 50
    assert (tmp_path / "joins.sqlite").exists()
    assert len(list(s.export_rows("m"))) == 50 and list(s.export_rows("other")) == []
