"""``python -m otel_ml_demo``: the same command as ``otel-ml demo``."""

from .cli import demo

demo(prog_name="python -m otel_ml_demo")
