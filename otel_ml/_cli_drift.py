"""``otel-ml drift``: judge a file of current data against a reference profile, offline: the release gate.

Bins the data with the reference's edges and categories and counts missing, invalid, out-of-range
and unseen values with the library's own code (:func:`count_column`: the adapter and tables of the
predict path; docs/semantic-conventions.md), and judges every feature and every model output present
in the data with the shared verdict (:mod:`otel_ml.stats`; Holm's correction across the model's
streams); with a reference's "segments" section, each segment value too (:mod:`._cli_segments`).
Exit status, for CI/CD (README, ``otel-ml drift --help``):

* 0 (:data:`EXIT_PASS`): every column judged; no drift, no data-quality alarm;
* 1 (:data:`EXIT_FLAGGED`): drift or a data-quality alarm on at least one column or segment value;
* 2 (:data:`EXIT_INPUT`): usage or input error (a file or option that cannot be used);
* 3 (:data:`EXIT_NOT_JUDGED`): nothing flagged, but not every column could be judged (no rows, or
  fewer than ``min_samples`` values in a column): the gate cannot say "pass".
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import click
import numpy as np
import scipy  # noqa: F401 (the statistics need it: a missing cli extra is named before any work)

from ._adapters import numeric_column, series_values
from ._binning import CategoricalTable, ColumnCounts, count_column
from ._cli_io import (
    EXIT_FLAGGED,
    EXIT_INPUT,  # noqa: F401 (the exit statuses of this command, documented above)
    EXIT_NOT_JUDGED,
    EXIT_PASS,
    InputError,
    console,
    fmt_number as _fmt,
    format_option,
    print_conclusion,
    progress_bar,
    progress_option,
    read_table,
)
from ._cli_reference import prediction_outputs
from ._cli_segments import SegmentJudgement, count_segments, judge_segments, print_segments, to_json as segments_json
from ._errors import ConfigurationError, ReferenceProfileError
from ._reference import (
    PROBA_PREFIX,
    CategoricalProfile,
    NumericProfile,
    Reference,
    category_key,
    load_reference,
)
from .stats import DriftPolicy, DriftResult, Estimate, PolicyBook, estimate_binary, evaluate_profiles, quality_alarm
from .stats._quality import reference_ratios


@dataclass
class Row:
    name: str  # the reference's feature or output name
    role: str  # "feature" | "prediction"
    profile: NumericProfile | CategoricalProfile
    counts: ColumnCounts  # what the library counts over the column (count_column)
    policy: DriftPolicy
    column: str | None  # the data column judged; None: absent, every row counted missing
    result: DriftResult | None = None
    quality: dict[str, tuple[float, int]] | None = None

    @property
    def absent(self) -> bool:
        return self.column is None

    @property
    def quality_alarm(self) -> bool:
        return any(alarm == 1 for _, alarm in (self.quality or {}).values())

    @property
    def flagged(self) -> bool:
        return bool(self.result is not None and self.result.detected) or self.quality_alarm

    @property
    def no_verdict(self) -> str | None:
        """Why the column has no drift verdict, or None when it has one."""
        if self.result is None or self.result.detected is not None:
            return None
        if self.result.sample_count == 0:
            return "no values" if self.counts.rows else "no rows"
        return f"{self.result.sample_count:,} values < min_samples {self.policy.min_samples:,}"


@dataclass(frozen=True)
class NotJudged:
    """A column that is not judged at all: in the data but not the reference, or the other way round."""

    column: str
    reason: str


@dataclass(frozen=True)
class Judgement:
    rows: list[Row]
    not_judged: list[NotJudged]
    n_rows: int
    #: Estimated performance without labels (binary classifiers whose reference has calibration, with
    #: at least min_samples values of the positive class's probability); never part of the exit status.
    estimated: dict[str, Estimate] | None = None
    #: Per segment value (the reference's "segments" section); None without one. Its alarms fail the gate.
    segments: SegmentJudgement | None = None

    @property
    def exit_code(self) -> int:
        if any(r.flagged for r in self.rows) or (self.segments is not None and self.segments.flagged):
            return EXIT_FLAGGED
        if self.n_rows == 0 or not self.rows or any(r.no_verdict for r in self.rows):
            return EXIT_NOT_JUDGED
        return EXIT_PASS

    def summary(self) -> str:
        """The one-line conclusion, matching :attr:`exit_code`."""
        drifted = [r.name for r in self.rows if r.result is not None and r.result.detected]
        alarms = [r.name for r in self.rows if r.quality_alarm]
        segments = [] if self.segments is None else self.segments.flagged
        if drifted or alarms or segments:
            return (f"drift detected in {', '.join(drifted) or 'no column'}; "
                    f"data-quality alarm on {', '.join(alarms) or 'no column'}"
                    + (f"; segment alarm on {', '.join(segments)}" if segments else ""))
        if self.n_rows == 0:
            return "could not judge: the data has no rows"
        unjudged = [r for r in self.rows if r.no_verdict]
        if unjudged:
            return (f"could not judge {len(unjudged)} of {len(self.rows)} columns: "
                    + "; ".join(f"{r.name} ({r.no_verdict})" for r in unjudged)
                    + " - more data or --min-samples")
        return "no drift and no data-quality alarm"


# --- Reading -------------------------------------------------------------------------------------


def read_policy(path: str | None, min_samples: int | None) -> PolicyBook:
    """The policy file (or the defaults), with ``--min-samples`` replacing its top-level ``min_samples``."""
    doc: Any = {}
    if path is not None:
        import yaml

        try:
            with open(path, encoding="utf-8") as f:
                doc = yaml.safe_load(f) or {}
        except FileNotFoundError:
            raise InputError(f"{path}: no such policy file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: cannot read the policy file ({exc})") from None
        except yaml.YAMLError as exc:
            raise InputError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    if min_samples is not None and isinstance(doc, Mapping):
        doc = {**doc, "min_samples": min_samples}
    try:
        return PolicyBook.from_mapping(doc, source=path or "--min-samples")
    except ConfigurationError as exc:
        raise InputError(str(exc)) from None


def output_columns(reference: Reference, prediction_columns: Sequence[str]) -> dict[str, str]:
    """Reference output name -> data column, as ``--prediction-column`` says (same rule as ``build``)."""
    if not prediction_columns:
        return {}
    names = [o.name for o in reference.outputs]
    mapped = prediction_outputs(prediction_columns)
    if mapped is None:  # one column: the reference's single value or label output
        single = [n for n in names if not n.startswith(PROBA_PREFIX)]
        if len(single) != 1:
            raise InputError(
                f"--prediction-column {prediction_columns[0]}: the reference has no single value or label output "
                f"(its outputs: {', '.join(names) or 'none'}); pass one --prediction-column per class probability"
            )
        mapped = single
    unknown = [f"{c} (-> {o})" for c, o in zip(prediction_columns, mapped) if o not in names]
    if unknown:
        raise InputError(f"--prediction-column names outputs the reference does not have: {', '.join(unknown)} "
                         f"(its outputs: {', '.join(names) or 'none'})")
    return dict(zip(mapped, prediction_columns))


# --- Reading text back as values ----------------------------------------------------------------


def read_back_text(profile: NumericProfile | CategoricalProfile, values: np.ndarray) -> np.ndarray:
    """A text file has no types: cells written as text are read back as what they stand for.

    For a numeric feature a number written as text is a number ("3.5"); for a categorical one, text
    spelling a reference category another way maps to it ("True" -> "true", "3.0" -> "3"). Anything
    else is left as it is, for the library to count (wrong type, unseen).
    """
    if values.dtype != object:
        return values
    if isinstance(profile, NumericProfile):
        convert = _text_number
    else:
        index = set(profile.categories)

        def convert(text: str) -> Any:
            return text if text in index else (_text_key(text, index) or text)

    out = values.copy()
    seen: dict[str, Any] = {}
    for i, v in enumerate(values.tolist()):
        if isinstance(v, str):
            try:
                out[i] = seen[v]
            except KeyError:
                out[i] = seen[v] = convert(v)
    return out


def _text_number(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


def _text_key(text: str, index: set[str]) -> str | None:
    """The category a value read back from a text file stands for ("True" -> "true", "3.0" -> "3")."""
    low = text.strip().lower()
    if low in ("true", "false") and low in index:
        return low
    try:
        number = float(text)
    except ValueError:
        return None
    key = category_key(number)
    return key if key in index else None


def judge(
    reference: Reference,
    data: Any,
    book: PolicyBook,
    outputs: Mapping[str, str] | None = None,
    advance: Callable[[], None] | None = None,
) -> Judgement:
    """Count, evaluate and alarm every feature (present or not) and every output present.

    ``outputs`` maps reference output names to data columns (``--prediction-column``); an output
    without one is judged when a column carries its own name. Every data column not judged and every
    output not in the data is listed in :attr:`Judgement.not_judged`. ``advance`` is called once per column.
    """
    n_rows = len(data)
    columns = {str(c): data[c] for c in data.columns}
    outputs = {o.name: (outputs or {}).get(o.name, o.name) for o in reference.outputs}
    rows: list[Row] = []
    not_judged: list[NotJudged] = []
    numeric: dict[str, np.ndarray] = {}
    categorical: dict[str, tuple[Any, Any]] = {}
    feature_values: dict[str, Any] = {}
    output_values: list[tuple[NumericProfile | CategoricalProfile, Any]] = []
    for role, profiles in (("feature", reference.features), ("prediction", reference.outputs)):
        for p in profiles:
            column: str | None = p.name if role == "feature" else outputs[p.name]
            if column not in columns:
                if role == "prediction":
                    hint = "; --prediction-column names the column that holds it" if column == p.name else ""
                    not_judged.append(NotJudged(p.name, f"reference output, no column {column!r} in the data{hint}"))
                    continue
                column = None
            values = None if column is None else read_back_text(p, series_values(columns[column]))
            counts = count_column(p, values, n_rows)
            if role == "feature":
                feature_values[p.name] = values
            else:
                output_values.append((p, values))
            rows.append(Row(p.name, role, p, counts, book.policy_for(p.name, model=reference.model_name), column))
            if role == "feature" and isinstance(p, NumericProfile):
                numeric[p.name] = np.full(n_rows, np.nan) if values is None else numeric_column(values)[0]
            elif role == "feature":
                categorical[p.name] = (p, values)
            if advance is not None:
                advance()
    mv = reference.multivariate
    if mv is not None:  # the reconstruction-error stream, counted as a monitored process counts it
        levels = []
        for j, (name, _) in enumerate(mv.summary.categorical):
            profile, values = categorical[name]
            table = CategoricalTable(profile)
            _, codes = table.stats_and_codes(np.full(n_rows, np.nan) if values is None else values)
            levels.append(mv.summary.level_rows(j, table.categories)[codes])
        err = mv.summary.errors(np.column_stack([numeric[f] for f in mv.summary.features]), levels)
        name = mv.error.name
        rows.append(Row(name, "feature", mv.error, count_column(mv.error, err, n_rows),
                        book.policy_for(name, model=reference.model_name), name))  # derived, never absent
    judged = {r.column for r in rows} | set(reference.segments or ())  # segment columns: judged below
    output_names = ", ".join(o.name for o in reference.outputs) or "none"
    for c in columns:
        if c not in judged:
            not_judged.append(NotJudged(c, f"not in the reference (its outputs: {output_names}; "
                                           "--prediction-column judges a column as one of them)"))
    if rows:
        results = evaluate_profiles([r.profile for r in rows], [r.counts.buckets for r in rows],
                                    policy=[r.policy for r in rows])
        # Bonferroni over the model's quality tests (one per ratio per stream).
        n_tests = sum(len(reference_ratios(r.profile)) for r in rows)
        for r, res in zip(rows, results):
            r.result = res
            r.quality = {}
            for kind, ref_ratio in reference_ratios(r.profile).items():
                bad = getattr(r.counts, kind)
                ratio, alarm = quality_alarm(ref_ratio, bad, r.counts.rows, policy=r.policy, n_tests=n_tests)
                r.quality[kind] = (float(ratio), int(alarm))
    segments = None
    if reference.segments is not None:
        current = count_segments(reference, {c: series_values(columns[c]) for c in reference.segments if c in columns},
                                 n_rows, output_values, feature_values)
        absent = [c for c in reference.segments if c not in columns]
        segments = judge_segments(reference, current, book, [p.name for p, _ in output_values], absent)
    return Judgement(rows, not_judged, n_rows, _estimated(reference, rows), segments)


def _estimated(reference: Reference, rows: list[Row]) -> dict[str, Estimate] | None:
    perf = reference.performance
    if perf is None or perf.task != "binary" or not perf.calibration or len(perf.classes) != 2:
        return None
    name = PROBA_PREFIX + perf.classes[1]
    row = next((r for r in rows if r.role == "prediction" and r.name == name), None)
    if row is None or not isinstance(row.profile, NumericProfile) or row.result is None \
            or row.result.sample_count < row.policy.min_samples:
        return None
    return estimate_binary(row.profile.edges, row.counts.buckets, perf.calibration)


# --- Output --------------------------------------------------------------------------------------


def _num(v: float | None) -> float | None:
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v


def to_json(reference: Reference, judgement: Judgement) -> dict[str, Any]:
    features = []
    for r in judgement.rows:
        res = r.result
        assert res is not None
        features.append(
            {
                "name": r.name,
                "role": r.role,
                "kind": r.profile.kind,
                "column": r.column,
                "absent": r.absent,
                "sample_count": res.sample_count,
                "psi": _num(res.psi),
                "jensen_shannon": _num(res.jensen_shannon),
                "ks": _num(res.ks),
                "wasserstein": _num(res.wasserstein),
                "dispersion": _num(res.dispersion),
                "total_variation": _num(res.total_variation),
                "chi_square": _num(res.chi_square),
                "p_value": _num(res.p_value),
                "p_adjusted": _num(res.p_adjusted),
                "detected": res.detected,
                "no_verdict": r.no_verdict,
                "quality": {
                    **{f"{k}_ratio": _num(v[0]) for k, v in (r.quality or {}).items()},
                    "alarm": r.quality_alarm,
                },
            }
        )
    doc = {
        "model": {"name": reference.model_name, "version": reference.model_version},
        "rows": judgement.n_rows,
        "exit_code": judgement.exit_code,
        "summary": judgement.summary(),
        "drift_detected": any(r.result is not None and r.result.detected for r in judgement.rows),
        "quality_alarm": any(r.quality_alarm for r in judgement.rows),
        "not_judged": [{"column": n.column, "reason": n.reason} for n in judgement.not_judged],
        "features": features,
        "estimated_performance": None if judgement.estimated is None else {
            m: {"value": _num(e.value), "lower": _num(e.lower), "upper": _num(e.upper), "n": e.n}
            for m, e in judgement.estimated.items()},
    }
    if judgement.segments is not None:
        doc["segments"] = segments_json(judgement.segments)
    return doc


def _pct(v: float | None) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{100 * v:.1f}%"


@dataclass(frozen=True)
class _Col:
    header: str
    justify: str
    cell: Callable[[Row], str]
    drop: int = 0  # 0: always shown; otherwise dropped in this order (1 first) when the terminal is narrow


def _quality_cell(r: Row) -> str:
    q = r.quality or {}
    if r.quality_alarm:
        return "[bold red]ALARM[/]"
    return "[yellow]-[/]" if all(a == -1 for _, a in q.values()) else "[green]ok[/]"


def _verdict_cell(r: Row) -> str:
    assert r.result is not None
    if r.result.detected is None:
        return "[yellow]no verdict[/]"
    return "[bold red]DRIFT[/]" if r.result.detected else "[green]ok[/]"


def _kind_cell(r: Row) -> str:
    return r.profile.kind + (" output" if r.role == "prediction" else "") + (" (absent)" if r.absent else "")


def _ratio(kind: str) -> Callable[[Row], str]:
    return lambda r: _pct((r.quality or {}).get(kind, (None,))[0])


def _stat(name: str, digits: int = 3) -> Callable[[Row], str]:
    return lambda r: _fmt(getattr(r.result, name), digits)


TABLE_COLUMNS = (
    _Col("feature", "left", lambda r: r.name),
    _Col("kind", "left", _kind_cell),
    _Col("n", "right", lambda r: f"{r.result.sample_count:,}" if r.result else "-"),
    _Col("PSI", "right", _stat("psi"), drop=8),
    _Col("JS", "right", _stat("jensen_shannon"), drop=1),
    _Col("KS", "right", _stat("ks"), drop=2),
    _Col("Wass.", "right", _stat("wasserstein"), drop=10),
    _Col("p-value", "right", _stat("p_value", 4), drop=3),
    _Col("p adj.", "right", _stat("p_adjusted", 4), drop=9),
    _Col("verdict", "left", _verdict_cell),
    _Col("missing", "right", _ratio("missing"), drop=7),
    _Col("invalid", "right", _ratio("invalid"), drop=5),
    _Col("out of range", "right", _ratio("out_of_range"), drop=4),
    _Col("unseen", "right", _ratio("unseen"), drop=6),
    _Col("quality", "left", _quality_cell),
)


def _table(title: str, rows: list[Row], columns: Sequence[_Col]) -> Any:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title)
    for col in columns:
        table.add_column(col.header, justify=col.justify, no_wrap=col.header != "feature")  # type: ignore[arg-type]
    for r in rows:
        table.add_row(*(escape(col.cell(r)) if col.header == "feature" else col.cell(r) for col in columns))
    return table


def print_table(reference: Reference, judgement: Judgement) -> None:
    """The per-column table, as wide as the terminal: the least needed columns go first when it is narrow."""
    from rich.markup import escape

    out = console()
    title = f"drift: {reference.model_name} {reference.model_version} - {judgement.n_rows:,} rows"
    columns = list(TABLE_COLUMNS)
    table = _table(title, judgement.rows, columns)
    unbounded = out.options.update_width(10_000)
    while out.measure(table, options=unbounded).maximum > out.width and any(c.drop for c in columns):
        columns.remove(min((c for c in columns if c.drop), key=lambda c: c.drop))
        table = _table(title, judgement.rows, columns)
    out.print(table)
    hidden = [c.header for c in TABLE_COLUMNS if c not in columns]
    if hidden:
        out.print(f"(not shown at this width: {', '.join(hidden)}; --format json has every figure)")
    for n in judgement.not_judged:
        out.print(f"not judged: {escape(n.column)} - {escape(n.reason)}")
    if judgement.estimated is not None:
        shown = ", ".join(f"{m} {e.value:.3f} [{e.lower:.3f}, {e.upper:.3f}]"
                          for m, e in judgement.estimated.items() if math.isfinite(e.value))
        out.print(f"estimated performance (no labels; valid under covariate shift only): {shown}")
    if judgement.segments is not None:
        print_segments(out, judgement.segments)
    print_conclusion(out, judgement.summary(), judgement.exit_code)


@click.command()
@click.option("--reference", "reference_path", required=True, type=click.Path(dir_okay=False),
              help="Reference profile (JSON, from `otel-ml reference build` or Reference.save).")
@click.option("--data", "data_path", required=True, type=click.Path(dir_okay=False),
              help="Current data: .csv or .parquet, one column per feature (and model outputs).")
@click.option("--prediction-column", "prediction_columns", multiple=True,
              help="Column holding the model's output, as given to `otel-ml reference build` (repeatable).")
@click.option("--policy", "policy_path", type=click.Path(dir_okay=False), default=None,
              help="YAML drift policy: DriftPolicy fields, per-feature 'features:' and per-model 'models:' overrides.")
@click.option("--min-samples", type=click.IntRange(min=1), default=None,
              help=f"Fewest values a column needs for a verdict [default: the policy's, else "
                   f"{DriftPolicy.min_samples}].")
@format_option
@progress_option
def drift(reference_path: str, data_path: str, prediction_columns: tuple[str, ...], policy_path: str | None,
          min_samples: int | None, fmt: str, progress: bool | None) -> None:
    """Judge a file of current data against a reference profile: the release gate.

    Every feature of the reference is judged (a missing column counts as all-missing), and every
    model output whose column is present: "value", "label", "proba:<class>", or the columns named by
    --prediction-column. Columns that are not judged are listed. When the reference has segments,
    each segment value's outputs, data quality and each column's traffic mix are judged too, and
    a segment alarm fails the gate (exit 1).

    \b
    Exit status:
      0  every column judged: no drift, no data-quality alarm
      1  drift or a data-quality alarm (also per segment value, when the reference has segments)
      2  usage or input error
      3  could not judge: no rows, or a column with fewer than --min-samples values
    """
    try:
        reference = load_reference(reference_path)
    except ReferenceProfileError as exc:
        raise InputError(str(exc)) from None
    book = read_policy(policy_path, min_samples)
    outputs = output_columns(reference, prediction_columns)
    text = [p.name for p in reference.features if isinstance(p, CategoricalProfile)]
    text += [outputs.get(p.name, p.name) for p in reference.outputs if isinstance(p, CategoricalProfile)]
    size = os.path.getsize(data_path) if os.path.isfile(data_path) else 0
    with progress_bar(progress, size=size) as bar:
        data = read_table(data_path, text_columns=text, progress=bar)
        missing = [c for c in prediction_columns if c not in data.columns]
        if missing and len(data.columns):
            raise InputError(f"--prediction-column names no column of {data_path}: {', '.join(missing)}")
        task = bar.add_task("judging", total=len(reference.features) + len(reference.outputs))
        judgement = judge(reference, data, book, outputs, advance=lambda: bar.advance(task))
    if fmt == "json":
        click.echo(json.dumps(to_json(reference, judgement), indent=1, allow_nan=False))
    else:
        print_table(reference, judgement)
    raise SystemExit(judgement.exit_code)
