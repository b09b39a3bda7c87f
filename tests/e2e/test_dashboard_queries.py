"""Every dashboard panel, variable, annotation and alert query against the real pipeline's Prometheus.

The pipeline is the one users run: an app whose model is monitored by ``otel_ml`` (plus the standard OTel
HTTP server metric) → the OpenTelemetry Collector built from collector/builder/manifest.yaml with the
user-facing collector/config/otel-ml-collector.yaml → the otel-ml processor (a subprocess) → back
through the collector → Prometheus (remote write, exemplar storage, the alert rules loaded).

After a drift scenario (tests/e2e/_dashboard_traffic.py: ``age`` shifted, ``income`` 8% missing), each
query of dashboards/catalog.py is rendered as Grafana would (a concrete feature for the drill-down,
"All" elsewhere) and run: every panel, variable and annotation query must return data, the drift panel
must show ``age`` drifted and the other features not, the alerts that the scenario provokes (feature and
prediction drift, data quality) must return data and the others (processor absent, evaluation stale, no
predictions) must not, and the rules file must load and evaluate without errors.

The queries that need more than a model serving traffic (``catalog.Query.requires`` not None: realized
performance and outcome joins, segment drift and quality, a canary's realized performance) have no data in
a drift scenario: the scenarios that feed them check them the same way (tests/e2e/_catalog_checks.py).
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from . import _components as c
from ._catalog_checks import RATE_INTERVAL, problems, run
from ._components import COLLECTOR_CONFIG, Process, free_port, http_get, wait_until

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from dashboards import catalog, promql, rules  # noqa: E402
from otel_ml import semconv  # noqa: E402

TRAFFIC = Path(__file__).with_name("_dashboard_traffic.py")
SHIFTED, UNSHIFTED = "age", ("income", "plan")
#: Streams the scenario's drift flags: the shifted feature and, since a 0.8-SD shift of one of the two
#: numeric features moves rows off the reference's principal direction, the multivariate stream.
FLAGGED = {SHIFTED, semconv.RECONSTRUCTION_ERROR_FEATURE}
#: Variable values per panel where "All" would not do (the drill-down shows one feature).
PANEL_VALUES: dict[str, dict[str, str]] = {
    "Category shares: current vs reference": {promql.V_FEATURE: "plan"},
}
DEFAULT_VALUES = {promql.V_FEATURE: SHIFTED, promql.V_METHOD: "psi", promql.V_METRIC: "accuracy"}
#: Alerts the scenario provokes (their expressions must return data now) and those a healthy pipeline
#: must not raise.
PROVOKED = {"MLFeatureDriftDetected", "MLPredictionDriftDetected", "MLDataQualityRatioHigh"}
#: MLCanaryWorseThanBaseline: canary v2 returns labels, v1 probabilities: no output in common to differ on.
QUIET = {"MLDriftProcessorAbsent", "MLDriftEvaluationStale", "MLNoPredictions", "MLCanaryWorseThanBaseline"}
RULES_FILE = REPO / "dashboards" / "alerts" / "otel-ml.rules.yml"


@pytest.fixture(scope="module")
def drift_scenario(tmp_path_factory: pytest.TempPathFactory):
    """The real pipeline, with live drift traffic flowing while the tests query Prometheus.

    Module-scoped (one scenario for every test here), so it drives ``_components`` directly rather
    than the function-scoped fixtures of conftest.py; a missing component fails, never skips.
    """
    tmp_path = tmp_path_factory.mktemp("dashboards-e2e")
    try:
        c.otelcol_binary()
        c.prometheus_binary()
    except c.ComponentMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    logs = {"prometheus": tmp_path / "prometheus.log", "otelcol": tmp_path / "otelcol.log",
            "traffic": tmp_path / "traffic.log", "otel-ml-processor": tmp_path / "otel-ml-processor.log"}
    started: list[Any] = []
    try:
        prometheus = c.start_prometheus(tmp_path, rule_files=[RULES_FILE])
        started.append(prometheus)
        # The processor exports to the collector and the collector to the processor: reserve the
        # processor's port, start the collector, then the processor once the references exist.
        references = tmp_path / "references"
        processor_grpc_port = free_port()
        collector = c.start_collector(COLLECTOR_CONFIG, tmp_path, env={
            c.ENV_PROCESSOR: f"127.0.0.1:{processor_grpc_port}",
            c.ENV_REMOTE_WRITE: prometheus.remote_write_url,
        })
        started.append(collector)
        traffic = Process("traffic", [sys.executable, str(TRAFFIC), "--endpoint", collector.otlp_grpc,
                                      "--references", str(references), "--seconds", "600"],
                          logs["traffic"], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(REPO)}).start()
        started.append(traffic)
        wait_until(lambda: traffic.check_running() or "references written" in logs["traffic"].read_text(),
                   timeout=120, message="reference profiles from the traffic app")
        started.append(_start_processor_on(tmp_path, references, collector.otlp_grpc, processor_grpc_port))
        detected = semconv.PROMETHEUS_NAMES[semconv.DRIFT_DETECTED]
        prometheus.wait_for(f'{detected}{{{promql.FEATURE}="{SHIFTED}"}} == 1', timeout=180)
        # Let every window, rate and quality ratio see some more exports.
        time.sleep(15)
        traffic.check_running()
    except BaseException as exc:
        for proc in reversed(started):
            proc.stop()
        tails = "\n".join(f"--- {name} ({path})\n{c.tail(path, 60)}" for name, path in logs.items())
        pytest.fail(f"the dashboards' e2e pipeline did not come up: {exc!r}\n{tails}", pytrace=False)
    yield prometheus
    for proc in reversed(started):
        proc.stop()


def _start_processor_on(tmp_path: Path, references: Path, export_to: str, grpc_port: int) -> Process:
    http = f"127.0.0.1:{free_port()}"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "collector"), str(REPO),
                                                      env.get("PYTHONPATH")]))
    argv = [sys.executable, "-m", "otel_ml_processor", "--otlp-grpc", f"127.0.0.1:{grpc_port}",
            "--otlp-http", http, "--references", str(references), "--export-endpoint", f"http://{export_to}",
            "--window", "30", "--window", "60", "--evaluation-interval", "1",
            "--state-dir", str(tmp_path / "processor-state")]
    proc = Process("otel-ml-processor", argv, tmp_path / "otel-ml-processor.log", env=env, cwd=tmp_path).start()

    def ready() -> bool:
        proc.check_running()
        status, _ = http_get(f"http://{http}/readyz", timeout=1)
        return status == 200

    try:
        wait_until(ready, timeout=60, message="otel-ml processor /readyz")
    except BaseException:
        proc.stop()
        raise
    return proc


def _values(panel: str) -> dict[str, str]:
    return {**DEFAULT_VALUES, **PANEL_VALUES.get(panel, {})}


def test_every_dashboard_and_alert_query_on_the_real_pipeline(drift_scenario):
    """Every query that needs nothing more than this scenario (the others: tests/e2e/_catalog_checks.py)."""
    found = problems(drift_scenario, None, PANEL_VALUES,
                     default_values=DEFAULT_VALUES, provoked=PROVOKED, quiet=QUIET,
                     variable_must_list={promql.V_FEATURE: SHIFTED})
    assert not found, "\n".join(found)


def test_drift_panel_shows_the_shifted_feature(drift_scenario):
    prometheus = drift_scenario
    panel = next(q for q in catalog.panel_queries()
                 if q.dashboard == "otel-ml-overview" and q.panel == "Drift status per feature")
    result = prometheus.promql(catalog.render(panel.expr, _values(panel.panel)))
    status = {(r["metric"][promql.VERSION], r["metric"][promql.FEATURE]): float(r["value"][1]) for r in result
              if r["metric"].get(promql.KIND) == semconv.DRIFT_KIND_FEATURE}
    assert status[("v1", SHIFTED)] == 1 and status[("v1", semconv.RECONSTRUCTION_ERROR_FEATURE)] == 1, status
    for feature in UNSHIFTED:
        assert status[("v1", feature)] == 0, status

    drift_alert = next(q for q in catalog.alert_queries() if q.panel == "MLFeatureDriftDetected")
    firing = {r["metric"][promql.FEATURE] for r in prometheus.promql(drift_alert.expr)}
    assert firing == FLAGGED


def test_rules_load_and_evaluate_in_prometheus(drift_scenario):
    prometheus = drift_scenario
    groups = prometheus.api("rules")["groups"]
    loaded = {r["name"]: r for g in groups for r in g["rules"]}
    assert set(loaded) == {a.name for a in rules.ALERTS}
    wait_until(lambda: all(r.get("lastEvaluation", "").startswith("20") for r in
                           (rr for g in prometheus.api("rules")["groups"] for rr in g["rules"])),
               timeout=30, message="every rule evaluated")
    for g in prometheus.api("rules")["groups"]:
        for r in g["rules"]:
            assert r["health"] == "ok", (r["name"], r.get("lastError"))
    # The drift alert is at least pending for the shifted feature (its `for` is 15 minutes).
    alerts = prometheus.api("alerts")["alerts"]
    drift = [a for a in alerts if a["labels"]["alertname"] == "MLFeatureDriftDetected"]
    assert {a["labels"][promql.FEATURE] for a in drift} == FLAGGED
    assert all(a["state"] in ("pending", "firing") for a in drift)


def test_exemplars_link_latency_panels_to_traces(drift_scenario):
    prometheus = drift_scenario
    now = time.time()
    for title in ("Model latency p95 per version", "HTTP latency p95 / p99"):
        q = next(q for q in catalog.panel_queries() if q.panel == title)
        found = prometheus.exemplars(catalog.render(q.expr, rate_interval=RATE_INTERVAL), now - 300, now)
        trace_ids = [e["labels"].get("trace_id") for s in found for e in s["exemplars"]]
        assert trace_ids and all(trace_ids), (title, found[:2])


def test_drilldown_distribution_panels_for_model_outputs(drift_scenario):
    """The drill-down's $feature may also name a model output: probabilities (numeric) or labels."""
    prometheus = drift_scenario
    outputs = {"Cumulative distribution: current vs reference": "proba:1", "Distribution over time": "proba:1",
               "Quantiles over time": "proba:1", "Category shares: current vs reference": "label"}
    for q in catalog.panel_queries():
        if q.dashboard == "otel-ml-feature" and q.panel in outputs:
            assert run(prometheus, q, {promql.V_FEATURE: outputs[q.panel]}), (q.name, outputs[q.panel])


