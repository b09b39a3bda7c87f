"""Issue 10 item 9: a monitored predict call never waits on the metrics exporter.

Deterministic, no timing assertion: the exporter's endpoint is a loopback TCP listener that either
accepts and never answers (a black hole) or accepts and resets (a closed collector: the export fails
and the OTLP exporter backs off and retries). ``otel_ml.flush()`` runs in a background thread; once
the listener has seen the exporter connect, the export is known to be blocked (30 s timeout), and 200
predict calls are made (on a serving thread). They must all return, with the model's output unchanged,
while the export is still blocked. A predict call that waited on the exporter would only return after the export gave
up, and the flush would be over by then.

Runs in a fresh interpreter: the export pipeline is process-global, and the first export (which
builds the exporter and imports its modules) is part of what is probed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent('''
    import json, os, socket, sys, threading
    import numpy as np
    import otel_ml

    protocol, behaviour = sys.argv[1], sys.argv[2]
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    connected = threading.Event()
    held = []

    def accept():
        while True:
            conn, _ = listener.accept()
            connected.set()
            if behaviour == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00")
                conn.close()
            else:
                held.append(conn)  # never read, never answered

    threading.Thread(target=accept, daemon=True).start()
    path = "/v1/metrics" if protocol == "http/protobuf" else ""
    otel_ml.configure(endpoint=f"http://127.0.0.1:{port}{path}", protocol=protocol, timeout_s=30,
                      export_interval_s=600)
    ref = otel_ml.build_reference({"age": np.arange(1000.0), "income": np.arange(1000.0) * 3},
                                  model="m", version="1", predictions=np.arange(1000.0) % 2)

    @otel_ml.monitor(model="m", version="1", reference=ref)
    def predict(X):
        return X["age"] * 2

    X = {"age": np.array([1.0, 2.0, 3.0]), "income": np.array([3.0, 6.0, 9.0])}
    predict(X)
    flushed = threading.Event()
    threading.Thread(target=lambda: (otel_ml.flush(60), flushed.set()), daemon=True).start()
    result = {"connected": connected.wait(30), "predicts": 0, "outputs_ok": True}
    predicts_done = threading.Event()

    def serve():
        for i in range(200):
            out = predict({"age": X["age"] + i, "income": X["income"]})
            result["outputs_ok"] &= bool(np.array_equal(out, (X["age"] + i) * 2))
            result["predicts"] += 1
        result["export_still_blocked"] = not flushed.is_set()
        predicts_done.set()

    threading.Thread(target=serve, daemon=True).start()
    predicts_done.wait(45)  # liveness bound only: the export stays blocked for 30 s
    print("RESULT " + json.dumps(result), flush=True)
    os._exit(0)  # skip the exit-time flush: the export is still blocked by design
''')


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
@pytest.mark.parametrize("behaviour", ["blackhole", "reset"])
def test_item9_predict_never_waits_on_a_blocked_exporter(protocol: str, behaviour: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    proc = subprocess.run([sys.executable, "-c", CHILD, protocol, behaviour], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, (proc.returncode, proc.stdout, proc.stderr[-3000:])
    result = json.loads(lines[-1].removeprefix("RESULT "))
    assert result["connected"], result  # the exporter really reached the listener
    assert result == {"connected": True, "predicts": 200, "outputs_ok": True, "export_still_blocked": True}, result
