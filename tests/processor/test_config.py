"""Config: defaults, YAML, flags, and errors that name the key."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from otel_ml import ConfigurationError
from otel_ml.stats import DriftPolicy
from otel_ml_processor._config import (
    Config,
    EvaluationConfig,
    ExportConfig,
    WindowsConfig,
    from_mapping,
    load_config,
    parse_duration,
    window_label,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "collector" / "processor.example.yaml"


def test_config_defaults_bind_to_loopback() -> None:
    c = from_mapping({}, env={})
    assert c.receivers.otlp_grpc == "127.0.0.1:14317"
    assert c.receivers.otlp_http == "127.0.0.1:14318"
    assert c.export.endpoint == "http://127.0.0.1:4317"
    assert c.windows.sizes == (300.0, 3600.0)
    assert c.windows.labels == ("5m", "1h")
    assert c.auth.token is None


def test_config_yaml_and_flag_precedence(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("windows:\n  sizes: [1m, 2h]\nevaluation:\n  interval: 10s\nexport:\n  endpoint: http://h:4318\n")
    c = load_config(str(f), overrides={"evaluation.interval": 2.0, "receivers.otlp_grpc": None}, env={})
    assert c.windows.sizes == (60.0, 7200.0)
    assert c.evaluation.interval == 2.0
    assert c.export.endpoint == "http://h:4318"
    assert c.export.resolved_protocol == "http/protobuf"
    assert c.receivers.otlp_grpc == "127.0.0.1:14317"  # a flag not given (None) changes nothing


def test_config_token_from_env_and_file(tmp_path: Path) -> None:
    assert from_mapping({}, env={"OTEL_ML_PROCESSOR_TOKEN": "abc"}).auth.token == "abc"
    t = tmp_path / "tok"
    t.write_text("xyz\n")
    assert from_mapping({"auth": {"token_file": str(t)}}, env={}).auth.token == "xyz"
    # The file's token_file wins over the environment; the secret is never in the repr.
    assert from_mapping({"auth": {"token_file": str(t)}}, env={"OTEL_ML_PROCESSOR_TOKEN": "abc"}).auth.token == "xyz"
    assert "abc" not in repr(from_mapping({}, env={"OTEL_ML_PROCESSOR_TOKEN": "abc"}))


@pytest.mark.parametrize(
    "case, endpoint, protocol, resolved",
    [
        ("grpc_port", "http://c:4317", "auto", "grpc"),
        ("http_port", "http://c:4318", "auto", "http/protobuf"),
        ("http_path", "https://c/otlp/v1/metrics", "auto", "http/protobuf"),
        ("explicit_wins", "http://c:4318", "grpc", "grpc"),
    ],
)
def test_export_protocol_resolution(case: str, endpoint: str, protocol: str, resolved: str) -> None:
    assert ExportConfig(endpoint=endpoint, protocol=protocol).resolved_protocol == resolved


@pytest.mark.parametrize(
    "doc, key",
    [
        ({"export": {"endpiont": "x"}}, "export.endpiont: unknown key (did you mean 'endpoint'?)"),
        ({"bogus": 1}, "bogus: unknown key"),
        ({"receivers": {"otlp_grpc": "nohost"}}, "receivers.otlp_grpc"),
        ({"receivers": {"otlp_http": "127.0.0.1:99999"}}, "receivers.otlp_http"),
        ({"receivers": {"max_request_bytes": "big"}}, "receivers.max_request_bytes"),
        ({"receivers": {"grpc_max_connections": 0}}, "receivers.grpc_max_connections: must be an integer >= 1"),
        ({"receivers": {"grpc_max_connections": "many"}}, "receivers.grpc_max_connections: must be an integer"),
        ({"receivers": {"grpc_max_connections": True}}, "receivers.grpc_max_connections: must be an integer"),
        ({"receivers": {"grpc_max_conections": 5}}, "did you mean 'grpc_max_connections'?"),
        ({"receivers": {"tls": {"cert_file": "/nonexistent"}}}, "receivers.tls"),
        ({"windows": {"sizes": []}}, "windows.sizes: at least one window"),
        ({"windows": {"sizes": ["5 parsecs"]}}, "windows.sizes"),
        ({"windows": {"sizes": [60, "1m"]}}, "windows.sizes: duplicate"),
        ({"windows": [60]}, "windows: must be a mapping"),
        ({"windows": {"slot": 3}}, "windows.slot: unknown key (did you mean 'slots'?)"),
        ({"windows": {"slots": 1}}, "windows.slots: must be an integer >= 2"),
        ({"evaluation": {"interval": -1}}, "evaluation.interval"),
        ({"export": {"protocol": "carrier-pigeon"}}, "export.protocol"),
        ({"export": {"headers": ["a"]}}, "export.headers"),
        ({"export": {"timeout": 0}}, "export.timeout: must be a positive number"),
        ({"receivers": {"overload": {"max_points_per_second": -5}}}, "receivers.overload.max_points_per_second"),
        ({"receivers": {"overlaod": {}}}, "receivers.overlaod: unknown key (did you mean 'overload'?)"),
        ({"auth": {"token_file": "/nonexistent"}}, "auth.token_file"),
        ({"auth": {"token": "inline"}}, "auth.token: unknown key (did you mean 'token_file'?)"),
        ({"references": {"poll_interval": "soon"}}, "references.poll_interval"),
        ({"state": {"max_series_per_model": 0}}, "state.max_series_per_model"),
        ({"evaluation": {"drift": {"alpha": 2.0}}}, "evaluation.drift: 'alpha'"),
        ({"evaluation": {"drift": {"models": {"m": {"nonsense": 1}}}}}, "nonsense"),
        ({"drift": {"alpha": 0.1}}, "drift: unknown key"),
        ({"log_level": "loud"}, "log_level"),
        ({"state": "x"}, "state: must be a mapping"),
    ],
)
def test_config_rejects_bad_values_naming_the_key(doc: dict, key: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        from_mapping(doc, env={})
    assert key in str(info.value)


def test_config_and_its_sections_are_frozen() -> None:
    c = Config()
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'windows'"):
        c.windows = WindowsConfig(sizes=(1.0,))  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'sizes'"):
        c.windows.sizes = (1.0,)  # type: ignore[misc]


def test_config_drift_policy_is_deep_frozen() -> None:
    drift = {"alpha": 0.01, "features": {"age": {"wasserstein_floor": 0.2}}}
    section = EvaluationConfig(drift=drift)
    drift["alpha"] = 0.5  # the caller's dict no longer matters
    assert section.policy_book().default.alpha == 0.01
    with pytest.raises(TypeError, match="does not support item assignment"):
        section.drift["features"]["age"]["wasserstein_floor"] = 1.0  # type: ignore[index]


def test_config_sections_validate_themselves() -> None:
    with pytest.raises(ConfigurationError, match=r"^windows\.slots: must be an integer >= 2 and <= 120, got 500$"):
        WindowsConfig(slots=500)
    with pytest.raises(ConfigurationError, match=r"^export\.queue_size: must be an integer >= 1 and <= 10000"):
        ExportConfig(queue_size=0)


def test_config_replace_validates_and_names_the_key() -> None:
    c = Config().replace({"windows.sizes": (60.0,), "export.endpoint": "none"})
    assert c.windows.labels == ("1m",) and c.export.endpoint is None
    with pytest.raises(ConfigurationError, match=r"^evaluation\.interval: must be a positive number"):
        Config().replace({"evaluation.interval": 0.0})
    with pytest.raises(ConfigurationError, match=r"^export\.endpiont: unknown key$"):
        Config().replace({"export.endpiont": "x"})


def test_config_none_disables_export() -> None:
    assert ExportConfig(endpoint="none").endpoint is None


@pytest.mark.parametrize("value, seconds", [(30, 30.0), ("30s", 30.0), ("5m", 300.0), ("1h", 3600.0), ("250ms", 0.25)])
def test_config_durations(value: object, seconds: float) -> None:
    assert parse_duration(value, "k") == seconds


@pytest.mark.parametrize("seconds, label", [(300, "5m"), (3600, "1h"), (90, "90s"), (86400, "1d"), (1.5, "1.5s")])
def test_config_window_labels(seconds: float, label: str) -> None:
    assert window_label(seconds) == label


def test_config_grpc_max_connections_defaults_to_a_quarter_of_the_http_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    import resource

    monkeypatch.setattr(resource, "getrlimit", lambda which: (100_000, 100_000))
    rec = from_mapping({}, env={}).receivers
    assert rec.grpc_max_connections is None
    assert rec.grpc_connection_limit() == 250  # the value derived before the key existed
    assert from_mapping({"receivers": {"max_connections": 400}}, env={}).receivers.grpc_connection_limit() == 100
    assert from_mapping({"receivers": {"max_connections": 20}}, env={}).receivers.grpc_connection_limit() == 16
    set_ = from_mapping({"receivers": {"grpc_max_connections": 7, "max_connections": 20}}, env={}).receivers
    assert set_.grpc_connection_limit() == 7  # explicit: honoured, independent of the HTTP limit
    assert load_config(None, overrides={"receivers.grpc_max_connections": 900}, env={}).receivers \
        .grpc_connection_limit() == 900
    # Like max_connections, capped at the open-file limit minus the reserve.
    monkeypatch.setattr(resource, "getrlimit", lambda which: (256, 256))
    assert dataclasses.replace(set_, grpc_max_connections=900).grpc_connection_limit() == 256 - 64


def test_config_example_file_shows_every_default() -> None:
    c = load_config(str(EXAMPLE), env={})
    # Every key it shows carries the code's default, the drift policy's fields included.
    assert c.replace({"evaluation.drift": {}}) == Config()
    assert c.evaluation.policy_book().default == DriftPolicy()


def test_config_example_file_shows_every_key() -> None:
    import yaml

    def keys(cls: type, prefix: str) -> set[str]:
        out = set()
        for f in dataclasses.fields(cls):
            key = f"{prefix}{f.metadata.get('yaml') or f.name}"
            if "parse" in f.metadata:
                out.add(key)
            else:
                out |= keys(f.default_factory, key + ".")  # type: ignore[arg-type]
        return out

    def shown(doc: dict, prefix: str) -> set[str]:
        out = set()
        for k, v in doc.items():
            if isinstance(v, dict) and k not in ("drift", "headers", "tolerances"):
                out |= shown(v, f"{prefix}{k}.")
            else:
                out.add(f"{prefix}{k}")
        return out

    assert shown(yaml.safe_load(EXAMPLE.read_text()), "") == keys(Config, "")


def test_cli_rejects_unknown_keys_naming_them(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from otel_ml._cli import main

    f = tmp_path / "c.yaml"
    f.write_text("export:\n  endpiont: http://x:4317\n")
    result = CliRunner().invoke(main, ["processor", "--config", str(f)])
    assert result.exit_code == 2
    assert "export.endpiont: unknown key (did you mean 'endpoint'?)" in result.output
    result = CliRunner().invoke(main, ["processor", "--window", "5 parsecs"])
    assert result.exit_code == 2 and "--window" in result.output
    result = CliRunner().invoke(main, ["reference", "push", "--help"])
    assert result.exit_code == 0 and "--url" in result.output


@pytest.mark.parametrize("doc, message", [
    ({"outcomes": {"ttl": "soon"}}, "outcomes.ttl"),
    ({"outcomes": {"max_pending": 0}}, "outcomes.max_pending"),
    ({"outcomes": {"max_segments": 100}}, "outcomes.max_segments: replaced by state.max_segment_series"),
    ({"state": {"max_segment_series": 0}}, "state.max_segment_series"),
    ({"state": {"max_segment_series": 2_000_000}}, "state.max_segment_series"),
    ({"state": {"max_segment_series": "many"}}, "state.max_segment_series"),
    ({"outcomes": {"synchronous": "off"}}, "outcomes.synchronous: must be 'normal' or 'full'"),
    ({"outcomes": {"alpha": 2}}, "outcomes.alpha"),
    ({"outcomes": {"tolerances": {"accuracy": -1}}}, "outcomes.tolerances"),
    ({"outcomes": {"tolerance": {}}}, "outcomes.tolerance: unknown key (did you mean 'tolerances'?)"),
])
def test_config_outcomes_section_names_bad_keys(doc: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        from_mapping(doc, env={})


def test_config_outcomes_policy_passes_overrides_to_the_performance_policy() -> None:
    from otel_ml.stats.performance import PerformancePolicy

    c = from_mapping({"outcomes": {"ttl": "7d", "min_samples": 200, "tolerances": {"accuracy": 0.05}}}, env={})
    assert c.outcomes.ttl == 7 * 86400
    policy = c.outcomes.policy()
    assert policy.min_samples == 200 and policy.tolerances["accuracy"] == 0.05
    assert policy.alpha == PerformancePolicy().alpha
    assert from_mapping({}, env={}).outcomes.policy() == PerformancePolicy()
