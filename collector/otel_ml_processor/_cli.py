"""``otel-ml processor`` (run the processor) and ``otel-ml reference push`` (upload a reference)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from otel_ml import ConfigurationError, ReferenceProfileError

from ._config import TOKEN_ENV, load_config, parse_duration, read_token_file


def _duration(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value is None or value == ():
        return None
    try:
        if isinstance(value, tuple):
            return tuple(parse_duration(v, f"--{param.name}") for v in value)
        return parse_duration(value, f"--{param.name}")
    except ConfigurationError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("processor")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML configuration file.")
@click.option("--otlp-grpc", metavar="HOST:PORT", help="OTLP/gRPC listen address (default 127.0.0.1:14317).")
@click.option("--otlp-http", metavar="HOST:PORT",
              help="OTLP/HTTP, health and admin API listen address (default 127.0.0.1:14318).")
@click.option("--references", type=click.Path(file_okay=False), help="Directory of JSON reference profiles.")
@click.option("--export-endpoint", metavar="URL",
              help="OTLP endpoint for the results (default http://127.0.0.1:4317; 'none' disables export).")
@click.option("--window", multiple=True, callback=_duration, metavar="SECONDS",
              help="Evaluation window (repeatable; default 300 and 3600; '5m' works too).")
@click.option("--evaluation-interval", callback=_duration, metavar="SECONDS", help="Seconds between evaluations.")
@click.option("--state-dir", type=click.Path(file_okay=False), help="Directory for window checkpoints.")
@click.option("--tls-cert", type=click.Path(dir_okay=False), help="TLS certificate (PEM) for both receivers.")
@click.option("--tls-key", type=click.Path(dir_okay=False), help="TLS private key (PEM).")
@click.option("--token-file", type=click.Path(dir_okay=False),
              help=f"File holding the bearer token (or set {TOKEN_ENV}).")
@click.option("--http-read-timeout", callback=_duration, metavar="SECONDS",
              help="Close HTTP connections whose request head or next body chunk takes longer (default 10).")
@click.option("--max-connections", type=click.IntRange(min=1), metavar="N",
              help="HTTP connections kept at most (default 1000, capped at the open-file limit - 64).")
@click.option("--grpc-max-connections", type=click.IntRange(min=1), metavar="N",
              help="gRPC connections accepted at most (default a quarter of --max-connections, at least 16).")
@click.option("--max-inflight-bytes", type=click.IntRange(min=1), metavar="N",
              help="Bytes of OTLP requests in flight at most; beyond: retryable refusal (default 64 MiB).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default=None)
def processor(config_file: str | None, otlp_grpc: str | None, otlp_http: str | None, references: str | None,
              export_endpoint: str | None, window: tuple[float, ...] | None, evaluation_interval: float | None,
              state_dir: str | None, tls_cert: str | None, tls_key: str | None, token_file: str | None,
              http_read_timeout: float | None, max_connections: int | None, grpc_max_connections: int | None,
              max_inflight_bytes: int | None, log_level: str | None) -> None:
    """Run the otel-ml drift processor: OTLP in, drift and quality gauges out."""
    from ._service import run

    try:
        overrides: dict[str, Any] = {  # flag -> config key (docs/processor.md)
            "receivers.otlp_grpc": otlp_grpc,
            "receivers.otlp_http": otlp_http,
            "references.directory": references,
            "export.endpoint": export_endpoint,
            "windows.sizes": window or None,
            "evaluation.interval": evaluation_interval,
            "state.directory": state_dir,
            "receivers.tls.cert_file": tls_cert,
            "receivers.tls.key_file": tls_key,
            "auth.token": read_token_file(token_file) if token_file else None,
            "receivers.http_read_timeout": http_read_timeout,
            "receivers.max_connections": max_connections,
            "receivers.grpc_max_connections": grpc_max_connections,
            "receivers.max_inflight_bytes": max_inflight_bytes,
            "log_level": log_level,
        }
        config = load_config(config_file, overrides=overrides)
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from None
    sys.exit(run(config))


@click.command("push")
@click.argument("reference_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--url", default="http://127.0.0.1:14318", show_default=True, help="The processor's HTTP address.")
@click.option("--token", default=None, help=f"Bearer token (default: ${TOKEN_ENV}).")
@click.option("--token-file", type=click.Path(dir_okay=False), default=None, help="File holding the bearer token.")
@click.option("--cacert", type=click.Path(dir_okay=False), default=None, help="CA certificate to verify https.")
@click.option("--timeout", type=float, default=30.0, show_default=True)
def push(reference_file: str, url: str, token: str | None, token_file: str | None, cacert: str | None,
         timeout: float) -> None:
    """Upload a reference profile to a running processor (validated locally first)."""
    import ssl
    import urllib.error
    import urllib.request
    from urllib.parse import quote

    from otel_ml.reference import load_reference

    try:
        ref = load_reference(reference_file)
    except ReferenceProfileError as exc:
        raise click.ClickException(str(exc)) from None
    if token_file:
        token = read_token_file(token_file)
    token = token or os.environ.get(TOKEN_ENV) or None
    target = (f"{url.rstrip('/')}/api/v1/references/{quote(ref.model_name, safe='')}/"
              f"{quote(ref.model_version, safe='')}")
    req = urllib.request.Request(target, data=ref.to_json().encode(), method="PUT",
                                 headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    ctx = ssl.create_default_context(cafile=cacert) if cacert else None
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
            body = json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        try:
            detail = json.loads(detail).get("error", detail)
        except ValueError:
            pass
        raise click.ClickException(f"{target}: HTTP {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise click.ClickException(f"{target}: {getattr(exc, 'reason', exc)}") from None
    verb = "replaced" if body.get("replaced") else "added"
    click.echo(f"{ref.model_name}@{ref.model_version} {verb} ({body.get('stored', '?')})")
