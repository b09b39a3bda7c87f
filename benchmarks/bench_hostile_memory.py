"""The processor under the attacks of issue 10 items 2-4: peak memory and /healthz latency on loopback.

Each scenario runs against a fresh ``python -m otel_ml_processor`` (flags only, export disabled, one
reference), with the same prober: a thread that GETs ``/healthz`` every 100 ms (10 s timeout) and a
sampler of ``VmRSS``; the peak is the kernel's ``VmHWM``. Scenarios, all bounded (a fixed number of
requests or connections, a fixed duration; the whole run stops by itself in about two minutes):

* ``baseline``    -- benign traffic: 4 pods' cumulative exports over gRPC, 10 s;
* ``attr-bytes``  -- item 2: 20 requests with a unique 1 MiB resource attribute and 20 with a unique
                     1 MiB data-point attribute (attacker-chosen bytes), then 5 s idle: what is retained;
* ``slow-http``   -- item 3: 400 half-sent HTTP requests (head or body never finished) held 15 s, and
                     how many of them the processor closed by itself;
* ``big-grpc``    -- item 4: 2 rounds of 16 concurrent 8 MB gRPC requests;
* ``slow-decode`` -- 20 s of 16 MiB requests sent back to back by two clients: OTLP/HTTP JSON of 1.2
                     million points of a metric the processor skips (seconds to decode, nothing to apply)
                     and OTLP/gRPC protobuf (ml.* points padded with such a metric: fast to decode): what
                     decoding costs the health checks;
* ``big-fleet``   -- the same with real exports of many pods' ml.* metrics: gRPC protobuf (~8,400 pods),
                     HTTP JSON (as many as fit in 16 MiB of JSON, ~2,700): decoding *and* applying them
                     (creating the series, updating the windows) take long.

Reported per scenario: RSS at start, peak (``VmHWM``) and at the end in MiB, the growth of the peak over
the start, the /healthz median and worst latency and failed probes, and the ratio of the peak growth and
of the /healthz median to the baseline measured in the same run. Timings on a shared machine are noisy;
this prints figures, it does not assert (the regression tests in ``tests/hostile`` do).

Run: ``python benchmarks/bench_hostile_memory.py [--only slow-decode] [--baseline DIR] [--rounds N]``.
``--baseline DIR`` runs each scenario against the processor in another source tree too (e.g. a
``git worktree`` of an earlier commit; ``DIR/collector`` and ``DIR`` go first on ``PYTHONPATH``), the
two alternating for ``--rounds`` rounds (default 1); the table shows each side's medians over its rounds.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from google.protobuf import json_format  # noqa: E402
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest  # noqa: E402

from hostile.conftest import MIB, attacker_request, grpc_export, host_port, large_requests  # noqa: E402
from processor.conftest import Proc  # noqa: E402
from processor.payloads import Emitter, make_reference  # noqa: E402


def _proc_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Probe:
    """Polls /healthz every 100 ms and samples RSS until stopped."""

    def __init__(self, proc: Proc) -> None:
        self.proc = proc
        self.latencies: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        url = f"http://{self.proc.http}/healthz"
        while not self._stop.is_set():
            t0 = time.perf_counter()
            try:
                with urllib.request.urlopen(url, timeout=10) as r:
                    r.read()
                self.latencies.append(time.perf_counter() - t0)
            except OSError:
                self.failures += 1
            self._stop.wait(0.1)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(15)


def _baseline(proc: Proc) -> str:
    pods = [Emitter(make_reference(), f"pod-{i}", seed=i) for i in range(4)]
    end = time.monotonic() + 10
    n = 0
    while time.monotonic() < end:
        for e in pods:
            e.observe(200)
            grpc_export(proc.grpc, e.request())
            n += 1
        time.sleep(0.05)
    return f"{n} requests"


def _attr_bytes(proc: Proc) -> str:
    sent = 0
    for i in range(20):
        grpc_export(proc.grpc, attacker_request(f"pod-r{i}", resource_bytes=MIB, tag=f"{i}-"), timeout=30)
        grpc_export(proc.grpc, attacker_request(f"pod-a{i}", attribute_bytes=MIB, tag=f"{i}-"), timeout=30)
        sent += 2 * MIB
    time.sleep(5)
    return f"{sent // MIB} MiB of unique attribute bytes"


def _slow_http(proc: Proc) -> str:
    addr = host_port(proc.http)
    head = b"POST /v1/metrics HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
    socks: list[socket.socket] = []
    try:
        for i in range(400):
            s = socket.socket()
            s.settimeout(2)
            try:
                s.connect(addr)
                s.sendall(head if i % 2 else head + b"Content-Length: 100000\r\n\r\n" + b"\x00" * 100)
                socks.append(s)
            except OSError:
                s.close()
        time.sleep(15)
        closed = 0
        for s in socks:
            s.setblocking(False)
            try:
                while s.recv(65536):  # a 408 answer may come before the close
                    pass
                closed += 1
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
        return f"{len(socks)} held 15 s, {closed} closed by the processor"
    finally:
        for s in socks:
            s.close()


def _big_grpc(proc: Proc) -> str:
    bodies, _ = large_requests(16, 8 * MIB)
    outcomes: dict[str, int] = {}
    lock = threading.Lock()

    def send(body: bytes) -> None:
        try:
            grpc_export(proc.grpc, body, timeout=60)
            key = "OK"
        except Exception as exc:
            code = getattr(exc, "code", None)  # grpc.RpcError.code(): the status code
            key = str(code()) if code is not None else type(exc).__name__
        with lock:
            outcomes[key] = outcomes.get(key, 0) + 1

    for _ in range(2):
        threads = [threading.Thread(target=send, args=(b,)) for b in bodies]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
    return f"2 x 16 x {len(bodies[0]) / MIB:.1f} MiB: {outcomes}"


def _fleet_export(size: int) -> ExportMetricsServiceRequest:
    """One export of as many pods' ml.* metrics as fit in ``size`` bytes of protobuf (a Collector's batch)."""
    ref = make_reference()
    req = ExportMetricsServiceRequest()
    e = Emitter(ref, "pod-0")
    e.observe(10)
    one = e.request()
    per_pod = one.ByteSize()
    for i in range(size // per_pod - 1):
        rm = req.resource_metrics.add()
        rm.CopyFrom(one.resource_metrics[0])
        rm.resource.attributes[1].value.string_value = f"pod-{i}"
    return req


_LIMIT = 16 * MIB - 64 * 1024


def _fleet_payloads() -> dict[str, bytes]:
    small = _fleet_export(_LIMIT // 3)
    js = json_format.MessageToJson(small, indent=None).encode()
    while len(js) > _LIMIT:
        del small.resource_metrics[len(small.resource_metrics) * 19 // 20:]
        js = json_format.MessageToJson(small, indent=None).encode()
    return {"grpc": _fleet_export(_LIMIT).SerializeToString(), "json": js}


def _skipped_payloads() -> dict[str, bytes]:
    head = b'{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"app.queue.depth","gauge":{"dataPoints":['
    tail = b"]}}]}]}]}"
    point = b'{"asInt":"1"}'
    n = (_LIMIT - len(head) - len(tail)) // (len(point) + 1)
    return {"grpc": large_requests(1, _LIMIT)[0][0], "json": head + b",".join([point] * n) + tail}


def _big_requests(proc: Proc, bodies: dict[str, bytes]) -> str:
    end = time.monotonic() + 20
    sent = {"grpc": 0, "http": 0}
    failed = {"grpc": 0, "http": 0}

    def grpc_client() -> None:
        while time.monotonic() < end:
            try:
                grpc_export(proc.grpc, bodies["grpc"], timeout=60)
                sent["grpc"] += 1
            except Exception:
                failed["grpc"] += 1

    def http_client() -> None:
        url = f"http://{proc.http}/v1/metrics"
        while time.monotonic() < end:
            req = urllib.request.Request(url, data=bodies["json"], method="POST",
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=60) as r:
                    r.read()
                sent["http"] += 1
            except OSError:
                failed["http"] += 1

    threads = [threading.Thread(target=grpc_client), threading.Thread(target=http_client)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return (f"20 s: {sent['grpc']} x {len(bodies['grpc']) / MIB:.1f} MiB gRPC, {sent['http']} x "
            f"{len(bodies['json']) / MIB:.1f} MiB JSON answered; failed {failed}")


SCENARIOS: list[tuple[str, Callable[[Proc], str]]] = [
    ("baseline", _baseline), ("attr-bytes", _attr_bytes), ("slow-http", _slow_http), ("big-grpc", _big_grpc),
    ("slow-decode", lambda proc: _big_requests(proc, _skipped_payloads())),
    ("big-fleet", lambda proc: _big_requests(proc, _fleet_payloads())),
]


def run(name: str, load: Callable[[Proc], str], refs: Path, source: str | None = None) -> dict[str, Any]:
    env = None
    if source is not None:
        env = {"PYTHONPATH": os.pathsep.join([str(Path(source) / "collector"), source,
                                              os.environ.get("PYTHONPATH", "")])}
    proc = Proc(["--references", str(refs), "--export-endpoint", "none"], env=env)
    try:
        pid = proc.p.pid
        time.sleep(1)
        start = _proc_kib(pid, "VmRSS")
        with Probe(proc) as probe:
            time.sleep(1)
            what = load(proc)
        end = _proc_kib(pid, "VmRSS")
        peak = _proc_kib(pid, "VmHWM")
        lat = probe.latencies or [float("nan")]
        return {"name": name, "what": what, "start": start / 1024, "peak": peak / 1024, "end": end / 1024,
                "growth": (peak - start) / 1024, "h_med": statistics.median(lat) * 1e3, "h_max": max(lat) * 1e3,
                "h_fail": probe.failures, "alive": proc.alive()}
    finally:
        proc.p.kill()
        proc.p.wait()


def _median_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out = dict(rows[-1])
    for k in ("start", "peak", "end", "growth", "h_med", "h_max", "h_fail"):
        out[k] = statistics.median(r[k] for r in rows)
    out["alive"] = all(r["alive"] for r in rows)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", action="append", choices=[n for n, _ in SCENARIOS], help="run only these scenarios "
                    "(the baseline scenario always runs)")
    ap.add_argument("--baseline", metavar="DIR", help="also run the processor of this source tree, alternating")
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    chosen = [(n, f) for n, f in SCENARIOS if n == "baseline" or not args.only or n in args.only]
    sides: list[tuple[str, str | None]] = [("", None)]
    if args.baseline:
        sides = [("before ", args.baseline), ("after ", None)]
    t0 = time.monotonic()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        refs = Path(tmp) / "refs"
        refs.mkdir()
        make_reference().save(refs / "churn.json")
        for name, load in chosen:
            per_side: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in sides}
            for _ in range(args.rounds):
                for label, source in sides:
                    per_side[label].append(run(name, load, refs, source))
            for label, _ in sides:
                row = _median_row(per_side[label])
                row["name"] = label + name
                rows.append(row)
    base = rows[0]
    print(f"{'scenario':<18} {'RSS start':>9} {'peak':>8} {'end':>8} {'growth':>8} {'x base':>7} "
          f"{'healthz med':>11} {'max':>8} {'x base':>7} {'fail':>4}  load")
    for r in rows:
        g_ratio = r["growth"] / base["growth"] if base["growth"] > 0 else float("nan")
        print(f"{r['name']:<18} {r['start']:>7.1f}Mi {r['peak']:>6.1f}Mi {r['end']:>6.1f}Mi {r['growth']:>6.1f}Mi "
              f"{g_ratio:>7.1f} {r['h_med']:>9.2f}ms {r['h_max']:>6.0f}ms {r['h_med'] / base['h_med']:>7.1f} "
              f"{r['h_fail']:>4}  {r['what']}{'' if r['alive'] else ' (processor died)'}")
    print(f"total {time.monotonic() - t0:.0f} s" + (f", medians of {args.rounds} rounds per side" if args.baseline
                                                    else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
