"""Start the otel-ml processor for the demo: in-process, on free loopback ports, with short windows."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from otel_ml import Reference

from .traffic import DemoUnavailable


@dataclass(frozen=True)
class ProcessorHandle:
    """Where the running processor listens (``host:port``) and the service object itself."""

    grpc_endpoint: str
    http_endpoint: str | None
    service: Any = None


def reference_file(directory: Path, reference: Reference) -> Path:
    """Write ``reference`` into the processor's references directory; returns the file."""
    from urllib.parse import quote

    path = directory / f"{quote(reference.model_name, safe='')}@{quote(reference.model_version, safe='')}.json"
    reference.save(path)
    return path


#: The degradation tolerances of the demo's processor (``outcomes.tolerances``): the input drift and the
#: data-quality incident cost this model one or two points of accuracy; the concept drift about twenty.
DEMO_TOLERANCES = {"accuracy": 0.05, "roc_auc": 0.05}


@contextlib.contextmanager
def start_processor(
    *,
    references: Reference,
    directory: Path,
    export_endpoint: str,
    window_s: float,
    evaluation_interval_s: float,
    grpc_endpoint: str | None = None,
    http_endpoint: str | None = None,
    min_samples: int | None = None,
) -> Iterator[ProcessorHandle]:
    """Write ``references`` into ``directory``, run a processor reading it in a thread, stop it on exit.

    The processor listens on free loopback ports (unless endpoints are given), keeps one sliding
    window of ``window_s`` seconds, evaluates every ``evaluation_interval_s`` seconds and exports its
    gauges over OTLP/gRPC to ``export_endpoint``. Prediction and outcome records are joined in memory
    (no state directory); a drop of :data:`DEMO_TOLERANCES` is what the demo's ops team pages for.
    ``min_samples`` (``outcomes.min_samples``, default 500) is the joined outcomes a window, or a segment's
    slice of it, needs for a verdict: the demo's short windows hold fewer per segment.
    """
    try:
        from otel_ml_processor import from_mapping, run_in_thread
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise DemoUnavailable(
            f"the demo runs the otel-ml processor, which is not importable ({exc}): pip install 'otel-ml[demo]'"
        ) from exc

    reference_file(directory, references)
    config = from_mapping({
        "receivers": {"otlp_grpc": grpc_endpoint or "127.0.0.1:0", "otlp_http": http_endpoint or "127.0.0.1:0"},
        "references": {"directory": str(directory), "poll_interval": 1.0},
        "windows": {"sizes": [float(window_s)]},
        "evaluation": {"interval": float(evaluation_interval_s)},
        "export": {"endpoint": export_endpoint, "protocol": "grpc"},
        "outcomes": {"tolerances": DEMO_TOLERANCES,
                     **({"min_samples": int(min_samples)} if min_samples is not None else {})},
        "log_level": "warning",
    }, env={})
    with run_in_thread(config) as svc:
        yield ProcessorHandle(
            grpc_endpoint=str(getattr(svc, "grpc_endpoint", config.receivers.otlp_grpc)),
            http_endpoint=getattr(svc, "http_endpoint", config.receivers.otlp_http),
            service=svc,
        )
