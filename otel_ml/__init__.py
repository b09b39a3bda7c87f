"""otel-ml: OpenTelemetry-native ML observability (work in progress)."""

from ._errors import ConfigurationError, OtelMLError, ReferenceProfileError
from ._reference import Reference, build_reference, load_reference

__all__ = [
    "ConfigurationError",
    "OtelMLError",
    "Reference",
    "ReferenceProfileError",
    "build_reference",
    "load_reference",
]
