"""The Grafana dashboards, alert rules and provisioning files under dashboards/.

Checks that the committed files are what the generator writes, that every query reads only metric names
that otel_ml.semconv declares (as Prometheus stores them) or the standard OTel HTTP server metric, that
every panel takes its datasource from the ``$datasource`` variable, and that promtool accepts the rules
and their unit tests. What Prometheus really stores is checked by tests/e2e/test_dashboard_queries.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dashboards import catalog, promql, rules  # noqa: E402
from otel_ml import semconv  # noqa: E402

DASHBOARDS = ROOT / "dashboards"
pytestmark = pytest.mark.filterwarnings("ignore:Prefer using dashboardv2:DeprecationWarning")
DS_UID = "${%s}" % promql.V_DATASOURCE
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian package 'prometheus'; scripts/e2e-components.sh)"
)


def _allowed_metric_names() -> set[str]:
    kinds = {**semconv.LIBRARY_METRICS, **semconv.PROCESSOR_METRICS}
    allowed = set()
    for name, prom in semconv.PROMETHEUS_NAMES.items():
        if kinds[name][0] == "histogram":
            allowed.update(prom + s for s in ("_bucket", "_sum", "_count"))
        else:
            allowed.add(prom)
    for std in promql.STANDARD_METRICS:
        allowed.update(std + s for s in ("_bucket", "_sum", "_count"))
    return allowed


ALLOWED = _allowed_metric_names()


def _panels(model: dict) -> list[dict]:
    out = []
    for p in model["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def _walk(node, key: str):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield v
            yield from _walk(v, key)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v, key)


# --- Generated == committed ------------------------------------------------------------------------
def test_committed_files_equal_generator_output():
    from dashboards import generate

    stale = [str(p.relative_to(ROOT)) for p, content in generate.outputs().items()
             if not p.exists() or p.read_text() != content]
    assert not stale, f"regenerate with `python -m dashboards.generate`: {stale}"


def test_committed_json_round_trips_through_the_sdk_dashboard_schema():
    """Schema-aware: every field of the committed JSON is one the SDK's (Grafana's) dashboard model knows,
    with the type it expects; nothing is dropped or changed by parsing and re-encoding it."""
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models.dashboard import Dashboard

    for uid, model in catalog.dashboards().items():
        again = json.loads(json.dumps(Dashboard.from_json(model), cls=JSONEncoder))
        assert again == model, uid


def test_generator_pins_the_current_sdk():
    from importlib.metadata import version

    import grafana_foundation_sdk as sdk  # the dev extra pins it: a missing SDK fails, never skips

    assert version("grafana-foundation-sdk").lstrip("v") == "0.0.21", sdk


# --- Dashboards ------------------------------------------------------------------------------------------
def test_three_dashboards_with_the_documented_uids():
    assert set(catalog.dashboards()) == {"otel-ml-overview", "otel-ml-feature", "otel-ml-service"}


@pytest.mark.parametrize("uid", sorted(catalog.dashboards()))
def test_template_variables(uid):
    model = catalog.dashboards()[uid]
    variables = {v["name"]: v for v in model["templating"]["list"]}
    ds = variables[promql.V_DATASOURCE]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    for name in (promql.V_SERVICE, promql.V_MODEL, promql.V_VERSION):
        assert variables[name]["type"] == "query"
        assert variables[name]["datasource"]["uid"] == DS_UID
        assert variables[name]["refresh"] == 2  # on time range change: new versions appear
    # Chained: models of the chosen services, versions of the chosen models.
    assert f"${promql.V_SERVICE}" in variables[promql.V_MODEL]["query"]["query"]
    assert f"${promql.V_MODEL}" in variables[promql.V_VERSION]["query"]["query"]


@pytest.mark.parametrize("uid", sorted(catalog.dashboards()))
def test_every_panel_and_query_uses_the_datasource_variable(uid):
    model = catalog.dashboards()[uid]
    for panel in _panels(model):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": DS_UID}, panel["title"]
        assert panel["targets"], panel["title"]
        for t in panel["targets"]:
            assert t["datasource"]["uid"] == DS_UID, panel["title"]
    # No hard-coded datasource uid anywhere (panels, targets, variables, annotations).
    for ref in _walk(model, "datasource"):
        if isinstance(ref, dict):
            assert ref.get("uid") == DS_UID, ref


@pytest.mark.parametrize("uid", sorted(catalog.dashboards()))
def test_layout_ids_and_ref_ids(uid):
    model = catalog.dashboards()[uid]
    panels = _panels(model)
    assert len({p["id"] for p in panels}) == len(panels)
    cells = set()
    for p in panels:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps another panel"
                cells.add((x, y))
        refs = [t["refId"] for t in p.get("targets", [])]
        assert len(refs) == len(set(refs)), p["title"]
    assert model["schemaVersion"] >= 39


def test_every_query_reads_only_known_metric_names():
    queries = catalog.all_queries()
    assert len(queries) > 40
    for q in queries:
        names = catalog.metric_names(q.expr)
        assert names, q.name
        assert names <= ALLOWED, (q.name, names - ALLOWED)
    for v in catalog.variable_queries():
        selector, _label = catalog.parse_label_values(v.expr)
        assert catalog.metric_names(selector or "") <= ALLOWED, v.name


def test_metric_names_come_from_semconv_not_from_the_generator():
    # Nothing under dashboards/*.py spells an otel-ml Prometheus name: they all come from semconv.
    for path in DASHBOARDS.glob("*.py"):
        text = path.read_text()
        for prom in semconv.PROMETHEUS_NAMES.values():
            assert not re.search(rf"\b{prom}(_bucket|_count|_sum)?\b", text), (path.name, prom)


def test_dashboard_queries_use_grafana_intervals_not_fixed_ranges():
    for q in catalog.panel_queries() + catalog.annotation_queries():
        ranges = re.findall(r"\[([^\]]+)\]", q.expr)
        if re.search(r"\b(rate|increase)\(", q.expr):
            assert ranges, q.name
        for r in ranges:
            assert r in ("$__rate_interval", "$__range"), (q.name, r)


def test_drift_status_is_a_state_timeline_per_feature():
    model = catalog.dashboards()["otel-ml-overview"]
    panel = next(p for p in _panels(model) if p["title"] == "Drift status per feature")
    assert panel["type"] in ("state-timeline", "heatmap")
    expr = panel["targets"][0]["expr"]
    assert semconv.PROMETHEUS_NAMES[semconv.DRIFT_DETECTED] in expr
    assert promql.FEATURE in expr and promql.VERSION in expr
    (link,) = panel["fieldConfig"]["defaults"]["links"]  # click a feature: its drill-down
    assert link["url"].startswith("/d/otel-ml-feature/") and f"labels.{promql.FEATURE}" in link["url"]


def test_versions_side_by_side_and_version_change_annotations():
    for uid, model in catalog.dashboards().items():
        ann = [a for a in model["annotations"]["list"] if a.get("expr")]
        assert ann and promql.VERSION in ann[0]["expr"], uid
        assert ann[0]["datasource"]["uid"] == DS_UID
    overview = catalog.dashboards()["otel-ml-overview"]
    for title in ("Predictions per second", "Predict latency p50 / p95 / p99", "Predict error ratio"):
        panel = next(p for p in _panels(overview) if p["title"] == title)
        for t in panel["targets"]:
            assert re.search(rf"by \([^)]*{promql.VERSION}", t["expr"]), title


def test_exemplars_on_latency_and_drift_panels():
    for uid, model in catalog.dashboards().items():
        for p in _panels(model):
            title = p["title"].lower()
            if p["type"] == "row":
                continue
            if "latency" in title or title.startswith("drifting features") or "psi" in title:
                assert all(t.get("exemplar") for t in p["targets"]), (uid, p["title"])


def test_feature_drilldown_has_distribution_scores_thresholds_and_quality():
    model = catalog.dashboards()["otel-ml-feature"]
    titles = {p["title"]: p for p in _panels(model)}
    assert "Cumulative distribution: current vs reference" in titles
    psi = titles["PSI"]
    steps = psi["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert any(s.get("value") == 0.2 for s in steps)
    assert psi["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "dashed"
    variables = {v["name"] for v in model["templating"]["list"]}
    assert promql.V_FEATURE in variables
    quality = titles["Missing / out-of-range values per second"]["targets"]
    assert any(semconv.PROMETHEUS_NAMES[semconv.FEATURE_MISSING] in t["expr"] for t in quality)


def test_service_correlation_puts_http_metrics_beside_model_metrics():
    model = catalog.dashboards()["otel-ml-service"]
    exprs = " ".join(t["expr"] for p in _panels(model) for t in p.get("targets", []))
    assert "http_server_request_duration_seconds_count" in exprs
    assert "http_server_request_duration_seconds_bucket" in exprs
    assert semconv.PROMETHEUS_NAMES[semconv.PREDICT_DURATION] + "_bucket" in exprs
    assert semconv.PROMETHEUS_NAMES[semconv.DRIFT_DETECTED] in exprs
    assert model["graphTooltip"] == 1  # shared crosshair: one time axis


def test_render_substitutes_grafana_variables():
    q = next(q for q in catalog.panel_queries() if q.panel == "Predictions per second")
    rendered = catalog.render(q.expr, {"model": "churn"})
    assert "$" not in rendered
    assert 'ml_model_name=~"churn"' in rendered and 'job=~".*"' in rendered


# --- PromQL syntax (offline, with promtool) -------------------------------------------------------------
@needs_promtool
def test_every_query_parses(tmp_path):
    """promtool parses each rendered query as a recording rule: a syntax error fails here, not in Grafana."""
    records = [{"record": f"otel_ml_check:{i}", "expr": catalog.render(q.expr)}
               for i, q in enumerate(catalog.all_queries())]
    path = tmp_path / "queries.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "queries", "rules": records}]}))
    result = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# --- Alert rules ---------------------------------------------------------------------------------------------
RULES_FILE = DASHBOARDS / "alerts" / "otel-ml.rules.yml"


@needs_promtool
def test_promtool_check_rules():
    result = subprocess.run([PROMTOOL, "check", "rules", str(RULES_FILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_test_rules():
    tests = sorted((DASHBOARDS / "alerts" / "tests").glob("*.yml"))
    assert tests
    result = subprocess.run([PROMTOOL, "test", "rules", *map(str, tests)], capture_output=True, text=True,
                            cwd=tests[0].parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_alert_is_tested_firing_and_not_firing():
    doc = yaml.safe_load((DASHBOARDS / "alerts" / "tests" / "otel-ml.test.yml").read_text())
    firing, quiet = set(), set()
    for group in doc["tests"]:
        for check in group["alert_rule_test"]:
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {a.name for a in rules.ALERTS}
    assert firing == names and quiet == names


def test_rules_file_alerts_have_severity_summary_and_runbook():
    doc = yaml.safe_load(RULES_FILE.read_text())
    alerts = [r for g in doc["groups"] for r in g["rules"]]
    names = {a["alert"] for a in alerts}
    assert {"MLFeatureDriftDetected", "MLDataQualityRatioHigh", "MLDriftProcessorAbsent",
            "MLNoPredictions"} <= names
    for a in alerts:
        assert a["labels"]["severity"] in ("warning", "critical")
        assert a["annotations"]["summary"]
        assert "Runbook:" in a["annotations"]["description"]
        assert a["for"]


def test_grafana_alert_provisioning_mirrors_the_rules_file():
    doc = yaml.safe_load((DASHBOARDS / "provisioning" / "alerting" / "otel-ml-alerts.yaml").read_text())
    assert doc["apiVersion"] == 1
    (group,) = doc["groups"]
    assert group["folder"] and group["interval"]
    prom = {r["alert"]: r for g in yaml.safe_load(RULES_FILE.read_text())["groups"] for r in g["rules"]}
    assert {r["title"] for r in group["rules"]} == set(prom)
    ds = yaml.safe_load((DASHBOARDS / "provisioning" / "datasources" / "otel-ml-datasources.yaml").read_text())
    prom_uid = next(d["uid"] for d in ds["datasources"] if d["type"] == "prometheus")
    for r in group["rules"]:
        query = r["data"][0]
        # A parameter, not a hard-coded uid: Grafana expands ${NAME} from its environment when provisioning.
        assert query["datasourceUid"] == "${%s}" % rules.DATASOURCE_UID_ENV
        assert _grafana_interpolate(query["datasourceUid"], {rules.DATASOURCE_UID_ENV: prom_uid}) == prom_uid
        assert query["model"]["expr"] == prom[r["title"]]["expr"]
        assert r["condition"] == r["data"][-1]["refId"]
        assert r["for"] == prom[r["title"]]["for"]
        assert r["labels"]["severity"] == prom[r["title"]]["labels"]["severity"]
        assert r["annotations"]["summary"] and "Runbook:" in r["annotations"]["description"]


def _grafana_interpolate(value: str, env: dict[str, str]) -> str:
    """What Grafana's provisioning does to a value: ``$$`` is a literal ``$``, ``$NAME``/``${NAME}`` expand."""
    return "$".join(re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m.group(1) or m.group(2), ""), part)
                    for part in value.split("$$"))


