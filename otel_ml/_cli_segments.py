"""``otel-ml drift`` per segment value: the file judged as the processor judges a window of segment streams.

When the reference has a "segments" section and the data has its columns, each column's values are bounded
as the library bounds them (the reference's values, every other one ``__other__``) and counted with the
reference builder's own code (:func:`otel_ml._reference.segment_profiles`); then, per value with rows:

* output drift against that value's reference counts (:func:`otel_ml.stats.evaluate_batch`: chi-square +
  effect floor; the drift score is the effect size), Holm across all segment output tests;
* data quality (:func:`otel_ml.stats.segment_quality`: ``bad / (rows x features)``, binomial test + minimum
  increase), Holm across the segment quality tests;
* the traffic mix of each column (its values' rows against the reference's), Holm across the columns.

Each family is apart from the overall columns' families. Values with fewer than ``min_samples`` rows (or
output values) have no verdict and say why; they do not hold the gate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import semconv
from ._reference import CategoricalProfile, NumericProfile, Reference, SegmentColumnProfile, segment_profiles
from ._segments import allowed_values
from .stats import NO_VERDICT, PolicyBook, evaluate_batch, profile_arrays, segment_quality

NO_PROFILE = "the reference has no profile of this value"


@dataclass
class SegmentRow:
    """One segment value's verdicts: per output ``(detected, score, p_adjusted, sample_count)``, quality."""

    column: str
    value: str
    rows: int
    outputs: dict[str, tuple[int, float, float, int]] = field(default_factory=dict)
    quality_ratio: dict[str, float] = field(default_factory=dict)
    quality_alarm: int = NO_VERDICT
    quality_excess: float = math.nan
    reason: str | None = None  # why a verdict is missing (drift or quality), None when both have one

    @property
    def drift_detected(self) -> int:
        verdicts = [d for d, *_ in self.outputs.values()]
        if any(d == 1 for d in verdicts):
            return 1
        return 0 if verdicts and all(d == 0 for d in verdicts) else NO_VERDICT

    @property
    def drift_score(self) -> float:
        scores = [s for d, s, *_ in self.outputs.values() if d != NO_VERDICT and math.isfinite(s)]
        return max(scores) if scores else math.nan

    @property
    def flagged(self) -> bool:
        return self.drift_detected == 1 or self.quality_alarm == 1


@dataclass
class SegmentJudgement:
    """Every segment value judged (worst first), each column's mix verdict, and the columns not judged."""

    rows: list[SegmentRow]
    mix: dict[str, int]  # column -> 1, 0, NO_VERDICT
    not_judged: dict[str, str]  # column -> reason

    @property
    def flagged(self) -> list[str]:
        """``column=value`` of each flagged value and ``column (mix)`` of each column whose mix drifted."""
        return [f"{r.column}={r.value}" for r in self.rows if r.flagged] + \
            [f"{c} (mix)" for c, d in self.mix.items() if d == 1]


def count_segments(reference: Reference, columns: Mapping[str, Any], n_rows: int,
                   outputs: Sequence[tuple[NumericProfile | CategoricalProfile, Any]],
                   feature_values: Mapping[str, Any]) -> dict[str, SegmentColumnProfile]:
    """The data's segment counts per reference segment column present in ``columns`` (bounded as the library
    bounds them). ``feature_values``: each feature's values (read back as the overall judgment reads them)."""
    assert reference.segments is not None
    present = {c: columns[c] for c in reference.segments if c in columns}
    if not present or n_rows == 0:
        return {}
    allowed = {c: allowed_values(reference, c) or () for c in present}
    features = {p.name: feature_values.get(p.name) for p in reference.features}
    filled = {k: np.full(n_rows, np.nan) if v is None else v for k, v in features.items()}
    return segment_profiles(present, filled, reference.features, outputs, top_k=0, allowed=allowed)


def _bucketed(profile: NumericProfile | CategoricalProfile, counts: Any) -> np.ndarray:
    """Bucket counts in the profile's order (a categorical output's unknown classes in its last bucket)."""
    if isinstance(profile, NumericProfile):
        return np.asarray(counts, dtype=np.float64)
    labels = profile.bucket_labels
    index = {c: i for i, c in enumerate(labels)}
    out = np.zeros(len(labels))
    for label, n in counts.items():
        out[index.get(label, len(labels) - 1)] += n
    return out


