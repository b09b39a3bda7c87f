"""Every PromQL expression of the otel-ml dashboards and alert rules, built from :mod:`otel_ml.semconv`.

Metric names are the names Prometheus stores after the OpenTelemetry translation
(:data:`otel_ml.semconv.PROMETHEUS_NAMES`); label names are the semconv attribute names with dots turned
into underscores. ``service.name`` arrives as ``job`` and ``service.instance.id`` as ``instance``.

Two selectors are used throughout:

- :data:`APP` for the library's metrics, which carry the instrumented service's resource (``job``);
- :data:`EVAL` for the processor's drift and quality gauges. These are judged on a whole fleet (the
  processor merges every instance of a model version) and exported under the processor's own resource, so
  they are filtered by model and version only, never by ``job``.

Grafana template variables (``$service``, ``$model``, ...) appear verbatim; :mod:`dashboards.catalog`
renders them for a plain Prometheus.
"""

from __future__ import annotations

from otel_ml import semconv as sc, stats
from otel_ml.stats import performance as perf

# --- Names --------------------------------------------------------------------------------------


def label(attribute: str) -> str:
    """The Prometheus label an OTel attribute becomes (dots and other invalid characters to ``_``)."""
    return "".join(c if c.isalnum() or c == "_" else "_" for c in attribute)


def metric(name: str) -> str:
    """The Prometheus name of an otel-ml metric (from semconv, never spelled here)."""
    return sc.PROMETHEUS_NAMES[name]


JOB = "job"
INSTANCE = "instance"
LE = "le"
MODEL = label(sc.MODEL_NAME)
VERSION = label(sc.MODEL_VERSION)
FEATURE = label(sc.FEATURE_NAME)
CATEGORY = label(sc.FEATURE_CATEGORY)
PRED_NAME = label(sc.PREDICTION_NAME)
PRED_CLASS = label(sc.PREDICTION_CLASS)
METHOD = label(sc.DRIFT_METHOD)
WINDOW = label(sc.DRIFT_WINDOW)
KIND = label(sc.DRIFT_KIND)
ERROR_TYPE = label(sc.ERROR_TYPE)
SCHEMA_VIOLATION = label(sc.SCHEMA_VIOLATION)
PERF_METRIC = label(sc.PERFORMANCE_METRIC)
SEG_NAME = label(sc.SEGMENT_NAME)
SEG_VALUE = label(sc.SEGMENT_VALUE)
BUCKET_LE = label(sc.BUCKET_LE)
BASELINE = label(sc.MODEL_BASELINE_VERSION)
QUALITY_KIND = label(sc.QUALITY_KIND)

#: The standard OTel HTTP server duration histogram (semconv ``http.server.request.duration``, unit s),
#: as Prometheus stores it, and the labels its attributes become.
HTTP_SERVER_DURATION = "http_server_request_duration_seconds"
HTTP_ROUTE = "http_route"
HTTP_STATUS = "http_response_status_code"
#: Every non-otel-ml metric a query may use (the tests check this list and semconv, nothing else).
STANDARD_METRICS = (HTTP_SERVER_DURATION,)

# Grafana template variables.
V_DATASOURCE = "datasource"
V_SERVICE = "service"
V_MODEL = "model"
V_VERSION = "version"
V_FEATURE = "feature"
V_WINDOW = "window"
V_METHOD = "method"
V_METRIC = "metric"
RATE = "$__rate_interval"
RANGE = "$__range"

#: Drift methods the processor reports (``ml.drift.method`` values), in display order: the reported
#: statistics of otel_ml.stats' registry.
DRIFT_METHODS = stats.DRIFT_METHODS


def sel(**matchers: str) -> str:
    """``{a=~"x", b!="y"}``: values starting with ``!``/``=``/``~`` keep their own operator."""
    parts = []
    for key, value in matchers.items():
        if value[:2] in ("!=", "=~", "!~"):
            parts.append(f'{key}{value[:2]}"{value[2:]}"')
        elif value[:1] == "=":
            parts.append(f'{key}="{value[1:]}"')
        else:
            parts.append(f'{key}=~"{value}"')
    return "{" + ", ".join(parts) + "}"


