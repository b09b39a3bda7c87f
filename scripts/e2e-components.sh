#!/usr/bin/env bash
# Installs the real components the end-to-end tests (tests/e2e/) run against. Idempotent; `make test`
# calls it before pytest.
#
#   1. The OpenTelemetry Collector, built with the OpenTelemetry Collector Builder (ocb) from
#      collector/builder/manifest.yaml into a per-machine cache keyed by a hash of that manifest:
#        ${XDG_CACHE_HOME:-$HOME/.cache}/otel-ml/otelcol-<hash>/otelcol-ml
#      A warm run only checks that the binary is there; a cold one (first run on a machine, or after
#      the manifest changed) builds it once. Go's own module and build caches are used as they are.
#   2. Prometheus (and promtool), from Debian's `prometheus` package, if not on PATH. Any service the
#      package starts is stopped again: the tests start their own Prometheus on free loopback ports.
#
# Environment:
#   OTEL_ML_CACHE_DIR   cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/otel-ml)
#   OTEL_ML_OTELCOL     use this collector binary instead of building one (the tests honour it too)
#
# Prints what it did and how long each step took; any failure stops it with a message and exit code 1.
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MANIFEST="$ROOT/collector/builder/manifest.yaml"
# The Go the manifest's modules need: the `go` directive of builder v0.161.0's go.mod and of the v0.161.0
# collector modules. Bump it with the manifest's builder line.
GO_MIN=1.26
T0=$SECONDS

log() { printf 'e2e-components: %s\n' "$*"; }
die() { printf 'e2e-components: ERROR: %s\n' "$*" >&2; exit 1; }
trap 'rc=$?; [ $rc -eq 0 ] || printf "e2e-components: FAILED (exit %s) after %ss\n" "$rc" "$((SECONDS - T0))" >&2' EXIT
# Under `set -e` a failing command would otherwise end the script with no word of what failed.
trap 'printf "e2e-components: ERROR: line %s: \`%s\` failed (exit %s)\n" "$LINENO" "$BASH_COMMAND" "$?" >&2' ERR

[ -n "${OTEL_ML_CACHE_DIR:-}${XDG_CACHE_HOME:-}${HOME:-}" ] \
    || die "none of OTEL_ML_CACHE_DIR, XDG_CACHE_HOME, HOME is set: no place for the collector cache"
CACHE="${OTEL_ML_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-}/.cache}/otel-ml}"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
    else die "need root for: $* (run as root or install sudo)"; fi
}

