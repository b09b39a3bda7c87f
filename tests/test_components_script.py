"""``scripts/e2e-components.sh`` on a fresh machine: empty HOME and caches, no Go module cache yet.

A real collector build takes minutes, so ``go`` is a stand-in that answers the questions the script
asks and installs a stand-in builder; ``prometheus``/``promtool`` stand-ins keep apt out of it. What is
real: the script, the manifest it reads, the cache layout it creates, and every message it prints.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "e2e-components.sh"
MANIFEST = REPO / "collector" / "builder" / "manifest.yaml"
BUILDER_VERSION = re.search(r"^# builder: go\.opentelemetry\.io/collector/cmd/builder (v[0-9.]+)",
                            MANIFEST.read_text(), re.M).group(1)  # type: ignore[union-attr]

# `go`, as a fresh machine's Go answers: GOPATH defaults to $HOME/go, whose pkg/mod does not exist yet.
GO = r"""#!/bin/sh
echo "go $* GOTOOLCHAIN=${GOTOOLCHAIN:-} GOBIN=${GOBIN:-}" >> "$STANDIN_LOG"
case "$1" in
  env)
    case "$2" in
      GOMODCACHE) echo "${GOMODCACHE:-${GOPATH:-$HOME/go}/pkg/mod}" ;;
      GOVERSION) echo "go$STANDIN_GO_VERSION" ;;
      *) echo "stand-in go: unexpected go env $2" >&2; exit 2 ;;
    esac ;;
  version) echo "go version go$STANDIN_GO_VERSION linux/amd64" ;;
  install)
    [ -n "${GOBIN:-}" ] || { echo "stand-in go: install without GOBIN" >&2; exit 2; }
    mkdir -p "$GOBIN"
    case "$2" in
      helm.sh/*) printf '#!/bin/sh\necho v0.0.0-standin\n' > "$GOBIN/helm" && chmod +x "$GOBIN/helm" ;;
      *) cp "$STANDIN_DIR/builder.in" "$GOBIN/builder" && chmod +x "$GOBIN/builder" ;;
    esac ;;
  *) echo "stand-in go: unexpected go $*" >&2; exit 2 ;;
esac
"""

# The builder: writes the collector where the manifest's dist.output_path says, as ocb does.
BUILDER = r"""#!/bin/sh
echo "builder $* (cwd $(pwd))" >> "$STANDIN_LOG"
[ "$1" = --config ] && [ -f "$2" ] || { echo "stand-in builder: usage: --config FILE" >&2; exit 2; }
out="$(sed -n 's/^ *output_path: *//p' "$2")"
mkdir -p "$out"
printf '#!/bin/sh\necho "otelcol-ml version 0.0.0-standin"\n' > "$out/otelcol-ml"
chmod +x "$out/otelcol-ml"
echo "compiling (stand-in)"
"""

VERSION_TOOL = '#!/bin/sh\necho "{name}, version 0.0.0-standin"\n'


def _write(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture
def fresh_machine(tmp_path: Path) -> dict[str, str]:
    """The environment of a machine that never ran Go: empty HOME, default caches, stand-in tools."""
    home = tmp_path / "home"
    home.mkdir()
    bin_dir = tmp_path / "standins"
    bin_dir.mkdir()
    _write(bin_dir / "go", GO)
    (bin_dir / "builder.in").write_text(BUILDER)
    for tool in ("prometheus", "promtool"):
        _write(bin_dir / tool, VERSION_TOOL.format(name=tool))
    return {
        "HOME": str(home),
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "LANG": "C",
        "STANDIN_DIR": str(bin_dir),
        "STANDIN_LOG": str(tmp_path / "standin.log"),
        "STANDIN_GO_VERSION": "1.26.0",
        # No GOPATH, GOMODCACHE, GOFLAGS, GOTOOLCHAIN, XDG_CACHE_HOME, OTEL_ML_*: a fresh machine's defaults.
    }


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


def test_fresh_machine_reaches_the_build_and_says_what_it_did(fresh_machine: dict[str, str]) -> None:
    home = Path(fresh_machine["HOME"])
    assert not (home / "go").exists()  # the case that used to end the script silently

    run = _run(fresh_machine)

    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    manifest_hash = hashlib.sha256(MANIFEST.read_bytes()).hexdigest()[:16]
    binary = home / ".cache" / "otel-ml" / f"otelcol-{manifest_hash}" / "otelcol-ml"
    for message in (
        f"collector: not cached for manifest hash {manifest_hash}; building it",
        f"collector: installing go.opentelemetry.io/collector/cmd/builder@{BUILDER_VERSION}",
        f"collector: built {binary}",
        "prometheus: prometheus, version 0.0.0-standin — already installed",
        "deploy-tools: helm: building helm.sh/helm/v3/cmd/helm@",
        "deploy-tools: helm: built",
        "e2e-components: done in",
    ):
        assert message in out, f"missing {message!r} in:\n{out}"
    assert "ERROR" not in out and "FAILED" not in out, out
    assert subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout.startswith("otelcol-ml")

    calls = Path(fresh_machine["STANDIN_LOG"]).read_text()
    assert f"go install go.opentelemetry.io/collector/cmd/builder@{BUILDER_VERSION} GOTOOLCHAIN=local" in calls, calls
    assert "builder --config manifest.yaml" in calls, calls
    assert "go install helm.sh/helm/v3/cmd/helm@" in calls, calls

    # A second run finds the binary in the cache and builds nothing.
    again = _run(fresh_machine)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"collector: cached {binary}" in again.stdout and "nothing to do" in again.stdout
    assert Path(fresh_machine["STANDIN_LOG"]).read_text().count("builder --config") == 1


def test_too_old_go_is_named_before_building(fresh_machine: dict[str, str]) -> None:
    fresh_machine["STANDIN_GO_VERSION"] = "1.22.5"

    run = _run(fresh_machine)

    assert run.returncode == 1
    assert re.search(r"ERROR: .*Go >= 1\.\d+\b.*found go1\.22\.5", run.stderr), run.stderr
    assert "go install" not in Path(fresh_machine["STANDIN_LOG"]).read_text()


def test_without_go_the_message_says_what_to_install(fresh_machine: dict[str, str]) -> None:
    os.remove(Path(fresh_machine["STANDIN_DIR"]) / "go")
    fresh_machine["PATH"] = f"{fresh_machine['STANDIN_DIR']}:/usr/bin:/bin"
    if any((Path(d) / "go").exists() for d in ("/usr/bin", "/bin")):
        pytest.skip("a Go in /usr/bin or /bin cannot be hidden from the script")

    run = _run(fresh_machine)

    assert run.returncode == 1
    assert "'go' is not on PATH (need Go >=" in run.stderr, run.stderr


def test_a_builder_that_writes_elsewhere_is_named(fresh_machine: dict[str, str]) -> None:
    # A builder whose output lands somewhere else: the script says where it looked, not just "FAILED".
    builder = Path(fresh_machine["STANDIN_DIR"]) / "builder.in"
    builder.write_text(BUILDER.replace('out="$(sed', 'out="elsewhere" #'))

    run = _run(fresh_machine)

    assert run.returncode == 1
    assert "ERROR: the builder did not produce" in run.stderr and "otelcol-ml/otelcol-ml" in run.stderr, run.stderr


def test_unset_home_is_named(fresh_machine: dict[str, str]) -> None:
    del fresh_machine["HOME"]

    run = _run(fresh_machine)

    assert run.returncode == 1
    assert "ERROR:" in run.stderr and "HOME" in run.stderr and "unbound variable" not in run.stderr, run.stderr


def test_readme_states_the_go_version_the_script_checks() -> None:
    go_min = re.search(r"^GO_MIN=(\S+)$", SCRIPT.read_text(), re.M).group(1)  # type: ignore[union-attr]
    assert f"Go >= {go_min}" in (REPO / "README.md").read_text()


def test_any_failing_command_names_itself(fresh_machine: dict[str, str], tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    fresh_machine["OTEL_ML_CACHE_DIR"] = str(blocker / "otel-ml")  # mkdir under a file fails

    run = _run(fresh_machine)

    assert run.returncode == 1
    assert re.search(r"ERROR: line \d+: `mkdir -p \"\$CACHE\"` failed", run.stderr), run.stderr