APP = {JOB: f"${V_SERVICE}", MODEL: f"${V_MODEL}", VERSION: f"${V_VERSION}"}
EVAL = {MODEL: f"${V_MODEL}", VERSION: f"${V_VERSION}"}
ONE_FEATURE = {FEATURE: f"${V_FEATURE}"}
ONE_WINDOW = {WINDOW: f"${V_WINDOW}"}

BY_VERSION = f"{MODEL}, {VERSION}"
BY_FEATURE = f"{MODEL}, {VERSION}, {KIND}, {FEATURE}"


def _s(name: str, *extra: dict[str, str], base: dict[str, str] = APP, suffix: str = "") -> str:
    merged: dict[str, str] = dict(base)
    for e in extra:
        merged.update(e)
    return metric(name) + suffix + sel(**merged)


def rate(name: str, *extra: dict[str, str], by: str, base: dict[str, str] = APP, suffix: str = "",
         window: str = RATE) -> str:
    return f"sum by ({by}) (rate({_s(name, *extra, base=base, suffix=suffix)}[{window}]))"


def zero_if_absent(expr: str, by: str) -> str:
    """``expr``, or 0 for every model version that has traffic but no such events.

    OTel counters appear only after their first increment; "no missing values yet" must read 0, not
    "no data".
    """
    return f"({expr}) or (0 * {rate(sc.PREDICT_ROWS, by=by)})"


# --- Traffic, latency, errors (library) ------------------------------------------------------------
def predictions_per_second() -> str:
    return rate(sc.PREDICT_ROWS, by=BY_VERSION)


def predict_calls_per_second() -> str:
    return rate(sc.PREDICT_DURATION, by=BY_VERSION, suffix="_count")


def traffic_share() -> str:
    """Each version's share of its model's rows: canary vs stable at a glance."""
    return (f"{rate(sc.PREDICT_ROWS, by=BY_VERSION)}\n/ ignoring ({VERSION}) group_left\n"
            f"{rate(sc.PREDICT_ROWS, by=MODEL)}")


def predict_latency(quantile: float) -> str:
    return (f"histogram_quantile({quantile}, "
            f"{rate(sc.PREDICT_DURATION, by=f'{LE}, {BY_VERSION}', suffix='_bucket')})")


def predict_error_ratio() -> str:
    errors = rate(sc.PREDICT_DURATION, {ERROR_TYPE: '!='}, by=BY_VERSION, suffix="_count")
    calls = rate(sc.PREDICT_DURATION, by=BY_VERSION, suffix="_count")
    return f"(({errors}) or (0 * {calls}))\n/ {calls}"


def event_rate(name: str, by: str = BY_VERSION, *extra: dict[str, str]) -> str:
    """Rate of an event counter of the library, 0 while it has never been incremented."""
    return zero_if_absent(rate(name, *extra, by=by), BY_VERSION)


# --- Drift and quality (processor) -----------------------------------------------------------------
def drift_status(*extra: dict[str, str]) -> str:
    """1 while the processor judges a feature or output drifted (in any selected window), else 0."""
    return f"max by ({BY_FEATURE}) ({_s(sc.DRIFT_DETECTED, ONE_WINDOW, *extra, base=EVAL)})"


def drifting_count() -> str:
    """How many features and outputs of each model version are judged drifted."""
    per_feature = f"max by ({BY_VERSION}, {KIND}, {FEATURE}) ({_s(sc.DRIFT_DETECTED, ONE_WINDOW, base=EVAL)})"
    return f"sum by ({BY_VERSION}) ({per_feature})"


def top_drifting(k: int = 10) -> str:
    return (f"topk({k}, max by ({BY_FEATURE}) "
            f"({_s(sc.DRIFT_SCORE, ONE_WINDOW, {METHOD: f'${V_METHOD}'}, base=EVAL)}))")


def drift_score(method: str | None = None, *extra: dict[str, str]) -> str:
    m = {METHOD: f"={method}"} if method else {}
    return (f"max by ({VERSION}, {FEATURE}, {METHOD}, {WINDOW}) "
            f"({_s(sc.DRIFT_SCORE, ONE_WINDOW, m, *extra, base=EVAL)})")


def gauge(name: str, *extra: dict[str, str], by: str = f"{VERSION}, {FEATURE}, {WINDOW}") -> str:
    return f"max by ({by}) ({_s(name, ONE_WINDOW, *extra, base=EVAL)})"


