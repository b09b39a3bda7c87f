"""Model chains end to end (issue 13, "Model chains"): an upstream model's output is a downstream model's input
feature, both monitored in one request, through the real Collector (its metrics pipelines into the real
otel-ml processor, its traces pipeline into a file) and the processor's verdicts into a real Prometheus.

The app is tests/e2e/_chain_traffic.py: ``scorer`` (inputs ``x1``, ``x2``; output ``value``) feeds ``ranker``
(inputs ``score`` = the scorer's output, ``z1``, ``z2``); the scorer's input ``x1`` has moved. Prometheus ends
with ``ml_drift_detected`` 1 for the scorer's ``x1`` and its prediction and for the ranker's ``score``, 0 for
the scorer's ``x2`` and the ranker's own features ``z1`` and ``z2``: the upstream drift seen twice, where
docs/library.md says. In the traces, every request span ``POST /rank`` has exactly the two predict spans
as its children, in its trace.
"""

from __future__ import annotations

import collections
from pathlib import Path

from otel_ml import semconv

from ._components import tapped_spans, wait_until
from ._scenario import WINDOW_LABEL, run_app, start_pipeline, wait_for_values

TRAFFIC = Path(__file__).with_name("_chain_traffic.py")
ROWS, BATCH = 3000, 250
REQUEST_SPAN = "POST /rank"
UPSTREAM, DOWNSTREAM = "scorer", "ranker"
PREDICT_SPANS = {semconv.SPAN_NAME_TEMPLATE.format(model=m) for m in (UPSTREAM, DOWNSTREAM)}

DRIFT = semconv.PROMETHEUS_NAMES[semconv.DRIFT_DETECTED]
SAMPLES = semconv.PROMETHEUS_NAMES[semconv.DRIFT_SAMPLE_COUNT]
SEL = f'ml_drift_window="{WINDOW_LABEL}", ml_model_name=~"{UPSTREAM}|{DOWNSTREAM}"'
FEATURE, PREDICTION = semconv.DRIFT_KIND_FEATURE, semconv.DRIFT_KIND_PREDICTION
#: (model, kind, stream) -> the verdict the scenario must end with. The ranker's own prediction moves with
#: its input score too; it is left out (not what this test is about).
EXPECTED = {
    (UPSTREAM, FEATURE, "x1"): 1.0, (UPSTREAM, FEATURE, "x2"): 0.0, (UPSTREAM, PREDICTION, "value"): 1.0,
    (DOWNSTREAM, FEATURE, "score"): 1.0, (DOWNSTREAM, FEATURE, "z1"): 0.0, (DOWNSTREAM, FEATURE, "z2"): 0.0,
}


def test_upstream_drift_shows_as_the_downstream_input_drift_and_both_predict_spans_sit_under_the_request(
    otelcol, prometheus, otel_ml_processor, spawn, tmp_path
):
    traces = tmp_path / "traces.jsonl"
    references = tmp_path / "references"
    run_app(spawn, "references", TRAFFIC, "--references", references, "--write-references",
            expect="references written")
    col, _ = start_pipeline(otelcol, otel_ml_processor, prometheus, references, taps={"traces": traces})
    run_app(spawn, "app", TRAFFIC, "--endpoint", col.otlp_grpc, "--references", references, "--rows", ROWS,
            expect="sent")

    # Every stream of both models holds every row; then the verdicts settle on all of them.
    streams = len(EXPECTED) + 1  # and the ranker's prediction
    prometheus.wait_for(f"count({SAMPLES}{{{SEL}}} == {ROWS}) == {streams}", timeout=60)
    verdicts = wait_for_values(prometheus, f"{DRIFT}{{{SEL}}}", lambda m: (
        m["ml_model_name"], m["ml_drift_kind"], m["ml_feature_name"]), EXPECTED)
    print("drift verdicts:", sorted(verdicts.items()))
    assert {k: verdicts.get(k) for k in EXPECTED} == EXPECTED, verdicts

    # The traces pipeline: one request span per batch, each the parent of both predict spans of its trace.
    requests = ROWS // BATCH
    spans: list[dict] = []

    def all_spans() -> bool:
        nonlocal spans
        spans = tapped_spans(traces)
        return len(spans) >= 3 * requests

    wait_until(all_spans, timeout=30, message=lambda: f"{3 * requests} spans in {traces}; got {len(spans)}")
    roots = [s for s in spans if s["name"] == REQUEST_SPAN]
    assert len(roots) == requests and all(not s.get("parentSpanId") for s in roots), roots[:2]
    children = collections.defaultdict(list)
    for s in spans:
        if s.get("parentSpanId"):
            children[(s["traceId"], s["parentSpanId"])].append(s["name"])
    for root in roots:
        assert sorted(children[(root["traceId"], root["spanId"])]) == sorted(PREDICT_SPANS), root
    assert len(spans) == 3 * requests, collections.Counter(s["name"] for s in spans)
