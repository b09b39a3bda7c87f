"""``otel-ml outcomes export``: the join store's joined pairs of one model (version, time range) to a file."""

from __future__ import annotations

import datetime as _dt
import math
import os

import click

from otel_ml.reference import OUTPUT_LABEL, OUTPUT_VALUE, PROBA_PREFIX

from ._joins import FILE_NAME, JoinStore, Pair
from ._performance import TaskSpec, task_spec
from ._records import id_text
from ._store import ReferenceStore

#: The column of the outcome (actual label or value): ``otel-ml performance --label-column actual``.
ACTUAL_COLUMN = "actual"
#: The column of probabilities that cannot be named by class (no reference for the version): lists.
LIST_COLUMN = "prediction_probabilities"


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


def _actuals(pairs: list[Pair]) -> list[object]:
    """The outcome of each pair in one column: its label or its value; all strings (whole numbers without
    a decimal point, as categories are counted) when some outcomes are labels and others values."""
    got: list[object] = [p.actual_label if p.actual_label is not None else p.actual_value for p in pairs]
    if any(isinstance(v, str) for v in got) and any(isinstance(v, float) for v in got):
        return [str(int(v)) if isinstance(v, float) and v.is_integer() else None if v is None else str(v)
                for v in got]
    return got


def _spread(pairs: list[Pair], specs: dict[str, TaskSpec | None]) -> tuple[dict[str, list[float]], list[object],
                                                                              dict[str, str]]:
    """The probabilities as ``proba:<class>`` columns in the classes' order of each version's reference;
    those that cannot be (no reference, another width) stay lists; why, by version."""
    classes: dict[str, None] = {}
    for spec in specs.values():
        classes.update(dict.fromkeys(spec.classes if spec is not None else ()))
    columns: dict[str, list[float]] = {f"{PROBA_PREFIX}{c}": [math.nan] * len(pairs) for c in classes}
    kept: list[object] = [None] * len(pairs)
    why: dict[str, str] = {}
    for i, p in enumerate(pairs):
        proba = p.proba
        if proba is None:
            continue
        spec = specs.get(p.version)
        if spec is not None and len(spec.classes) == len(proba) > 0:
            for c, x in zip(spec.classes, proba.tolist()):
                columns[f"{PROBA_PREFIX}{c}"][i] = x
            continue
        kept[i] = [float(x) for x in proba]
        why.setdefault(p.version, "no reference with classes found" if spec is None else
                       f"{len(proba)} probabilities, {len(spec.classes)} classes in its reference")
    return columns, kept, why


def _segment_columns(pairs: list[Pair]) -> dict[str, list[object]]:
    """``segment:<name>`` -> each pair's value (None where its prediction did not carry that segment)."""
    from ._segments import unpack

    per = [unpack(p.segments) for p in pairs]
    names = sorted({name for seg in per for name in seg})
    return {f"segment:{name}": [seg.get(name) for seg in per] for name in names}


@click.command()
@click.option("--state-dir", required=True, type=click.Path(file_okay=False), help="The processor's state.directory.")
@click.option("--references", "references", default=None, type=click.Path(file_okay=False),
              help="The processor's references.directory [default: <state-dir>/references, as the processor].")
@click.option("--model", required=True, help="Model name.")
@click.option("--version", "version", default=None, help="Only this model version.")
@click.option("--since", default=None, help="Predictions made at or after this ISO 8601 time (UTC if no zone).")
@click.option("--until", default=None, help="Predictions made before this ISO 8601 time.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Output file: .parquet or .csv.")
def export(state_dir: str, references: str | None, model: str, version: str | None, since: str | None,
           until: str | None, output: str) -> None:
    """Write the joined predictions and outcomes of a model from a processor's state directory to Parquet or CSV.

    One row per joined pair: the (hashed) id, model version, prediction and outcome times, the label
    delay, the model's outputs under the reference's output names (``value``, ``label``,
    ``proba:<class>`` in the reference's class order), the outcome in ``actual``, and the predict span's
    trace and span id, and one ``segment:<name>`` column per segment the predictions carried: the file is
    what ``otel-ml performance --data F --label-column actual`` reads.
    Probabilities of a version without a reference stay a list column, ``prediction_probabilities``
    (with a warning). Safe while the processor runs (SQLite WAL readers).
    """
    import pandas as pd

    path = os.path.join(state_dir, FILE_NAME)
    if not os.path.isfile(path):
        raise click.UsageError(f"--state-dir: no join store {path!r}")
    lower = output.lower()
    if not lower.endswith((".parquet", ".csv")):
        raise click.UsageError("-o: the file name must end in .parquet or .csv")
    since_ms, until_ms = _ms(since, "--since"), _ms(until, "--until")
    store = JoinStore(state_dir)
    try:
        pairs = list(store.export_rows(model, version, since_ms, until_ms))
    finally:
        store.close()
    ref_dir = references if references is not None else os.path.join(state_dir, "references")
    refs = ReferenceStore.reader(ref_dir)
    specs: dict[str, TaskSpec | None] = {}
    for v in dict.fromkeys([p.version for p in pairs] + ([version] if version is not None else [])):
        compiled = refs.get(model, v)
        specs[v] = None if compiled is None else task_spec(compiled.reference)
    columns, kept, why = _spread(pairs, specs)
    data: dict[str, list[object]] = {
        "id": [id_text(p.key) for p in pairs], "model": [p.model for p in pairs],
        "version": [p.version for p in pairs],
        "prediction_time": [_iso(p.t_pred) for p in pairs], "outcome_time": [_iso(p.t_out) for p in pairs],
        "joined_time": [_iso(p.t_join) for p in pairs],
        "label_delay_s": [(p.t_out - p.t_pred) / 1000.0 for p in pairs],
    }
    if not pairs or any(p.value is not None for p in pairs):
        data[OUTPUT_VALUE] = [p.value for p in pairs]
    if not pairs or any(p.label is not None for p in pairs):
        data[OUTPUT_LABEL] = [p.label for p in pairs]
    data.update(columns)  # type: ignore[arg-type]
    if why or (not pairs and not columns):
        data[LIST_COLUMN] = kept
    data[ACTUAL_COLUMN] = _actuals(pairs)
    data["trace_id"] = [p.trace[:16].hex() if p.trace else None for p in pairs]
    data["span_id"] = [p.trace[16:].hex() if p.trace else None for p in pairs]
    data.update(_segment_columns(pairs))
    df = pd.DataFrame(data)
    for v, reason in why.items():
        click.echo(f"warning: {model}@{v}: {reason} in {ref_dir}; its probabilities stay lists in "
                   f"{LIST_COLUMN!r} (give --references the processor's references.directory to write "
                   f"{PROBA_PREFIX}<class> columns)", err=True)
    if lower.endswith(".csv"):
        if LIST_COLUMN in df:
            df[LIST_COLUMN] = df[LIST_COLUMN].map(lambda v: None if v is None else " ".join(f"{x:.6g}" for x in v))
        df.to_csv(output, index=False)
    else:
        df.to_parquet(output, index=False)
    click.echo(f"{len(df)} joined records of {model}{'@' + version if version else ''} written to {output}")
