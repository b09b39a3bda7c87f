"""Logging for code paths that must never raise: log a recurring problem once, count every occurrence.

The OpenTelemetry SDK's rule applies: at runtime the library never throws into user code. A failure
inside otel-ml is caught where it happens, counted (per model in ``ml.instrumentation.errors``, and
process-wide in :func:`error_count`) and logged at most once per ``key`` every ``interval_s`` seconds,
so a bad input repeated a million times writes one line a minute, not a million.
"""

from __future__ import annotations

import logging
import os
import threading
import time

logger = logging.getLogger("otel_ml")

_MAX_KEYS = 1024
_lock = threading.Lock()
_last_logged: dict[str, float] = {}
_errors = 0


def log_once(key: str, msg: str, *args: object, level: int = logging.WARNING, interval_s: float = 60.0,
             exc_info: BaseException | None = None) -> bool:
    """Log ``msg % args`` unless ``key`` was logged in the last ``interval_s`` seconds. True if logged."""
    now = time.monotonic()
    with _lock:
        last = _last_logged.get(key)
        if last is not None and now - last < interval_s:
            return False
        if last is None and len(_last_logged) >= _MAX_KEYS:
            key = "__overflow__"  # bounded memory whatever the keys
            last = _last_logged.get(key)
            if last is not None and now - last < interval_s:
                return False
        _last_logged[key] = now
    try:
        logger.log(level, msg, *args, exc_info=exc_info)
    except Exception:  # a broken handler must not break predict
        pass
    return True


def internal_error(where: str, exc: BaseException) -> None:
    """Count a failure inside otel-ml and log it once per place and exception type."""
    global _errors
    with _lock:
        _errors += 1
    log_once(f"error:{where}:{type(exc).__qualname__}", "otel-ml: internal error in %s (%s: %s); "
             "the model's result is unaffected, further occurrences are counted, not logged",
             where, type(exc).__qualname__, exc, exc_info=exc)


def error_count() -> int:
    """Internal errors since start (or since the last :func:`_reset`), process-wide."""
    return _errors


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # another thread may have held it at fork time


def _reset() -> None:
    global _errors
    with _lock:
        _errors = 0
        _last_logged.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
