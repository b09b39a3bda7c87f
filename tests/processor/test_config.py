"""Config: defaults, YAML, flags, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_ml._errors import ConfigurationError
from otel_ml_processor._config import Config, from_mapping, load_config, parse_duration, window_label


def test_config_defaults_bind_to_loopback() -> None:
    c = from_mapping({}, env={})
    assert c.grpc_endpoint == "127.0.0.1:14317"
    assert c.http_endpoint == "127.0.0.1:14318"
    assert c.export_endpoint == "http://127.0.0.1:4317"
    assert c.windows == (300.0, 3600.0)
    assert c.window_labels == ("5m", "1h")
    assert c.token is None


def test_config_yaml_and_flag_precedence(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("windows: [1m, 2h]\nevaluation:\n  interval: 10s\nexport:\n  endpoint: http://h:4318\n")
    c = load_config(str(f), overrides={"evaluation_interval": 2.0}, env={})
    assert c.windows == (60.0, 7200.0)
    assert c.evaluation_interval == 2.0
    assert c.export_endpoint == "http://h:4318"


def test_config_token_from_env_and_file(tmp_path: Path) -> None:
    assert from_mapping({}, env={"OTEL_ML_PROCESSOR_TOKEN": "abc"}).token == "abc"
    t = tmp_path / "tok"
    t.write_text("xyz\n")
    assert from_mapping({"auth": {"token_file": str(t)}}, env={}).token == "xyz"
    assert "abc" not in repr(from_mapping({}, env={"OTEL_ML_PROCESSOR_TOKEN": "abc"}))


@pytest.mark.parametrize(
    "doc, key",
    [
        ({"export": {"endpiont": "x"}}, "export.endpiont: unknown key (did you mean 'endpoint'?)"),
        ({"bogus": 1}, "bogus: unknown key"),
        ({"receivers": {"otlp_grpc": "nohost"}}, "receivers.otlp_grpc"),
        ({"receivers": {"otlp_http": "127.0.0.1:99999"}}, "receivers.otlp_http"),
        ({"receivers": {"max_request_bytes": "big"}}, "receivers.max_request_bytes"),
        ({"receivers": {"tls": {"cert_file": "/nonexistent"}}}, "receivers.tls"),
        ({"windows": []}, "windows"),
        ({"windows": ["5 parsecs"]}, "windows"),
        ({"windows": [60, "1m"]}, "windows: duplicate"),
        ({"evaluation": {"interval": -1}}, "evaluation.interval"),
        ({"evaluation": {"slots_per_window": 1}}, "slots_per_window"),
        ({"export": {"protocol": "carrier-pigeon"}}, "export.protocol"),
        ({"export": {"headers": ["a"]}}, "export.headers"),
        ({"overload": {"max_points_per_second": -5}}, "overload.max_points_per_second"),
        ({"auth": {"token_file": "/nonexistent"}}, "auth.token_file"),
        ({"drift": {"alpha": 2.0}}, "alpha"),
        ({"drift": {"models": {"m": {"nonsense": 1}}}}, "nonsense"),
        ({"log_level": "loud"}, "log_level"),
        ({"state": "x"}, "state: must be a mapping"),
    ],
)
def test_config_rejects_bad_values_naming_the_key(doc: dict, key: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        from_mapping(doc, env={})
    assert key in str(info.value)


def test_config_is_frozen() -> None:
    c = Config()
    with pytest.raises(Exception):
        c.windows = (1.0,)  # type: ignore[misc]


def test_config_none_disables_export() -> None:
    assert Config(export_endpoint="none").export_endpoint is None


@pytest.mark.parametrize("value, seconds", [(30, 30.0), ("30s", 30.0), ("5m", 300.0), ("1h", 3600.0), ("250ms", 0.25)])
def test_config_durations(value: object, seconds: float) -> None:
    assert parse_duration(value, "k") == seconds


@pytest.mark.parametrize("seconds, label", [(300, "5m"), (3600, "1h"), (90, "90s"), (86400, "1d"), (1.5, "1.5s")])
def test_config_window_labels(seconds: float, label: str) -> None:
    assert window_label(seconds) == label


def test_config_example_file_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "collector" / "processor.example.yaml"
    c = load_config(str(example), env={})
    assert c.windows == (300.0, 3600.0)


def test_cli_rejects_unknown_keys_naming_them(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from otel_ml._cli import main

    f = tmp_path / "c.yaml"
    f.write_text("export:\n  endpiont: http://x:4317\n")
    result = CliRunner().invoke(main, ["collector", "--config", str(f)])
    assert result.exit_code == 2
    assert "export.endpiont: unknown key (did you mean 'endpoint'?)" in result.output
    result = CliRunner().invoke(main, ["collector", "--window", "5 parsecs"])
    assert result.exit_code == 2 and "--window" in result.output
    result = CliRunner().invoke(main, ["reference", "push", "--help"])
    assert result.exit_code == 0 and "--url" in result.output
