"""Put on PYTHONPATH of a processor subprocess: installs the test stand-in for otel_ml.stats.performance
when the real module is missing (see tests/processor/_performance_standin.py)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
try:
    import _performance_standin

    _performance_standin.install()
finally:
    sys.path.pop(0)
