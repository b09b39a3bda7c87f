"""Every query the otel-ml dashboards and alert rules run, in one list.

Read from the committed dashboard JSON (what users import) and from :mod:`dashboards.rules`, so this
module needs no Grafana SDK. The end-to-end tests run each query against a real Prometheus with
:func:`render`, which substitutes Grafana's template variables.

    >>> from dashboards import catalog
    >>> for query in catalog.panel_queries():
    ...     print(query.dashboard, query.panel, catalog.render(query.expr))
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from dashboards import promql, rules
from otel_ml import semconv as sc

GRAFANA_DIR = Path(__file__).resolve().parent / "grafana"

#: :attr:`Query.requires` of a query that reads the processor's ground-truth metrics
#: (:data:`dashboards.promql.OUTCOME_METRICS`): it has data only where outcomes are joined to predictions.
OUTCOMES = "outcomes"
#: :attr:`Query.requires` of a query that reads the version comparison of realized performance
#: (:data:`dashboards.promql.VERSION_OUTCOME_METRICS`): data only where outcomes are joined for two live
#: versions of one model (checked on synthetic series by promtool and on tests/e2e/test_canary.py's scenario).
VERSION_OUTCOMES = "outcomes+versions"
#: :attr:`Query.requires` of a query that reads the processor's segment drift metrics
#: (:data:`dashboards.promql.SEGMENT_DRIFT_METRICS`): data only where a model is monitored with ``segments=``
#: and its reference profiles the segment values (checked on synthetic series by promtool and on
#: tests/e2e/test_segment_drift.py's scenario).
SEGMENTS = "segments"
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


@functools.cache
def _prometheus_names(metrics: tuple[str, ...]) -> frozenset[str]:
    """The series names Prometheus stores for ``metrics`` (a histogram's ``_bucket``, ``_sum``, ``_count``)."""
    kinds = {**sc.LIBRARY_METRICS, **sc.PROCESSOR_METRICS}
    names = set()
    for name in metrics:
        prom = promql.metric(name)
        names.update([prom + s for s in _HISTOGRAM_SUFFIXES] if kinds[name][0] == "histogram" else [prom])
    return frozenset(names)


@dataclass(frozen=True)
class Query:
    kind: str  # "panel" | "annotation" | "variable" | "alert" | "alert-signal"
    dashboard: str  # dashboard uid, or the rule group for alerts
    panel: str  # panel title, annotation or variable name, or alert name
    ref_id: str
    expr: str
    instant: bool = False

    @property
    def name(self) -> str:
        return f"{self.dashboard}/{self.panel}/{self.ref_id}"

    @property
    def requires(self) -> str | None:
        """What the query needs beyond a model serving traffic: :data:`SEGMENTS` when it reads a segment drift
        metric, :data:`OUTCOMES` when it reads a ground-truth metric, else None."""
        names = metric_names(self.expr)
        if names and names <= {promql.metric(n) for n in promql.VERSION_OUTCOME_METRICS}:
            return VERSION_OUTCOMES  # (an alert that also reads the drift comparison is checked with it)
        if names & _prometheus_names(promql.SEGMENT_DRIFT_METRICS):
            return SEGMENTS
        return OUTCOMES if names & _prometheus_names(promql.OUTCOME_METRICS) else None


def dashboards() -> dict[str, dict]:
    """The committed dashboards by uid."""
    out = {}
    for path in sorted(GRAFANA_DIR.glob("*.json")):
        model = json.loads(path.read_text())
        out[model["uid"]] = model
    return out


def _panels(model: dict) -> Iterator[dict]:
    for panel in model.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # collapsed rows


def panel_queries() -> list[Query]:
    out = []
    for uid, model in dashboards().items():
        for panel in _panels(model):
            for t in panel.get("targets", []):
                out.append(Query("panel", uid, panel["title"], t["refId"], t["expr"],
                                 bool(t.get("instant"))))
    return out


def annotation_queries() -> list[Query]:
    out = []
    for uid, model in dashboards().items():
        for a in model.get("annotations", {}).get("list", []):
            if a.get("expr"):
                out.append(Query("annotation", uid, a["name"], "annotation", a["expr"]))
    return out


def variable_queries() -> list[Query]:
    """Query variables; their ``expr`` is Grafana's ``label_values(selector, label)`` (see
    :func:`parse_label_values`)."""
    out = []
    seen = set()
    for uid, model in dashboards().items():
        for v in model.get("templating", {}).get("list", []):
            if v.get("type") != "query":
                continue
            query = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            if (v["name"], query) in seen:
                continue
            seen.add((v["name"], query))
            out.append(Query("variable", uid, v["name"], "variable", query))
    return out


def alert_queries() -> list[Query]:
    """Each alert's expression (instant; returns data only while the condition holds)."""
    return [Query("alert", rules.GROUP, a.name, "expr", a.expr, True) for a in rules.ALERTS]


def alert_signal_queries() -> list[Query]:
    """Each alert's data without its condition (returns data whenever the pipeline runs)."""
    return [Query("alert-signal", rules.GROUP, a.name, "signal", a.signal, True) for a in rules.ALERTS]


def all_queries() -> list[Query]:
    """Every PromQL expression (variables excluded: they are label_values() calls, not PromQL)."""
    return panel_queries() + annotation_queries() + alert_queries() + alert_signal_queries()


_LABEL_VALUES = re.compile(r"^label_values\((?:(?P<selector>.*),\s*)?(?P<label>\w+)\)$", re.S)


def parse_label_values(query: str) -> tuple[str | None, str]:
    """``label_values(sel, label)`` -> (sel, label); ``label_values(label)`` -> (None, label)."""
    m = _LABEL_VALUES.match(query.strip())
    if not m:
        raise ValueError(f"not a label_values() query: {query!r}")
    return m.group("selector"), m.group("label")


_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


#: The dashboards' own variables; "All" (``.*``) unless :func:`render` is given a value.
DASHBOARD_VARIABLES = (promql.V_SERVICE, promql.V_MODEL, promql.V_VERSION, promql.V_FEATURE, promql.V_WINDOW,
                       promql.V_METHOD, promql.V_METRIC)


def render(expr: str, values: Mapping[str, str] | None = None, *, rate_interval: str = "1m",
           range_: str = "15m", interval: str = "15s") -> str:
    """Substitute Grafana's variables: ``$__rate_interval``, ``$__range``, ``$__interval`` and the
    dashboards' own (``$service``, ``$model``, ...; one without a value becomes ``.*``, like "All").
    Anything else that looks like a variable (``$1`` in ``label_replace``) is left alone, as Grafana
    leaves names it does not know."""
    known = {"__rate_interval": rate_interval, "__range": range_, "__interval": interval,
             **{name: ".*" for name in DASHBOARD_VARIABLES}, **dict(values or {})}

    def sub(m: re.Match) -> str:
        name = m.group(1) or m.group(2)
        return known.get(name, m.group(0))

    return _VARIABLE.sub(sub, expr)


_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
             "offset", "bool", "inf", "nan", "atan2"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads."""
    names: set[str] = set()
    for m in re.finditer(r'__name__=~?"([^"]+)"', expr):
        names.update(m.group(1).split("|"))
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)  # matchers and ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][\w:]*)\b(?!\s*\()", text):
        if m.group(1) not in _KEYWORDS:
            names.add(m.group(1))
    return names
