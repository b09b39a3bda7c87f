"""Thread safety (exact counts under contention) and fork safety (independent counts in a child)."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

import otel_ml
from otel_ml import semconv as M
from otel_ml._aggregate import aggregates

from _otel_ml_support import point, value

REF = otel_ml.build_reference(
    {"a": np.linspace(-5, 5, 200), "b": np.linspace(0, 100, 200)}, model="conc", version="1"
)


def make_predict():
    @otel_ml.monitor(model="conc", version="1", reference=REF)
    def predict(X):
        return X

    return predict


def test_threads_keep_exact_counts(exporter):
    predict = make_predict()
    n_threads, calls = 8, 200
    rows = [np.array([[v, v * 10]]) for v in np.linspace(-6, 6, calls)]
    batch = np.column_stack([np.linspace(-6, 6, 50), np.linspace(-10, 110, 50)])
    barrier = threading.Barrier(n_threads)
    errors = []

    def worker():
        try:
            barrier.wait()
            for r in rows:
                predict(r)
                predict(batch)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert otel_ml.flush(5.0)
    total_rows = n_threads * calls * (1 + 50)
    assert value(exporter.last, M.PREDICT_ROWS) == total_rows
    edges = np.asarray(REF.feature("a").edges)
    single = np.concatenate([np.array([r[0, 0] for r in rows]), np.tile(batch[:, 0], calls)])
    expected = np.bincount(np.searchsorted(edges, single, side="left"), minlength=len(edges) + 1) * n_threads
    p = point(exporter.last, M.FEATURE_VALUE, **{M.FEATURE_NAME: "a"})
    assert list(p.bucket_counts) == expected.tolist()
    assert point(exporter.last, M.PREDICT_DURATION).count == n_threads * calls * 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_child_counts_are_independent(exporter):
    predict = make_predict()
    predict(np.array([[1.0, 1.0], [2.0, 2.0]]))
    agg = aggregates()[0]
    assert agg.rows == 2
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: fresh counts, a working lock, its own export thread
        code = 1
        try:
            os.close(r)
            ok_fresh = agg.rows == 0 and int(agg.num_counts.sum()) == 0
            predict(np.array([[3.0, 3.0]] * 5))
            ok_counted = agg.rows == 5
            flushed = otel_ml.flush(5.0)
            rows = value(exporter.last, M.PREDICT_ROWS)
            os.write(w, f"{ok_fresh},{ok_counted},{flushed},{rows}".encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    msg = b""
    while chunk := os.read(r, 1024):
        msg += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert msg.decode() == "True,True,True,5"
    # the parent is unaffected by the child's traffic
    assert agg.rows == 2
    predict(np.array([[1.0, 1.0]]))
    assert otel_ml.flush(5.0)
    assert value(exporter.last, M.PREDICT_ROWS) == 3
