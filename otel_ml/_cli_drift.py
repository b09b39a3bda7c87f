"""``otel-ml drift``: judge a batch of current data against a reference profile, offline.

Bins the data with the reference's edges and categories and counts missing, invalid, out-of-range
and unseen values with the library's own code (:func:`otel_ml._binning.count_column`: the adapter
and tables of the predict path; docs/semantic-conventions.md), and judges every feature and every model output
present in the data with the shared verdict (:mod:`otel_ml.stats`; Holm's correction across the
model's streams). Exit status: 0 nothing detected, 1 drift or a data-quality alarm,
2 usage or input error. Meant for CI/CD: gate a release on training/serving skew.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Any

import click
import numpy as np

from ._adapters import series_values
from ._binning import ColumnCounts, count_column
from ._errors import ConfigurationError, ReferenceProfileError
from ._reference import (
    OUTPUT_LABEL,
    OUTPUT_VALUE,
    PROBA_PREFIX,
    CategoricalProfile,
    NumericProfile,
    Reference,
    category_key,
    load_reference,
)
from .stats import DriftPolicy, DriftResult, PolicyBook, evaluate_profiles, quality_alarm
from .stats._quality import reference_ratios

class InputError(click.ClickException):
    """A bad file or option: exit status 2, like click's own usage errors."""

    exit_code = 2


@dataclass
class Row:
    name: str
    role: str  # "feature" | "prediction"
    profile: NumericProfile | CategoricalProfile
    counts: ColumnCounts  # what the library counts over the column (otel_ml._binning.count_column)
    policy: DriftPolicy
    absent: bool = False  # no such column: every row counted missing
    result: DriftResult | None = None
    quality: dict[str, tuple[float, int]] | None = None

    @property
    def quality_alarm(self) -> bool:
        return any(alarm == 1 for _, alarm in (self.quality or {}).values())


# --- Reading -------------------------------------------------------------------------------------


