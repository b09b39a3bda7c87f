"""otel-ml quickstart: monitor a scikit-learn model and print what would go over OTLP.

    .venv/bin/python examples/quickstart.py

Trains a classifier on scikit-learn's bundled breast-cancer data set, builds the reference profile from
the training data, wraps ``predict_proba`` with ``@otel_ml.monitor``, scores a shifted batch (with a few
bad values), flushes, and prints a readable summary of the exported metrics. In a real service you would
leave out ``configure(exporter=...)``: the library then exports over OTLP to
``OTEL_EXPORTER_OTLP_ENDPOINT`` (a local collector by default).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from opentelemetry import trace
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import otel_ml
from otel_ml import semconv


class SummaryExporter(MetricExporter):
    """Keeps the last export so the example can print it (stands in for the OTLP exporter)."""

    def __init__(self) -> None:
        super().__init__(preferred_temporality={}, preferred_aggregation={})
        self.last: MetricsData | None = None

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: object) -> MetricExportResult:
        self.last = metrics_data
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: object) -> None:
        pass


def summarize(data: MetricsData, features: list[str]) -> None:
    resource = data.resource_metrics[0].resource.attributes
    print(f"resource: service.name={resource.get('service.name')}")
    metrics = {m.name: m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    for name, metric in metrics.items():
        points = metric.data.data_points
        print(f"\n{name}  ({type(metric.data).__name__.lower()}, unit {metric.unit or '-'}, {len(points)} points)")
        for p in points:
            if name == semconv.FEATURE_VALUE and p.attributes[semconv.FEATURE_NAME] not in features:
                continue
            label = ", ".join(f"{k}={v}" for k, v in p.attributes.items()
                              if k not in (semconv.MODEL_NAME, semconv.MODEL_VERSION))
            if hasattr(p, "bucket_counts"):
                bounds = ", ".join(f"{b:.3g}" for b in p.explicit_bounds)
                print(f"  [{label or 'all'}] count={p.count} min={p.min} max={p.max}")
                print(f"      bounds=[{bounds}]")
                print(f"      counts={list(p.bucket_counts)}")
            elif p.value:
                print(f"  [{label or 'all'}] {p.value}")
    print("\n(zero-valued counters omitted from this printout; they are exported too)")


def main() -> None:
    data = load_breast_cancer(as_frame=True)
    X, y = data.data, data.target
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.3, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X_train, y_train)

    # 1. The reference: bin edges and counts per feature and per predicted probability.
    reference = otel_ml.build_reference(
        X_train, predictions=model.predict_proba(X_train), class_names=model.classes_,
        model="breast-cancer", version="1",
    )
    path = Path(tempfile.mkdtemp()) / "breast-cancer-1.json"
    reference.save(path)
    print(f"reference written to {path}: {len(reference.features)} features, {len(reference.outputs)} outputs")

    # 2. Export to in-memory exporters for this example (a service configures OTLP instead).
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    trace.set_tracer_provider(provider)
    sink = SummaryExporter()
    otel_ml.configure(exporter=sink, export_interval_s=60)

    # 3. Monitor the predict function.
    @otel_ml.monitor(model="breast-cancer", version="1", reference=path)
    def predict(features):
        return model.predict_proba(features.fillna(0.0))

    batch = X_test.copy()
    batch["mean radius"] *= 1.5  # a drifted feature
    batch.iloc[0, 1] = np.nan  # a missing value
    proba = predict(batch)
    print(f"scored {len(proba)} rows")

    # 4. Export now (a service exports every OTEL_METRIC_EXPORT_INTERVAL, and at exit).
    assert otel_ml.flush(timeout_s=5.0)
    for span in spans.get_finished_spans():
        print(f"span {span.name!r}: {dict(span.attributes)}")
    summarize(sink.last, features=["mean radius", "mean texture"])


if __name__ == "__main__":
    main()