# --- 1. The collector ---------------------------------------------------------------------------------
collector() {
    local t=$SECONDS hash dir bin builder_version builder build lock
    [ -f "$MANIFEST" ] || die "manifest not found: $MANIFEST"
    if [ -n "${OTEL_ML_OTELCOL:-}" ]; then
        [ -x "$OTEL_ML_OTELCOL" ] || die "OTEL_ML_OTELCOL=$OTEL_ML_OTELCOL is not an executable file"
        log "collector: using OTEL_ML_OTELCOL=$OTEL_ML_OTELCOL (not building)"
        return
    fi
    # The same key otel_ml_demo/components.py computes: the first 16 hex digits of the manifest's sha256.
    hash="$(sha256sum "$MANIFEST" | cut -c1-16)"
    dir="$CACHE/otelcol-$hash"
    bin="$dir/otelcol-ml"
    if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
        log "collector: cached $bin ($("$bin" --version | head -1)) — nothing to do ($((SECONDS - t))s)"
        return
    fi
    command -v go >/dev/null 2>&1 || die "the collector must be built but 'go' is not on PATH (need Go >= $GO_MIN)"
    local go_version
    go_version="$(go env GOVERSION 2>/dev/null || true)"
    if [ "$(printf '%s\n' "go$GO_MIN" "${go_version%%[-+ ]*}" | sort -V | head -1)" != "go$GO_MIN" ]; then
        die "the collector's modules need Go >= $GO_MIN, found ${go_version:-an unknown version} ($(command -v go))"
    fi
    command -v flock >/dev/null 2>&1 || die "'flock' (util-linux) is not on PATH; it serialises concurrent builds"
    # The builder version is written once, in the manifest's '# builder:' line.
    builder_version="$(sed -n 's/^# builder: *go.opentelemetry.io\/collector\/cmd\/builder *\(v[0-9.]*\).*/\1/p' "$MANIFEST")"
    [ -n "$builder_version" ] || die "no '# builder: go.opentelemetry.io/collector/cmd/builder vX.Y.Z' line in $MANIFEST"

    # Toolchains cannot be downloaded here: use the installed Go, and say so if a module wants newer.
    export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
    # Go's caches may not exist yet on a fresh machine: measure the nearest directory that does.
    local free_kb probe
    probe="$(go env GOMODCACHE 2>/dev/null || true)"
    while [ -n "$probe" ] && [ ! -d "$probe" ]; do probe="$(dirname "$probe")"; done
    free_kb="$(df -Pk "${probe:-/}" 2>/dev/null | awk 'NR==2 {print $4}' || true)"
    if [ -n "$free_kb" ] && [ "$free_kb" -lt 5000000 ]; then
        log "collector: WARNING: only $((free_kb / 1024)) MiB free for Go's caches; a cold build needs ~4 GiB"
    fi

    mkdir -p "$CACHE"
    lock="$CACHE/.build.lock"
    exec 9>"$lock"
    if ! flock -n 9; then
        log "collector: another build holds $lock; waiting for it"
        flock 9
        if [ -x "$bin" ]; then log "collector: built by the other process: $bin"; return; fi
    fi

    log "collector: not cached for manifest hash $hash; building it (once per machine, several minutes)"
    builder="$CACHE/builder-$builder_version/builder"
    if [ ! -x "$builder" ]; then
        log "collector: installing go.opentelemetry.io/collector/cmd/builder@$builder_version"
        GOBIN="$(dirname "$builder")" go install "go.opentelemetry.io/collector/cmd/builder@$builder_version" \
            || die "could not install the collector builder $builder_version"
    fi
    build="$dir.build"
    rm -rf "$build"
    mkdir -p "$build"
    cp "$MANIFEST" "$build/manifest.yaml"
    # ocb writes the generated sources and the binary to dist.output_path (relative: inside $build).
    if ! (cd "$build" && "$builder" --config manifest.yaml >"$build/build.log" 2>&1); then
        tail -n 40 "$build/build.log" >&2
        die "collector build failed after $((SECONDS - t))s; full log: $build/build.log"
    fi
    [ -x "$build/otelcol-ml/otelcol-ml" ] \
        || die "the builder did not produce $build/otelcol-ml/otelcol-ml (dist.output_path in $MANIFEST?); log: $build/build.log"
    mkdir -p "$dir"
    install -m 0755 "$build/otelcol-ml/otelcol-ml" "$bin.tmp"
    mv -f "$bin.tmp" "$bin"
    cp "$build/build.log" "$dir/build.log"
    rm -rf "$build"
    "$bin" --version >/dev/null || die "the built collector does not run: $bin"
    log "collector: built $bin ($(du -h "$bin" | cut -f1)) in $((SECONDS - t))s"
}

# --- 2. Prometheus ------------------------------------------------------------------------------------
prometheus_pkg() {
    local t=$SECONDS
    if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
        log "prometheus: $(prometheus --version 2>&1 | head -1) — already installed (0s)"
        return
    fi
    command -v apt-get >/dev/null 2>&1 || die "prometheus/promtool missing and no apt-get to install them"
    log "prometheus: installing Debian's prometheus package"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq || die "apt-get update failed"
    # policy-rc.d exit 101 keeps the package's maintainer scripts from starting the service at all.
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null && as_root chmod 0755 "$policy" && created_policy=1
    fi
    local rc=0
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends prometheus || rc=$?
    [ "$created_policy" -eq 1 ] && as_root rm -f "$policy"
    [ "$rc" -eq 0 ] || die "apt-get install prometheus failed (exit $rc)"
    # Belt and braces: if a service did start anyway, stop it so that it holds no port (9090).
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
        as_root systemctl stop prometheus || true
        as_root systemctl disable prometheus >/dev/null 2>&1 || true
        log "prometheus: stopped the prometheus service the package started"
    elif [ -x /etc/init.d/prometheus ] && /etc/init.d/prometheus status >/dev/null 2>&1; then
        as_root /etc/init.d/prometheus stop || true
        log "prometheus: stopped the prometheus service the package started"
    fi
    command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 \
        || die "prometheus package installed but prometheus/promtool not on PATH"
    log "prometheus: installed $(prometheus --version 2>&1 | head -1) in $((SECONDS - t))s"
}

collector
prometheus_pkg
"$ROOT/scripts/deploy-tools.sh" || die "deploy tools (helm) could not be installed"
log "done in $((SECONDS - T0))s"