def _panel_query(title: str, ref_id: str) -> catalog.Query:
    return next(q for q in catalog.panel_queries()
                if q.dashboard == "otel-ml-feature" and q.panel == title and q.ref_id == ref_id)


def test_drilldown_shows_the_reference_beside_the_current_distribution(drift_scenario):
    """The processor's ml.drift.reference.ratio reaches Prometheus and the drill-down draws it (target B)
    beside the live distribution (target A): same ``le`` bounds as the library's histogram, a CDF that
    ends at 1, and for the shifted feature a visible gap to the current CDF that the others lack."""
    prometheus = drift_scenario
    cdf_title = "Cumulative distribution: current vs reference"
    current_q, reference_q = _panel_query(cdf_title, "A"), _panel_query(cdf_title, "B")
    assert semconv.PROMETHEUS_NAMES[semconv.DRIFT_REFERENCE_RATIO] in reference_q.expr

    def cdf(query: catalog.Query, feature: str) -> dict[str, float]:
        return {r["metric"][promql.LE]: float(r["value"][1]) for r in run(prometheus, query, {
            **DEFAULT_VALUES, promql.V_FEATURE: feature, promql.V_VERSION: "v1"})}

    gaps = {}
    for feature in (SHIFTED, "income", "proba:1"):
        current, reference = cdf(current_q, feature), cdf(reference_q, feature)
        assert reference, f"no reference series for {feature}"
        # The processor spells the bounds as the collector spells the histogram's le labels.
        assert set(reference) == set(current), (feature, sorted(reference), sorted(current))
        assert reference["+Inf"] == pytest.approx(1.0), (feature, reference)
        ordered = [reference[le] for le in sorted(reference, key=float)]
        assert all(b >= a - 1e-12 for a, b in itertools.pairwise(ordered)), (feature, reference)
        gaps[feature] = max(abs(current[le] - reference[le]) for le in reference)
    # age is shifted by 0.8 reference standard deviations: the KS gap is ~0.3; income is only missing values.
    assert gaps[SHIFTED] > 0.15, gaps
    assert gaps["income"] < gaps[SHIFTED] / 2, gaps

    cat_title = "Category shares: current vs reference"
    for feature in ("plan", "label"):
        shares = {r["metric"][promql.CATEGORY]: float(r["value"][1]) for r in run(
            prometheus, _panel_query(cat_title, "B"), {**DEFAULT_VALUES, promql.V_FEATURE: feature})}
        assert semconv.OTHER_CATEGORY in shares, (feature, shares)
        if feature == "plan":
            assert set(shares) == {"a", "b", "c", semconv.OTHER_CATEGORY}, shares
            assert sum(shares.values()) == pytest.approx(1.0), shares


