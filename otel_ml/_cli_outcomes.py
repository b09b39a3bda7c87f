"""``otel-ml outcomes push``: a batch job's outcomes (a CSV or Parquet file) sent as ``ml.outcome`` records.

The file is read in chunks (:func:`otel_ml._cli_io.iter_chunks`); each chunk goes through
:func:`otel_ml.record_outcomes` (same validation, hashing and queue), so memory stays bounded whatever the
file's size. The destination and the id secret come from the usual variables (``OTEL_EXPORTER_OTLP_*``,
``OTEL_ML_ID_SECRET``).
"""

from __future__ import annotations

import os
from typing import Any

import click
import numpy as np

from ._cli_io import InputError, iter_chunks, progress_bar

#: Rows per chunk read and queued.
PUSH_CHUNK_ROWS = 50_000
_FLUSH_S = 60.0


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--model", required=True, help="Model name, as monitored.")
@click.option("--id-column", required=True, help="Column of prediction ids (read as text).")
@click.option("--label-column", required=True, help="Column of actual labels or values.")
@click.option("--version", default=None, help="Model version, when the outcomes know it.")
@click.option("--timestamp-column", default=None, help="Column of outcome times (else now).")
@click.option("--kind", type=click.Choice(["auto", "label", "value"]), default="auto", show_default=True,
              help="Send actuals as class labels or numeric values; auto: floats are values.")
@click.option("--sample-rate", type=click.FloatRange(0.0, 1.0, min_open=True), default=1.0, show_default=True,
              help="The monitored model's outcome_sample_rate.")
@click.option("--raw-ids", is_flag=True,
              help="Send ids unhashed (only if the model was monitored with hash_ids=False).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
def push(file: str, model: str, id_column: str, label_column: str, version: str | None,
         timestamp_column: str | None, kind: str, sample_rate: float, raw_ids: bool, progress: bool | None) -> None:
    """Send the outcomes in a CSV or Parquet file as OTLP logs.

    One ``ml.outcome`` record per row with an id and a usable actual; others are counted and reported.
    Exit status 0 when every usable row was sent, 1 when some could not be sent, 2 for bad input.
    """
    import otel_ml
    from otel_ml import _ids
    from otel_ml._errors import ConfigurationError
    from otel_ml._records import COUNTERS, DROP_INVALID, QUEUE
    from otel_ml.semconv import EVENT_OUTCOME

    if not raw_ids and _ids.secret() is None:
        raise InputError(f"no id secret: set {_ids.ID_SECRET_ENV} (the one the model's process uses) or pass --raw-ids")
    target = QUEUE.target()
    if not target.enabled:
        raise InputError("OTLP logs are switched off (OTEL_LOGS_EXPORTER or OTEL_SDK_DISABLED): nothing would be sent")
    columns = [id_column, label_column] + ([timestamp_column] if timestamp_column else [])
    size = os.path.getsize(file) if os.path.isfile(file) else 0
    rows = queued = 0
    invalid_before = COUNTERS.total(COUNTERS.dropped, model=model, what=DROP_INVALID)
    sent_before = COUNTERS.total(COUNTERS.sent, model=model, what=EVENT_OUTCOME)
    with progress_bar(progress, size=size) as bar:
        for chunk in iter_chunks(file, text_columns=[id_column], columns=columns, progress=bar,
                                 chunk_rows=PUSH_CHUNK_ROWS):
            rows += len(chunk)
            try:
                queued += otel_ml.record_outcomes(
                    model=model, ids=chunk[id_column], actuals=_actuals(chunk[label_column], kind), version=version,
                    timestamps=chunk[timestamp_column] if timestamp_column else None,
                    outcome_sample_rate=sample_rate, hash_ids=not raw_ids)
            except ConfigurationError as exc:
                raise InputError(str(exc)) from None
    ok = QUEUE.flush(_FLUSH_S)
    invalid = COUNTERS.total(COUNTERS.dropped, model=model, what=DROP_INVALID) - invalid_before
    sent = COUNTERS.total(COUNTERS.sent, model=model, what=EVENT_OUTCOME) - sent_before
    failed = queued - sent
    where = target.endpoint
    click.echo(f"{file}: {rows} rows; sent {sent} outcome records to {where} ({target.protocol}); "
               f"{invalid} invalid (missing id, actual or time), {rows - invalid - queued} not sampled, "
               f"{failed} not sent")
    if failed or not ok:
        raise SystemExit(1)


def _actuals(column: Any, kind: str) -> Any:
    """The label column as ``record_outcomes`` should read it: labels as text, values as floats."""
    if kind == "auto":
        return column
    values = column.to_numpy() if hasattr(column, "to_numpy") else np.asarray(column)
    if kind == "value":
        import pandas as pd

        return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64)
    from ._reference import category_key

    return np.array([category_key(v) for v in values.tolist()], dtype=object)
