"""``otel-ml outcomes export``: the join store's joined pairs of one model (version, time range) to a file."""

from __future__ import annotations

import datetime as _dt
import os

import click

from ._joins import FILE_NAME, JoinStore
from ._records import id_text


def _ms(value: str | None, option: str) -> int | None:
    if value is None:
        return None
    try:
        t = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"not an ISO 8601 time: {value!r}", param_hint=option) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.timezone.utc)
    return int(t.timestamp() * 1000)


def _iso(ms: int) -> str:
    return _dt.datetime.fromtimestamp(ms / 1000, _dt.timezone.utc).isoformat(timespec="milliseconds")


@click.command()
@click.option("--state-dir", required=True, type=click.Path(file_okay=False), help="The processor's state.directory.")
@click.option("--model", required=True, help="Model name.")
@click.option("--version", "version", default=None, help="Only this model version.")
@click.option("--since", default=None, help="Predictions made at or after this ISO 8601 time (UTC if no zone).")
@click.option("--until", default=None, help="Predictions made before this ISO 8601 time.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Output file: .parquet or .csv.")
def export(state_dir: str, model: str, version: str | None, since: str | None, until: str | None,
           output: str) -> None:
    """Write the joined predictions and outcomes of a model from a processor's state directory to Parquet or CSV.

    One row per joined pair: the (hashed) id, model version, prediction and outcome times, the label
    delay, the model's outputs (value, label, probabilities), the actual label or value, and the
    predict span's trace and span id. Safe while the processor runs (SQLite WAL readers).
    """
    import pandas as pd

    path = os.path.join(state_dir, FILE_NAME)
    if not os.path.isfile(path):
        raise click.UsageError(f"--state-dir: no join store {path!r}")
    lower = output.lower()
    if not lower.endswith((".parquet", ".csv")):
        raise click.UsageError("-o: the file name must end in .parquet or .csv")
    store = JoinStore(state_dir)
    rows = []
    try:
        for p in store.export_rows(model, version, _ms(since, "--since"), _ms(until, "--until")):
            rows.append({
                "id": id_text(p.key), "model": p.model, "version": p.version,
                "prediction_time": _iso(p.t_pred), "outcome_time": _iso(p.t_out), "joined_time": _iso(p.t_join),
                "label_delay_s": (p.t_out - p.t_pred) / 1000.0,
                "prediction_value": p.value, "prediction_label": p.label,
                "prediction_probabilities": None if p.proba is None else [float(x) for x in p.proba],
                "outcome_label": p.actual_label, "outcome_value": p.actual_value,
                "trace_id": p.trace[:16].hex() if p.trace else None,
                "span_id": p.trace[16:].hex() if p.trace else None,
            })
    finally:
        store.close()
    df = pd.DataFrame(rows, columns=["id", "model", "version", "prediction_time", "outcome_time", "joined_time",
                                     "label_delay_s", "prediction_value", "prediction_label",
                                     "prediction_probabilities", "outcome_label", "outcome_value", "trace_id",
                                     "span_id"])
    if lower.endswith(".csv"):
        df["prediction_probabilities"] = df["prediction_probabilities"].map(
            lambda v: None if v is None else " ".join(f"{x:.6g}" for x in v))
        df.to_csv(output, index=False)
    else:
        df.to_parquet(output, index=False)
    click.echo(f"{len(df)} joined records of {model}{'@' + version if version else ''} written to {output}")