def test_grafana_alert_rules_name_no_datasource_uid_and_survive_grafana_interpolation():
    text = (DASHBOARDS / "provisioning" / "alerting" / "otel-ml-alerts.yaml").read_text()
    assert "otel-ml-prometheus" not in text.split("apiVersion", 1)[1]  # only the header's example names it
    doc = yaml.safe_load(text)
    for r in doc["groups"][0]["rules"]:
        uids = {d["datasourceUid"] for d in r["data"]} - {"__expr__"}
        assert uids == {"${%s}" % rules.DATASOURCE_UID_ENV}, r["title"]
        # Annotations are expanded only for ${NAME} (Grafana >= 11) or not at all: the templates use $labels
        # and $values unbraced, so provisioning leaves them to the alert templating.
        for value in r["annotations"].values():
            assert "${" not in value, r["title"]
    assert rules.DATASOURCE_UID_ENV in (ROOT / "docs" / "dashboards.md").read_text()
    ds = (DASHBOARDS / "provisioning" / "datasources" / "otel-ml-datasources.yaml").read_text()
    assert rules.DATASOURCE_UID_ENV in ds


def test_data_quality_alert_follows_the_processor_verdict():
    """MLDataQualityRatioHigh fires on ml.quality.alarm (the verdict), never on a fixed ratio threshold."""
    alert = next(a for a in rules.ALERTS if a.name == "MLDataQualityRatioHigh")
    alarm = semconv.PROMETHEUS_NAMES[semconv.QUALITY_ALARM]
    assert re.search(rf"\({re.escape('max by (ml_model_name, ml_model_version, ml_feature_name) (' + alarm)}\) == 1\)",
                     alert.expr), alert.expr
    assert not re.search(r"[<>]=?\s*0?\.\d", alert.expr), alert.expr
    assert alarm in alert.signal


