"""The exception tree of otel-ml.

::

    OtelMLError                  root: catch this to catch anything otel-ml raises on purpose
    ├── ConfigurationError       bad arguments or environment, raised at set-up time (never on predict)
    └── ReferenceProfileError    a reference profile is malformed, of an unknown version, or unreadable

Nothing in this tree is ever raised from inside a monitored predict call: there, problems are
counted and logged once instead.
"""

from __future__ import annotations


class OtelMLError(Exception):
    """Root of every exception otel-ml raises on purpose."""


class ConfigurationError(OtelMLError, ValueError):
    """A set-up argument or environment variable is invalid; the message names it."""


class ReferenceProfileError(OtelMLError, ValueError):
    """A reference profile cannot be built, read or validated; the message says where and why."""
