"""``otel-ml reference build`` and ``otel-ml reference show`` (loaded lazily by :mod:`otel_ml._cli`)."""

from __future__ import annotations

import os
from typing import Any

import click
import numpy as np

from ._errors import OtelMLError
from ._reference import DEFAULT_BINS, DEFAULT_TOP_K, NumericProfile, Reference, build_reference, load_reference

#: Files at least this large get a progress bar while they are read.
PROGRESS_MIN_BYTES = 8 * 1024 * 1024
CSV_CHUNK_ROWS = 100_000


def _progress(enabled: bool) -> Any:
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
        transient=True, disable=not enabled,
    )


class _Sample:
    """Keeps a uniform random sample of at most ``n`` rows over a stream of chunks (bounded memory)."""

    def __init__(self, n: int | None, seed: int = 0) -> None:
        self.n = n
        self.rng = np.random.default_rng(seed)
        self.frame: Any = None
        self.keys = np.empty(0)
        self.chunks: list[Any] = []

    def add(self, chunk: Any) -> None:
        if self.n is None:
            self.chunks.append(chunk)
            return
        import pandas as pd

        keys = self.rng.random(len(chunk))
        frame = chunk if self.frame is None else pd.concat([self.frame, chunk], ignore_index=True)
        keys = np.concatenate([self.keys, keys])
        if len(frame) > self.n:  # keep the rows with the n smallest random keys: a uniform sample
            keep = np.sort(np.argpartition(keys, self.n - 1)[: self.n])
            frame = frame.iloc[keep].reset_index(drop=True)
            keys = keys[keep]
        self.frame, self.keys = frame, keys

    def result(self) -> Any:
        import pandas as pd

        if self.n is not None:
            return self.frame
        if not self.chunks:
            return None
        return pd.concat(self.chunks, ignore_index=True) if len(self.chunks) > 1 else self.chunks[0]


def read_table(path: str, *, progress: bool | None = None, max_rows: int | None = None) -> Any:
    """Read a CSV or Parquet file into a pandas DataFrame, in chunks, with a progress bar on large files.

    With ``max_rows`` a uniform random sample of at most that many rows is kept (memory stays bounded).
    """
    import pandas as pd

    size = os.path.getsize(path)
    show = size >= PROGRESS_MIN_BYTES if progress is None else progress
    lower = path.lower()
    chunks = _Sample(max_rows)
    if lower.endswith((".parquet", ".pq")):
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        total_rows = pf.metadata.num_rows
        with _progress(show) as bar:
            task = bar.add_task(f"reading {os.path.basename(path)}", total=total_rows)
            for batch in pf.iter_batches(batch_size=CSV_CHUNK_ROWS):
                chunks.add(batch.to_pandas())
                bar.advance(task, batch.num_rows)
    elif lower.endswith((".csv", ".csv.gz", ".txt")):
        with open(path, "rb") as raw, _progress(show) as bar:
            task = bar.add_task(f"reading {os.path.basename(path)}", total=size)
            for chunk in pd.read_csv(raw, chunksize=CSV_CHUNK_ROWS,
                                     compression="gzip" if lower.endswith(".gz") else None):
                chunks.add(chunk)
                bar.update(task, completed=raw.tell())
    else:
        raise click.BadParameter(f"{path}: expected a .csv or .parquet file", param_hint="DATA")
    table = chunks.result()
    if table is None or len(table) == 0:
        raise click.BadParameter(f"{path}: the file has no rows", param_hint="DATA")
    return table


@click.command()
@click.argument("data", type=click.Path(exists=True, dir_okay=False))
@click.option("--model", required=True, help="Model name (ml.model.name).")
@click.option("--version", "version", required=True, help="Model version (ml.model.version).")
@click.option("--categorical", multiple=True, help="Column to profile as categories (repeatable).")
@click.option("--target", multiple=True, help="Column to leave out of the features, e.g. the label (repeatable).")
@click.option("--prediction-column", "prediction_columns", multiple=True,
              help="Column holding the model's predictions (repeat for class probabilities, one per class).")
@click.option("--bins", default=DEFAULT_BINS, show_default=True, help="Buckets per numeric feature (about).")
@click.option("--top-k", "top_k", default=DEFAULT_TOP_K, show_default=True, help="Categories kept per feature.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Reference JSON to write.")
@click.option("--progress/--no-progress", default=None, help="Force the progress bar on or off.")
@click.option("--max-rows", type=click.IntRange(min=1), default=None,
              help="Profile a uniform random sample of at most this many rows (bounded memory on huge files).")
def build(data: str, model: str, version: str, categorical: tuple[str, ...], target: tuple[str, ...],
          prediction_columns: tuple[str, ...], bins: int, top_k: int, output: str, progress: bool | None,
          max_rows: int | None) -> None:
    """Build a reference profile from a CSV or Parquet file of training data."""
    df = read_table(data, progress=progress, max_rows=max_rows)
    df.columns = [str(c) for c in df.columns]
    for name in (*categorical, *target, *prediction_columns):
        if name not in df.columns:
            raise click.BadParameter(f"no column {name!r} in {data} (columns: {', '.join(df.columns)})")
    predictions = None
    class_names = None
    if len(prediction_columns) == 1:
        predictions = df[prediction_columns[0]].to_numpy()
    elif prediction_columns:
        predictions = df[list(prediction_columns)].to_numpy(dtype=np.float64)
        class_names = list(prediction_columns)
    features = df.drop(columns=[*target, *prediction_columns])
    try:
        ref = build_reference(features, model=model, version=version, predictions=predictions,
                              categorical=list(categorical), class_names=class_names, bins=bins, top_k=top_k)
        ref.save(output)
    except OtelMLError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {output}: {len(ref.features)} features, {len(ref.outputs)} outputs, {ref.row_count} rows")


def _describe(p: Any) -> tuple[str, str, str]:
    if isinstance(p, NumericProfile):
        stats = f"min {p.min:.4g}  max {p.max:.4g}  mean {p.mean:.4g}  std {p.std:.4g}"
        return "numeric", f"{len(p.edges) + 1} buckets", stats
    shown = ", ".join(f"{c} ({n})" for c, n in list(zip(p.categories, p.counts))[:5])
    more = f", … +{len(p.categories) - 5}" if len(p.categories) > 5 else ""
    return "categorical", f"{len(p.categories)} + other", shown + more


def render(ref: Reference) -> Any:
    from rich.console import Group
    from rich.table import Table

    head = Table.grid(padding=(0, 2))
    head.add_row("model", ref.model_name)
    head.add_row("version", ref.model_version)
    head.add_row("created", ref.created_at or "-")
    head.add_row("rows", str(ref.row_count))
    parts: list[Any] = [head]
    for title, profiles in (("features", ref.features), ("outputs", ref.outputs)):
        if not profiles:
            continue
        t = Table(title=title, title_justify="left")
        for col in ("name", "kind", "buckets", "missing", "summary"):
            t.add_column(col)
        for p in profiles:
            kind, buckets, summary = _describe(p)
            t.add_row(p.name, kind, buckets, f"{p.missing_ratio:.1%}", summary)
        parts.append(t)
    return Group(*parts)


@click.command()
@click.argument("reference", type=click.Path(exists=True, dir_okay=False))
def show(reference: str) -> None:
    """Print a human-readable summary of a reference profile."""
    from rich.console import Console

    try:
        ref = load_reference(reference)
    except OtelMLError as exc:
        raise click.ClickException(str(exc)) from None
    Console(width=120 if not os.isatty(1) else None).print(render(ref))
