"""otel-ml processor: OTLP in, drift against stored reference profiles, OTLP out.

A long-running service that sits beside an OpenTelemetry Collector. It receives the ``ml.*`` metrics
the :mod:`otel_ml` library emits (OTLP gRPC and OTLP/HTTP, protobuf or JSON, gzip), turns the
cumulative streams of every instance of a model version into sliding-window increments, compares
each window with the model version's reference profile using :mod:`otel_ml.stats`, and exports drift
and data-quality gauges over OTLP.

Run it with ``otel-ml processor [--config FILE]`` or ``python -m otel_ml_processor``;
``docs/processor.md`` is the configuration reference and ``collector/processor.example.yaml`` a
documented example. In-process use (tests, the demo)::

    from otel_ml_processor import from_mapping, run_in_thread

    config = from_mapping({"references": {"directory": "refs"}, "evaluation": {"interval": 1.0}})
    with run_in_thread(config) as svc:
        ...  # svc.grpc_endpoint, svc.http_endpoint

Layout (one module per concern): ``_config`` (sections with their validation), ``_factory`` (builds
the components), ``_service`` (starts and stops them, the evaluation loop), ``_grpc`` / ``_http``
(receivers, admin API), ``_decode`` / ``_template`` (OTLP decoding), ``_ingest`` (admission), ``_state``
(streams) with ``_series`` (cumulative -> increments) and ``_windows`` (slot rings), ``_store``
(references), ``_evaluate`` (verdicts via :mod:`otel_ml.stats`), ``_exporter`` (OTLP out),
``_telemetry`` (self-metrics), ``_checkpoint`` (files under ``state.directory``), ``_logformat`` (log
lines), ``_cli``.
"""

from __future__ import annotations

from ._config import (
    AuthConfig,
    Config,
    EvaluationConfig,
    ExportConfig,
    OverloadConfig,
    ReceiversConfig,
    ReferencesConfig,
    StateConfig,
    TLSConfig,
    WindowsConfig,
    from_mapping,
    load_config,
)
from ._service import Service, run, run_in_thread

__all__ = [
    "AuthConfig",
    "Config",
    "EvaluationConfig",
    "ExportConfig",
    "OverloadConfig",
    "ReceiversConfig",
    "ReferencesConfig",
    "Service",
    "StateConfig",
    "TLSConfig",
    "WindowsConfig",
    "from_mapping",
    "load_config",
    "run",
    "run_in_thread",
]