def read_data(path: str, reference: Reference) -> Any:
    """The data file as a pandas DataFrame (CSV or Parquet); categorical columns read as text."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is in the dev and pandas extras
        raise InputError("otel-ml drift needs pandas: pip install 'otel-ml[pandas]'") from None
    if not os.path.exists(path):
        raise InputError(f"{path}: no such data file")
    ext = os.path.splitext(path)[1].lower()
    categorical = [p.name for p in (*reference.features, *reference.outputs) if isinstance(p, CategoricalProfile)]
    try:
        if ext in (".csv", ".txt") or path.endswith(".csv.gz"):
            return pd.read_csv(path, dtype={c: str for c in categorical}, low_memory=False)
        if ext in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except (ValueError, OSError, ImportError) as exc:
        raise InputError(f"{path}: cannot read the data ({exc})") from None
    except Exception as exc:  # pandas raises parser-specific errors
        raise InputError(f"{path}: cannot read the data ({type(exc).__name__}: {exc})") from None
    raise InputError(f"{path}: unsupported data format {ext or '(no extension)'!r}; use .csv or .parquet")


def read_policy(path: str | None) -> PolicyBook:
    if path is None:
        return PolicyBook()
    try:
        import yaml

        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except FileNotFoundError:
        raise InputError(f"{path}: no such policy file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the policy file ({exc})") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML ({exc})") from None
    try:
        return PolicyBook.from_mapping(doc or {}, source=path)
    except ConfigurationError as exc:
        raise InputError(str(exc)) from None


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


def _is_output_column(name: str) -> bool:
    return name in (OUTPUT_VALUE, OUTPUT_LABEL) or name.startswith(PROBA_PREFIX)


def judge(reference: Reference, data: Any, book: PolicyBook) -> tuple[list[Row], list[str]]:
    """Count, evaluate and alarm every feature (present or not) and every output present."""
    n_rows = len(data)
    columns = {str(c): data[c] for c in data.columns}
    rows: list[Row] = []
    for role, profiles in (("feature", reference.features), ("prediction", reference.outputs)):
        for p in profiles:
            column = columns.get(p.name)
            if column is None and role == "prediction":
                continue
            values = None if column is None else read_back_text(p, series_values(column))
            counts = count_column(p, values, n_rows)
            rows.append(Row(p.name, role, p, counts, book.policy_for(p.name, model=reference.model_name),
                            absent=column is None))
    known = {r.name for r in rows} | {p.name for p in reference.outputs}
    unexpected = [c for c in columns if c not in known and not _is_output_column(c)]
    if rows:
        results = evaluate_profiles([r.profile for r in rows], [r.counts.buckets for r in rows], policy=[r.policy for r in rows])
        # Bonferroni over the model's quality tests (one per ratio per stream).
        n_tests = sum(len(reference_ratios(r.profile)) for r in rows)
        for r, res in zip(rows, results):
            r.result = res
            r.quality = {}
            for kind, ref_ratio in reference_ratios(r.profile).items():
                bad = getattr(r.counts, kind)
                ratio, alarm = quality_alarm(ref_ratio, bad, r.counts.rows, policy=r.policy, n_tests=n_tests)
                r.quality[kind] = (float(ratio), int(alarm))
    return rows, unexpected


# --- Output --------------------------------------------------------------------------------------


def _num(v: float | None) -> float | None:
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v


def to_json(reference: Reference, rows: list[Row], unexpected: list[str], n_rows: int) -> dict[str, Any]:
    features = []
    for r in rows:
        res = r.result
        assert res is not None
        features.append(
            {
                "name": r.name,
                "role": r.role,
                "kind": r.profile.kind,
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
                "quality": {
                    **{f"{k}_ratio": _num(v[0]) for k, v in (r.quality or {}).items()},
                    "alarm": r.quality_alarm,
                },
            }
        )
    return {
        "model": {"name": reference.model_name, "version": reference.model_version},
        "rows": n_rows,
        "drift_detected": any(r.result is not None and r.result.detected for r in rows),
        "quality_alarm": any(r.quality_alarm for r in rows),
        "unexpected_columns": unexpected,
        "features": features,
    }


def _fmt(v: float | None, digits: int = 3) -> str:
    if v is None or not math.isfinite(v):
        return "-"
    if v != 0 and abs(v) < 10 ** -digits:
        return f"{v:.1e}"
    return f"{v:.{digits}f}"


def _pct(v: float | None) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{100 * v:.1f}%"


def print_table(reference: Reference, rows: list[Row], unexpected: list[str], n_rows: int) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(160, Console().width))
    table = Table(title=f"drift: {reference.model_name} {reference.model_version} - {n_rows:,} rows")
    for header, justify in (
        ("feature", "left"), ("kind", "left"), ("n", "right"), ("PSI", "right"), ("JS", "right"),
        ("KS", "right"), ("Wass.", "right"), ("p-value", "right"), ("p adj.", "right"), ("verdict", "left"),
        ("missing", "right"), ("invalid", "right"), ("out of range", "right"), ("unseen", "right"), ("quality", "left"),
    ):
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        res = r.result
        assert res is not None
        verdict = (
            f"[yellow]no verdict (n < {r.policy.min_samples})[/]" if res.detected is None
            else "[bold red]DRIFT[/]" if res.detected else "[green]ok[/]"
        )
        q = r.quality or {}
        quality = "[bold red]ALARM[/]" if r.quality_alarm else (
            "[yellow]-[/]" if all(a == -1 for _, a in q.values()) else "[green]ok[/]")
        kind = r.profile.kind + (" (output)" if r.role == "prediction" else "") + (" [absent]" if r.absent else "")
        table.add_row(
            r.name, kind, f"{res.sample_count:,}", _fmt(res.psi), _fmt(res.jensen_shannon), _fmt(res.ks),
            _fmt(res.wasserstein), _fmt(res.p_value, 4), _fmt(res.p_adjusted, 4), verdict,
            _pct(q.get("missing", (None,))[0]), _pct(q.get("invalid", (None,))[0]),
            _pct(q.get("out_of_range", (None,))[0]), _pct(q.get("unseen", (None,))[0]), quality,
        )
    console.print(table)
    drifted = [r.name for r in rows if r.result is not None and r.result.detected]
    alarms = [r.name for r in rows if r.quality_alarm]
    if unexpected:
        console.print(f"columns not in the reference (ignored): {', '.join(unexpected)}")
    if drifted or alarms:
        console.print(
            f"[bold red]drift detected[/] in {', '.join(drifted) or 'no feature'}; "
            f"data-quality alarm on {', '.join(alarms) or 'no feature'}"
        )
    else:
        console.print("[green]no drift and no data-quality alarm[/]")


@click.command()
@click.option("--reference", "reference_path", required=True, type=click.Path(dir_okay=False),
              help="Reference profile (JSON, from `otel-ml reference build` or Reference.save).")
@click.option("--data", "data_path", required=True, type=click.Path(dir_okay=False),
              help="Current data: .csv or .parquet, one column per feature (and model outputs).")
@click.option("--policy", "policy_path", type=click.Path(dir_okay=False), default=None,
              help="YAML drift policy: DriftPolicy fields, per-feature 'features:' and per-model 'models:' overrides.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def drift(reference_path: str, data_path: str, policy_path: str | None, fmt: str) -> None:
    """Compare DATA with a reference profile; exit 1 on drift or a data-quality alarm.

    Every feature of the reference is judged (a missing column counts as all-missing) and every model
    output whose column is present ("value", "label", "proba:<class>"). Exit status: 0 nothing
    detected, 1 drift or quality alarm, 2 usage or input error.
    """
    try:
        reference = load_reference(reference_path)
    except ReferenceProfileError as exc:
        raise InputError(str(exc)) from None
    book = read_policy(policy_path)
    data = read_data(data_path, reference)
    rows, unexpected = judge(reference, data, book)
    if fmt == "json":
        click.echo(json.dumps(to_json(reference, rows, unexpected, len(data)), indent=1, allow_nan=False))
    else:
        print_table(reference, rows, unexpected, len(data))
    flagged = any(r.result is not None and r.result.detected for r in rows) or any(r.quality_alarm for r in rows)
    raise SystemExit(1 if flagged else 0)