#: Display name -> ratio metric of each quality kind, in the kinds' order.
QUALITY_RATIOS = {kind.replace("_", " "): sc.QUALITY_RATIOS[kind] for kind in sc.QUALITY_KINDS}


def quality_ratio(name: str, *extra: dict[str, str]) -> str:
    return gauge(name, *extra, by=f"{MODEL}, {VERSION}, {FEATURE}")


# --- Versions side by side (processor: a candidate version against its baseline version's traffic) ---
BY_PAIR = f"{MODEL}, {VERSION}, {BASELINE}"


def version_drift_status() -> str:
    """The processor's verdict per candidate version, baseline version, feature/output (and window):
    1 the candidate's stream differs from the baseline's, 0 it does not; no point without a verdict."""
    return gauge(sc.VERSION_DRIFT_DETECTED, by=f"{BY_PAIR}, {KIND}, {FEATURE}")


def version_differing_count() -> str:
    """How many outputs and features of each candidate differ from its baseline right now (any window)."""
    per_stream = version_drift_status()
    return f"sum by ({BY_PAIR}) ({per_stream})"


def version_drift_score() -> str:
    """The selected method's distance between candidate and baseline per output/feature and window."""
    return gauge(sc.VERSION_DRIFT_SCORE, {label(sc.DRIFT_METHOD): f"${V_METHOD}"},
                 by=f"{BY_PAIR}, {FEATURE}, {WINDOW}")


#: Realized performance of a candidate against its baseline: needs joined outcomes for both versions.
VERSION_OUTCOME_METRICS = (sc.VERSION_PERFORMANCE_GAP, sc.VERSION_PERFORMANCE_DEGRADED)
ONE_PERF_METRIC = {label(sc.PERFORMANCE_METRIC): "$metric"}


def version_performance(name: str = sc.VERSION_PERFORMANCE_GAP) -> str:
    """The chosen metric's candidate − baseline gap (or the verdict, 1/0/-1) per pair and window."""
    return gauge(name, ONE_PERF_METRIC, by=f"{BY_PAIR}, {WINDOW}")


#: The multivariate stream (each row's PCA reconstruction error): its drift verdict is the multivariate
#: one, its out-of-range share the share of out-of-distribution rows.
MULTIVARIATE = {FEATURE: f"={sc.RECONSTRUCTION_ERROR_FEATURE}"}


def multivariate_score() -> str:
    return drift_score(None, MULTIVARIATE, {METHOD: f"${V_METHOD}"})


def outlier_share() -> str:
    return gauge(sc.QUALITY_RATIOS["out_of_range"], MULTIVARIATE, by=f"{VERSION}, {WINDOW}")


# --- Realized performance (processor: prediction and outcome records joined) -------------------------
#: The processor's ground-truth metrics: they have data only where outcomes are joined to predictions
#: (a model monitored with ``prediction_id`` and outcomes sent), so :mod:`dashboards.catalog` tags the
#: queries that read them ``requires="outcomes"``. Not the reference's holdout value
#: (``ml.performance.reference``): the processor sends it with or without outcomes, for every model version
#: whose reference has a ``performance`` section (the line the label-free estimate is judged against).
OUTCOME_METRICS = (sc.PERFORMANCE_VALUE, sc.PERFORMANCE_LOWER, sc.PERFORMANCE_UPPER,
                   sc.PERFORMANCE_DEGRADED, sc.PERFORMANCE_SAMPLE_COUNT, sc.OUTCOME_COVERAGE_RATIO,
                   sc.CALIBRATION_OBSERVED, sc.OUTCOMES_JOINED, sc.OUTCOMES_UNMATCHED, sc.PREDICTIONS_EXPIRED,
                   sc.OUTCOMES_DUPLICATES, sc.OUTCOMES_REJECTED, sc.LABEL_DELAY,
                   sc.SEGMENT_PERFORMANCE_VALUE, sc.SEGMENT_PERFORMANCE_LOWER, sc.SEGMENT_PERFORMANCE_UPPER,
                   sc.SEGMENT_PERFORMANCE_GAP, sc.SEGMENT_PERFORMANCE_DEGRADED, sc.SEGMENT_SAMPLE_COUNT,
                   sc.SEGMENT_PERFORMANCE_RANK, sc.SEGMENT_OVERFLOW)