# --- Provisioning -------------------------------------------------------------------------------------------
def test_dashboard_provider():
    doc = yaml.safe_load((DASHBOARDS / "provisioning" / "dashboards" / "otel-ml.yaml").read_text())
    assert doc["apiVersion"] == 1
    (provider,) = doc["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]


def test_datasource_example_links_exemplars_to_tempo():
    doc = yaml.safe_load((DASHBOARDS / "provisioning" / "datasources" / "otel-ml-datasources.yaml").read_text())
    by_uid = {d["uid"]: d for d in doc["datasources"]}
    prom = next(d for d in doc["datasources"] if d["type"] == "prometheus")
    assert prom["jsonData"]["timeInterval"] == "60s"  # the OTel SDK's default export interval
    (dest,) = prom["jsonData"]["exemplarTraceIdDestinations"]
    assert dest["name"] == "trace_id"
    assert by_uid[dest["datasourceUid"]]["type"] == "tempo"


# --- Docs ----------------------------------------------------------------------------------------------------
def test_docs_list_every_panel_and_alert():
    text = (ROOT / "docs" / "dashboards.md").read_text()
    for uid, model in catalog.dashboards().items():
        for p in _panels(model):
            if p["type"] != "row":
                assert p["title"] in text, (uid, p["title"])
    for a in rules.ALERTS:
        assert a.name in text


def test_every_otel_ml_metric_is_on_some_panel():
    """A metric added to semconv needs a panel (or this test tells you which one is missing)."""
    used = set()
    for q in catalog.panel_queries():
        used |= catalog.metric_names(q.expr)
    kinds = {**semconv.LIBRARY_METRICS, **semconv.PROCESSOR_METRICS}
    missing = []
    for name, prom in semconv.PROMETHEUS_NAMES.items():
        names = {prom + s for s in ("_bucket", "_sum", "_count")} if kinds[name][0] == "histogram" else {prom}
        if not names & used:
            missing.append(name)
    assert not missing, f"no dashboard panel shows {missing}"


# --- Realized performance (ground truth) -------------------------------------------------------------------
def _overview_panel(title: str) -> dict:
    return next(p for p in _panels(catalog.dashboards()["otel-ml-overview"]) if p["title"] == title)


def test_overview_shows_realized_performance_against_the_reference():
    from dashboards import generate

    model = catalog.dashboards()["otel-ml-overview"]
    assert generate.REALIZED_ROW in [p["title"] for p in model["panels"] if p["type"] == "row"]
    metric_var = next(v for v in model["templating"]["list"] if v["name"] == promql.V_METRIC)
    assert metric_var["current"]["value"] == "accuracy" and not metric_var["multi"]
    assert semconv.PROMETHEUS_NAMES[semconv.PERFORMANCE_VALUE] in metric_var["query"]["query"]
    assert metric_var["query"]["query"].endswith(f", {promql.PERF_METRIC})")

    # The estimate without labels has a metric value before any outcome arrives.
    assert semconv.PROMETHEUS_NAMES[semconv.PERFORMANCE_ESTIMATED] in metric_var["query"]["query"]

    panel = _overview_panel("Realized and estimated $metric vs reference")
    exprs = {t["refId"]: t["expr"] for t in panel["targets"]}
    for ref, name in zip("ABCDEFG", (semconv.PERFORMANCE_VALUE, semconv.PERFORMANCE_LOWER, semconv.PERFORMANCE_UPPER,
                                     semconv.PERFORMANCE_REFERENCE, semconv.PERFORMANCE_ESTIMATED,
                                     semconv.PERFORMANCE_ESTIMATED_LOWER, semconv.PERFORMANCE_ESTIMATED_UPPER)):
        assert semconv.PROMETHEUS_NAMES[name] + "{" in exprs[ref], ref
        assert f'{promql.PERF_METRIC}=~"$metric"' in exprs[ref], ref
        assert re.search(rf"by \([^)]*{promql.VERSION}", exprs[ref]), ref
    dashed = {o["matcher"]["options"] for o in panel["fieldConfig"]["overrides"]
              if any(p["id"] == "custom.lineStyle" for p in o["properties"])}
    # interval bounds, the reference and the estimate drawn apart from the realized value
    assert dashed == {"B", "C", "D", "E", "F", "G"}


def test_performance_verdict_shows_no_verdict_apart_from_ok():
    from otel_ml.stats import NO_VERDICT

    panel = _overview_panel("Performance verdict")
    assert panel["type"] == "state-timeline"
    assert semconv.PROMETHEUS_NAMES[semconv.PERFORMANCE_DEGRADED] in panel["targets"][0]["expr"]
    (mapping,) = panel["fieldConfig"]["defaults"]["mappings"]
    options = mapping["options"]
    assert options[str(NO_VERDICT)]["text"] == "no verdict"
    assert options[str(NO_VERDICT)]["color"] not in (options["0"]["color"], options["1"]["color"])
    assert (options["0"]["text"], options["1"]["text"]) == ("OK", "Degraded")
    # The drift panels (whose processor exports no point without a verdict) keep their two states.
    assert set(_overview_panel("Drift status per feature")["fieldConfig"]["defaults"]["mappings"][0]["options"]) \
        == {"0", "1"}


def test_joined_outcomes_panel_marks_the_minimum_for_a_verdict():
    from otel_ml.stats import PerformancePolicy

    steps = _overview_panel("Joined outcomes per window")["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps] == [None, PerformancePolicy().min_samples]


def test_every_outcome_panel_query_is_checked_on_synthetic_series():
    """Until the ground-truth e2e scenario runs them, promtool computes every realized-performance query
    (rendered as Grafana would, $metric = accuracy) on synthetic series: each one is in the query tests."""
    from dashboards import rules_tests

    doc = yaml.safe_load((DASHBOARDS / "alerts" / "tests" / "dashboard-queries.test.yml").read_text())
    tested = {t["expr"] for group in doc["tests"] for t in group["promql_expr_test"] if t["exp_samples"]}
    outcome = [q for q in catalog.panel_queries() if q.requires == catalog.OUTCOMES]
    assert len(outcome) >= 15
    missing = [q.name for q in outcome if catalog.render(
        q.expr, {promql.V_METRIC: "accuracy"}, rate_interval=rules_tests.QUERY_RATE_INTERVAL,
        range_=rules_tests.QUERY_RANGE) not in tested]
    assert not missing, missing
    # Nothing else is tagged: the drift and library queries run in the drift e2e scenario.
    assert all(q.requires is None for q in catalog.panel_queries() if q.dashboard != "otel-ml-overview")


def test_performance_alert_fires_on_the_verdict_and_never_on_no_verdict():
    alert = next(a for a in rules.ALERTS if a.name == "MLModelPerformanceDegraded")
    degraded = semconv.PROMETHEUS_NAMES[semconv.PERFORMANCE_DEGRADED]
    assert re.search(rf"\(max by \([^)]*\) \({degraded}\) == 1\)$", alert.expr), alert.expr
    for label in (promql.PERF_METRIC, promql.WINDOW, promql.MODEL, promql.VERSION):
        assert label in alert.summary
    doc = yaml.safe_load((DASHBOARDS / "alerts" / "tests" / "otel-ml.test.yml").read_text())
    inputs = [s for t in doc["tests"] if any(c["alertname"] == alert.name for c in t["alert_rule_test"])
              for s in t["input_series"] if s["series"].startswith(degraded + "{")]
    assert any(s["values"].startswith("-1") for s in inputs), "the tests must show NO_VERDICT not firing"


def test_outcomes_stopped_alert_documents_its_label_delay_assumption():
    alert = next(a for a in rules.ALERTS if a.name == "MLOutcomesStopped")
    assert semconv.PROMETHEUS_NAMES[semconv.PREDICTION_RECORDS] in alert.expr
    assert semconv.PROMETHEUS_NAMES[semconv.OUTCOMES_JOINED] in alert.expr
    assert f"offset {rules.OUTCOMES_SILENCE}" in alert.expr
    assert "OUTCOMES_SILENCE" in alert.description
    doc = (ROOT / "docs" / "dashboards.md").read_text()
    assert "OUTCOMES_SILENCE" in doc and "label delay" in doc


def test_estimated_drop_alert_uses_the_policy_tolerances_and_says_it_is_an_estimate():
    from otel_ml.stats import PerformancePolicy
    from otel_ml.stats.estimated import ESTIMATED_METRICS

    alert = next(a for a in rules.ALERTS if a.name == "MLEstimatedPerformanceDrop")
    policy = PerformancePolicy()
    # One comparison per distinct tolerance, each adding it to the upper bound of its metrics only.
    for m in ESTIMATED_METRICS:
        clause = next(c for c in alert.expr.split("\nor\n") if re.search(rf'=~"[^"]*\b{m}\b', c))
        assert re.search(rf"\) \+ {policy.tolerance(m):g}\n<", clause), (m, clause)
    assert semconv.PROMETHEUS_NAMES[semconv.PERFORMANCE_ESTIMATED_UPPER] in alert.expr
    assert f'{promql.WINDOW}="{rules.ESTIMATE_WINDOW}"' in alert.expr
    assert "covariate shift" in alert.description and "docs/statistics.md" in alert.description


def test_alert_value_templates_render_like_go_templates():
    from dashboards import rules_tests

    assert rules_tests.render('{{ $value | printf "%.4g" }}', {}, 0.8512345) == "0.8512"
    assert rules_tests.render('{{ $value | printf "%.0f" }}', {}, 600.0000001) == "600"
    assert rules_tests.render("{{ $value | humanizePercentage }}", {}, 0.25) == "25%"
    with pytest.raises(ValueError):
        rules_tests.render("{{ $value | humanize }}", {}, 1.0)


def test_every_version_comparison_panel_query_is_checked_on_synthetic_series():
    """The candidate-vs-baseline queries are also computed by promtool on synthetic series (besides the e2e
    scenarios: those of realized performance in test_canary.py, the others in the drift scenario)."""
    from dashboards import rules_tests

    doc = yaml.safe_load((DASHBOARDS / "alerts" / "tests" / "dashboard-queries.test.yml").read_text())
    tested = {t["expr"] for group in doc["tests"] for t in group["promql_expr_test"] if t["exp_samples"]}
    versions = [q for q in catalog.panel_queries() if "ml_version_" in q.expr]
    assert {q.requires for q in versions} == {None, catalog.VERSION_OUTCOMES}
    missing = [q.name for q in versions if catalog.render(
        q.expr, {promql.V_METRIC: "accuracy", promql.V_METHOD: "psi"}, rate_interval=rules_tests.QUERY_RATE_INTERVAL,
        range_=rules_tests.QUERY_RANGE) not in tested]
    assert not missing, missing


def test_every_segment_drift_panel_query_is_checked_on_synthetic_series():
    """promtool computes every query tagged ``segments`` on synthetic series too (the worst-segments table over
    drift, quality and performance, the per-segment panels; the e2e check is tests/e2e/test_segment_drift.py)."""
    from dashboards import rules_tests

    doc = yaml.safe_load((DASHBOARDS / "alerts" / "tests" / "dashboard-queries.test.yml").read_text())
    tested = {t["expr"] for group in doc["tests"] for t in group["promql_expr_test"] if t["exp_samples"]}
    segment = [q for q in catalog.panel_queries() if q.requires == catalog.SEGMENTS]
    assert len(segment) >= 10
    assert {q.panel for q in segment} >= {f"Output drift per segment ($window, top {promql.WORST_SEGMENTS})",
                                          "Segment mix per column ($window)", "Outputs per segment value",
                                          "Rows and bad values per second per segment value"}
    # Every query of the Segments row (histograms included) is tagged: the drift e2e scenario has no segments.
    row = [q for q in catalog.panel_queries() if "segment value" in q.panel or "per segment" in q.panel]
    assert row and all(q.requires == catalog.SEGMENTS for q in row), [q.name for q in row if not q.requires]
    missing = [q.name for q in segment if catalog.render(
        q.expr, {promql.V_METRIC: "accuracy"}, rate_interval=rules_tests.QUERY_RATE_INTERVAL,
        range_=rules_tests.QUERY_RANGE) not in tested]
    assert not missing, missing
    alerts = {q.panel: q.requires for q in catalog.alert_queries()}
    assert alerts["MLSegmentDrift"] == alerts["MLSegmentDataQuality"] == catalog.SEGMENTS


def _e2e_catalog_checks() -> dict[str | None, list[str]]:
    """Per ``requires`` value, the e2e test modules that run tests/e2e/_catalog_checks.py's ``problems()`` on
    it (its second argument: ``None`` or ``catalog.<NAME>``), read from their source."""
    import ast

    checked: dict[str | None, list[str]] = {}
    for path in sorted((ROOT / "tests" / "e2e").glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "problems"):
                continue
            arg = node.args[1] if len(node.args) > 1 else next(k.value for k in node.keywords if k.arg == "requires")
            if isinstance(arg, ast.Constant) and arg.value is None:
                tag = None
            else:
                assert isinstance(arg, ast.Attribute) and isinstance(arg.value, ast.Name) \
                    and arg.value.id == "catalog", f"{path.name}: problems() needs None or catalog.<NAME>"
                tag = getattr(catalog, arg.attr)
            checked.setdefault(tag, []).append(path.name)
    return checked


def test_every_requires_value_of_the_catalog_is_checked_by_an_e2e_scenario():
    """Each query is proven against a real Prometheus by the e2e scenario that feeds what it requires: a new
    ``requires`` value (a new kind of data) cannot slip in without a scenario running its queries."""
    checked = _e2e_catalog_checks()
    tags = {q.requires for q in catalog.all_queries() + catalog.variable_queries()}
    assert tags >= {None, catalog.OUTCOMES, catalog.SEGMENTS, catalog.VERSION_OUTCOMES}, tags
    unchecked = tags - set(checked)
    assert not unchecked, f"no e2e test runs problems() on the queries requiring {sorted(map(str, unchecked))}"
    assert checked[catalog.SEGMENTS] == ["test_segment_drift.py"], checked
    assert checked[catalog.VERSION_OUTCOMES] == ["test_canary.py"], checked
