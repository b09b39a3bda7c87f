"""``pip install otel-ml`` without extras, into a fresh venv: only what the predict path needs, and it works.

Slow-ish (a venv and an install from pip's cache: about a minute on a busy 2-core machine); it runs in CI
with the rest. The package is installed from a copy of this checkout (a non-editable install, as a model
server would get it), and a monitored predict call exports real OTLP/HTTP to a loopback sink.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: Distributions that belong to extras (cli, processor, demo, pandas, polars), never to the core install.
EXTRAS_ONLY = ("click", "rich", "scipy", "pandas", "pyarrow", "PyYAML", "aiohttp", "scikit-learn", "polars")

PROGRAM = r'''
import gzip, http.server, json, sys, threading
from importlib.metadata import PackageNotFoundError, version

import numpy as np

received = []

class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
threading.Thread(target=sink.serve_forever, daemon=True).start()

import otel_ml

otel_ml.configure(endpoint=f"http://127.0.0.1:{sink.server_port}", protocol="http/protobuf", export_interval_s=3600)
X = np.random.default_rng(0).normal(size=(2000, 3))
otel_ml.build_reference(X, model="m", version="1", predictions=X.sum(axis=1)).save("ref.json")
returned = []

@otel_ml.monitor(model="m", version="1", reference="ref.json")
def predict(batch):
    returned.append(batch.sum(axis=1))
    return returned[-1]

result = predict(X[:100])
exported = otel_ml.flush(30)
absent = []
for name in sys.argv[1:]:
    try:
        version(name)
    except PackageNotFoundError:
        absent.append(name)
print(json.dumps({
    "same_object": result is returned[0],
    "exported": exported,
    "paths": sorted({p for p, _ in received}),
    "feature_histogram": any(b"ml.feature.value" in body for _, body in received),
    "absent": absent,
}))
'''


def _copy_source(dest: Path) -> None:
    """The files a build needs: pyproject, README and every package under the packages.find roots."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    for root in (REPO, REPO / "collector"):
        for package in sorted(root.glob("otel_ml*")):
            if package.is_dir() and (package / "__init__.py").exists():
                shutil.copytree(package, dest / package.relative_to(REPO), ignore=ignore)


@pytest.mark.timeout(900)
def test_core_install_has_no_extras_and_monitors(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _copy_source(src)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python, pip = venv / "bin" / "python", venv / "bin" / "pip"
    install = subprocess.run([str(pip), "install", "-v", "--disable-pip-version-check", str(src)],
                             capture_output=True, text=True, timeout=600)
    log = install.stdout + install.stderr
    assert install.returncode == 0, log[-5000:]
    assert "SetuptoolsDeprecationWarning" not in log, log  # e.g. `project.license` as a table

    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    run = subprocess.run([str(python), "-c", PROGRAM, *EXTRAS_ONLY], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["absent"] == list(EXTRAS_ONLY), report
    assert report["same_object"] and report["exported"], report
    assert report["paths"] == ["/v1/metrics"] and report["feature_histogram"], report

    cli = subprocess.run([str(venv / "bin" / "otel-ml"), "drift", "--help"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 2, cli.stdout + cli.stderr
    assert cli.stdout == "" and cli.stderr.count("\n") == 1, cli.stderr
    assert cli.stderr.startswith("otel-ml drift needs the 'cli' extra (no module named 'click'): pip install ")
    assert f"{src}[cli]'" in cli.stderr, cli.stderr  # installed from a directory: the hint names it


def test_pyproject_declares_the_extras_the_code_imports() -> None:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"])
    extras = project["optional-dependencies"]
    for name in ("click", "scipy", "pandas", "aiohttp", "pyyaml", "rich"):
        assert name not in core, f"{name} is in the core install"
    for extra, needs in {"cli": ("click", "rich", "scipy", "pandas", "pyarrow", "pyyaml"),
                         "processor": ("click", "scipy", "grpcio", "aiohttp", "pyyaml")}.items():
        for name in needs:
            assert any(d.startswith(name) for d in extras[extra]), (extra, name)
    assert any("cli" in d and "processor" in d for d in extras["demo"])
    assert project["license"] == "Apache-2.0"
    assert json.dumps(project["scripts"]) == json.dumps({"otel-ml": "otel_ml._cli_commands:main"})


def test_make_demo_installs_the_demo_extra_and_make_test_the_dev_extra(tmp_path: Path) -> None:
    def dry_run(target: str) -> str:
        run = subprocess.run(["make", "-n", target, f"VENV={tmp_path / 'venv'}"], cwd=REPO,
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        return run.stdout

    demo = dry_run("demo")
    assert "pip install -q -e '.[demo]'" in demo and "[dev]" not in demo, demo
    test = dry_run("test")
    assert "pip install -q -e '.[dev]'" in test and "scripts/e2e-components.sh" in test, test
