"""Run dashboards/catalog.py's queries against a real Prometheus as Grafana would, and say what is wrong.

Each scenario checks the queries of what it feeds (their ``catalog.Query.requires``): the drift scenario of
test_dashboard_queries.py those that need nothing more than a model serving traffic (None), the ground-truth
scenario of test_ground_truth.py ``catalog.OUTCOMES`` (realized performance, outcome joins, label delay),
test_segment_drift.py ``catalog.SEGMENTS`` (the Segments row, the segment alerts) and test_canary.py
``catalog.VERSION_OUTCOMES`` (realized performance of a canary against its baseline). tests/test_dashboards.py
fails when a ``requires`` value of the catalog has no such call.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from dashboards import catalog  # noqa: E402

RATE_INTERVAL, RANGE = "1m", "2m"


def run(prometheus: Any, query: catalog.Query, values: Mapping[str, str]) -> list[dict[str, Any]]:
    """The query rendered with ``values`` ("All" for the others), instant or over the last two minutes."""
    expr = catalog.render(query.expr, dict(values), rate_interval=RATE_INTERVAL, range_=RANGE)
    now = time.time()
    if query.instant:
        return prometheus.promql(expr, time=now)
    data = prometheus.api("query_range", query=expr, start=now - 120, end=now, step=5)
    return list(data["result"])


def problems(prometheus: Any, requires: str | None, values: Mapping[str, Mapping[str, str]] | None = None, *,
             default_values: Mapping[str, str], provoked: Collection[str], quiet: Collection[str],
             variable_must_list: Mapping[str, str] | None = None) -> list[str]:
    """Every query of the catalog whose ``requires`` is ``requires``, checked: panels, annotations and alert
    signals return data, variables list values (and ``variable_must_list[variable]`` among them), the
    ``provoked`` alerts' expressions return data and the ``quiet`` ones' do not. ``values``: per panel
    title, the variable values that replace ``default_values`` (e.g. a drill-down's feature)."""
    values = values or {}
    if not any(q.requires == requires for q in catalog.all_queries() + catalog.variable_queries()):
        return [f"no query of the catalog requires {requires!r}: nothing to check"]

    def chosen(queries: Iterable[catalog.Query]) -> list[catalog.Query]:
        return [q for q in queries if q.requires == requires]

    def values_of(panel: str) -> dict[str, str]:
        return {**default_values, **values.get(panel, {})}

    found_problems: list[str] = []
    for q in chosen(catalog.panel_queries() + catalog.annotation_queries()):
        try:
            if not run(prometheus, q, values_of(q.panel)):
                found_problems.append(f"no data: {q.name}: {catalog.render(q.expr, values_of(q.panel))}")
        except Exception as exc:
            found_problems.append(f"error: {q.name}: {exc}")

    # Variables: each lists values (label_values(selector, label) as Grafana runs it).
    for v in chosen(catalog.variable_queries()):
        selector, label = catalog.parse_label_values(v.expr)
        params = {"match[]": catalog.render(selector, dict(default_values))} if selector else {}
        listed = prometheus.api(f"label/{label}/values", **params)
        if not listed:
            found_problems.append(f"variable {v.name} lists nothing")
        must = (variable_must_list or {}).get(v.panel)
        if must is not None and must not in listed:
            found_problems.append(f"variable {v.panel} misses {must!r}: {listed}")

    for q in chosen(catalog.alert_queries()):
        result = run(prometheus, q, {})
        if q.panel in provoked and not result:
            found_problems.append(f"alert {q.panel} does not fire on the scenario")
        if q.panel in quiet and result:
            found_problems.append(f"alert {q.panel} fires on a healthy pipeline: {result}")
    for q in chosen(catalog.alert_signal_queries()):
        if not run(prometheus, q, {}):
            found_problems.append(f"alert {q.panel}: its signal returns no data: {q.expr}")
    return found_problems