ONE_METRIC = {PERF_METRIC: f"${V_METRIC}"}
#: The metric over all classes (per-class metrics such as f1 of one class carry ml.prediction.class).
ALL_CLASSES = {PRED_CLASS: "="}
BY_WINDOW = f"{MODEL}, {VERSION}, {WINDOW}"


def performance(name: str = sc.PERFORMANCE_VALUE) -> str:
    """The chosen metric's realized value (or its interval bound, or the reference's holdout value) per
    model version and window."""
    by = f"{MODEL}, {VERSION}" if name == sc.PERFORMANCE_REFERENCE else BY_WINDOW
    return gauge(name, ONE_METRIC, ALL_CLASSES, by=by)


def estimated(name: str = sc.PERFORMANCE_ESTIMATED) -> str:
    """The chosen metric's estimate without labels (or its interval bound) per model version and window:
    from the predicted probabilities alone, so it has data without outcomes (not in :data:`OUTCOME_METRICS`)."""
    return gauge(name, ONE_METRIC, by=BY_WINDOW)


def performance_degraded() -> str:
    """The processor's verdict per model version, metric and window: 1, 0 or ``NO_VERDICT``."""
    return gauge(sc.PERFORMANCE_DEGRADED, by=f"{BY_WINDOW}, {PERF_METRIC}")


def window_gauge(name: str) -> str:
    """A per-window gauge of the join (sample count, coverage ratio) per model version and window."""
    return gauge(name, by=BY_WINDOW)


def label_delay(q: float) -> str:
    """Quantile of outcome time − prediction time of the pairs joined recently."""
    return (f"histogram_quantile({q}, "
            f"{rate(sc.LABEL_DELAY, by=f'{LE}, {BY_VERSION}', base=EVAL, suffix='_bucket')})")


def label_delay_mean() -> str:
    """Mean outcome time − prediction time of the pairs joined recently (exact, unlike the quantiles,
    which interpolate inside the histogram's coarse buckets)."""
    total = rate(sc.LABEL_DELAY, by=BY_VERSION, base=EVAL, suffix="_sum")
    count = rate(sc.LABEL_DELAY, by=BY_VERSION, base=EVAL, suffix="_count")
    return f"{total}\n/ {count}"


def outcome_rate(name: str, by: str = BY_VERSION, base: dict[str, str] = EVAL) -> str:
    """Rate of a join counter of the processor, 0 for model versions that join outcomes but never had
    such an event (the counter appears after its first increment)."""
    return f"({rate(name, by=by, base=base)}) or (0 * {rate(sc.OUTCOMES_JOINED, by=BY_VERSION, base=EVAL)})"


# --- Segments (processor: realized performance per segment slice) ----------------------------------
BY_SEGMENT = f"{MODEL}, {VERSION}, {WINDOW}, {SEG_NAME}, {SEG_VALUE}"
#: Rows of the worst-segments table: the processor's rank 1 (worst) to this, per model version and window.
WORST_SEGMENTS = 10


def worst_segments(name: str = sc.SEGMENT_PERFORMANCE_RANK, k: int = WORST_SEGMENTS) -> str:
    """A segment gauge of the ``k`` worst judged slices per model version and window (the processor ranks
    them by how much worse than the rest of the window they are: ``ml.segment.performance.rank`` 1 = worst)."""
    ranked = f"max by ({BY_SEGMENT}) ({_s(sc.SEGMENT_PERFORMANCE_RANK, ONE_WINDOW, base=EVAL)}) <= {k}"
    if name == sc.SEGMENT_PERFORMANCE_RANK:
        return ranked
    return f"max by ({BY_SEGMENT}) ({_s(name, ONE_WINDOW, base=EVAL)})\nand on ({BY_SEGMENT})\n({ranked})"


# --- Segments (processor: drift, data quality and traffic mix per segment value) -----------------------
#: The library's per-segment metrics and the processor's segment drift metrics: data only where a model is
#: monitored with ``segments=`` (and, for the processor's, its reference has a "segments" section), so
#: :mod:`dashboards.catalog` tags their queries ``requires="segments"``.
SEGMENT_DRIFT_METRICS = (sc.SEGMENT_ROWS, sc.SEGMENT_PREDICTION_VALUE, sc.SEGMENT_PREDICTION_CLASS_COUNT,
                         *sc.SEGMENT_QUALITY_COUNTERS.values(), sc.SEGMENT_DRIFT_DETECTED, sc.SEGMENT_DRIFT_SCORE,
                         sc.SEGMENT_DRIFT_SCORE_LOWER, sc.SEGMENT_DRIFT_SCORE_UPPER, sc.SEGMENT_DRIFT_RANK,
                         sc.SEGMENT_QUALITY_RATIO, sc.SEGMENT_QUALITY_RATIO_LOWER, sc.SEGMENT_QUALITY_RATIO_UPPER,
                         sc.SEGMENT_QUALITY_ALARM, sc.SEGMENT_QUALITY_RANK, sc.SEGMENT_MIX_DETECTED)
