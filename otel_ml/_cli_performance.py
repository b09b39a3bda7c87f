"""``otel-ml performance``: judge a model's outputs on labelled data against the reference's holdout
performance, offline: the release gate for realized performance.

The data file holds the model's outputs under the reference's output names (as ``otel-ml drift`` reads
them: ``value``, ``label``, ``proba:<class>``) and the true labels (``--label-column``). Metrics and
verdicts are those of :mod:`otel_ml.stats.performance`, as the processor computes them per window. Exit
status (shared with ``otel-ml drift``, :mod:`otel_ml._cli_io`): 0 no primary metric degraded; 1 degraded;
2 usage or input error; 3 could not judge (no rows, or fewer than ``--min-samples`` labelled rows).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import click
import numpy as np

from ._cli_io import (
    EXIT_FLAGGED,
    EXIT_NOT_JUDGED,
    EXIT_PASS,
    InputError,
    console,
    fmt_number,
    format_option,
    print_conclusion,
    progress_bar,
    progress_option,
    read_table,
)
from ._errors import ConfigurationError, ReferenceProfileError
from ._reference import OUTPUT_LABEL, OUTPUT_VALUE, PROBA_PREFIX, Reference, category_key, load_reference
from .stats import NO_VERDICT, Estimate, PerformancePolicy, PerformanceVerdict, degradation_verdicts
from .stats.performance import classification_metrics, regression_metrics


@dataclass(frozen=True)
class Judgement:
    """The metrics of the labelled data, the reference's, and the verdicts on the primary metrics."""

    rows: int
    unlabelled: int
    current: Mapping[str, Estimate]
    reference: Mapping[str, Estimate]
    verdicts: Sequence[PerformanceVerdict]

    @property
    def exit_code(self) -> int:
        if any(v.degraded == 1 for v in self.verdicts):
            return EXIT_FLAGGED
        if not self.verdicts or any(v.degraded == NO_VERDICT for v in self.verdicts):
            return EXIT_NOT_JUDGED
        return EXIT_PASS

    def summary(self) -> str:
        degraded = [v.metric for v in self.verdicts if v.degraded == 1]
        if degraded:
            return f"performance degraded: {', '.join(degraded)}"
        if self.rows - self.unlabelled == 0:
            return "could not judge: no labelled rows"
        if not self.verdicts:
            return "could not judge: no primary metric in both the data and the reference"
        unjudged = [v for v in self.verdicts if v.degraded == NO_VERDICT]
        if unjudged:
            return ("could not judge " + "; ".join(f"{v.metric} ({v.reason})" for v in unjudged)
                    + " - more labelled rows or --min-samples")
        return "no degradation against the reference performance"


def _labels(data: Any, column: str) -> tuple[np.ndarray, np.ndarray]:
    """The label column as category keys (object array) and the mask of labelled rows."""
    keys = np.array([category_key(v) for v in data[column].tolist()], dtype=object)
    return keys, np.array([k is not None for k in keys.tolist()], dtype=bool)


