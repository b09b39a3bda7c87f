"""Generate the otel-ml Grafana dashboards and alert rules (dashboards as code).

    python -m dashboards.generate           # write every generated file
    python -m dashboards.generate --check   # exit 1 if a committed file differs from the generator

Dashboards are built with grafana-foundation-sdk (pinned to 0.0.21, which targets current Grafana); the
alert files are plain dicts (the SDK models Grafana's alerting *API* objects, not the file-provisioning
format, and has nothing for Prometheus rule files). Every query comes from :mod:`dashboards.promql`.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import yaml
from grafana_foundation_sdk.builders import (
    barchart,
    bargauge,
    common as cb,
    dashboard as db,
    heatmap,
    prometheus as prom,
    stat,
    statetimeline,
    table,
    timeseries,
)
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm, dashboard as dm, prometheus as pm

from dashboards import promql as q, rules as alerts, rules_tests
from otel_ml import semconv as sc
from otel_ml.stats import NO_VERDICT, STATISTICS, DriftPolicy, PerformancePolicy

# The classic dashboard model (schemaVersion 4x) is what Grafana imports and file-provisions everywhere;
# the SDK nudges towards its v2 model, which needs a recent Grafana with a feature flag.
warnings.filterwarnings("ignore", message="Prefer using dashboardv2", category=DeprecationWarning)

ROOT = Path(__file__).resolve().parent
GRAFANA_DIR = ROOT / "grafana"
RULES_FILE = ROOT / "alerts" / "otel-ml.rules.yml"
RULES_TEST_FILE = ROOT / "alerts" / "tests" / "otel-ml.test.yml"
QUERY_TEST_FILE = ROOT / "alerts" / "tests" / "dashboard-queries.test.yml"
GRAFANA_ALERTS_FILE = ROOT / "provisioning" / "alerting" / "otel-ml-alerts.yaml"

TAG = "otel-ml"
UID_OVERVIEW = alerts.OVERVIEW_UID
UID_FEATURE = "otel-ml-feature"
UID_SERVICE = "otel-ml-service"

DS = dm.DataSourceRef(type_val="prometheus", uid=f"${{{q.V_DATASOURCE}}}")

_METHOD_TITLES = {
    "psi": "PSI",
    "jensen_shannon": "Jensen-Shannon distance",
    "ks": "Kolmogorov-Smirnov (binned)",
    "wasserstein": "Wasserstein (reference std devs)",
    "total_variation": "Total variation distance",
    "chi_square": "Chi-square statistic",
}
#: One score panel per drift method the processor exports (the contract's ml.drift.method values), with
#: the statistic's default threshold from otel_ml.stats as a dashed line (none for chi-square, whose
#: threshold is on the p-value: see the p-value panel). The processor's configured policy (per model and
#: feature) decides the verdict, shown in the "Verdict" panel.
DRIFT_SCORE_PANELS = tuple(
    (name, _METHOD_TITLES.get(name, name),
     STATISTICS[name].default_threshold if STATISTICS[name].higher_is_drift else None)
    for name in q.DRIFT_METHODS
)
P_VALUE_ALPHA = DriftPolicy().alpha
MIN_OUTCOMES = PerformancePolicy().min_samples
MIN_ROWS = DriftPolicy().min_samples


# --- Small builders ----------------------------------------------------------------------------------
def target(expr: str, legend: str = "", ref: str = "A", *, exemplar: bool = False, instant: bool = False,
           fmt: pm.PromQueryFormat | None = None) -> prom.Dataquery:
    t = prom.Dataquery().expr(expr).ref_id(ref).datasource(DS).legend_format(legend or "__auto")
    t = t.instant() if instant else t.range()
    if exemplar:
        t = t.exemplar(True)
    if fmt is not None:
        t = t.format(fmt)
    return t


def targets(*specs: tuple[str, str], exemplar: bool = False) -> list[prom.Dataquery]:
    return [target(expr, legend, chr(ord("A") + i), exemplar=exemplar) for i, (expr, legend) in
            enumerate(specs)]


def legend_table() -> cb.VizLegendOptions:
    return (cb.VizLegendOptions().display_mode(cm.LegendDisplayMode.TABLE)
            .placement(cm.LegendPlacement.BOTTOM).show_legend(True).calcs(["lastNotNull", "max"]))


def ts(title: str, description: str, tgts: list[prom.Dataquery], unit: str = "short", *,
       span: int = 12, height: int = 8, thresholds: list[tuple[float | None, str]] | None = None,
       axis_min: float | None = None) -> timeseries.Panel:
    p = (timeseries.Panel().title(title).description(description).datasource(DS).targets(tgts)
         .unit(unit).span(span).height(height).legend(legend_table())
         .tooltip(cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.DESCENDING))
         .line_width(1).fill_opacity(10).show_points(cm.VisibilityMode.NEVER))
    if axis_min is not None:
        p = p.axis_soft_min(axis_min)
    if thresholds:
        p = (p.thresholds(_thresholds(thresholds))
             .thresholds_style(cb.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.DASHED)))
    return p


def _thresholds(steps: list[tuple[float | None, str]]) -> db.ThresholdsConfig:
    return (db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE)
            .steps([dm.Threshold(value=v, color=c) for v, c in steps]))


def _state_mappings(ok: str, bad: str, *, no_verdict: bool = False) -> list[dm.ValueMapping]:
    options = {
        "0": dm.ValueMappingResult(text=ok, color="green", index=0),
        "1": dm.ValueMappingResult(text=bad, color="red", index=1),
    }
    if no_verdict:  # a verdict exported as NO_VERDICT (rather than as no point): shown, never green
        options[str(NO_VERDICT)] = dm.ValueMappingResult(text="no verdict", color="#808080", index=2)
    return [dm.ValueMap(options=options)]


def state_timeline(title: str, description: str, tgt: prom.Dataquery, ok: str, bad: str, *,
                   span: int = 24, height: int = 10, links: list[db.DashboardLink] | None = None,
                   no_verdict: bool = False) -> statetimeline.Panel:
    p = (statetimeline.Panel().title(title).description(description).datasource(DS).targets([tgt])
            .span(span).height(height).mappings(_state_mappings(ok, bad, no_verdict=no_verdict))
            .thresholds(_thresholds([(None, "green"), (1, "red")]))
            .color_scheme(db.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS))
            .merge_values(True).show_value(cm.VisibilityMode.NEVER).row_height(0.8)
            .legend(cb.VizLegendOptions().show_legend(False)))
    return p.data_links(links) if links else p


def row(title: str) -> db.Row:
    return db.Row(title)


# --- Variables, annotations, links ----------------------------------------------------------------
def _query_var(name: str, label: str, *, multi: bool = True, include_all: bool = True,
               current: str | None = None) -> db.QueryVariable:
    v = (db.QueryVariable(name).label(label).datasource(DS)
         .query({"query": q.VARIABLE_QUERIES[name], "refId": f"{name}-variable"})
         .definition(q.VARIABLE_QUERIES[name])
         .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(dm.VariableSort.ALPHABETICAL_ASC)
         .multi(multi).include_all(include_all))
    if include_all:
        v = v.all_value(".*")
    if current is not None:
        v = v.current(dm.VariableOption(text=current, value=current))
    elif include_all:
        v = v.current(dm.VariableOption(text="All", value="$__all"))
    return v


def variables(*extra: str) -> list[db.QueryVariable | db.DatasourceVariable]:
    out: list[Any] = [
        db.DatasourceVariable(q.V_DATASOURCE).label("Data source").type("prometheus"),
        _query_var(q.V_SERVICE, "Service"),
        _query_var(q.V_MODEL, "Model"),
        _query_var(q.V_VERSION, "Version"),
    ]
    for name in extra:
        if name == q.V_FEATURE:
            out.append(_query_var(name, "Feature", multi=False, include_all=False))
        elif name == q.V_WINDOW:
            out.append(_query_var(name, "Drift window"))
        elif name == q.V_METHOD:
            out.append(_query_var(name, "Drift method", multi=False, include_all=False, current="psi"))
        elif name == q.V_METRIC:
            out.append(_query_var(name, "Performance metric", multi=False, include_all=False,
                                  current=DEFAULT_METRIC))
    return out


def version_annotation() -> db.AnnotationQuery:
    return (db.AnnotationQuery().name("Model version changes").datasource(DS).enable(True)
            .icon_color("purple").expr(q.version_changes()).step("1m")
            .title_format("{{%s}} {{%s}} starts serving" % (q.MODEL, q.VERSION))
            .tag_keys(f"{q.MODEL},{q.VERSION}").text_format("New model version in the selected services"))


def links() -> list[db.DashboardLink]:
    return [db.DashboardLink("otel-ml dashboards").type(dm.DashboardLinkType.DASHBOARDS).tags([TAG])
            .as_dropdown(True).include_vars(True).keep_time(True)]


def dashboard(uid: str, title: str, description: str, extra_vars: tuple[str, ...]) -> db.Dashboard:
    d = (db.Dashboard(title).uid(uid).description(description).tags([TAG]).editable()
         .time("now-3h", "now").refresh("1m").timezone("browser")
         .tooltip(dm.DashboardCursorSync.CROSSHAIR)
         .annotation(version_annotation()))
    for v in variables(*extra_vars):
        d = d.with_variable(v)
    for link in links():
        d = d.link(link)
    return d


def drilldown_link() -> list[db.DashboardLink]:
    """A data link from a per-feature series to the feature drill-down, with its model/version/feature."""
    url = (f"/d/{UID_FEATURE}/?${{{q.V_DATASOURCE}:queryparam}}&${{{q.V_SERVICE}:queryparam}}"
           f"&var-{q.V_MODEL}=${{__field.labels.{q.MODEL}}}&var-{q.V_VERSION}=${{__field.labels.{q.VERSION}}}"
           f"&var-{q.V_FEATURE}=${{__field.labels.{q.FEATURE}}}&${{__url_time_range}}")
    return [db.DashboardLink("Feature drill-down").type(dm.DashboardLinkType.LINK).url(url)]


VERSION_LEGEND = "{{%s}} {{%s}}" % (q.MODEL, q.VERSION)
WINDOW_LEGEND = "{{%s}} {{%s}} {{%s}}" % (q.MODEL, q.VERSION, q.WINDOW)
#: The performance metric the overview opens with.
DEFAULT_METRIC = "accuracy"
FEATURE_LEGEND = "{{%s}} {{%s}} {{%s}}" % (q.VERSION, q.KIND, q.FEATURE)


#: The processor's self-telemetry gauges, all on one panel (a gauge added to semconv appears there).
_TELEMETRY_GAUGES = {name: m for name, m in sc.PROCESSOR_TELEMETRY.items() if m.instrument == "gauge"}


def _short(name: str) -> str:
    """``otel_ml.processor.state.bytes`` -> ``state bytes``."""
    return name.removeprefix("otel_ml.processor.").replace(".", " ").replace("_", " ")


# --- 1. ML model overview ----------------------------------------------------------------------------
def overview() -> db.Dashboard:
    d = dashboard(UID_OVERVIEW, "otel-ml / ML model overview",
                  "Traffic, latency, errors, drift and data quality of every model version side by side.",
                  (q.V_WINDOW, q.V_METHOD, q.V_METRIC))
    d = d.with_row(row("Traffic, latency and errors per model version"))
    d = d.with_panel(ts(
        "Predictions per second",
        "Rows predicted per second (ml.predict.rows) and predict calls per second, per model version.",
        targets((q.predictions_per_second(), f"{VERSION_LEGEND} rows/s"),
                (q.predict_calls_per_second(), f"{VERSION_LEGEND} calls/s")),
        "reqps", span=8))
    d = d.with_panel(ts(
        "Traffic share per version",
        "Each version's share of its model's rows: a canary and the stable version side by side.",
        targets((q.traffic_share(), VERSION_LEGEND)), "percentunit", span=8, axis_min=0))
    d = d.with_panel(ts(
        "Predict error ratio",
        "Share of predict calls that raised (ml.predict.duration with error.type).",
        targets((q.predict_error_ratio(), VERSION_LEGEND)), "percentunit", span=8, axis_min=0))
    d = d.with_panel(ts(
        "Predict latency p50 / p95 / p99",
        "Quantiles of ml.predict.duration per version. Exemplars link to the predict spans' traces.",
        targets((q.predict_latency(0.5), f"p50 {VERSION_LEGEND}"),
                (q.predict_latency(0.95), f"p95 {VERSION_LEGEND}"),
                (q.predict_latency(0.99), f"p99 {VERSION_LEGEND}"), exemplar=True),
        "s", span=24))

    d = d.with_row(row("Drift"))
    d = d.with_panel(state_timeline(
        "Drift status per feature",
        "The processor's verdict (ml.drift.detected) for every input feature and output over time, in any "
        "of the selected windows. Gaps: below the minimum sample size, no verdict.",
        target(q.drift_status(), FEATURE_LEGEND), "OK", "Drift", height=10, links=drilldown_link()))
    d = d.with_panel(
        bargauge.Panel().title("Top drifting features ($method, $window)")
        .description("The ten largest current drift scores of the selected method.")
        .datasource(DS).targets([target(q.top_drifting(), FEATURE_LEGEND, instant=True)])
        .span(12).height(9).orientation(cm.VizOrientation.HORIZONTAL)
        .display_mode(cm.BarGaugeDisplayMode.GRADIENT).min(0)
        .thresholds(_thresholds([(None, "green"), (0.1, "yellow"), (0.2, "red")]))
        .color_scheme(db.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS))
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .data_links(drilldown_link()))
    d = d.with_panel(ts(
        "Drifting features per version",
        "How many features and outputs of each version are judged drifted right now.",
        targets((q.drifting_count(), VERSION_LEGEND), exemplar=True), "short", span=12, height=9,
        axis_min=0))

    d = d.with_panel(ts(
        "Multivariate drift score and outlier share ($method, $window)",
        f"The multivariate stream {sc.RECONSTRUCTION_ERROR_FEATURE} (each row's PCA reconstruction error "
        "against the reference; docs/statistics.md): its drift score, and the share of rows beyond the "
        "reference's outlier threshold (about 0.1 % in training). Its verdicts show in 'Drift status per "
        "feature' and 'Data-quality alarm' under that name; the predict spans carry ml.outlier.max_score.",
        targets((q.multivariate_score(), "{{%s}} multivariate score" % q.VERSION),
                (q.outlier_share(), "{{%s}} outlier share" % q.VERSION)),
        "short", span=24, axis_min=0))
    d = d.with_panel(ts(
        "Predicted class share per version",
        "Share of each predicted class (ml.prediction.class.count) per version: classifiers returning labels.",
        targets((q.prediction_shares(), "{{%s}} {{%s}}" % (q.VERSION, q.PRED_CLASS))),
        "percentunit", span=12, axis_min=0))
    d = d.with_panel(ts(
        "Prediction value p50 / p90 per version",
        "Quantiles of the model's numeric outputs (ml.prediction.value: regression values or class "
        "probabilities) per version.",
        targets((q.prediction_value_quantile(0.5), "p50 {{%s}} {{%s}}" % (q.VERSION, q.PRED_NAME)),
                (q.prediction_value_quantile(0.9), "p90 {{%s}} {{%s}}" % (q.VERSION, q.PRED_NAME))),
        "short", span=12))

    d = realized_performance(d)
    d = segments_view(d)
    d = versions_side_by_side(d)

    d = d.with_row(row("Data quality"))
    d = d.with_panel(ts(
        "Data-quality ratios (processor window)",
        "Missing, invalid, out-of-range and unseen-category shares per feature over the processor's "
        "evaluation window. No fixed threshold: the processor judges each share against the reference's own "
        "(see 'Data-quality alarm').",
        targets(*[(q.quality_ratio(name), f"{{{{{q.VERSION}}}}} {{{{{q.FEATURE}}}}} {short}")
                  for short, name in q.QUALITY_RATIOS.items()]),
        "percentunit", span=12, axis_min=0))
    by_feature = f"{q.MODEL}, {q.VERSION}, {q.FEATURE}"
    d = d.with_panel(ts(
        "Bad values per second (library)",
        "Missing, invalid, out-of-range and unseen values counted at the edge, and schema violations.",
        targets((q.event_rate(sc.FEATURE_MISSING, by_feature), "{{%s}} {{%s}} missing" % (q.VERSION, q.FEATURE)),
                (q.event_rate(sc.FEATURE_INVALID, by_feature), "{{%s}} {{%s}} invalid" % (q.VERSION, q.FEATURE)),
                (q.event_rate(sc.FEATURE_OUT_OF_RANGE, by_feature),
                 "{{%s}} {{%s}} out of range" % (q.VERSION, q.FEATURE)),
                (q.event_rate(sc.FEATURE_UNSEEN, by_feature), "{{%s}} {{%s}} unseen" % (q.VERSION, q.FEATURE)),
                (q.event_rate(sc.SCHEMA_VIOLATIONS, f"{q.MODEL}, {q.VERSION}, {q.SCHEMA_VIOLATION}"),
                 "{{%s}} schema {{%s}}" % (q.VERSION, q.SCHEMA_VIOLATION))),
        "short", span=12, axis_min=0))
    d = d.with_panel(state_timeline(
        "Data-quality alarm",
        "The processor's data-quality verdict (ml.quality.alarm) per feature.",
        target(q.gauge(sc.QUALITY_ALARM, by=f"{q.MODEL}, {q.VERSION}, {q.FEATURE}"),
               "{{%s}} {{%s}}" % (q.VERSION, q.FEATURE)), "OK", "Alarm", span=18, height=8,
        links=drilldown_link()))
    d = d.with_panel(
        stat.Panel().title("otel-ml internal errors").datasource(DS)
        .description("Failures inside otel-ml itself (ml.instrumentation.errors), per second; should be 0.")
        .targets([target(q.event_rate(sc.INSTRUMENTATION_ERRORS), VERSION_LEGEND)])
        .span(6).height(8).unit("short")
        .thresholds(_thresholds([(None, "green"), (1e-9, "red")]))
        .color_scheme(db.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS))
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False)))
    d = d.with_panel(ts(
        "Prediction records sent / dropped per second",
        "Per-prediction records (OTLP logs, for joining outcomes) the library sent (ml.prediction.records), "
        "and records it could not send, by reason (ml.records.dropped: queue_full, no_id_secret, "
        "export_failed, invalid). Empty unless a model is monitored with prediction_id.",
        targets((q.event_rate(sc.PREDICTION_RECORDS), "{{%s}} sent" % q.VERSION),
                (q.event_rate(sc.RECORDS_DROPPED, f"{q.MODEL}, {q.VERSION}, {q.ERROR_TYPE}"),
                 "{{%s}} dropped {{%s}}" % (q.VERSION, q.ERROR_TYPE))),
        "short", span=12, axis_min=0))

    d = d.with_row(row("otel-ml processor"))
    proc = "{{%s}} {{%s}}" % (q.JOB, q.INSTANCE)
    d = d.with_panel(ts(
        "Points received / rejected per second",
        "OTLP data points the processor received, and those it rejected (by reason, e.g. bounds that "
        "differ from the reference's edges).",
        targets((q.processor_rate(sc.PROCESSOR_POINTS_RECEIVED), f"{proc} received"),
                (q.processor_rate(sc.PROCESSOR_POINTS_REJECTED, f"{q.JOB}, {q.INSTANCE}, {q.ERROR_TYPE}"),
                 f"{proc} rejected {{{{{q.ERROR_TYPE}}}}}"),
                (q.processor_rate(sc.PROCESSOR_EXPORT_FAILURES, f"{q.JOB}, {q.INSTANCE}, {q.ERROR_TYPE}"),
                 f"{proc} export failures {{{{{q.ERROR_TYPE}}}}}")),
        "short", span=8, axis_min=0))
    d = d.with_panel(ts(
        "Streams tracked and state size",
        "Every gauge of the processor's self-telemetry (semconv.PROCESSOR_TELEMETRY): "
        + "; ".join(f"{_short(name)}: {m.description}" for name, m in _TELEMETRY_GAUGES.items()) + ".",
        targets(*[(q.processor_gauge(name), f"{proc} {_short(name)}") for name in _TELEMETRY_GAUGES]),
        "short", span=8, axis_min=0))
    d = d.with_panel(ts(
        "Evaluation duration p50 / p95",
        "Time one evaluation of every stream takes.",
        targets((q.processor_evaluation_duration(0.5), f"p50 {proc}"),
                (q.processor_evaluation_duration(0.95), f"p95 {proc}")),
        "s", span=8, axis_min=0))
    return d


def _dashed(dash: list[int], width: int) -> list[dm.DynamicConfigValue]:
    return [dm.DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dash", "dash": dash}),
            dm.DynamicConfigValue(id_val="custom.lineWidth", value=width),
            dm.DynamicConfigValue(id_val="custom.fillOpacity", value=0)]


REALIZED_ROW = "Realized performance (outcomes joined to predictions)"


PAIR_LEGEND = "{{%s}} {{%s}} vs {{%s}}" % (q.MODEL, q.VERSION, q.BASELINE)


def versions_side_by_side(d: db.Dashboard) -> db.Dashboard:
    """Candidate model versions judged against their baseline version's traffic (ml.version.drift.*)."""
    d = d.with_row(row("Versions side by side"))
    d = d.with_panel(state_timeline(
        "Candidate vs baseline per output and feature",
        "The processor's verdict (ml.version.drift.detected) for each candidate version against its baseline "
        "version (ml.model.baseline_version), per output (prediction distribution) and feature (traffic mix), "
        "in any of the selected windows. Same rules as drift; gaps: either side below the minimum sample size.",
        target(q.version_drift_status(), "%s {{%s}} {{%s}}" % (PAIR_LEGEND, q.KIND, q.FEATURE)),
        "Same", "Differs", height=8))
    d = d.with_panel(ts(
        "Outputs and features differing from the baseline",
        "How many outputs and features of each candidate version differ from its baseline right now.",
        targets((q.version_differing_count(), PAIR_LEGEND)), "short", span=12, axis_min=0))
    d = d.with_panel(ts(
        "Candidate vs baseline distance ($method)",
        "The selected method's distance (ml.version.drift.score) between candidate and baseline per output "
        "and feature and window.",
        targets((q.version_drift_score(), "%s {{%s}} {{%s}}" % (PAIR_LEGEND, q.FEATURE, q.WINDOW))),
        "short", span=12, axis_min=0))
    d = d.with_panel(ts(
        "Realized $metric: candidate − baseline",
        "Where outcomes are joined for both versions: the candidate's realized metric minus the baseline's "
        "(ml.version.performance.gap) per window, and the verdict (ml.version.performance.degraded: 1 worse "
        "beyond the tolerance and significant, 0 not, -1 too few outcomes on either side).",
        targets((q.version_performance(), "%s {{%s}} gap" % (PAIR_LEGEND, q.WINDOW)),
                (q.version_performance(sc.VERSION_PERFORMANCE_DEGRADED), "%s {{%s}} worse" % (PAIR_LEGEND, q.WINDOW))),
        "short", span=24))
    return d