#: How each rank is read per segment value: an output's drift rank is per output (the best one counts).
_RANKS = ((sc.SEGMENT_PERFORMANCE_RANK, "max"), (sc.SEGMENT_DRIFT_RANK, "min"), (sc.SEGMENT_QUALITY_RANK, "max"))


def _ranked(name: str, agg: str, k: int) -> str:
    return f"{agg} by ({BY_SEGMENT}) ({_s(name, ONE_WINDOW, base=EVAL)}) <= {k}"


def segments_ranked(k: int = WORST_SEGMENTS) -> str:
    """The segment values among the ``k`` worst of the model version and window by any signal (performance,
    output drift, data quality), each valued by its rank."""
    return "\nor ".join(f"({_ranked(name, agg, k)})" for name, agg in _RANKS)


def worst_segments_all(name: str, agg: str = "max", k: int = WORST_SEGMENTS) -> str:
    """A segment gauge (aggregated with ``agg`` over outputs, metrics or kinds) of the segment values among
    the ``k`` worst by any signal (:func:`segments_ranked`)."""
    return f"{agg} by ({BY_SEGMENT}) ({_s(name, ONE_WINDOW, base=EVAL)})\nand on ({BY_SEGMENT})\n({segments_ranked(k)})"


def segment_drift_score(k: int = WORST_SEGMENTS) -> str:
    """Drift score per segment value and output, for the ``k`` most drifted of each model version and window."""
    by = f"{BY_SEGMENT}, {PRED_NAME}"
    return (f"max by ({by}) ({_s(sc.SEGMENT_DRIFT_SCORE, ONE_WINDOW, base=EVAL)})\nand on ({by})\n"
            f"(max by ({by}) ({_s(sc.SEGMENT_DRIFT_RANK, ONE_WINDOW, base=EVAL)}) <= {k})")


def segment_quality_ratio(k: int = WORST_SEGMENTS) -> str:
    """Quality ratio per segment value and kind, for the ``k`` worst values by quality excess."""
    return (f"max by ({BY_SEGMENT}, {QUALITY_KIND}) ({_s(sc.SEGMENT_QUALITY_RATIO, ONE_WINDOW, base=EVAL)}) > 0\n"
            f"and on ({BY_SEGMENT})\n({_ranked(sc.SEGMENT_QUALITY_RANK, 'max', k)})")


BY_SEGMENT_VALUE = f"{MODEL}, {VERSION}, {SEG_NAME}, {SEG_VALUE}"


def segment_rate(name: str) -> str:
    """Per second, rows (``ml.segment.rows``) or bad values of one kind (``ml.segment.feature.*``) per
    segment value, as the monitored services count them."""
    return rate(name, by=BY_SEGMENT_VALUE)


def segment_output_median() -> str:
    """Median numeric output per segment value and output, from ``ml.segment.prediction.value``."""
    return (f"histogram_quantile(0.5, "
            f"{rate(sc.SEGMENT_PREDICTION_VALUE, by=f'{LE}, {BY_SEGMENT_VALUE}, {PRED_NAME}', suffix='_bucket')})")


def segment_class_rate() -> str:
    """Predicted classes per second per segment value (``ml.segment.prediction.class.count``)."""
    return rate(sc.SEGMENT_PREDICTION_CLASS_COUNT, by=f"{BY_SEGMENT_VALUE}, {PRED_NAME}, {PRED_CLASS}")


def segment_mix() -> str:
    """The processor's verdict on each segment column's traffic mix (1, 0 or NO_VERDICT)."""
    return gauge(sc.SEGMENT_MIX_DETECTED, by=f"{MODEL}, {VERSION}, {SEG_NAME}")


