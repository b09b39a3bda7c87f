"""Input and output of ``otel-ml reference``, ``otel-ml drift``, ``otel-ml performance`` and ``otel-ml
outcomes``: CSV or Parquet files into a pandas DataFrame, read in chunks (a bounded random sample on
request), one line with exit status 2 for a file that cannot be read, a progress bar on stderr when it is
a terminal, the console tables print to, and the release gates' exit statuses and conclusion line.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Collection, Iterator
from typing import Any

import click
import numpy as np

#: Files at least this large get a progress bar (when stderr is a terminal).
PROGRESS_MIN_BYTES = 8 * 1024 * 1024
CHUNK_ROWS = 250_000
CSV_SUFFIXES = (".csv", ".csv.gz", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")


class InputError(click.ClickException):
    """A file or option that cannot be used: one line, exit status 2 (like click's usage errors)."""

    exit_code = 2


#: Exit statuses of the release gates (``otel-ml drift``, ``otel-ml performance``).
EXIT_PASS = 0
EXIT_FLAGGED = 1
EXIT_INPUT = InputError.exit_code  # 2, as click's own usage errors
EXIT_NOT_JUDGED = 3


#: The options every release gate shares: the output format and the progress bar.
format_option = click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
                             show_default=True)
progress_option = click.option("--progress/--no-progress", default=None,
                               help="Progress bar on stderr (default: for large files, when stderr is a terminal).")


def fmt_number(v: float | None, digits: int = 3) -> str:
    """A figure of a table: ``-`` when undefined, scientific when too small for ``digits`` decimals."""
    if v is None or not math.isfinite(v):
        return "-"
    if v != 0 and abs(v) < 10 ** -digits:
        return f"{v:.1e}"
    return f"{v:.{digits}f}"


def print_conclusion(out: Any, summary: str, code: int) -> None:
    """The gate's last line: its one-sentence conclusion, coloured by exit status, and the status."""
    from rich.markup import escape

    style = {EXIT_PASS: "green", EXIT_FLAGGED: "bold red", EXIT_NOT_JUDGED: "bold yellow"}[code]
    out.print(f"[{style}]{escape(summary)}[/] (exit {code})")


#: Width of the tables when stdout is not a terminal (a CI log) and COLUMNS is not set.
LOG_WIDTH = 120


def console() -> Any:
    """The rich console for stdout: the terminal's width, or :data:`LOG_WIDTH` (or COLUMNS) in a log."""
    from rich.console import Console

    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return Console()
    return Console(width=LOG_WIDTH)


def progress_bar(enabled: bool | None, *, size: int = PROGRESS_MIN_BYTES) -> Any:
    """A transient rich progress bar on stderr; ``None`` means: on for a large file on a terminal."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    if enabled is None:
        enabled = size >= PROGRESS_MIN_BYTES and sys.stderr.isatty()
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(), TimeRemainingColumn(),
        console=Console(stderr=True), transient=True, disable=not enabled,
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
            return self.frame if self.frame is not None else pd.DataFrame()
        if not self.chunks:
            return pd.DataFrame()
        return pd.concat(self.chunks, ignore_index=True) if len(self.chunks) > 1 else self.chunks[0]


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def iter_chunks(
    path: str,
    *,
    text_columns: Collection[str] = (),
    columns: Collection[str] | None = None,
    progress: Any = None,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[Any]:
    """``path`` (.csv, .csv.gz, .txt or .parquet) as pandas DataFrames of at most ``chunk_rows`` rows.

    ``text_columns`` are read from CSV as text (categories and ids stay as written: "007" is not 7).
    ``columns`` reads only those (each must exist). ``progress`` is a :func:`progress_bar` to advance.
    A file with no rows yields nothing. Raises :class:`InputError` for a missing, unknown or unreadable
    file, or a missing column.
    """
    import pandas as pd

    if not os.path.exists(path):
        raise InputError(f"{path}: no such data file")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory, not a data file")
    lower = path.lower()
    wanted = list(dict.fromkeys(columns)) if columns is not None else None
    task = progress.add_task(f"reading {os.path.basename(path)}", total=None) if progress is not None else None
    try:
        if lower.endswith(PARQUET_SUFFIXES):
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(path)
            if wanted is not None:
                _check_columns(path, wanted, pf.schema_arrow.names)
            if progress is not None:
                progress.update(task, total=pf.metadata.num_rows)
            for batch in pf.iter_batches(batch_size=chunk_rows, columns=wanted):
                yield _named(batch.to_pandas())
                if progress is not None:
                    progress.advance(task, batch.num_rows)
        elif lower.endswith(CSV_SUFFIXES):
            size = os.path.getsize(path)
            if progress is not None:
                progress.update(task, total=size)
            with open(path, "rb") as raw:
                try:
                    chunks = pd.read_csv(raw, chunksize=chunk_rows, dtype={c: str for c in text_columns},
                                         compression="gzip" if lower.endswith(".gz") else None)
                except pd.errors.EmptyDataError:  # not even a header
                    if wanted:
                        _check_columns(path, wanted, [])
                    return
                first = True
                for chunk in chunks:
                    chunk = _named(chunk)
                    if wanted is not None:
                        if first:
                            _check_columns(path, wanted, list(chunk.columns))
                        chunk = chunk[wanted]
                    first = False
                    yield chunk
                    if progress is not None:
                        progress.update(task, completed=raw.tell())
        else:
            ext = os.path.splitext(path)[1] or "(no extension)"
            raise InputError(f"{path}: unsupported data format {ext!r}; use .csv or .parquet")
    except InputError:
        raise
    except Exception as exc:  # pandas and pyarrow raise parser-specific errors; each is one line here
        kind = "Parquet" if lower.endswith(PARQUET_SUFFIXES) else "CSV"
        raise InputError(f"{path}: cannot read it as {kind} ({_one_line(exc)})") from None
    finally:
        if progress is not None:
            progress.remove_task(task)


def _named(frame: Any) -> Any:
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _check_columns(path: str, wanted: Collection[str], present: Collection[str]) -> None:
    missing = [c for c in wanted if c not in set(present)]
    if missing:
        raise InputError(f"{path}: no column {', '.join(map(repr, missing))} (columns: {', '.join(present) or 'none'})")


def read_table(
    path: str,
    *,
    text_columns: Collection[str] = (),
    max_rows: int | None = None,
    progress: Any = None,
) -> Any:
    """``path`` (.csv, .csv.gz, .txt or .parquet) as a pandas DataFrame with string column names.

    ``text_columns`` are read from CSV as text (categories stay as written: "007" is not 7).
    ``max_rows`` keeps a uniform random sample of at most that many rows (memory stays bounded).
    ``progress`` is a :func:`progress_bar` to advance while reading. A header-only or empty file
    gives an empty DataFrame: whether that is an error is the caller's call. Raises
    :class:`InputError` for a missing, unknown or unreadable file.
    """
    sample = _Sample(max_rows)
    for chunk in iter_chunks(path, text_columns=text_columns, progress=progress):
        sample.add(chunk)
    table = sample.result()
    table.columns = [str(c) for c in table.columns]
    return table
