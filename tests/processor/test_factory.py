"""The factory builds every component from its config section, and starts none of them."""

from __future__ import annotations

from pathlib import Path

from otel_ml_processor._config import from_mapping
from otel_ml_processor._factory import build


def test_factory_maps_each_section_onto_its_component(ref_dir: Path) -> None:
    config = from_mapping({
        "receivers": {"otlp_grpc": None, "otlp_http": "127.0.0.1:0", "max_request_bytes": 4096,
                      "overload": {"max_points_per_second": 50, "retry_after": 3}},
        "references": {"directory": str(ref_dir), "max_upload_bytes": 2048},
        "windows": {"sizes": ["1m", "1h"], "slots": 6},
        "evaluation": {"drift": {"alpha": 0.01}},
        "state": {"series_ttl": "10m", "max_streams_per_model": 7},
        "export": {"endpoint": "http://127.0.0.1:4318", "queue_size": 3},
    }, env={})
    c = build(config)
    assert c.grpc is None  # disabled listener: no receiver
    assert c.http is not None and c.http.port == 0 and c.http.max_request_bytes == 4096
    assert c.http.max_reference_bytes == 2048 and not c.http.ready  # built, not started
    assert len(c.store) == 1  # the reference directory was read
    assert c.state.windows.sizes == (60.0, 3600.0) and c.state.windows.slots == 6
    assert c.state.series_ttl == 600.0 and c.state.max_streams_per_model == 7
    assert c.ingestor.rate == 50.0 and c.ingestor.retry_after == 3.0
    assert c.evaluator.window_labels == ("1m", "1h") and c.evaluator.book.default.alpha == 0.01
    assert (c.exporter.endpoint, c.exporter.protocol, c.exporter.queue_size) == \
        ("http://127.0.0.1:4318", "http/protobuf", 3)
    assert c.exporter.telemetry is c.telemetry is c.ingestor.telemetry


def test_factory_shares_the_roles_the_metrics_path_learns_with_the_outcomes_path(ref_dir: Path) -> None:
    c = build(from_mapping({"references": {"directory": str(ref_dir)}}, env={}))
    assert c.outcomes is not None
    c.state.roles[("churn", "3")] = "live"  # as State learns it from a series with ml.model.role
    assert c.outcomes.roles[("churn", "3")] == "live"