def realized_performance(d: db.Dashboard) -> db.Dashboard:
    """The overview's row of realized performance: the processor's ground-truth metrics."""
    d = d.with_row(row(REALIZED_ROW))
    d = d.with_panel(
        ts("Realized and estimated $metric vs reference",
           "The chosen metric (ml.performance.value) on the pairs joined in each window, per model version; "
           "thin dashed: its 95 % interval (ml.performance.lower / upper); thick dashed: the reference's "
           "holdout value (ml.performance.reference). Pairs count in the window in which their outcome "
           "arrived (join time). log_loss and mae carry exemplars: the traces of the worst-scored predictions. "
           "Dotted: the estimate without labels (ml.performance.estimated, binary classifiers whose reference "
           "has calibration; accuracy, f1, roc_auc) with its interval, from the predicted probabilities alone: "
           "valid under covariate shift only, blind to concept drift -- a realized value below the estimate "
           "means the relation between inputs and labels changed.",
           [target(q.performance(), WINDOW_LEGEND, "A", exemplar=True),
            target(q.performance(sc.PERFORMANCE_LOWER), f"{WINDOW_LEGEND} lower", "B"),
            target(q.performance(sc.PERFORMANCE_UPPER), f"{WINDOW_LEGEND} upper", "C"),
            target(q.performance(sc.PERFORMANCE_REFERENCE), f"{VERSION_LEGEND} reference", "D"),
            target(q.estimated(), f"{WINDOW_LEGEND} estimated", "E"),
            target(q.estimated(sc.PERFORMANCE_ESTIMATED_LOWER), f"{WINDOW_LEGEND} estimated lower", "F"),
            target(q.estimated(sc.PERFORMANCE_ESTIMATED_UPPER), f"{WINDOW_LEGEND} estimated upper", "G")],
           "short", span=16, height=9)
        .override_by_query("B", _dashed([2, 4], 1)).override_by_query("C", _dashed([2, 4], 1))
        .override_by_query("E", _dashed([1, 3], 2)).override_by_query("F", _dashed([1, 6], 1))
        .override_by_query("G", _dashed([1, 6], 1))
        .override_by_query("D", _dashed([10, 6], 2)))
    d = d.with_panel(state_timeline(
        "Performance verdict",
        "The processor's degradation verdict (ml.performance.degraded) per version, metric and window: "
        "Degraded needs both a significant drop against the reference and a drop beyond the tolerance. "
        f"'no verdict': fewer than {MIN_OUTCOMES} joined outcomes in the window, or a reference without "
        "holdout performance.",
        target(q.performance_degraded(), "{{%s}} {{%s}} {{%s}}" % (q.VERSION, q.PERF_METRIC, q.WINDOW)),
        "OK", "Degraded", span=8, height=9, no_verdict=True))
    d = d.with_panel(ts(
        "Joined outcomes per window",
        "Prediction/outcome pairs in each window (ml.performance.sample_count); dashed: the minimum for a "
        "verdict.", targets((q.window_gauge(sc.PERFORMANCE_SAMPLE_COUNT), WINDOW_LEGEND)),
        "short", span=8, axis_min=0, thresholds=[(None, "red"), (MIN_OUTCOMES, "green")]))
    d = d.with_panel(ts(
        "Label coverage",
        "Pairs joined in the window / predictions with ids received in the window "
        "(ml.outcome.coverage.ratio). Low while labels are still on their way, above 100 % while labels of "
        "earlier predictions catch up; a drop to 0 means outcomes stopped arriving.",
        targets((q.window_gauge(sc.OUTCOME_COVERAGE_RATIO), WINDOW_LEGEND)),
        "percentunit", span=8, axis_min=0))
    d = d.with_panel(ts(
        "Label delay: mean, p50 / p90 / p99",
        "Outcome time minus prediction time of the pairs joined recently (ml.label.delay). The quantiles "
        "interpolate inside the histogram's buckets (decades from 1 s to 30 d: coarse); the mean is exact.",
        targets((q.label_delay(0.5), f"p50 {VERSION_LEGEND}"), (q.label_delay(0.9), f"p90 {VERSION_LEGEND}"),
                (q.label_delay(0.99), f"p99 {VERSION_LEGEND}"), (q.label_delay_mean(), f"mean {VERSION_LEGEND}")),
        "s", span=8, axis_min=0))
    by_reason = f"{q.MODEL}, {q.VERSION}, {q.ERROR_TYPE}"
    d = d.with_panel(ts(
        "Outcomes joined / unmatched / expired / duplicate / rejected per second",
        "Pairs joined (ml.outcome.joined); outcomes that never found their prediction (ml.outcome.unmatched) "
        "and predictions whose outcome never came (ml.prediction.expired), by reason (ttl, cap); duplicate "
        "outcomes; records the processor refused (ml.outcome.rejected, by error.type, per model); segment "
        "slices and segment streams left out by state.max_segment_series (ml.segment.overflow).",
        targets((q.rate(sc.OUTCOMES_JOINED, by=q.BY_VERSION, base=q.EVAL), "{{%s}} joined" % q.VERSION),
                (q.outcome_rate(sc.OUTCOMES_UNMATCHED, by_reason),
                 "{{%s}} unmatched {{%s}}" % (q.VERSION, q.ERROR_TYPE)),
                (q.outcome_rate(sc.PREDICTIONS_EXPIRED, by_reason),
                 "{{%s}} expired {{%s}}" % (q.VERSION, q.ERROR_TYPE)),
                (q.outcome_rate(sc.OUTCOMES_DUPLICATES), "{{%s}} duplicate" % q.VERSION),
                (q.outcome_rate(sc.OUTCOMES_REJECTED, f"{q.MODEL}, {q.ERROR_TYPE}", {q.MODEL: f"${q.V_MODEL}"}),
                 "{{%s}} rejected {{%s}}" % (q.MODEL, q.ERROR_TYPE)),
                (q.outcome_rate(sc.SEGMENT_OVERFLOW), "{{%s}} segments over budget" % q.VERSION)),
        "short", span=12, axis_min=0))
    merge = dm.DataTransformerConfig(id_val="merge", options={})
    rename = dm.DataTransformerConfig(id_val="organize", options={
        "excludeByName": {"Time": True},
        "renameByName": {"Value #A": "observed", "Value #B": "perfectly calibrated"}})
    d = d.with_panel(
        barchart.Panel().title("Calibration: observed vs predicted ($window, latest)")
        .description("Observed positive rate of the joined pairs per reliability bin (ml.calibration.observed; "
                     "x: the bin's upper predicted probability) beside perfect calibration (the bin's centre). "
                     "Bars below the diagonal: the model is over-confident there. Binary classifiers; choose "
                     "one version and window (with several, the highest observed rate per bin is shown).")
        .datasource(DS)
        .targets([target(q.calibration_observed(), "observed", "A", instant=True, fmt=pm.PromQueryFormat.TABLE),
                  target(q.calibration_diagonal(), "perfectly calibrated", "B", instant=True,
                         fmt=pm.PromQueryFormat.TABLE)])
        .with_transformation(merge).with_transformation(rename)
        .with_transformation(_sort_by("perfectly calibrated", desc=False))
        .x_field(q.BUCKET_LE).unit("percentunit").min(0).max(1).span(12).height(9)
        .legend(cb.VizLegendOptions().show_legend(True).placement(cm.LegendPlacement.BOTTOM)
                .display_mode(cm.LegendDisplayMode.LIST)))
    return worst_segments(d)