def judge_segments(reference: Reference, current: Mapping[str, SegmentColumnProfile], book: PolicyBook,
                   outputs: Sequence[str], absent: Sequence[str] = ()) -> SegmentJudgement:
    """Judge each value with rows in ``current`` (the data's counts) against the reference's "segments"
    section, as the processor judges a window (module docstring); ``outputs``: the output names judged."""
    assert reference.segments is not None
    model = reference.model_name
    profiles = {p.name: p for p in reference.outputs}
    n_features = max(1, len(reference.features))
    rows: list[SegmentRow] = []
    drift_cells: list[tuple[SegmentRow, str, np.ndarray, np.ndarray, NumericProfile | CategoricalProfile]] = []
    quality: list[tuple[SegmentRow, np.ndarray, np.ndarray]] = []
    mix_ref: list[np.ndarray] = []
    mix_cur: list[np.ndarray] = []
    for column, counted in current.items():
        ref_values = reference.segments[column].values
        for value, vp in counted.values.items():
            if vp.rows == 0:
                continue
            row = SegmentRow(column, value, vp.rows)
            rows.append(row)
            rp = ref_values.get(value)
            ref_ratio = np.full(len(semconv.QUALITY_KINDS), np.nan)
            if rp is None:
                row.reason = NO_PROFILE
            elif rp.rows > 0:
                ref_ratio = np.array([rp.quality.get(k, 0) / (rp.rows * n_features) for k in semconv.QUALITY_KINDS])
            quality.append((row, ref_ratio, np.array([vp.quality.get(k, 0) for k in semconv.QUALITY_KINDS],
                                                     dtype=np.float64)))
            for name in outputs:
                p = profiles[name]
                ref_counts = None if rp is None else rp.outputs.get(name)
                if rp is not None and ref_counts is None:
                    row.reason = f"the reference has no {name} counts for this value"
                cur_counts = _bucketed(p, vp.outputs[name])
                ref_arr = np.zeros_like(cur_counts) if ref_counts is None else _bucketed(p, ref_counts)
                drift_cells.append((row, name, ref_arr, cur_counts, p))
        labels = list(ref_values)
        position = {v: i for i, v in enumerate(labels)}
        counts = np.zeros(len(labels) + 1)
        for value, vp in counted.values.items():
            counts[position.get(value, position.get(semconv.OTHER_CATEGORY, len(labels)))] += vp.rows
        mix_ref.append(np.array([float(ref_values[v].rows) for v in labels] + [0.0]))
        mix_cur.append(counts)

    if drift_cells:
        width = max(len(c[3]) for c in drift_cells)
        ref = np.zeros((len(drift_cells), width))
        cur = np.zeros((len(drift_cells), width))
        positions = np.full((len(drift_cells), width), np.nan)
        spread = np.ones(len(drift_cells))
        numeric = np.zeros(len(drift_cells), bool)
        for i, (_, _, r, c, p) in enumerate(drift_cells):
            ref[i, : len(r)], cur[i, : len(c)] = r, c
            if isinstance(p, NumericProfile):
                _, pos, spr = profile_arrays(p)
                numeric[i] = True
                positions[i, : len(c)] = np.asarray(pos, dtype=np.float64)
                spread[i] = float(spr)
        d = evaluate_batch(ref, cur, numeric=numeric, positions=positions, spread=spread,
                           family=np.zeros(len(drift_cells), np.int64),
                           policy=[book.policy_for(name, model=model) for _, name, *_ in drift_cells])
        for i, (row, name, r, _, _) in enumerate(drift_cells):
            detected = int(d.detected[i]) if r.sum() > 0 else NO_VERDICT
            row.outputs[name] = (detected, float(d.effect[i]) if detected != NO_VERDICT else math.nan,
                                 float(d.p_adjusted[i]), int(d.sample_count[i]))
    if quality:
        ratio, _, alarm, excess = segment_quality(
            np.array([q[1] for q in quality]), np.array([q[2] for q in quality]),
            np.array([q[0].rows for q in quality], dtype=np.float64), np.full(len(quality), float(n_features)),
            np.zeros(len(quality), np.int64), [book.policy_for("", model=model)] * len(quality))
        for i, (row, _, _) in enumerate(quality):
            row.quality_ratio = dict(zip(semconv.QUALITY_KINDS, ratio[i].tolist()))
            row.quality_alarm = int(alarm[i])
            row.quality_excess = float(excess[i])
    min_samples = book.policy_for("", model=model).min_samples
    for row in rows:
        if row.reason is None and (row.drift_detected == NO_VERDICT or row.quality_alarm == NO_VERDICT):
            row.reason = f"{row.rows:,} rows < min_samples {min_samples:,}" if row.rows < min_samples \
                else "too few output values"
    mix: dict[str, int] = {}
    if mix_ref:
        width = max(len(r) for r in mix_ref)
        ref = np.array([np.pad(r, (0, width - len(r))) for r in mix_ref])
        cur = np.array([np.pad(c, (0, width - len(c))) for c in mix_cur])
        d = evaluate_batch(ref, cur, numeric=np.zeros(len(ref), bool), positions=np.full(ref.shape, np.nan),
                           spread=np.ones(len(ref)), family=np.zeros(len(ref), np.int64),
                           policy=book.policy_for("", model=model))
        mix = dict(zip(current, (int(x) for x in d.detected)))
    rows.sort(key=_worst_first)
    return SegmentJudgement(rows, mix, {c: "no column in the data" for c in absent})


