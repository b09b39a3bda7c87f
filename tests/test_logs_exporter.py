"""Where records go: the logs endpoint resolved like the metrics one (arguments, OTEL_* variables, defaults)."""

from __future__ import annotations

import pytest

from otel_ml._config import load_config
from otel_ml._errors import ConfigurationError
from otel_ml._logs_exporter import logs_target

CASES = {
    "default_follows_the_protocol_default": ({}, {}, None),
    "generic_http_base_gets_the_logs_path": (
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://col:4318"}, {}, ("http://col:4318/v1/logs", "http/protobuf")),
    "generic_grpc": ({"OTEL_EXPORTER_OTLP_ENDPOINT": "col:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, {},
                     ("col:4317", "grpc")),
    "logs_endpoint_is_used_as_is": (
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://col:4318", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "https://x/ingest/v1/logs"},
        {}, ("https://x/ingest/v1/logs", "http/protobuf")),
    "configure_endpoint_metrics_path_becomes_logs": (
        {}, {"endpoint": "http://col:4318/v1/metrics"}, ("http://col:4318/v1/logs", "http/protobuf")),
    "configure_endpoint_wins_over_env": (
        {"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://other:4318/v1/logs"}, {"endpoint": "127.0.0.1:4317",
                                                                           "protocol": "grpc"},
        ("127.0.0.1:4317", "grpc")),
    "logs_protocol_beats_the_generic_one": (
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://col:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
         "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "http/protobuf"}, {}, ("http://col:4318/v1/logs", "http/protobuf")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_endpoint_resolution(case):
    env, args, expected = CASES[case]
    target = logs_target(load_config(env=env), env=env, **args)
    if expected is None:
        assert (target.endpoint, target.protocol) in (("localhost:4317", "grpc"),
                                                      ("http://localhost:4318/v1/logs", "http/protobuf"))
    else:
        assert (target.endpoint, target.protocol) == expected
    assert target.enabled


def test_headers_compression_security_and_switch_off():
    env = {"OTEL_EXPORTER_OTLP_HEADERS": "a=1", "OTEL_EXPORTER_OTLP_LOGS_HEADERS": "Authorization=Bearer%20t",
           "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip", "OTEL_EXPORTER_OTLP_ENDPOINT": "collector.example:4317",
           "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT": "2500"}
    t = logs_target(load_config(env=env), env=env)
    assert t.headers == (("authorization", "Bearer t"),) and t.gzip and not t.insecure and t.timeout_s == 2.5
    off = {"OTEL_LOGS_EXPORTER": "none"}
    assert not logs_target(load_config(env=off), env=off).enabled


def test_bad_variables_warn_and_are_ignored_bad_arguments_raise(caplog):
    bad = {"OTEL_EXPORTER_OTLP_LOGS_COMPRESSION": "zstd", "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
           "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "carrier-pigeon", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    with caplog.at_level("WARNING", logger="otel_ml"):
        t = logs_target(load_config(env=bad), env=bad)
    assert t.gzip and t.protocol == "grpc"  # the next variable in precedence applies
    text = caplog.text
    assert "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION" in text and "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL" in text
    with pytest.raises(ConfigurationError, match="protocol"):
        logs_target(load_config(env={}), env={}, protocol="carrier-pigeon")
    with pytest.raises(ConfigurationError, match="endpoint"):
        logs_target(load_config(env={}), env={}, endpoint="ftp://x")


def _server(statuses):
    """An OTLP/HTTP endpoint answering with ``statuses`` in turn (then 200); returns (url, hits, stop)."""
    import http.server
    import threading

    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            status = statuses[len(hits)] if len(hits) < len(statuses) else 200
            hits.append(status)
            self.send_response(status)
            if status == 503:
                self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/v1/logs", hits, server.shutdown


def test_retryable_answers_are_retried_and_others_are_not():
    from otel_ml._logs_exporter import LogsSender, LogsTarget

    url, hits, stop = _server([503, 429])
    try:
        result = LogsSender(LogsTarget(True, url, "http/protobuf", timeout_s=2)).send(b"")
        assert result.ok and hits == [503, 429, 200]
    finally:
        stop()
    url, hits, stop = _server([400])
    try:
        result = LogsSender(LogsTarget(True, url, "http/protobuf", timeout_s=2)).send(b"")
        assert not result.ok and result.error == "http_400" and hits == [400]
    finally:
        stop()


def test_unreachable_grpc_gives_up_within_its_attempts():
    import socket

    from otel_ml._logs_exporter import LogsSender, LogsTarget

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    result = LogsSender(LogsTarget(True, f"127.0.0.1:{port}", "grpc", timeout_s=0.5)).send(b"")
    assert not result.ok and result.error == "grpc_unavailable"