#: Columns of the worst-segments table: query ref -> (segment gauge, column title).
_SEGMENT_COLUMNS = {
    "A": (sc.SEGMENT_PERFORMANCE_RANK, "rank"),
    "B": (sc.SEGMENT_PERFORMANCE_GAP, "gap (segment − rest)"),
    "C": (sc.SEGMENT_PERFORMANCE_VALUE, "segment value"),
    "D": (sc.SEGMENT_PERFORMANCE_LOWER, "lower"),
    "E": (sc.SEGMENT_PERFORMANCE_UPPER, "upper"),
    "F": (sc.SEGMENT_SAMPLE_COUNT, "outcomes"),
    "G": (sc.SEGMENT_PERFORMANCE_DEGRADED, "degraded"),
}


def worst_segments(d: db.Dashboard) -> db.Dashboard:
    """The overview's table of the worst segment slices (realized performance against the rest)."""
    merge = dm.DataTransformerConfig(id_val="merge", options={})
    rename = dm.DataTransformerConfig(id_val="organize", options={
        "excludeByName": {"Time": True},
        "renameByName": {f"Value #{ref}": title for ref, (_, title) in _SEGMENT_COLUMNS.items()}})
    d = d.with_panel(
        table.Panel().title(f"Worst segments ($window, top {q.WORST_SEGMENTS})")
        .description("Segment slices (monitor(segments=...): ml.segment.name = value) whose realized metric is "
                     "worst relative to the rest of the window, as the processor ranks them "
                     "(ml.segment.performance.rank, 1 = worst, among the slices with a verdict). gap: segment − rest "
                     "(accuracy: negative is worse; mae: positive is worse); lower / upper: the segment value's "
                     "95 % interval; "
                     "degraded: 1 significantly worse than the rest by more than the tolerance, 0 not "
                     f"(Holm-corrected across the version's segments); slices with fewer than {MIN_OUTCOMES} "
                     "outcomes have no verdict and no rank. Slices beyond state.max_segment_series are counted in "
                     "ml.segment.overflow (panel 'Outcomes joined / ...').")
        .datasource(DS)
        .targets([target(q.worst_segments(name), title, ref, instant=True, fmt=pm.PromQueryFormat.TABLE)
                  for ref, (name, title) in _SEGMENT_COLUMNS.items()])
        .with_transformation(merge).with_transformation(rename)
        .with_transformation(_sort_by("rank", desc=False))
        .span(24).height(9))
    return d


