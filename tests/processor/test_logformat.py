"""JSON log lines of the processor (``OTEL_ML_PROCESSOR_LOG_FORMAT=json``): one object per line."""

from __future__ import annotations

import io
import json
import logging

import pytest

from otel_ml_processor._logformat import JsonFormatter, configure_logging, log_format


@pytest.fixture
def capture():
    """A logger whose records go through a JsonFormatter into a string buffer."""
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("otel_ml_processor.test_logformat")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, buf
    logger.removeHandler(handler)


def _lines(buf: io.StringIO) -> list[dict]:
    text = buf.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_one_json_object_per_line_with_level_logger_message(capture):
    logger, buf = capture
    logger.info("ready grpc=%s http=%s", "0.0.0.0:14317", "0.0.0.0:14318")
    logger.warning("two\nlines")
    first, second = _lines(buf)
    assert first["level"] == "info"
    assert first["logger"] == "otel_ml_processor.test_logformat"
    assert first["message"] == "ready grpc=0.0.0.0:14317 http=0.0.0.0:14318"
    assert first["timestamp"].endswith("+00:00")
    assert second == {**second, "level": "warning", "message": "two\nlines"}
    assert "exception" not in first


def test_exception_is_one_field_of_the_same_line(capture):
    logger, buf = capture
    try:
        raise ValueError("bad reference")
    except ValueError:
        logger.exception("cannot load")
    (line,) = _lines(buf)
    assert line["level"] == "error" and line["message"] == "cannot load"
    assert line["exception"].startswith("Traceback (most recent call last):")
    assert "ValueError: bad reference" in line["exception"]


def test_extra_fields_are_kept_and_unserialisable_values_stringified(capture):
    logger, buf = capture
    endpoint = object.__new__(type("E", (), {"__str__": lambda s: "E!"}))
    logger.info("export failed", extra={"attempt": 3, "endpoint": endpoint})
    (line,) = _lines(buf)
    assert line["attempt"] == 3 and line["endpoint"] == "E!"


def test_log_format_from_env_defaults_to_text_and_warns_on_unknown(caplog):
    assert log_format({}) == "text"
    assert log_format({"OTEL_ML_PROCESSOR_LOG_FORMAT": "JSON"}) == "json"
    with caplog.at_level(logging.WARNING, logger="otel_ml_processor"):
        assert log_format({"OTEL_ML_PROCESSOR_LOG_FORMAT": "logfmt"}) == "text"
    assert "logfmt" in caplog.text


def test_configure_logging_replaces_the_root_handler(capsys):
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("debug", "json")
        configure_logging("info", "json")  # again: still one handler
        assert len(root.handlers) == 1 and root.level == logging.INFO
        logging.getLogger("otel_ml_processor").info("hello")
        (line,) = [json.loads(x) for x in capsys.readouterr().err.splitlines()]
        assert line["message"] == "hello" and line["logger"] == "otel_ml_processor"
        configure_logging("info", "text")
        logging.getLogger("otel_ml_processor").info("plain")
        assert capsys.readouterr().err.rstrip().endswith("INFO otel_ml_processor: plain")
        with pytest.raises(ValueError, match="logfmt"):
            configure_logging("info", "logfmt")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