def calibration_observed() -> str:
    """Observed positive rate per reliability bin (``ml.bucket.le`` = the bin's upper probability)."""
    return f"max by ({BUCKET_LE}) ({_s(sc.CALIBRATION_OBSERVED, ONE_WINDOW, base=EVAL)})"


def calibration_diagonal(bins: int = perf.CALIBRATION_BINS) -> str:
    """Perfect calibration: each reliability bin's centre, keyed by its upper bound as the processor
    spells ``ml.bucket.le`` (the equal-width bins of :func:`otel_ml.stats.performance.reliability`), for
    the bins the processor reports."""
    def shortest(x: float) -> str:  # as the processor spells bounds: shortest round trip, no ".0"
        return repr(x).removesuffix(".0")

    terms = [f'label_replace(vector({shortest((i + 0.5) / bins)}), "{BUCKET_LE}", "{shortest((i + 1) / bins)}", '
             f'"", "")' for i in range(bins)]
    return "(\n  " + "\n  or ".join(terms) + f"\n)\nand on ({BUCKET_LE}) {calibration_observed()}"


# --- The processor's own telemetry (its resource: job = otel-ml-processor) ---------------------------
BY_PROCESSOR = f"{JOB}, {INSTANCE}"


def processor_rate(name: str, by: str = BY_PROCESSOR) -> str:
    return f"sum by ({by}) (rate({metric(name)}[{RATE}]))"


def processor_gauge(name: str) -> str:
    return f"sum by ({BY_PROCESSOR}) ({metric(name)})"


def processor_evaluation_duration(q: float) -> str:
    return (f"histogram_quantile({q}, sum by ({LE}, {BY_PROCESSOR}) "
            f"(rate({metric(sc.PROCESSOR_EVALUATION_DURATION)}_bucket[{RATE}])))")


# --- Distributions (library histograms) -----------------------------------------------------------
# The drill-down's $feature may name an input feature (ml.feature.*) or a model output (ml.prediction.*,
# e.g. "proba:1" or "label"): each query reads the feature's series, or else the output's.
ONE_OUTPUT = {PRED_NAME: f"${V_FEATURE}"}


def _feature_or_output(template: str, feature_metric: str, output_metric: str, suffix: str = "") -> str:
    f = template.format(m=_s(feature_metric, ONE_FEATURE, suffix=suffix), cat=CATEGORY)
    o = template.format(m=_s(output_metric, ONE_OUTPUT, suffix=suffix), cat=PRED_CLASS)
    return f"({f}\n or {o})"


def feature_cdf_current() -> str:
    """Cumulative share of the chosen feature's values up to each bucket bound, over the time range.

    A cumulative distribution needs no de-accumulation, and the gap between two CDFs is the KS statistic.
    """
    buckets = _feature_or_output(f"sum by ({LE}) (increase({{m}}[{RANGE}]))", sc.FEATURE_VALUE,
                                 sc.PREDICTION_VALUE, suffix="_bucket")
    count = _feature_or_output(f"sum(increase({{m}}[{RANGE}]))", sc.FEATURE_VALUE, sc.PREDICTION_VALUE,
                               suffix="_count")
    return f"sort({buckets}\n/ scalar{count})"


def feature_buckets_over_time() -> str:
    """Per-bucket counts over time, for a heatmap (Grafana de-accumulates ``le`` with format=heatmap)."""
    return _feature_or_output(f"sum by ({LE}) (increase({{m}}[{RATE}]))", sc.FEATURE_VALUE,
                              sc.PREDICTION_VALUE, suffix="_bucket")


def feature_quantile(q: float) -> str:
    by = f"sum by ({LE}, {VERSION}) (rate({{m}}[{RATE}]))"
    buckets = _feature_or_output(by, sc.FEATURE_VALUE, sc.PREDICTION_VALUE, suffix="_bucket")
    return f"histogram_quantile({q}, {buckets})"


def category_share_current() -> str:
    f = f"sum by ({CATEGORY}) (increase({_s(sc.FEATURE_CATEGORY_COUNT, ONE_FEATURE)}[{RANGE}]))"
    o = (f'sum by ({CATEGORY}) (label_replace(increase({_s(sc.PREDICTION_CLASS_COUNT, ONE_OUTPUT)}[{RANGE}]), '
         f'"{CATEGORY}", "$1", "{PRED_CLASS}", "(.*)"))')
    return f"sort_desc(({f}\n or {o})\n/ scalar(sum({f}\n or {o})))"