SEGMENTS_ROW = "Segments: where the model drifts or its data degrades"
#: Columns of the all-signals worst-segments table: query ref -> (segment gauge, aggregation, column title).
_ALL_SIGNALS_COLUMNS = {
    "A": (sc.SEGMENT_DRIFT_RANK, "min", "drift rank"),
    "B": (sc.SEGMENT_DRIFT_SCORE, "max", "drift score"),
    "C": (sc.SEGMENT_DRIFT_SCORE_LOWER, "max", "drift lower"),
    "D": (sc.SEGMENT_DRIFT_SCORE_UPPER, "max", "drift upper"),
    "E": (sc.SEGMENT_DRIFT_DETECTED, "max", "drifted"),
    "F": (sc.SEGMENT_QUALITY_RANK, "max", "quality rank"),
    "G": (sc.SEGMENT_QUALITY_RATIO, "max", "worst quality ratio"),
    "H": (sc.SEGMENT_QUALITY_RATIO_LOWER, "max", "quality lower"),
    "I": (sc.SEGMENT_QUALITY_RATIO_UPPER, "max", "quality upper"),
    "J": (sc.SEGMENT_QUALITY_ALARM, "max", "quality alarm"),
    "K": (sc.SEGMENT_PERFORMANCE_RANK, "max", "performance rank"),
    "L": (sc.SEGMENT_PERFORMANCE_GAP, "max", "performance gap"),
}


