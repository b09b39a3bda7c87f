"""A large request must not stall the processor while it is decoded.

Decoding ran on the event loop: one OTLP/JSON request of a few MiB took seconds to decode, and
``/healthz``, other clients and the evaluation all waited for it. Large requests are now decoded in
a decode thread (docs/processor.md "Security and limits"); the state still changes on the loop.

The payload is a real OTLP/JSON export of ~900,000 tiny gauge points (a metric the processor skips,
so applying it costs nothing): decoding it takes several seconds on the loop of a 2-core machine.
The bound below is a generous liveness bound, far above a health check's milliseconds and far
below the decode time; it is not a latency benchmark (``benchmarks/bench_hostile_memory.py`` is).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from .conftest import MIB, Proc, http, status

HEALTH_BOUND_S = 1.0


def _slow_json(size: int) -> bytes:
    head = b'{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"app.queue.depth","gauge":{"dataPoints":['
    tail = b"]}}]}]}]}"
    point = b'{"asInt":"1"}'
    n = (size - len(head) - len(tail)) // (len(point) + 1)
    return head + b",".join([point] * n) + tail


def test_item10_health_answers_while_a_large_request_is_decoded(start_processor: Any, ref_dir: Path) -> None:
    proc: Proc = start_processor("--references", str(ref_dir), "--export-endpoint", "none")
    body = _slow_json(12 * MIB)
    result: list[int] = []

    def send() -> None:
        code, _, _ = http("POST", f"http://{proc.http}/v1/metrics", body, {"Content-Type": "application/json"},
                          timeout=120)
        result.append(code)

    sender = threading.Thread(target=send)
    sender.start()
    latencies: list[float] = []
    while sender.is_alive():  # probes back to back while the request is received, decoded, answered
        t0 = time.monotonic()
        code, _, _ = http("GET", f"http://{proc.http}/healthz", timeout=60)
        latencies.append(time.monotonic() - t0)
        assert code == 200
    sender.join()
    assert result == [200]
    assert len(latencies) >= 3, latencies  # the probes covered the request
    assert max(latencies) < HEALTH_BOUND_S, f"/healthz waited {max(latencies):.1f}s for a decode"
    assert status(proc)["inflight"]["bytes"] == 0