#: The processor's export of the reference distribution (see docs/dashboards.md, "Reference
#: distribution"): numeric streams carry the bucket bound in ml.bucket.le, categorical ones the category.
REFERENCE_RATIO = sc.DRIFT_REFERENCE_RATIO


def feature_cdf_reference() -> str:
    """The reference's cumulative share up to each bound, its ``ml_bucket_le`` relabelled ``le``."""
    ref = _s(REFERENCE_RATIO, ONE_FEATURE, {BUCKET_LE: ".+"}, base=EVAL)
    return f'max by ({LE}) (label_replace({ref}, "{LE}", "$1", "{BUCKET_LE}", "(.*)"))'


def category_share_reference() -> str:
    """The reference's share of each category (``__other__`` included)."""
    ref = _s(REFERENCE_RATIO, ONE_FEATURE, {CATEGORY: ".+"}, base=EVAL)
    return f"max by ({CATEGORY}) ({ref})"


def prediction_shares() -> str:
    counts = _s(sc.PREDICTION_CLASS_COUNT)
    return (f"sum by ({VERSION}, {PRED_CLASS}) (increase({counts}[{RATE}]))\n/ ignoring ({PRED_CLASS})"
            f" group_left\nsum by ({VERSION}) (increase({counts}[{RATE}]))")


def prediction_value_quantile(q: float) -> str:
    return (f"histogram_quantile({q}, "
            f"{rate(sc.PREDICTION_VALUE, by=f'{LE}, {VERSION}, {PRED_NAME}', suffix='_bucket')})")


# --- Service (standard OTel HTTP server metrics) -------------------------------------------------
def _http(suffix: str, **extra: str) -> str:
    return HTTP_SERVER_DURATION + suffix + sel(**{JOB: f"${V_SERVICE}"}, **extra)


def http_request_rate() -> str:
    return f"sum by ({JOB}, {HTTP_ROUTE}) (rate({_http('_count')}[{RATE}]))"


def http_error_ratio() -> str:
    errors = f"sum by ({JOB}) (rate({_http('_count', **{HTTP_STATUS: '5..'})}[{RATE}]))"
    total = f"sum by ({JOB}) (rate({_http('_count')}[{RATE}]))"
    return f"(({errors}) or (0 * {total}))\n/ {total}"


def http_latency(q: float) -> str:
    return f"histogram_quantile({q}, sum by ({LE}, {JOB}) (rate({_http('_bucket')}[{RATE}])))"


# --- Variables and annotations ----------------------------------------------------------------------
ROWS = metric(sc.PREDICT_ROWS)
VARIABLE_QUERIES = {
    V_SERVICE: f"label_values({ROWS}, {JOB})",
    V_MODEL: f'label_values({ROWS}{sel(**{JOB: f"${V_SERVICE}"})}, {MODEL})',
    V_VERSION: f'label_values({ROWS}{sel(**{JOB: f"${V_SERVICE}", MODEL: f"${V_MODEL}"})}, {VERSION})',
    V_FEATURE: (f'label_values({{__name__=~"{metric(sc.FEATURE_VALUE)}_count|{metric(sc.FEATURE_CATEGORY_COUNT)}'
                f'|{metric(sc.DRIFT_SAMPLE_COUNT)}", {MODEL}=~"${V_MODEL}", {VERSION}=~"${V_VERSION}"}}, {FEATURE})'),
    V_WINDOW: f"label_values({_s(sc.DRIFT_SAMPLE_COUNT, base=EVAL)}, {WINDOW})",
    V_METHOD: f"label_values({_s(sc.DRIFT_SCORE, base=EVAL)}, {METHOD})",
    V_METRIC: (f'label_values({{__name__=~"{metric(sc.PERFORMANCE_VALUE)}|{metric(sc.PERFORMANCE_ESTIMATED)}", '
               f'{MODEL}=~"${V_MODEL}", {VERSION}=~"${V_VERSION}"}}, {PERF_METRIC})'),
}


def version_changes() -> str:
    """1 for each model version during its first minutes of traffic: a deploy or canary start."""
    now = f"{ROWS}{sel(**APP)}"
    return (f"count by ({BY_VERSION}) ({now})\nunless\n"
            f"count by ({BY_VERSION}) ({now} offset 10m)")