def segments_view(d: db.Dashboard) -> db.Dashboard:
    """The overview's segment row: the worst segment values by drift, data quality and performance, the
    drift of the most drifted ones, the quality of the worst ones, and the traffic mix per column."""
    d = d.with_row(row(SEGMENTS_ROW))
    merge = dm.DataTransformerConfig(id_val="merge", options={})
    rename = dm.DataTransformerConfig(id_val="organize", options={
        "excludeByName": {"Time": True},
        "renameByName": {f"Value #{ref}": title for ref, (_, _, title) in _ALL_SIGNALS_COLUMNS.items()}})
    d = d.with_panel(
        table.Panel().title(f"Worst segments by drift, data quality and performance ($window, top {q.WORST_SEGMENTS})")
        .description("Segment values (monitor(segments=...): ml.segment.name = value) among the "
                     f"{q.WORST_SEGMENTS} worst of the model version and window by any signal, as the processor "
                     "ranks them (1 = worst among the values with a verdict): output drift against the reference's "
                     "profile of that segment value (ml.segment.drift.rank / score: Wasserstein distance in "
                     "reference SDs, or total variation; drifted 1/0/-1), data quality (ml.segment.quality.rank: by "
                     "the rise of a quality ratio over the segment's reference ratio; alarm 1/0/-1), realized "
                     "performance (ml.segment.performance.rank / gap, with outcomes). lower / upper: 95 % intervals "
                     "(drift score: seeded bootstrap, biased upward near 0; quality ratio: Wilson), each the largest "
                     "over the value's outputs or quality kinds, as the score and ratio columns are, and only "
                     "for values with a verdict. -1: no verdict (fewer than "
                     f"{MIN_ROWS} rows of the segment in the window, or no profile of the value in the reference). "
                     "Holm-corrected across the segments of the model version and window.")
        .datasource(DS)
        .targets([target(q.worst_segments_all(name, agg), title, ref, instant=True, fmt=pm.PromQueryFormat.TABLE)
                  for ref, (name, agg, title) in _ALL_SIGNALS_COLUMNS.items()])
        .with_transformation(merge).with_transformation(rename)
        .with_transformation(_sort_by("drift score", desc=True))
        .span(24).height(9))
    seg_legend = "{{%s}} {{%s}} {{%s}}={{%s}}" % (q.MODEL, q.VERSION, q.SEG_NAME, q.SEG_VALUE)
    d = d.with_panel(ts(
        f"Output drift per segment ($window, top {q.WORST_SEGMENTS})",
        "Drift score (ml.segment.drift.score) of each output on the most drifted segment values: the output "
        "distribution of the segment's rows against the reference's for that value (numeric: binned Wasserstein "
        "distance in reference SDs; categorical: total variation). A segment can drift while the overall "
        "output does not: the average hides it.",
        [target(q.segment_drift_score(), seg_legend + " {{%s}}" % q.PRED_NAME)], "short", span=12, axis_min=0))
    d = d.with_panel(ts(
        f"Data quality per segment ($window, top {q.WORST_SEGMENTS})",
        "Quality ratios (ml.segment.quality.ratio, by ml.quality.kind: bad values / (segment rows x features)) "
        "of the segment values whose quality rose most over their reference ratio; kinds at 0 are left out.",
        [target(q.segment_quality_ratio(), seg_legend + " {{%s}}" % q.QUALITY_KIND)], "percentunit", span=12,
        axis_min=0))
    value_legend = "{{%s}} {{%s}} {{%s}}={{%s}}" % (q.MODEL, q.VERSION, q.SEG_NAME, q.SEG_VALUE)
    d = d.with_panel(ts(
        "Rows and bad values per second per segment value",
        "As the monitored services count them: rows of each segment value (ml.segment.rows) and its missing, "
        "invalid, out-of-range and unseen values summed over the features (ml.segment.feature.*).",
        targets((q.segment_rate(sc.SEGMENT_ROWS), f"{value_legend} rows"),
                *((q.segment_rate(sc.SEGMENT_QUALITY_COUNTERS[k]), f"{value_legend} {k.replace('_', ' ')}")
                  for k in sc.QUALITY_KINDS)),
        "short", span=12, axis_min=0))
    d = d.with_panel(ts(
        "Outputs per segment value",
        "Median of each numeric output per segment value (ml.segment.prediction.value, interpolated inside the "
        "reference's buckets) and predicted classes per second (ml.segment.prediction.class.count).",
        targets((q.segment_output_median(), f"{value_legend} {{{{{q.PRED_NAME}}}}} median"),
                (q.segment_class_rate(), f"{value_legend} {{{{{q.PRED_NAME}}}}}={{{{{q.PRED_CLASS}}}}}/s")),
        "short", span=12))
    d = d.with_panel(state_timeline(
        "Segment mix per column ($window)",
        "The processor's verdict on each segment column's traffic mix (ml.segment.mix.detected): the window's "
        "rows over the column's values against the reference's rows (1: the mix moved, 0: not, no verdict: "
        "too few rows or no segment profile).",
        target(q.segment_mix(), "{{%s}} {{%s}} {{%s}}" % (q.MODEL, q.VERSION, q.SEG_NAME)),
        "Same mix", "Mix moved", height=6, no_verdict=True))
    return d


