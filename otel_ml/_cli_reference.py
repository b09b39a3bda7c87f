"""``otel-ml reference build`` and ``otel-ml reference show`` (loaded lazily by :mod:`otel_ml._cli`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import click
import numpy as np

from ._cli_io import InputError, console, fmt_number, progress_bar, progress_option, read_table
from ._errors import OtelMLError
from ._reference import (
    DEFAULT_BINS,
    DEFAULT_TOP_K,
    PROBA_PREFIX,
    NumericProfile,
    Reference,
    build_reference,
    load_reference,
    proba_output_name,
)

#: A numeric column of whole numbers with at most this many distinct values looks like integer codes
#: (a 0/1 flag, a few status codes): ``build`` warns that it is profiled as a number.
CODES_MAX_DISTINCT = 10


def class_of(column: str) -> str:
    """The class a probability column stands for: its name, without a leading ``proba:``."""
    return column.removeprefix(PROBA_PREFIX)


def prediction_outputs(columns: Sequence[str]) -> list[str] | None:
    """The reference outputs the ``--prediction-column`` flags name, the same for ``build`` and ``drift``.

    One column holds the model's single output: the reference's ``value`` (numbers) or ``label``
    (classes), decided by its values, so ``None`` here. Several columns hold one class probability
    each: ``proba:<class>``, the class being the column name without a leading ``proba:``.
    """
    if len(columns) == 1:
        return None
    return [proba_output_name(class_of(c)) for c in columns]


def integer_codes(column: Any) -> list[Any] | None:
    """The distinct values of a numeric column that looks like integer codes, else None."""
    if column.dtype.kind not in "iuf":
        return None
    values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    values = values[np.isfinite(values)]
    if values.size == 0 or not np.array_equal(values, np.round(values)):
        return None
    distinct = np.unique(values)
    return [int(v) for v in distinct] if distinct.size <= CODES_MAX_DISTINCT else None


def _warn_integer_codes(df: Any, skip: set[str]) -> None:
    for name in df.columns:
        if name in skip:
            continue
        codes = integer_codes(df[name])
        if codes is None:
            continue
        shown = ", ".join(map(str, codes[:5])) + (", …" if len(codes) > 5 else "")
        click.echo(
            f"warning: {name!r} holds only {len(codes)} distinct whole numbers ({shown}) and is profiled as a "
            f"number; if they are codes pass --categorical {name}, if they are amounts pass --numeric {name}",
            err=True,
        )


@click.command()
@click.argument("data", type=click.Path(dir_okay=False))
@click.option("--model", required=True, help="Model name (ml.model.name).")
@click.option("--version", "version", required=True, help="Model version (ml.model.version).")
@click.option("--categorical", multiple=True, help="Column to profile as categories (repeatable).")
@click.option("--numeric", multiple=True,
              help=f"Column of whole numbers to keep numeric without the warning given when it has at most "
                   f"{CODES_MAX_DISTINCT} distinct values (repeatable).")
@click.option("--target", multiple=True, help="Column to leave out of the features, e.g. the label (repeatable).")
@click.option("--prediction-column", "prediction_columns", multiple=True,
              help="Column holding the model's output: once for a score or label (output 'value' or 'label'), "
                   "or once per class probability (output 'proba:<column>'). Pass the same to `otel-ml drift`.")
@click.option("--label-column", default=None,
              help="Column holding the true labels (values) of a labelled holdout: stores the model's reference "
                   "performance for `otel-ml performance` (needs --prediction-column).")
@click.option("--bins", default=DEFAULT_BINS, show_default=True, help="Buckets per numeric feature (about).")
@click.option("--top-k", "top_k", default=DEFAULT_TOP_K, show_default=True, help="Categories kept per feature.")
@click.option("--multivariate", is_flag=True,
              help="Add the multivariate summary (PCA of the numeric features and of indicators of the "
                   "categorical features' top categories): relations between features and outlier rows are "
                   "judged too.")
@click.option("--segment", "segments", multiple=True,
              help="Column to profile per value (its top values and __other__: rows, outputs, quality), so the "
                   "processor judges drift and quality per segment (repeatable, at most 4). It stays a feature "
                   "unless also given as --target.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Reference JSON to write.")
@progress_option
@click.option("--max-rows", type=click.IntRange(min=1), default=None,
              help="Profile a uniform random sample of at most this many rows (bounded memory on huge files).")
def build(data: str, model: str, version: str, categorical: tuple[str, ...], numeric: tuple[str, ...],
          target: tuple[str, ...], prediction_columns: tuple[str, ...], label_column: str | None, bins: int,
          top_k: int, multivariate: bool, segments: tuple[str, ...], output: str, progress: bool | None,
          max_rows: int | None) -> None:
    """Build a reference profile from a CSV or Parquet file of training data.

    Numbers are profiled into about --bins quantile buckets, text and booleans into categories.
    Whole numbers with few distinct values (a 0/1 flag, status codes) stay numbers unless passed
    with --categorical: the command warns and names the flag. With --label-column (a labelled
    holdout) the reference also holds the model's performance on it, each metric with its 95 %
    interval. With --segment COL (repeatable) it also profiles each of COL's top values (rows, outputs,
    data quality), what `@monitor(segments=[COL])` is judged against per segment. Exit status 2 for a
    file or option that cannot be used.
    """
    size = os.path.getsize(data) if os.path.isfile(data) else 0
    with progress_bar(progress, size=size) as bar:
        df = read_table(data, text_columns=categorical, max_rows=max_rows, progress=bar)
    if len(df) == 0:
        raise InputError(f"{data}: no rows to profile" + ("" if len(df.columns) else " (empty file)"))
    both = sorted(set(categorical) & set(numeric))
    if both:
        raise InputError(f"--categorical and --numeric both name {', '.join(map(repr, both))}")
    if label_column is not None and not prediction_columns:
        raise InputError("--label-column needs --prediction-column: "
                         "the performance is the model's outputs against the labels")
    for name in (*categorical, *numeric, *target, *prediction_columns, *([label_column] if label_column else []),
                 *segments):
        if name not in df.columns:
            raise InputError(f"no column {name!r} in {data} (columns: {', '.join(df.columns)})")
    predictions = None
    class_names = None
    if len(prediction_columns) == 1:
        predictions = df[prediction_columns[0]].to_numpy()
    elif prediction_columns:
        predictions = df[list(prediction_columns)].to_numpy(dtype=np.float64)
        class_names = [class_of(c) for c in prediction_columns]
    labels = None if label_column is None else df[label_column].to_numpy()
    not_features = [*target, *prediction_columns, *([label_column] if label_column else [])]
    features = df.drop(columns=list(dict.fromkeys(not_features)))
    _warn_integer_codes(features, set(categorical) | set(numeric))
    try:
        ref = build_reference(features, model=model, version=version, predictions=predictions,
                              categorical=list(categorical), class_names=class_names, bins=bins, top_k=top_k,
                              labels=labels, multivariate=multivariate,
                              segments={s: df[s].to_numpy() for s in segments} if segments else None)
        ref.save(output)
    except OtelMLError as exc:
        raise InputError(str(exc)) from None
    except OSError as exc:
        raise InputError(f"{output}: cannot write the reference ({exc.strerror or exc})") from None
    outputs = ", ".join(f"{o.name} <- column {c!r}" for o, c in zip(ref.outputs, prediction_columns))
    click.echo(f"wrote {output}: {len(ref.features)} features, {len(ref.outputs)} outputs"
               + (f" ({outputs})" if outputs else "") + f", {ref.row_count} rows"
               + (f", {ref.performance.task} performance on {ref.performance.n} labels" if ref.performance else "")
               + (f", segments {', '.join(f'{c} ({len(p.values)} values)' for c, p in ref.segments.items())}"
                  if ref.segments else ""))


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
    if ref.performance is not None:
        perf = ref.performance
        head.add_row("performance", f"{perf.task}, {perf.n:,} labelled rows"
                     + (f", {len(perf.calibration)} calibration bins" if perf.calibration else ""))
        t = Table(title="performance", title_justify="left")
        for col in ("metric", "value", "95% interval", "n"):
            t.add_column(col)
        for name, e in perf.metrics.items():
            t.add_row(name, fmt_number(e.value), f"[{fmt_number(e.lower)}, {fmt_number(e.upper)}]", f"{e.n:,}")
        parts.append(t)
    if ref.segments:
        t = Table(title="segments", title_justify="left")
        for col in ("column", "values", "rows per value (largest first)"):
            t.add_column(col)
        for name, seg in ref.segments.items():
            ranked = sorted(seg.values.items(), key=lambda kv: -kv[1].rows)
            shown = ", ".join(f"{v} ({p.rows:,})" for v, p in ranked[:5])
            t.add_row(name, str(len(seg.values)), shown + (f", … +{len(ranked) - 5}" if len(ranked) > 5 else ""))
        parts.append(t)
    return Group(*parts)


@click.command()
@click.argument("reference", type=click.Path(exists=True, dir_okay=False))
def show(reference: str) -> None:
    """Print a human-readable summary of a reference profile."""
    try:
        ref = load_reference(reference)
    except OtelMLError as exc:
        raise InputError(str(exc)) from None
    console().print(render(ref))
