"""otel-ml: OpenTelemetry-native ML observability.

Usage::

    import otel_ml

    ref = otel_ml.build_reference(X_train, predictions=model.predict_proba(X_train),
                                  class_names=model.classes_, model="credit", version="3")
    ref.save("credit-3.json")

    @otel_ml.monitor(model="credit", version="3", reference="credit-3.json")
    def predict(X):
        return model.predict_proba(X)

    # or, for a scikit-learn style object:
    otel_ml.instrument(model, model="credit", version="3", reference="credit-3.json")

Every call opens a span ``predict {model}`` (tracer from the global TracerProvider, scope ``otel_ml``) and
adds the batch to in-memory counts: one histogram per numeric feature whose buckets are the
reference's bin edges (``ml.feature.value``), counts per category, prediction histograms and class
counts, data-quality counters and ``ml.predict.duration``. A daemon thread exports them over OTLP every
``OTEL_METRIC_EXPORT_INTERVAL`` ms (default 60000); :func:`flush` exports now, and pending data is
flushed at interpreter exit. ``docs/semantic-conventions.md`` lists every signal.

Ground truth: with ``monitor(..., prediction_id="order_id")`` (a column, or a callable returning one id
per row) each predicted row also becomes an ``ml.prediction`` OTLP log record (keyed hash of the id,
the output, the predict span's trace id), sent from a background thread; ``record_outcomes(model=...,
ids=..., actuals=...)``, from any process, sends the matching ``ml.outcome`` records. Ids are hashed
with ``configure(id_secret=...)`` or ``OTEL_ML_ID_SECRET`` (the same secret on both sides).

An instrumented estimator pickles, copies and clones as the plain one, and the copy comes back plain
(monitoring is the process's configuration, not the model's state); each method's outputs are recorded
only when the reference describes them (``predict_proba``: ``proba:<class>``; ``predict``: label or value).

Without code changes, under ``opentelemetry-instrument``: :class:`OtelMLInstrumentor` (entry point
``otel_ml``) monitors ``predict``/``predict_proba`` of scikit-learn estimators, XGBoost and LightGBM
boosters and ONNX Runtime sessions as their libraries are imported. Model name: the class name (or
``OTEL_ML_MODEL_NAME``); version: ``OTEL_ML_MODEL_VERSION``, else the reference's; reference:
``$OTEL_ML_REFERENCES/<model name>.json`` when present (see :mod:`otel_ml._instrumentor`).

Configuration comes from the standard variables (``OTEL_SDK_DISABLED``, ``OTEL_METRICS_EXPORTER``,
``OTEL_METRIC_EXPORT_INTERVAL``, ``OTEL_EXPORTER_OTLP_(METRICS_)ENDPOINT/PROTOCOL/HEADERS/TIMEOUT/COMPRESSION``,
``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE``, ``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES``) or from :func:`configure`, whose arguments win. A bad variable is
warned about once and ignored, as the OTel SDK does. The protocol is the specification's default,
``http/protobuf`` (``http://localhost:4318/v1/metrics``), unless a ``..._PROTOCOL`` variable or
``configure(protocol="grpc")`` says otherwise; it is never guessed from the endpoint's port. The
resource is the application's: that of its SDK MeterProvider (else of its TracerProvider, when that
names the service), else the one ``OTEL_SERVICE_NAME``/``OTEL_RESOURCE_ATTRIBUTES`` describe.

Nothing is raised from inside a monitored call: bad input is counted, internal failures are counted in
``ml.instrumentation.errors`` and logged once, and the model's result is returned unchanged. Set-up
mistakes (a bad reference file, a bad variable) raise at once: :class:`ConfigurationError`,
:class:`ReferenceProfileError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__version__ = "0.1.0"

from ._errors import ConfigurationError, OtelMLError, ReferenceProfileError
from ._export import PIPELINE as _PIPELINE
from ._monitor import instrument, monitor
from ._outcomes import record_outcomes
from ._reference import Reference, build_reference, load_reference

__all__ = [
    "ConfigurationError",
    "OtelMLError",
    "OtelMLInstrumentor",
    "Reference",
    "ReferenceProfileError",
    "build_reference",
    "configure",
    "flush",
    "instrument",
    "load_reference",
    "monitor",
    "record_outcomes",
]


def __getattr__(name: str) -> Any:
    # OtelMLInstrumentor needs opentelemetry-instrumentation: loaded on first use, not with otel_ml
    if name == "OtelMLInstrumentor":
        from ._instrumentor import OtelMLInstrumentor

        return OtelMLInstrumentor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def configure(
    *,
    exporter: Any = None,
    export_interval_s: float | None = None,
    endpoint: str | None = None,
    protocol: str | None = None,
    headers: Mapping[str, str] | str | None = None,
    timeout_s: float | None = None,
    temporality: str | None = None,
    resource: Any = None,
    disabled: bool | None = None,
    id_secret: str | bytes | None = None,
    hash_ids: bool | None = None,
) -> None:
    """Configure the export pipeline; arguments win over the ``OTEL_*`` variables.

    ``exporter`` is any ``opentelemetry.sdk.metrics.export.MetricExporter`` (an in-memory one in tests,
    say); otherwise an OTLP exporter is built from ``endpoint``/``protocol``/``headers`` (``protocol``
    ``"http/protobuf"`` by default or ``"grpc"``; for HTTP an ``endpoint`` without a path gets
    ``/v1/metrics``). ``temporality``
    is ``"cumulative"`` (default) or ``"delta"``. ``resource`` overrides the resource otherwise taken
    from the application's SDK providers or ``Resource.create()``. ``timeout_s`` is in seconds (the
    variables, as the specification says, in milliseconds). Call it before decorating; calling it again
    replaces the pipeline (the counts are kept). Raises :class:`ConfigurationError` naming the bad
    argument; a bad ``OTEL_*`` variable only warns and is ignored. ``id_secret`` keys the hash of
    prediction ids (else ``OTEL_ML_ID_SECRET``); ``hash_ids=False`` sends raw ids instead.
    """
    from ._config import load_config

    config = load_config(
        exporter=exporter,
        export_interval_s=export_interval_s,
        endpoint=endpoint,
        protocol=protocol,
        headers=headers,
        timeout_s=timeout_s,
        temporality=temporality,
        resource=resource,
        disabled=disabled,
    )
    from ._ids import configure_ids
    from ._records import QUEUE

    QUEUE.configure(config, endpoint=endpoint, protocol=protocol, headers=headers)
    configure_ids(id_secret, hash_ids)
    _PIPELINE.configure(config)
    from ._monitor import _set_disabled

    _set_disabled(config.disabled)
    from ._aggregate import aggregates

    if aggregates():
        _PIPELINE.ensure_started()


def flush(timeout_s: float = 5.0) -> bool:
    """Export every model's counts and send the queued records now; True when both succeeded within
    ``timeout_s`` seconds."""
    try:
        import time

        from ._records import flush as flush_records

        deadline = time.monotonic() + timeout_s
        records_ok = flush_records(timeout_s)
        return _PIPELINE.flush(max(0.0, deadline - time.monotonic())) and records_ok
    except Exception as exc:  # never raise into the caller's code path
        from ._log import internal_error

        internal_error("flush", exc)
        return False