# --- 2. Feature drill-down -----------------------------------------------------------------------------
def feature() -> db.Dashboard:
    d = dashboard(UID_FEATURE, "otel-ml / Feature drill-down",
                  "One feature of one model: reference vs current distribution, drift scores and their "
                  "thresholds, data quality.", (q.V_FEATURE, q.V_WINDOW))
    d = d.with_row(row("Distribution of $feature"))
    cdf = [target(q.feature_cdf_current(), "current", "A", instant=True, fmt=pm.PromQueryFormat.TABLE)]
    cat = [target(q.category_share_current(), "current", "A", instant=True, fmt=pm.PromQueryFormat.TABLE)]
    ref_cdf, ref_cat = q.feature_cdf_reference(), q.category_share_reference()
    if ref_cdf and ref_cat:
        cdf.append(target(ref_cdf, "reference", "B", instant=True, fmt=pm.PromQueryFormat.TABLE))
        cat.append(target(ref_cat, "reference", "B", instant=True, fmt=pm.PromQueryFormat.TABLE))
    merge = dm.DataTransformerConfig(id_val="merge", options={})
    rename = dm.DataTransformerConfig(id_val="organize", options={
        "excludeByName": {"Time": True},
        "renameByName": {"Value #A": "current", "Value #B": "reference", "Value": "current"}})
    d = d.with_panel(
        barchart.Panel().title("Cumulative distribution: current vs reference")
        .description("Share of values at or below each reference bin edge (le) over the dashboard's time "
                     "range, next to the reference profile's. The largest vertical gap is the binned KS "
                     "statistic. Numeric features.")
        .datasource(DS).targets(cdf).with_transformation(merge).with_transformation(rename)
        .with_transformation(_sort_by("current", desc=False))
        .x_field(q.LE).unit("percentunit").min(0).max(1).span(12).height(9)
        .legend(cb.VizLegendOptions().show_legend(True).placement(cm.LegendPlacement.BOTTOM)
                .display_mode(cm.LegendDisplayMode.LIST))
        .x_tick_label_rotation(-45))
    d = d.with_panel(
        barchart.Panel().title("Category shares: current vs reference")
        .description("Share of each reference category (and __other__) over the time range. Categorical "
                     "features.")
        .datasource(DS).targets(cat).with_transformation(merge).with_transformation(rename)
        .with_transformation(_sort_by("current", desc=True))
        .x_field(q.CATEGORY).unit("percentunit").min(0).span(12).height(9)
        .legend(cb.VizLegendOptions().show_legend(True).placement(cm.LegendPlacement.BOTTOM)
                .display_mode(cm.LegendDisplayMode.LIST)))
    d = d.with_panel(
        heatmap.Panel().title("Distribution over time")
        .description("Values per reference bin over time (ml.feature.value buckets). A shift moves the "
                     "hot cells. Exemplars link to traces.")
        .datasource(DS)
        .targets([target(q.feature_buckets_over_time(), "{{le}}", exemplar=True,
                         fmt=pm.PromQueryFormat.HEATMAP)])
        .calculate(False).span(12).height(9)
        .color(heatmap.HeatmapColorOptions().mode(heatmap_models().HeatmapColorMode.SCHEME)
               .scheme("Oranges").scale(heatmap_models().HeatmapColorScale.EXPONENTIAL).exponent(0.5)
               .steps(64).fill("dark-orange").reverse(False))
        .exemplars_color("rgba(255,0,255,0.7)")
        .y_axis(heatmap.YAxisConfig().unit("short")))
    d = d.with_panel(ts(
        "Quantiles over time",
        "p5, p50 and p95 of the feature estimated from its histogram, per version.",
        targets((q.feature_quantile(0.05), "p5 {{%s}}" % q.VERSION),
                (q.feature_quantile(0.5), "p50 {{%s}}" % q.VERSION),
                (q.feature_quantile(0.95), "p95 {{%s}}" % q.VERSION), exemplar=True),
        "short", span=12, height=9))

    d = d.with_row(row("Drift scores and verdict"))
    d = d.with_panel(state_timeline(
        "Verdict",
        "The processor's drift verdict for this feature per window (significance test corrected for the "
        "number of features, plus an effect-size floor).",
        target(q.gauge(sc.DRIFT_DETECTED, q.ONE_FEATURE, by=f"{q.VERSION}, {q.WINDOW}"),
               "{{%s}} {{%s}}" % (q.VERSION, q.WINDOW)), "OK", "Drift", height=6))
    for method, title, threshold in DRIFT_SCORE_PANELS:
        d = d.with_panel(ts(
            title, f"ml.drift.score with ml.drift.method={method}"
            + ("; dashed: its default threshold." if threshold is not None else "."),
            targets((q.drift_score(method, q.ONE_FEATURE), "{{%s}} {{%s}}" % (q.VERSION, q.WINDOW)),
                    exemplar=True),
            "short", span=8, height=7, axis_min=0,
            thresholds=[(None, "green"), (threshold, "red")] if threshold is not None else None))
    d = d.with_panel(ts(
        "p-value", f"ml.drift.p_value; dashed: {P_VALUE_ALPHA} before the correction for the number of "
        "features judged.",
        targets((q.gauge(sc.DRIFT_P_VALUE, q.ONE_FEATURE, by=f"{q.VERSION}, {q.METHOD}, {q.WINDOW}"),
                 "{{%s}} {{%s}} {{%s}}" % (q.VERSION, q.METHOD, q.WINDOW))),
        "short", span=8, height=7, axis_min=0,
        thresholds=[(None, "red"), (P_VALUE_ALPHA, "green")]))
    d = d.with_panel(ts(
        "Samples per window", "ml.drift.sample_count: rows in the evaluated window (no verdict below the "
        "minimum sample size).",
        targets((q.gauge(sc.DRIFT_SAMPLE_COUNT, q.ONE_FEATURE, by=f"{q.VERSION}, {q.WINDOW}"),
                 "{{%s}} {{%s}}" % (q.VERSION, q.WINDOW))), "short", span=24, height=6, axis_min=0))

    d = d.with_row(row("Data quality of $feature"))
    d = d.with_panel(ts(
        "Missing / invalid / out-of-range / unseen ratio",
        "The processor's data-quality ratios for this feature over its evaluation window; whether they are too "
        "high is the processor's verdict (ml.quality.alarm), judged against the reference's own ratios.",
        targets(*[(q.quality_ratio(name, q.ONE_FEATURE), "{{%s}} %s" % (q.VERSION, short))
                  for short, name in q.QUALITY_RATIOS.items()]),
        "percentunit", span=12, axis_min=0))
    by = f"{q.MODEL}, {q.VERSION}"
    d = d.with_panel(ts(
        "Missing / out-of-range values per second",
        "Counted at the edge by the library (ml.feature.missing, ml.feature.out_of_range).",
        targets((q.event_rate(sc.FEATURE_MISSING, by, q.ONE_FEATURE), "{{%s}} missing" % q.VERSION),
                (q.event_rate(sc.FEATURE_OUT_OF_RANGE, by, q.ONE_FEATURE), "{{%s}} out of range" % q.VERSION),
                (q.event_rate(sc.FEATURE_INVALID, by, q.ONE_FEATURE), "{{%s}} invalid" % q.VERSION),
                (q.event_rate(sc.FEATURE_UNSEEN, by, q.ONE_FEATURE), "{{%s}} unseen" % q.VERSION)),
        "short", span=12, axis_min=0))
    return d