def test_label_free_model_has_its_reference_line_and_the_estimated_drop_evaluates(drift_scenario):
    """churn v1 sends no outcomes, but its reference has holdout performance: the processor sends the
    holdout value (ml_performance_reference) beside the label-free estimate, with the same model, version,
    window and metric labels, so MLEstimatedPerformanceDrop can compare them. Its expression (on this
    scenario's window) returns the estimate's series once the estimate is shifted below the line."""
    prometheus = drift_scenario
    name = semconv.PROMETHEUS_NAMES
    churn = 'ml_model_name="churn", ml_model_version="%s"'
    assert not prometheus.promql(f'{name[semconv.PERFORMANCE_VALUE]}{{ml_model_name="churn"}}'), "label-free"
    estimated = prometheus.wait_for(f"{name[semconv.PERFORMANCE_ESTIMATED]}{{{churn % 'v1'}}}", timeout=30)
    reference = prometheus.wait_for(f'{name[semconv.PERFORMANCE_REFERENCE]}{{{churn % "v1"}, '
                                    f'{promql.PRED_CLASS}=""}}', timeout=30)

    def key(r: dict[str, Any]) -> tuple[str, ...]:
        return tuple(r["metric"][k] for k in (promql.MODEL, promql.VERSION, promql.WINDOW, promql.PERF_METRIC))

    assert {key(r) for r in estimated} <= {key(r) for r in reference}, (estimated, reference)
    assert all(0 < float(r["value"][1]) <= 1 for r in reference), reference
    # v2 returns labels and its reference has no performance section: no line, nothing to judge.
    assert not prometheus.promql(f"{name[semconv.PERFORMANCE_REFERENCE]}{{{churn % 'v2'}}}")

    window = max({r["metric"][promql.WINDOW] for r in estimated})
    judged = {r["metric"][promql.PERF_METRIC] for r in estimated if r["metric"][promql.WINDOW] == window}
    assert judged & set(rules.ESTIMATE_TOLERANCES), judged
    shifted = rules.estimate_below_tolerance(window, {m: t - 1.0 for m, t in rules.ESTIMATE_TOLERANCES.items()})
    firing = prometheus.promql(shifted)
    assert {r["metric"][promql.PERF_METRIC] for r in firing} == judged & set(rules.ESTIMATE_TOLERANCES), firing
    assert {(r["metric"][promql.MODEL], r["metric"][promql.VERSION]) for r in firing} == {("churn", "v1")}
