"""Grafana dashboards and alert rules of otel-ml, as code.

Modules, one concern each:

- :mod:`dashboards.promql` — every PromQL expression the dashboards and alerts run. Metric names come from
  :data:`otel_ml.semconv.PROMETHEUS_NAMES` and label names from the semconv attribute names, so a rename
  in ``semconv`` flows through to every panel and rule.
- :mod:`dashboards.rules` — the alert rules (one definition feeds the Prometheus rules file and the
  Grafana-managed alert provisioning).
- :mod:`dashboards.generate` — builds the dashboards with grafana-foundation-sdk and writes every
  generated file (``python -m dashboards.generate``; ``--check`` exits 1 when a committed file is stale).
- :mod:`dashboards.catalog` — the list of every panel, variable, annotation and alert query, and a helper
  that renders Grafana's template variables so the queries can run against a plain Prometheus.
"""
