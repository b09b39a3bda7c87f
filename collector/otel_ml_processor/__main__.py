"""``python -m otel_ml_processor``: the same as ``otel-ml collector``."""

from ._cli import collector

if __name__ == "__main__":
    collector(prog_name="python -m otel_ml_processor")
