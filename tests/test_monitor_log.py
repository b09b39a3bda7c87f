"""Log-once / rate limiting, and failures of the export thread that must not kill it."""

from __future__ import annotations

import logging

import numpy as np

import otel_ml
from otel_ml import _log, semconv as M

from _otel_ml_support import value


def test_log_once_is_rate_limited_per_key(caplog):
    _log._reset()
    with caplog.at_level(logging.WARNING, logger="otel_ml"):
        assert _log.log_once("k1", "first %s", "a")
        assert not _log.log_once("k1", "again")
        assert _log.log_once("k2", "other")
        assert _log.log_once("k1", "after the interval", interval_s=0.0)
    assert [r.getMessage() for r in caplog.records] == ["first a", "other", "after the interval"]


def test_log_keys_are_bounded():
    _log._reset()
    for i in range(5000):
        _log.log_once(f"key-{i}", "x", level=logging.DEBUG)
    assert len(_log._last_logged) <= _log._MAX_KEYS + 1


def test_internal_error_counts_every_occurrence(caplog):
    _log._reset()
    with caplog.at_level(logging.WARNING, logger="otel_ml"):
        for _ in range(10):
            _log.internal_error("here", ValueError("boom"))
    assert _log.error_count() == 10
    assert sum("boom" in r.getMessage() for r in caplog.records) == 1


def test_a_raising_exporter_does_not_kill_the_export_thread(exporter):
    calls = []

    def explode(data, timeout_millis=10_000, **kw):
        calls.append(1)
        raise RuntimeError("exporter bug")

    original = exporter.export
    exporter.export = explode  # type: ignore[method-assign]
    ref = otel_ml.build_reference({"a": np.linspace(0, 1, 20)}, model="x", version="1")

    @otel_ml.monitor(model="x", version="1", reference=ref)
    def f(X):
        return X

    f(np.array([[0.5]]))
    assert otel_ml.flush(5.0) is False
    assert calls and _log.error_count() >= 1
    exporter.export = original  # type: ignore[method-assign]
    f(np.array([[0.5]]))
    assert otel_ml.flush(5.0) is True
    assert value(exporter.last, M.PREDICT_ROWS) == 2
