"""Log output of the processor: plain text for a terminal, or one JSON object per line for a log pipeline.

``OTEL_ML_PROCESSOR_LOG_FORMAT=json`` (or ``text``, the default) selects the format; container platforms
(Kubernetes, Docker's json-file driver, Fluent Bit, the Collector's filelog receiver) parse JSON lines
without a custom regex. A JSON line carries ``timestamp`` (RFC 3339, UTC), ``level``, ``logger``,
``message`` and, when an exception is logged, ``exception`` (type, message and traceback as one string);
``extra=`` fields given to a logging call are added as they are (stringified when not JSON-serialisable).
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timezone
from typing import Any

LOG_FORMAT_ENV = "OTEL_ML_PROCESSOR_LOG_FORMAT"
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in messages and tracebacks are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            doc["exception"] = record.exc_text
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and key not in doc and not key.startswith("_"):
                doc[key] = value
        return json.dumps(doc, default=str, ensure_ascii=False)


def log_format(env: dict[str, str] | None = None) -> str:
    """The format named by ``OTEL_ML_PROCESSOR_LOG_FORMAT`` (``text`` when unset).

    An unknown value falls back to ``text`` with a warning, as the OTel SDK does with bad ``OTEL_*``
    variables: a typo must not keep the service from starting.
    """
    value = (os.environ if env is None else env).get(LOG_FORMAT_ENV, "").strip().lower()
    if value in ("", *FORMATS):
        return value or "text"
    logging.getLogger("otel_ml_processor").warning(
        "%s=%r is not one of %s; using text", LOG_FORMAT_ENV, value, ", ".join(FORMATS))
    return "text"


def configure_logging(level: str, fmt: str) -> None:
    """Send the root logger's records to stderr at ``level`` (``debug`` ... ``error``) in ``fmt``.

    ``fmt`` is ``text`` or ``json`` (usually :func:`log_format`). Replaces the root logger's handlers,
    so calling it again switches the format instead of adding a second handler.
    """
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))


__all__ = ["FORMATS", "LOG_FORMAT_ENV", "JsonFormatter", "configure_logging", "log_format"]
