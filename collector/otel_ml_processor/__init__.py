"""otel-ml processor: OTLP in, drift against stored reference profiles, OTLP out.

A long-running service that sits beside an OpenTelemetry Collector. It receives the ``ml.*`` metrics
the :mod:`otel_ml` library emits (OTLP gRPC and OTLP/HTTP, protobuf or JSON, gzip), turns the
cumulative streams of every instance of a model version into sliding-window increments, compares
each window with the model version's reference profile using :mod:`otel_ml.stats`, and exports drift
and data-quality gauges over OTLP.

Run it with ``otel-ml collector [--config FILE]`` or ``python -m otel_ml_processor``;
``docs/processor.md`` is the configuration reference and ``collector/processor.example.yaml`` a
documented example. In-process use (tests, the demo)::

    from otel_ml_processor import Config, run_in_thread

    with run_in_thread(Config(references_dir="refs", evaluation_interval=1.0)) as svc:
        ...  # svc.grpc_endpoint, svc.http_endpoint
"""

from __future__ import annotations

from ._config import Config, load_config
from ._service import Service, run, run_in_thread

__all__ = ["Config", "Service", "load_config", "run", "run_in_thread"]