def _sort_by(field: str, *, desc: bool) -> dm.DataTransformerConfig:
    # A CDF grows with le, so sorting by the current share orders the bars by bin edge.
    return dm.DataTransformerConfig(id_val="sortBy", options={"sort": [{"field": field, "desc": desc}]})


def heatmap_models():  # the heatmap enums live in the models module
    from grafana_foundation_sdk.models import heatmap as hm

    return hm


# --- 3. Service correlation ------------------------------------------------------------------------------
def service() -> db.Dashboard:
    d = dashboard(UID_SERVICE, "otel-ml / Service correlation",
                  "The service's standard OTel HTTP server metrics next to model latency and drift, on one "
                  "time axis; model version changes as annotations.", (q.V_WINDOW,))
    d = d.with_row(row("Service (OTel HTTP server metrics)"))
    d = d.with_panel(ts(
        "HTTP request rate", "http.server.request.duration count per second, per route.",
        targets((q.http_request_rate(), "{{%s}} {{%s}}" % (q.JOB, q.HTTP_ROUTE))), "reqps", span=8))
    d = d.with_panel(ts(
        "HTTP 5xx ratio", "Share of requests answered with a 5xx status.",
        targets((q.http_error_ratio(), "{{%s}}" % q.JOB)), "percentunit", span=8, axis_min=0))
    d = d.with_panel(ts(
        "HTTP latency p95 / p99", "http.server.request.duration quantiles. Exemplars link to traces.",
        targets((q.http_latency(0.95), "p95 {{%s}}" % q.JOB), (q.http_latency(0.99), "p99 {{%s}}" % q.JOB),
                exemplar=True), "s", span=8))
    d = d.with_row(row("Model"))
    d = d.with_panel(ts(
        "Model latency p95 per version", "ml.predict.duration p95. Exemplars link to the predict spans.",
        targets((q.predict_latency(0.95), f"p95 {VERSION_LEGEND}"), exemplar=True), "s", span=8))
    d = d.with_panel(ts(
        "Predictions per second per version", "Rows predicted per second (ml.predict.rows).",
        targets((q.predictions_per_second(), VERSION_LEGEND)), "reqps", span=8))
    d = d.with_panel(ts(
        "Drifting features per version", "How many features/outputs the processor judges drifted.",
        targets((q.drifting_count(), VERSION_LEGEND), exemplar=True), "short", span=8, axis_min=0))
    d = d.with_panel(state_timeline(
        "Drift status per feature", "ml.drift.detected per feature and output, on the same time axis as "
        "the service's traffic and latency.", target(q.drift_status(), FEATURE_LEGEND), "OK", "Drift",
        height=8, links=drilldown_link()))
    d = d.with_panel(ts(
        "Max PSI per version", "The largest PSI over the version's features (ml.drift.score, psi).",
        targets((f"max by ({q.MODEL}, {q.VERSION}) ({q.drift_score('psi')})", VERSION_LEGEND),
                exemplar=True), "short", span=24, height=7, axis_min=0,
        thresholds=[(None, "green"), (0.2, "red")]))
    return d