def measure(reference: Reference, data: Any, label_column: str) -> tuple[dict[str, Estimate], int]:
    """The metrics of the data's outputs against its labels (same task as the reference), and the rows
    without a label (left out, and reported). Raises :class:`InputError` for data that cannot be judged."""
    perf = reference.performance
    assert perf is not None
    columns = set(map(str, data.columns))
    if label_column not in columns:
        raise InputError(f"--label-column {label_column}: no such column (columns: {', '.join(sorted(columns))})")
    keys, labelled = _labels(data, label_column)
    rows = data[labelled]
    try:
        if perf.task == "regression":
            if OUTPUT_VALUE not in columns:
                raise InputError(f"the reference is a regression: the data needs its output column {OUTPUT_VALUE!r}")
            y = np.array([_number(k) for k in keys[labelled].tolist()], dtype=np.float64)
            f = rows[OUTPUT_VALUE].to_numpy(dtype=np.float64, na_value=np.nan)
            return regression_metrics(y, f), int((~labelled).sum())
        proba_columns = [f"{PROBA_PREFIX}{c}" for c in perf.classes]
        has_proba = bool(perf.classes) and all(c in columns for c in proba_columns)
        if not has_proba and OUTPUT_LABEL not in columns:
            wanted = ", ".join(proba_columns) if perf.classes else "proba:<class> ..."
            raise InputError(f"the reference is a {perf.task} classifier: the data needs its output column "
                             f"{OUTPUT_LABEL!r} or its probabilities ({wanted})")
        y_pred: list[str] | None = None
        if OUTPUT_LABEL in columns:
            predicted = [category_key(v) for v in rows[OUTPUT_LABEL].tolist()]
            missing = sum(k is None for k in predicted)
            if missing:
                raise InputError(f"the output column {OUTPUT_LABEL!r} has {missing} empty value(s) in labelled rows")
            y_pred = [k for k in predicted if k is not None]
        proba = rows[proba_columns].to_numpy(dtype=np.float64, na_value=np.nan) if has_proba else None
        classes = list(perf.classes) or sorted(set(keys[labelled].tolist()) | set(y_pred or ()))
        return classification_metrics(keys[labelled].tolist(), y_pred, proba, classes), int((~labelled).sum())
    except ValueError as exc:
        raise InputError(f"cannot compute the performance: {' '.join(str(exc).split())}") from None


def _number(key: str) -> float:
    try:
        return float(key)
    except ValueError:
        raise ValueError(f"the label {key!r} is not a number (the reference is a regression)") from None


def judge(reference: Reference, data: Any, label_column: str, policy: PerformancePolicy) -> Judgement:
    assert reference.performance is not None
    current, unlabelled = measure(reference, data, label_column)
    verdicts = degradation_verdicts(current, reference.performance.metrics, policy)
    return Judgement(len(data), unlabelled, current, reference.performance.metrics, verdicts)


# --- Output --------------------------------------------------------------------------------------


def _num(v: float) -> float | None:
    return v if math.isfinite(v) else None


def _estimate_json(e: Estimate | None) -> dict[str, Any] | None:
    if e is None:
        return None
    return {"value": _num(e.value), "lower": _num(e.lower), "upper": _num(e.upper), "n": e.n}


def to_json(reference: Reference, judgement: Judgement) -> dict[str, Any]:
    verdicts = {v.metric: v for v in judgement.verdicts}
    metrics = []
    for name in dict.fromkeys([*judgement.current, *judgement.reference]):
        v = verdicts.get(name)
        metrics.append({
            "metric": name,
            "current": _estimate_json(judgement.current.get(name)),
            "reference": _estimate_json(judgement.reference.get(name)),
            "degraded": None if v is None else (None if v.degraded == NO_VERDICT else bool(v.degraded)),
            "p_value": None if v is None else _num(v.p_value),
            "reason": None if v is None else v.reason,
        })
    return {
        "model": {"name": reference.model_name, "version": reference.model_version},
        "task": reference.performance.task if reference.performance else None,
        "rows": judgement.rows,
        "unlabelled_rows": judgement.unlabelled,
        "exit_code": judgement.exit_code,
        "summary": judgement.summary(),
        "degraded": judgement.exit_code == EXIT_FLAGGED,
        "metrics": metrics,
    }


def _interval(e: Estimate | None) -> str:
    if e is None or not (math.isfinite(e.lower) and math.isfinite(e.upper)):
        return "-"
    return f"[{fmt_number(e.lower)}, {fmt_number(e.upper)}]"


def _verdict_cell(v: PerformanceVerdict | None) -> str:
    if v is None:
        return "-"
    if v.degraded == NO_VERDICT:
        return "[yellow]no verdict[/]"
    return "[bold red]DEGRADED[/]" if v.degraded == 1 else "[green]ok[/]"


