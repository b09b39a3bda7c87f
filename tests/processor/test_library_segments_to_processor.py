"""Segment metrics emitted by the real otel_ml library (``monitor(segments=...)``) over OTLP, judged per segment
value by the processor subprocess against a reference built with ``build_reference(segments=...)``."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import otel_ml
from otel_ml import semconv
from otel_ml.stats import NO_VERDICT

from .conftest import Sink, wait_for

pytestmark = pytest.mark.skipif("segments" not in inspect.signature(otel_ml.build_reference).parameters,
                                reason="the library side of per-segment metrics (issue 13) is not in this tree")

CLIENT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import otel_ml

    endpoint, ref_path = sys.argv[1:3]
    otel_ml.configure(endpoint=endpoint, protocol="grpc", export_interval_s=3600)
    ref = otel_ml.load_reference(ref_path)

    @otel_ml.monitor(model="shop", version="1", reference=ref, segments=["country"])
    def predict(X):
        # The model's output moves for FR rows only; DE rows score as in training.
        return np.where(np.asarray(X["country"]) == "FR", 0.9, np.asarray(X["x"]) * 0.1 + 0.5)

    rng = np.random.default_rng(1)
    for _ in range(4):
        n = 2000
        country = rng.choice(["DE", "FR", "US"], size=n, p=[0.6, 0.3, 0.1])
        predict({"x": rng.normal(0.0, 1.0, n), "country": list(country)})
    assert otel_ml.flush(10), "flush failed"
    """
)


def test_library_segments_are_judged_per_value(sink: Sink, start_processor: Any, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 20_000
    x = rng.normal(0.0, 1.0, n)
    country = rng.choice(["DE", "FR", "US"], size=n, p=[0.6, 0.3, 0.1])
    ref = otel_ml.build_reference({"x": x, "country": list(country)}, model="shop", version="1",
                                  predictions=x * 0.1 + 0.5, categorical=["country"],
                                  segments=["country"])
    refs = tmp_path / "refs"
    refs.mkdir()
    ref.save(refs / "shop.json")
    proc = start_processor("--references", str(refs), "--export-endpoint", sink.endpoint,
                           "--evaluation-interval", "0.5", "--window", "60")
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    out = subprocess.run([sys.executable, str(script), f"http://{proc.grpc}", str(refs / "shop.json")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr

    def verdicts() -> dict[str, float] | None:
        d = {a[semconv.SEGMENT_VALUE]: v for a, v, _ in sink.points(semconv.SEGMENT_DRIFT_DETECTED)}
        return d if d.get("FR") == 1 and "DE" in d else None

    detected = wait_for(verdicts, timeout=20)
    assert detected["DE"] == 0 and detected["US"] in (0, NO_VERDICT)
    ranks = {a[semconv.SEGMENT_VALUE]: v for a, v, _ in sink.points(semconv.SEGMENT_DRIFT_RANK)}
    assert ranks["FR"] == 1
    alarms = {a[semconv.SEGMENT_VALUE]: v for a, v, _ in sink.points(semconv.SEGMENT_QUALITY_ALARM)}
    assert alarms["DE"] == 0 and alarms["FR"] == 0
    assert proc.stop() == 0
    rejected = [v for a, v, _ in sink.points(semconv.PROCESSOR_POINTS_REJECTED) if v]
    assert not rejected, proc.log