def _worst_first(r: SegmentRow) -> tuple[int, float, float]:
    score, excess = r.drift_score, r.quality_excess
    return (0 if r.flagged else 1 if r.reason is None else 2,
            -(score if math.isfinite(score) else -math.inf), -(excess if math.isfinite(excess) else -math.inf))


def _num(v: float) -> float | None:
    return v if math.isfinite(v) else None


def to_json(sj: SegmentJudgement) -> dict[str, Any]:
    return {
        "flagged": sj.flagged,
        "mix": {c: _verdict(d) for c, d in sj.mix.items()},
        "not_judged": [{"column": c, "reason": why} for c, why in sj.not_judged.items()],
        "values": [{
            "column": r.column, "value": r.value, "rows": r.rows,
            "drift": {"detected": _verdict(r.drift_detected), "score": _num(r.drift_score),
                      "outputs": {o: {"detected": _verdict(d), "score": _num(s), "p_adjusted": _num(p),
                                      "sample_count": n} for o, (d, s, p, n) in r.outputs.items()}},
            "quality": {"alarm": _verdict(r.quality_alarm), "excess": _num(r.quality_excess),
                        **{f"{k}_ratio": _num(v) for k, v in r.quality_ratio.items()}},
            "no_verdict": r.reason,
        } for r in sj.rows],
    }


def _verdict(v: int) -> bool | None:
    return None if v == NO_VERDICT else bool(v)


def _worst_ratio(r: SegmentRow) -> str:
    if not r.quality_ratio:
        return "-"
    ratios = {k: v for k, v in r.quality_ratio.items() if math.isfinite(v)}
    if not ratios:
        return "-"
    kind = max(ratios, key=lambda k: ratios[k])
    return f"{kind} {100 * ratios[kind]:.1f}%"


def _cell(verdict: int, alarm_text: str) -> str:
    if verdict == NO_VERDICT:
        return "[yellow]no verdict[/]"
    return f"[bold red]{alarm_text}[/]" if verdict == 1 else "[green]ok[/]"


def print_segments(out: Any, sj: SegmentJudgement) -> None:
    """The compact segments table (worst first), the mix verdicts and the columns not judged."""
    from rich.markup import escape
    from rich.table import Table

    if sj.rows:
        table = Table(title="segments (worst first)")
        reasons = any(r.reason for r in sj.rows)
        for header, justify in (("segment", "left"), ("value", "left"), ("rows", "right"), ("drift score", "right"),
                                ("drift", "left"), ("worst quality ratio", "right"), ("quality", "left"),
                                *((("no verdict: why", "left"),) if reasons else ())):
            table.add_column(header, justify=justify)
        for r in sj.rows:
            score = r.drift_score
            table.add_row(escape(r.column), escape(r.value), f"{r.rows:,}", f"{score:.3f}" if math.isfinite(score)
                          else "-", _cell(r.drift_detected, "DRIFT"), _worst_ratio(r),
                          _cell(r.quality_alarm, "ALARM"), *((escape(r.reason or ""),) if reasons else ()))
        out.print(table)
    for column, d in sj.mix.items():
        out.print(f"segment mix: {escape(column)} {_cell(d, 'DRIFT')}")
    for column, why in sj.not_judged.items():
        out.print(f"not judged: segment {escape(column)} - {escape(why)}")