def print_table(reference: Reference, judgement: Judgement) -> None:
    """Every metric: current value and interval, the reference's, and the verdict of the primary ones."""
    from rich.markup import escape
    from rich.table import Table

    out = console()
    task = reference.performance.task if reference.performance else "-"
    table = Table(title=f"performance: {reference.model_name} {reference.model_version} ({task}) - "
                        f"{judgement.rows - judgement.unlabelled:,} labelled rows")
    for header, justify in (("metric", "left"), ("n", "right"), ("current", "right"), ("95% interval", "right"),
                            ("reference", "right"), ("ref. interval", "right"), ("verdict", "left"),
                            ("why", "left")):
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    verdicts = {v.metric: v for v in judgement.verdicts}
    for name in dict.fromkeys([*judgement.current, *judgement.reference]):
        cur, ref, v = judgement.current.get(name), judgement.reference.get(name), verdicts.get(name)
        table.add_row(escape(name), f"{cur.n:,}" if cur else "-", fmt_number(cur.value if cur else None),
                      _interval(cur), fmt_number(ref.value if ref else None), _interval(ref), _verdict_cell(v),
                      escape(v.reason) if v else "")
    out.print(table)
    if judgement.unlabelled:
        out.print(f"left out: {judgement.unlabelled:,} rows without a label")
    print_conclusion(out, judgement.summary(), judgement.exit_code)


@click.command()
@click.option("--reference", "reference_path", required=True, type=click.Path(dir_okay=False),
              help="Reference profile with a performance section (`otel-ml reference build --label-column`).")
@click.option("--data", "data_path", required=True, type=click.Path(dir_okay=False),
              help="Scored, labelled data: .csv or .parquet with the model's outputs (value, label, proba:<class>) "
                   "and the labels.")
@click.option("--label-column", required=True, help="Column holding the true labels (or values).")
@click.option("--min-samples", type=click.IntRange(min=1), default=None,
              help=f"Fewest labelled rows a verdict needs [default: {PerformancePolicy.min_samples}].")
@click.option("--alpha", type=float, default=None,
              help=f"Family-wise significance level of the drop [default: {PerformancePolicy.alpha}].")
@click.option("--primary", multiple=True,
              help="Metric that can alarm (repeatable) [default: " + ", ".join(PerformancePolicy.primary) + "].")
@format_option
@progress_option
def performance(reference_path: str, data_path: str, label_column: str, min_samples: int | None,
                alpha: float | None, primary: tuple[str, ...], fmt: str, progress: bool | None) -> None:
    """Judge a model's outputs on labelled data against its reference performance: the release gate.

    A primary metric is degraded when it is worse than the reference's both significantly (one-sided
    test over both samples' uncertainty, Holm across the primary metrics) and by more than its
    tolerance (2 points of accuracy, 0.02 of ROC AUC, 10 % of MAE). Rows without a label are left out.

    \b
    Exit status:
      0  no primary metric degraded
      1  a primary metric degraded
      2  usage or input error
      3  could not judge: fewer labelled rows than --min-samples, or no primary metric
    """
    try:
        reference = load_reference(reference_path)
    except ReferenceProfileError as exc:
        raise InputError(str(exc)) from None
    if reference.performance is None:
        raise InputError(f"{reference_path}: the reference has no performance section; build it from a labelled "
                         "holdout (`otel-ml reference build --label-column`, or build_reference(labels=...))")
    overrides: dict[str, Any] = {"min_samples": min_samples, "alpha": alpha, "primary": primary or None}
    try:
        policy = PerformancePolicy(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigurationError as exc:
        raise InputError(str(exc)) from None
    text = [label_column] + ([OUTPUT_LABEL] if reference.performance.task != "regression" else [])
    size = os.path.getsize(data_path) if os.path.isfile(data_path) else 0
    with progress_bar(progress, size=size) as bar:
        data = read_table(data_path, text_columns=text, progress=bar)
    if len(data.columns) == 0:
        judgement = Judgement(0, 0, {}, reference.performance.metrics, [])
    else:
        judgement = judge(reference, data, label_column, policy)
    if fmt == "json":
        click.echo(json.dumps(to_json(reference, judgement), indent=1, allow_nan=False))
    else:
        print_table(reference, judgement)
    raise SystemExit(judgement.exit_code)