DASHBOARDS = {
    "otel-ml-overview.json": overview,
    "otel-ml-feature.json": feature,
    "otel-ml-service.json": service,
}


# --- Rendering ------------------------------------------------------------------------------------------
def _number_panels(model: dict[str, Any]) -> dict[str, Any]:
    for i, panel in enumerate(model.get("panels", []), start=1):
        panel["id"] = i
    return model


def dashboard_json(build) -> str:
    model = json.loads(json.dumps(build().build(), cls=JSONEncoder))
    return json.dumps(_number_panels(model), indent=2, sort_keys=True) + "\n"


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(data: Any, header: str) -> str:
    return header + yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=4096, allow_unicode=True)


HEADER = "# Generated by `python -m dashboards.generate` from dashboards/rules.py; do not edit.\n"


def outputs() -> dict[Path, str]:
    """Every generated file and its content."""
    generated = {name: dashboard_json(build) for name, build in DASHBOARDS.items()}
    files = {GRAFANA_DIR / name: content for name, content in generated.items()}
    doc = docs(generated)
    if doc is not None:
        files[DOCS_FILE] = doc
    files[RULES_FILE] = to_yaml(alerts.prometheus_rules(), HEADER)
    files[RULES_TEST_FILE] = to_yaml(
        rules_tests.promtool_tests(),
        "# Generated by `python -m dashboards.generate` from dashboards/rules_tests.py; do not edit.\n"
        "# Run: promtool test rules dashboards/alerts/tests/otel-ml.test.yml\n")
    files[QUERY_TEST_FILE] = to_yaml(
        rules_tests.query_tests(),
        "# Generated by `python -m dashboards.generate` from dashboards/rules_tests.py; do not edit.\n"
        "# promql_expr_test checks of dashboard queries. Run: promtool test rules <this file>\n")
    files[GRAFANA_ALERTS_FILE] = to_yaml(
        alerts.grafana_alert_provisioning(),
        HEADER + "# Grafana-managed alert rules (Grafana alerting file provisioning). The rules query the "
        f"datasource whose uid is in\n# the environment variable {alerts.DATASOURCE_UID_ENV} of the Grafana "
        "server: Grafana substitutes it when it reads this\n# file (e.g. "
        f"{alerts.DATASOURCE_UID_ENV}=otel-ml-prometheus for ../datasources/otel-ml-datasources.yaml).\n")
    return files


DOCS_FILE = ROOT.parent / "docs" / "dashboards.md"
DOCS_BEGIN = "<!-- generated: panels (python -m dashboards.generate) -->"
DOCS_END = "<!-- /generated: panels -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def panel_table(dashboards: dict[str, str]) -> str:
    """The docs' table of every panel and the queries it runs (from the generated JSON)."""
    lines = []
    for name, content in dashboards.items():
        model = json.loads(content)
        lines += [f"### {model['title']} (`{name}`, uid `{model['uid']}`)", "",
                  "| Panel | Type | Query (PromQL) |", "|---|---|---|"]
        for panel in model["panels"]:
            if panel["type"] == "row":
                continue
            exprs = "<br>".join(f"`{_cell(t['expr'])}`" for t in panel.get("targets", []))
            lines.append(f"| {_cell(panel['title'])} | {panel['type']} | {exprs} |")
        for a in model["annotations"]["list"]:
            if a.get("expr"):
                lines.append(f"| *annotation:* {a['name']} | annotation | `{_cell(a['expr'])}` |")
        lines.append("")
    lines += ["### Alert rules (`dashboards/alerts/otel-ml.rules.yml`)", "",
              "| Alert | Severity | For | Expression |", "|---|---|---|---|"]
    for a in alerts.ALERTS:
        lines.append(f"| {a.name} | {a.severity} | {a.for_} | `{_cell(a.expr)}` |")
    return "\n".join(lines) + "\n"


def docs(dashboards: dict[str, str]) -> str | None:
    if not DOCS_FILE.exists():
        return None
    text = DOCS_FILE.read_text()
    if DOCS_BEGIN not in text or DOCS_END not in text:
        return None
    head, rest = text.split(DOCS_BEGIN, 1)
    _, tail = rest.split(DOCS_END, 1)
    return f"{head}{DOCS_BEGIN}\n{panel_table(dashboards)}{DOCS_END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a committed file is stale")
    args = parser.parse_args(argv)
    stale = []
    for path, content in outputs().items():
        current = path.read_text() if path.exists() else None
        if current == content:
            continue
        if args.check:
            stale.append(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
            print(f"wrote {path.relative_to(ROOT.parent)}")
    if stale:
        print("stale (run python -m dashboards.generate):", *[str(p) for p in stale], sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
