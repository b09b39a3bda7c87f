"""The real processor (a subprocess) receives per-segment metrics over OTLP/gRPC and exports the segment gauges."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from otel_ml import semconv
from otel_ml.stats import NO_VERDICT

from .conftest import Sink, wait_for
from .payloads import SegmentEmitter, segment_reference
from .test_service import grpc_export


def test_processor_judges_and_ranks_segments_over_otlp(sink: Sink, start_processor: Any, tmp_path: Path) -> None:
    refs = tmp_path / "refs"
    refs.mkdir()
    ref = segment_reference()
    ref.save(refs / "shop.json")
    proc = start_processor("--references", str(refs), "--export-endpoint", sink.endpoint,
                           "--evaluation-interval", "0.5", "--window", "60", "--window", "1h")
    e = SegmentEmitter(ref, start_ns=time.time_ns())  # started after the processor: first points count in full
    e.observe("DE", 6000)
    e.observe("FR", 3000, shift=0.3)  # the FR outputs moved
    e.observe("US", 2000, missing=0.08)  # the US rows lost values
    e.observe(semconv.OTHER_CATEGORY, 200)  # below min_samples
    e.observe("JP", 1000)  # a value the reference has no profile of
    resp = grpc_export(proc.grpc, e.request())
    assert resp.partial_success.rejected_data_points == 0

    def by_value(name: str, **match: str) -> dict[str, float]:
        return {dict(k)[semconv.SEGMENT_VALUE]: v for k, v in sink.latest(name, **match).items()
                if dict(k)[semconv.DRIFT_WINDOW] == "1m"}

    wait_for(lambda: by_value(semconv.SEGMENT_DRIFT_DETECTED).get("FR") == 1, timeout=20)
    detected = by_value(semconv.SEGMENT_DRIFT_DETECTED)
    assert detected == {"DE": 0, "FR": 1, "US": 0, semconv.OTHER_CATEGORY: NO_VERDICT, "JP": NO_VERDICT}
    assert by_value(semconv.SEGMENT_DRIFT_RANK)["FR"] == 1
    assert set(by_value(semconv.SEGMENT_DRIFT_RANK)) == {"DE", "FR", "US"}
    assert by_value(semconv.SEGMENT_QUALITY_ALARM) == {"DE": 0, "FR": 0, "US": 1, semconv.OTHER_CATEGORY: NO_VERDICT,
                                                        "JP": NO_VERDICT}
    assert by_value(semconv.SEGMENT_QUALITY_RANK)["US"] == 1
    missing = by_value(semconv.SEGMENT_QUALITY_RATIO, ml_quality_kind="missing")
    assert abs(missing["US"] - e.missing["US"] / (2000 * len(ref.features))) < 1e-9
    mix = [v for k, v in sink.latest(semconv.SEGMENT_MIX_DETECTED).items()
           if dict(k)[semconv.SEGMENT_NAME] == "country"]
    assert mix and set(mix) <= {0, 1}
    with urllib.request.urlopen(f"http://{proc.http}/api/v1/status") as r:
        status = json.load(r)
    assert status["segments"]["without_profile"] == 1
    assert status["segments"]["listed"] == [["shop", "1", "country", "JP"]]
    assert proc.stop() == 0
