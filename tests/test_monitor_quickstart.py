"""examples/quickstart.py runs as written and prints what it exported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "quickstart.py"


def test_quickstart_runs_and_prints_the_exported_metrics():
    r = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "span 'predict breast-cancer'" in out
    for name in ("ml.predict.duration", "ml.feature.value", "ml.prediction.value", "ml.feature.out_of_range"):
        assert name in out
    assert "[ml.feature.name=mean radius] count=171" in out
