"""``python -m otel_ml_processor``: the same as ``otel-ml processor``."""

from ._cli import processor

if __name__ == "__main__":
    processor(prog_name="python -m otel_ml_processor")
