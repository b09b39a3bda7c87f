"""What the demo's ops view knows: per-feature drift and quality status, the multivariate stream's
drift and outlier status, the model's realized performance and the worst segments, built from the
processor's gauges, the events (status changes) seen along the way, and the run's structured result."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace

from otel_ml import semconv

from .receiver import GaugePoint


@dataclass(frozen=True)
class FeatureStatus:
    """The latest evaluation of one feature (or model output) as the processor exported it."""

    name: str
    kind: str = semconv.DRIFT_KIND_FEATURE
    psi: float | None = None
    wasserstein: float | None = None
    p_value: float | None = None
    drift: bool | None = None  # None: no verdict yet (too few rows in the window)
    samples: float | None = None
    missing_ratio: float | None = None
    invalid_ratio: float | None = None
    out_of_range_ratio: float | None = None
    unseen_ratio: float | None = None
    alarm: bool | None = None
    updated_at: float | None = None

    def worst_quality(self) -> tuple[str, str] | None:
        """(words, field) of the highest quality ratio, e.g. ``("missing", "missing_ratio")``."""
        known = [(getattr(self, f), words, f) for words, f in _QUALITY_FIELDS if getattr(self, f) is not None]
        if not known:
            return None
        _, words, f = max(known)
        return words, f

    def quality_detail(self) -> str:
        """The worst quality ratio, in words: ``missing 34%``."""
        worst = self.worst_quality()
        if worst is None:
            return "no quality data"
        return f"{worst[0]} {getattr(self, worst[1]):.0%}"


_QUALITY_FIELDS = (
    ("missing", "missing_ratio"),
    ("invalid", "invalid_ratio"),
    ("out of range", "out_of_range_ratio"),
    ("unseen", "unseen_ratio"),
)


@dataclass(frozen=True)
class PerformanceStatus:
    """The latest realized value of one performance metric (joined outcomes in the window) and its verdict."""

    metric: str
    value: float | None = None
    lower: float | None = None
    upper: float | None = None
    reference: float | None = None
    degraded: bool | None = None  # None: no verdict (too few joined outcomes in the window)
    samples: float | None = None

    def detail(self) -> str:
        """``accuracy 0.71 [0.69, 0.73] vs 0.94 on the reference``."""
        if self.value is None:
            return f"{self.metric} n/a"
        text = f"{self.metric} {self.value:.2f}"
        if self.lower is not None and self.upper is not None:
            text += f" [{self.lower:.2f}, {self.upper:.2f}]"
        if self.reference is not None:
            text += f" vs {self.reference:.2f} on the reference"
        return text


@dataclass(frozen=True)
class SegmentStatus:
    """The latest verdict on one segment value (``region=islands``) for one signal: ``performance`` (its
    joined outcomes against the rest of the window), ``drift`` (one output against the value's reference
    profile) or ``quality`` (its worst bad-value kind against the value's reference ratio)."""

    signal: str  # "performance", "drift" or "quality"
    segment: str  # "<column>=<value>"
    measure: str = ""  # the metric ("accuracy"), the output ("proba:benign") or the quality kind ("missing")
    value: float | None = None  # the slice's metric, the drift score or the bad-value ratio
    lower: float | None = None  # 95 % interval of value
    upper: float | None = None
    gap: float | None = None  # performance: slice − rest of the window (the effect)
    flagged: bool | None = None  # None: no verdict (too few rows or outcomes, or no reference profile)
    rank: int | None = None  # 1 = worst of its signal now; None: not judged
    samples: float | None = None  # joined outcomes (performance)

    def detail(self) -> str:
        """``accuracy 0.77 [0.73, 0.80], 0.16 below the rest``; ``output 'proba:benign' drift 0.04 [0.02,
        0.07]``; ``missing 3.5% [3.3%, 3.8%]``."""
        pct = self.signal == "quality"
        spec = ".1%" if pct else ".2f"
        shown = "n/a" if self.value is None else format(self.value, spec)
        if self.lower is not None and self.upper is not None:
            shown += f" [{self.lower:{spec}}, {self.upper:{spec}}]"
        if self.signal == "performance":
            text = f"{self.measure} {shown}"
            if self.gap is not None:
                text += f", {abs(self.gap):.2f} {'below' if self.gap < 0 else 'above'} the rest"
            return text
        if self.signal == "drift":
            return f"output {self.measure!r} drift {shown}"
        return f"{self.measure or 'bad values'} {shown}"


#: The signals of the segment gauges, in the order the views show them.
SEGMENT_SIGNALS = ("performance", "drift", "quality")


#: The multivariate stream (each row's PCA reconstruction error): its drift verdict is the multivariate
#: verdict, its out-of-range ratio the outlier share and its quality alarm the outlier alarm.
MULTIVARIATE = semconv.RECONSTRUCTION_ERROR_FEATURE


def outlier_detail(s: FeatureStatus) -> str:
    """``outliers 1.2%`` (the multivariate stream's out-of-range ratio), or its worst quality ratio when
    that is what raised the alarm (``missing 35%``: rows with a missing value are not scored)."""
    worst = s.worst_quality()
    if worst is not None and worst[1] != "out_of_range_ratio" and s.alarm:
        return s.quality_detail()
    return "outliers n/a" if s.out_of_range_ratio is None else f"outliers {s.out_of_range_ratio:.1%}"


#: The performance metrics the demo shows (the processor exports more: see docs/semantic-conventions.md).
SHOWN_METRICS = ("accuracy", "roc_auc")


@dataclass(frozen=True)
class DemoEvent:
    """A change of verdict an ops team would be paged (or un-paged) for."""

    t: float
    feature: str
    kind: str  # "drift", "drift cleared", "quality alarm", "quality cleared", "degraded", "recovered",
    # "segment degraded", "segment recovered", "segment drift", "segment drift cleared" (feature: the segment)
    detail: str
    output: bool = False  # True for a model output (prediction drift), False for an input feature
    measure: str | None = None  # the FeatureStatus field the detail quotes ("psi", "missing_ratio", ...)
    rank: int | None = None  # segment events: the segment's rank on that signal when it changed

    @property
    def raised(self) -> bool:
        """An alarm raised (drift, data quality, performance), not one cleared."""
        return self.kind in ("drift", "quality alarm", "degraded", "segment degraded", "segment drift")

    def line(self) -> str:
        if self.kind.startswith("segment"):
            rank = f", rank {self.rank}" if self.rank else ""
            what = {"segment degraded": f"segment {self.feature} underperforms:",
                    "segment recovered": f"segment {self.feature} recovered:",
                    "segment drift": f"output drift in segment {self.feature}:",
                    "segment drift cleared": f"output drift cleared in segment {self.feature}:"}[self.kind]
            return f"t={self.t:.0f}s {what} {self.detail}{rank}"
        if self.feature == MULTIVARIATE:
            what = {"drift": "multivariate drift detected", "drift cleared": "multivariate drift cleared",
                    "quality alarm": "outlier alarm", "quality cleared": "outlier alarm cleared"}[self.kind]
            return f"t={self.t:.0f}s {what} ({self.detail})"
        what = {
            "drift": "drift detected on",
            "drift cleared": "drift cleared on",
            "quality alarm": "data-quality alarm on",
            "quality cleared": "data-quality alarm cleared on",
            "degraded": "performance degraded:",
            "recovered": "performance recovered:",
        }[self.kind]
        if self.kind in ("degraded", "recovered"):
            return f"t={self.t:.0f}s {what} {self.detail}"
        prefix = "output " if self.output else ""
        return f"t={self.t:.0f}s {what} {prefix}{self.feature!r} ({self.detail})"


@dataclass(frozen=True)
class DemoResult:
    """What one demo run injected and what the processor detected; ``ok`` decides the exit code."""

    model: str
    drift_feature: str
    drift_at: float
    incident_feature: str
    incident_at: float
    duration: float
    rows_sent: int
    elapsed: float
    events: tuple[DemoEvent, ...]
    final: tuple[FeatureStatus, ...]
    evaluations_received: int = 0
    notes: tuple[str, ...] = ()
    drift_shift: float | None = None  # in reference standard deviations
    incident_missing: float | None = None  # share of rows
    peaks: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # feature -> field -> max seen
    concept_at: float | None = None  # when the true class started to change (None: no concept drift injected)
    concept_what: str = ""
    performance: tuple[PerformanceStatus, ...] = ()
    outlier_at: float | None = None  # when the outlier burst began (None: no burst injected)
    outlier_what: str = ""
    multivariate: FeatureStatus | None = None  # the multivariate stream's last status
    segment_at: float | None = None  # when the segment's degradation began (None: none injected)
    segment: str = ""  # the degraded segment, "region=islands"
    segment_what: str = ""
    segments: tuple[SegmentStatus, ...] = ()  # the worst segments at the end

    def first(self, kind: str, feature: str, *, after: float = float("-inf")) -> DemoEvent | None:
        for e in self.events:
            if e.kind == kind and e.feature == feature and e.t >= after:
                return e
        return None

    @property
    def drift_detected(self) -> DemoEvent | None:
        """When the processor first flagged the shifted feature after the shift began."""
        return self.first("drift", self.drift_feature, after=self.drift_at)

    @property
    def incident_detected(self) -> DemoEvent | None:
        """When the processor first raised a quality alarm on the incident's feature after it began."""
        return self.first("quality alarm", self.incident_feature, after=self.incident_at)

    @property
    def concept_detected(self) -> DemoEvent | None:
        """When the processor first judged the model's performance degraded after the concept drift began."""
        if self.concept_at is None:
            return None
        return next((e for e in self.events if e.kind == "degraded" and e.t >= self.concept_at), None)

    @property
    def outlier_detected(self) -> DemoEvent | None:
        """The first outlier alarm after the burst began: the multivariate stream's quality alarm raised
        by its out-of-range (outlier) share, not by its missing rows."""
        if self.outlier_at is None:
            return None
        return next((e for e in self.events if e.kind == "quality alarm" and e.feature == MULTIVARIATE
                     and e.measure == "out_of_range_ratio" and e.t >= self.outlier_at), None)

    @property
    def early_outlier_alarm(self) -> DemoEvent | None:
        """An alarm on the multivariate stream's quality before the burst (normal traffic must stay quiet)."""
        limit = self.outlier_at if self.outlier_at is not None else float("inf")
        return next((e for e in self.events if e.kind == "quality alarm" and e.feature == MULTIVARIATE
                     and e.t < limit), None)

    @property
    def early_degradation(self) -> DemoEvent | None:
        """A degradation verdict before the concept drift (the input drift alone can cost a point or two)."""
        limit = self.concept_at if self.concept_at is not None else float("inf")
        return next((e for e in self.events if e.kind == "degraded" and e.t < limit), None)

    @property
    def segment_detected(self) -> DemoEvent | None:
        """The first verdict that the degraded segment underperforms the rest, ranked first, after it began."""
        if self.segment_at is None:
            return None
        return next((e for e in self.events if e.kind == "segment degraded" and e.feature == self.segment
                     and e.rank == 1 and e.t >= self.segment_at), None)

    @property
    def overall_alarm_during_segment(self) -> DemoEvent | None:
        """An overall degradation verdict while only the segment was degraded (from its start to the concept
        drift): the segment is 10 % of the traffic, and the overall figures must not page for it."""
        if self.segment_at is None:
            return None
        end = self.concept_at if self.concept_at is not None else float("inf")
        return next((e for e in self.events if e.kind == "degraded" and self.segment_at <= e.t < end), None)

    @property
    def other_segments_flagged(self) -> tuple[str, ...]:
        """Segments judged underperforming although not degraded, before the concept drift (which hits every
        segment, not quite evenly)."""
        end = self.concept_at if self.concept_at is not None else float("inf")
        return tuple(dict.fromkeys(e.feature for e in self.events if e.kind == "segment degraded"
                                   and e.feature != self.segment and e.t < end))

    @property
    def flagged_features(self) -> tuple[str, ...]:
        """Input features that were flagged as drifting at any time."""
        return tuple(dict.fromkeys(e.feature for e in self.events
                                   if e.kind == "drift" and not e.output and e.feature != MULTIVARIATE))

    @property
    def false_alarms(self) -> tuple[str, ...]:
        """Input features flagged for drift although the traffic did not shift them."""
        return tuple(f for f in self.flagged_features if f != self.drift_feature)

    @property
    def ok(self) -> bool:
        inputs = self.drift_detected is not None and self.incident_detected is not None
        outliers = self.outlier_at is None or (self.outlier_detected is not None and self.early_outlier_alarm is None)
        segment = self.segment_at is None or (self.segment_detected is not None
                                              and self.overall_alarm_during_segment is None)
        return inputs and outliers and segment and (self.concept_at is None or self.concept_detected is not None)

    def summary_lines(self) -> list[str]:
        shift = f" by +{self.drift_shift:g}σ" if self.drift_shift is not None else ""
        share = f" in {self.incident_missing:.0%} of rows" if self.incident_missing is not None else ""
        timed = [
            (self.drift_at, 0, f"t={self.drift_at:.0f}s injected: {self.drift_feature!r} shifted{shift}"),
            (self.incident_at, 0, f"t={self.incident_at:.0f}s injected: {self.incident_feature!r} missing{share}"),
        ]
        if self.outlier_at is not None:
            timed.append((self.outlier_at, 0, f"t={self.outlier_at:.0f}s injected: outlier burst, {self.outlier_what}"))
        if self.concept_at is not None:
            timed.append((self.concept_at, 0, f"t={self.concept_at:.0f}s injected: concept drift, {self.concept_what}"))
        if self.segment_at is not None:
            timed.append((self.segment_at, 0, f"t={self.segment_at:.0f}s injected: {self.segment_what}"))
        drift, incident, concept = self.drift_detected, self.incident_detected, self.concept_detected
        outlier, segment = self.outlier_detected, self.segment_detected
        for e in self.events:
            line = self._with_peak(e)
            if e is drift:
                line += f", {e.t - self.drift_at:.0f}s after the shift"
            elif e is incident:
                line += f", {e.t - self.incident_at:.0f}s after the incident began"
            elif e is concept and self.concept_at is not None:
                line += f", {e.t - self.concept_at:.0f}s after the concept drift began"
            elif e is outlier and self.outlier_at is not None:
                line += f", {e.t - self.outlier_at:.0f}s after the burst began"
            elif e is segment and self.segment_at is not None:
                line += f", {e.t - self.segment_at:.0f}s after its degradation began"
            timed.append((e.t, 1, line))
        lines = [line for _, _, line in sorted(timed, key=lambda x: (x[0], x[1]))]
        if drift is None:
            lines.append(f"MISSED: no drift detected on {self.drift_feature!r}")
        if incident is None:
            lines.append(f"MISSED: no data-quality alarm on {self.incident_feature!r}")
        if self.concept_at is not None and concept is None:
            lines.append("MISSED: no performance degradation after the concept drift")
        if self.outlier_at is not None and outlier is None:
            lines.append("MISSED: no outlier alarm after the outlier burst began")
        if self.segment_at is not None:
            if segment is None:
                lines.append(f"MISSED: {self.segment} not judged underperforming and ranked first after its "
                             "degradation began")
            if (overall := self.overall_alarm_during_segment) is not None:
                lines.append(f"OVERALL: performance degraded at t={overall.t:.0f}s while only {self.segment} was "
                             "degraded: the segment signal was not needed")
            elif segment is not None:
                lines.append(f"the overall performance stayed within tolerance while only {self.segment} was "
                             "degraded")
            if flagged := self.other_segments_flagged:
                lines.append("also judged underperforming before the concept drift, though not degraded: "
                             + ", ".join(flagged))
        if (early := self.early_outlier_alarm) is not None:
            lines.append(f"EARLY: outlier alarm at t={early.t:.0f}s, before the outlier burst")
        others = [s.name for s in self.final if s.kind == semconv.DRIFT_KIND_FEATURE and s.name != self.drift_feature]
        if self.false_alarms:
            lines.append(
                f"also flagged, though not shifted ({len(self.false_alarms)} of {len(others)}): "
                + ", ".join(repr(f) for f in self.false_alarms)
            )
        elif others:
            lines.append(f"no drift flagged on the {len(others)} features that were not shifted")
        lines += [f"note: {n}" for n in self.notes]
        return lines

    def _with_peak(self, e: DemoEvent) -> str:
        """The event's line, plus the peak the value reached later when that says more."""
        line = e.line()
        peak = self.peaks.get(e.feature, {}).get(e.measure or "")
        if peak is None or not e.raised:
            return line
        shown = f"PSI {peak:.2f}" if e.measure == "psi" else f"{peak:.1%}" if peak < 0.1 else f"{peak:.0%}"
        return line[:-1] + f"; peak {shown})"

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "model": self.model,
            "drift_feature": self.drift_feature,
            "drift_at": self.drift_at,
            "drift_detected_at": self.drift_detected.t if self.drift_detected else None,
            "incident_feature": self.incident_feature,
            "incident_at": self.incident_at,
            "incident_detected_at": self.incident_detected.t if self.incident_detected else None,
            "false_alarms": list(self.false_alarms),
            "concept_at": self.concept_at,
            "concept_detected_at": self.concept_detected.t if self.concept_detected else None,
            "outlier_at": self.outlier_at,
            "outlier_detected_at": self.outlier_detected.t if self.outlier_detected else None,
            "early_outlier_alarm_at": self.early_outlier_alarm.t if self.early_outlier_alarm else None,
            "multivariate": asdict(self.multivariate) if self.multivariate else None,
            "segment": self.segment or None,
            "segment_at": self.segment_at,
            "segment_detected_at": self.segment_detected.t if self.segment_detected else None,
            "overall_alarm_during_segment_at": (self.overall_alarm_during_segment.t
                                                if self.overall_alarm_during_segment else None),
            "other_segments_flagged": list(self.other_segments_flagged),
            "segments": [asdict(s) for s in self.segments],
            "performance": [asdict(p) for p in self.performance],
            "rows_sent": self.rows_sent,
            "elapsed": round(self.elapsed, 2),
            "events": [self._with_peak(e) for e in self.events],
            "peaks": {k: dict(v) for k, v in self.peaks.items()},
            "final": [asdict(st) for st in self.final],
            "notes": list(self.notes),
        }


@dataclass
class StatusTracker:
    """Folds the receiver's latest gauges into :class:`FeatureStatus` rows and notices changes."""

    model: str
    feature_order: Sequence[str] = ()
    window: str | None = None
    statuses: dict[tuple[str, str], FeatureStatus] = field(default_factory=dict)
    events: list[DemoEvent] = field(default_factory=list)
    changed_at: dict[tuple[str, str], float] = field(default_factory=dict)
    peaks: dict[str, dict[str, float]] = field(default_factory=dict)
    performance: dict[str, PerformanceStatus] = field(default_factory=dict)
    segments: dict[tuple[str, str, str], SegmentStatus] = field(default_factory=dict)
    segment_flags: dict[tuple[str, str], bool] = field(default_factory=dict)  # (signal, segment) -> flagged

    def update(self, points: Iterable[GaugePoint], t: float) -> list[DemoEvent]:
        """Fold in a snapshot of gauges observed at time ``t``; return the new events."""
        pts = [p for p in points if p.attributes.get(semconv.MODEL_NAME, self.model) == self.model]
        windows = sorted({p.window for p in pts if p.window})
        if self.window is None and windows:
            self.window = windows[0]
        built: dict[tuple[str, str], dict[str, object]] = {}
        perf: dict[str, dict[str, object]] = {}
        joined: float | None = None  # ml.performance.sample_count: one per window, for every metric
        segment_points: list[GaugePoint] = []
        for p in pts:
            if p.metric in _SEGMENT_FIELDS:
                if not self.window or p.window == self.window:
                    segment_points.append(p)
                continue
            if p.metric in _PERF_FIELDS:
                if self.window and p.window != self.window:
                    continue
                if p.metric == semconv.PERFORMANCE_SAMPLE_COUNT:
                    joined = p.value
                elif (metric := str(p.attributes.get(semconv.PERFORMANCE_METRIC, ""))) in SHOWN_METRICS:
                    _apply_performance(perf.setdefault(metric, {}), p)
                continue
            if not p.feature or (self.window and p.window and p.window != self.window):
                continue
            row = built.setdefault((p.kind, p.feature), {})
            _apply(row, p)
        new: list[DemoEvent] = []
        for key, values in built.items():
            kind, name = key
            old = self.statuses.get(key, FeatureStatus(name=name, kind=kind))
            cur = replace(old, **values)  # type: ignore[arg-type]
            if cur != old:
                cur = replace(cur, updated_at=t)
            new += self._transitions(old, cur, t)
            self.statuses[key] = cur
            peak = self.peaks.setdefault(name, {})
            for fname in _PEAK_FIELDS:
                v = getattr(cur, fname)
                if v is not None and v > peak.get(fname, float("-inf")):
                    peak[fname] = v
        # The holdout value alone (sent with or without outcomes) is no realized performance yet.
        perf = {m: v for m, v in perf.items() if m in self.performance or set(v) != {"reference"}}
        if joined is not None:
            for metric in {*perf, *self.performance}:
                perf.setdefault(metric, {})["samples"] = joined
        for metric, values in perf.items():
            old_p = self.performance.get(metric, PerformanceStatus(metric))
            cur_p = replace(old_p, **values)  # type: ignore[arg-type]
            if bool(cur_p.degraded) != bool(old_p.degraded) and cur_p.degraded is not None:
                new.append(DemoEvent(t, metric, "degraded" if cur_p.degraded else "recovered", cur_p.detail()))
            self.performance[metric] = cur_p
        new += self._update_segments(segment_points, t)
        self.events += new
        return new

    def _update_segments(self, points: Sequence[GaugePoint], t: float) -> list[DemoEvent]:
        """Fold in the segment gauges of the latest evaluation; events for performance and drift verdicts."""
        latest: dict[str, int] = {}  # per signal: the newest evaluation (a value no longer judged loses its rank)
        for p in points:
            sig = _SEGMENT_FIELDS[p.metric][0]
            latest[sig] = max(latest.get(sig, 0), p.time_unix_nano)
        built: dict[tuple[str, str, str], dict[str, object]] = {}
        ratios: dict[tuple[str, str], dict[str, dict[str, float]]] = {}  # quality: per kind, its ratio fields
        for p in points:
            sig, fname = _SEGMENT_FIELDS[p.metric]
            if p.time_unix_nano < latest[sig]:
                continue
            segment = f"{p.attributes.get(semconv.SEGMENT_NAME, '')}={p.attributes.get(semconv.SEGMENT_VALUE, '')}"
            if fname in ("value", "lower", "upper") and sig == "quality":
                kind = str(p.attributes.get(semconv.QUALITY_KIND, ""))
                ratios.setdefault((sig, segment), {}).setdefault(kind, {})[fname] = p.value
                continue
            measure = str(p.attributes.get(semconv.PERFORMANCE_METRIC if sig == "performance"
                                           else semconv.PREDICTION_NAME, "")) if sig != "quality" else ""
            row = built.setdefault((sig, segment, measure), {})
            if fname == "flagged":
                row[fname] = p.value >= 0.5 if p.value >= 0 else None
            elif fname == "rank":
                row[fname] = int(p.value)
            else:
                row[fname] = p.value
        for (sig, segment), kinds in ratios.items():
            kind, worst = max(kinds.items(), key=lambda kv: kv[1].get("value", float("-inf")))
            built.setdefault((sig, segment, ""), {}).update(worst, measure=kind)
        fresh = set(built)
        for key, values in built.items():
            sig, segment, measure = key
            old = self.segments.get(key, SegmentStatus(sig, segment, measure))
            # rank and intervals are exported for judged streams only: unset when not sent this time
            self.segments[key] = replace(old, **{"rank": None, "lower": None, "upper": None, **values})  # type: ignore[arg-type]
        for key in [k for k in self.segments if k[0] in latest and k not in fresh]:
            self.segments[key] = replace(self.segments[key], rank=None)
        return self._segment_transitions(t)

    def _segment_transitions(self, t: float) -> list[DemoEvent]:
        out = []
        flagged: dict[tuple[str, str], SegmentStatus] = {}  # (signal, segment) -> its worst measure now
        for (sig, segment, _), st in self.segments.items():
            if sig == "quality":
                continue
            cur = flagged.get((sig, segment))
            if cur is None or (bool(st.flagged), -(st.rank or 10**9)) > (bool(cur.flagged), -(cur.rank or 10**9)):
                flagged[(sig, segment)] = st
        for (sig, segment), st in flagged.items():
            was = self.segment_flags.get((sig, segment))
            if st.flagged is None or bool(st.flagged) == bool(was):
                continue
            self.segment_flags[(sig, segment)] = bool(st.flagged)
            on, off = ("segment degraded", "segment recovered") if sig == "performance" else \
                ("segment drift", "segment drift cleared")
            detail = st.detail() + (f" ({st.samples:,.0f} joined outcomes)" if st.samples is not None else "")
            out.append(DemoEvent(t, segment, on if st.flagged else off, detail, measure=st.measure, rank=st.rank))
        return out

    def worst_segments(self, per_signal: int = 3) -> list[SegmentStatus]:
        """The ranked segments now, worst first, at most ``per_signal`` of each signal (performance, drift,
        quality; drift: each segment's worst output only, ranked among segments)."""
        out: list[SegmentStatus] = []
        for sig in SEGMENT_SIGNALS:
            # A rank without a verdict is stale (Prometheus keeps a series' last point for minutes).
            ranked = sorted((s for s in self.segments.values() if s.signal == sig and s.rank and s.flagged is not None),
                            key=lambda s: s.rank or 0)
            seen: set[str] = set()
            for s in ranked:
                if s.segment not in seen and len(seen) < per_signal:
                    seen.add(s.segment)
                    # drift ranks count outputs (two per segment here): shown as the segment's place
                    out.append(replace(s, rank=len(seen)) if sig == "drift" else s)
        return out

    def performance_rows(self) -> list[PerformanceStatus]:
        """The shown metrics, in :data:`SHOWN_METRICS` order (those the processor has exported)."""
        return [self.performance[m] for m in SHOWN_METRICS if m in self.performance]

    def _transitions(self, old: FeatureStatus, cur: FeatureStatus, t: float) -> list[DemoEvent]:
        out = []
        key = (cur.kind, cur.name)
        is_output = cur.kind == semconv.DRIFT_KIND_PREDICTION
        if bool(cur.drift) != bool(old.drift) and cur.drift is not None:
            detail = f"PSI {cur.psi:.2f}" if cur.psi is not None else "score n/a"
            if cur.p_value is not None:
                detail += f", p={cur.p_value:.2g}"
            out.append(DemoEvent(t, cur.name, "drift" if cur.drift else "drift cleared", detail, is_output,
                                 "psi" if cur.psi is not None else None))
            self.changed_at[key] = t
        if bool(cur.alarm) != bool(old.alarm) and cur.alarm is not None:
            kind = "quality alarm" if cur.alarm else "quality cleared"
            worst = cur.worst_quality()
            detail = outlier_detail(cur) if cur.name == MULTIVARIATE else cur.quality_detail()
            out.append(DemoEvent(t, cur.name, kind, detail, is_output, worst[1] if worst else None))
            self.changed_at[key] = t
        return out

    @property
    def multivariate(self) -> FeatureStatus | None:
        """The multivariate stream's status (None until the processor exported it)."""
        return self.statuses.get((semconv.DRIFT_KIND_FEATURE, MULTIVARIATE))

    def rows(self) -> list[FeatureStatus]:
        """Status rows: input features in the model's column order, then the outputs (the multivariate
        stream is :attr:`multivariate`, not a row)."""
        order = {name: i for i, name in enumerate(self.feature_order)}
        rows = [s for s in self.statuses.values() if s.name != MULTIVARIATE]
        seen = {s.name for s in rows if s.kind == semconv.DRIFT_KIND_FEATURE}
        rows += [FeatureStatus(name=n) for n in self.feature_order if n not in seen and n != MULTIVARIATE]
        return sorted(
            rows,
            key=lambda s: (s.kind != semconv.DRIFT_KIND_FEATURE, order.get(s.name, len(order)), s.name),
        )


#: Segment gauge -> (signal, SegmentStatus field).
_SEGMENT_FIELDS = {
    semconv.SEGMENT_PERFORMANCE_VALUE: ("performance", "value"),
    semconv.SEGMENT_PERFORMANCE_LOWER: ("performance", "lower"),
    semconv.SEGMENT_PERFORMANCE_UPPER: ("performance", "upper"),
    semconv.SEGMENT_PERFORMANCE_GAP: ("performance", "gap"),
    semconv.SEGMENT_PERFORMANCE_DEGRADED: ("performance", "flagged"),
    semconv.SEGMENT_PERFORMANCE_RANK: ("performance", "rank"),
    semconv.SEGMENT_SAMPLE_COUNT: ("performance", "samples"),
    semconv.SEGMENT_DRIFT_SCORE: ("drift", "value"),
    semconv.SEGMENT_DRIFT_SCORE_LOWER: ("drift", "lower"),
    semconv.SEGMENT_DRIFT_SCORE_UPPER: ("drift", "upper"),
    semconv.SEGMENT_DRIFT_DETECTED: ("drift", "flagged"),
    semconv.SEGMENT_DRIFT_RANK: ("drift", "rank"),
    semconv.SEGMENT_QUALITY_RATIO: ("quality", "value"),
    semconv.SEGMENT_QUALITY_RATIO_LOWER: ("quality", "lower"),
    semconv.SEGMENT_QUALITY_RATIO_UPPER: ("quality", "upper"),
    semconv.SEGMENT_QUALITY_ALARM: ("quality", "flagged"),
    semconv.SEGMENT_QUALITY_RANK: ("quality", "rank"),
}

#: The segment gauges the demo reads.
SEGMENT_GAUGES = tuple(_SEGMENT_FIELDS)


_PEAK_FIELDS = ("psi", "wasserstein", "missing_ratio", "invalid_ratio", "out_of_range_ratio", "unseen_ratio")


_PERF_FIELDS = {
    semconv.PERFORMANCE_VALUE: "value",
    semconv.PERFORMANCE_LOWER: "lower",
    semconv.PERFORMANCE_UPPER: "upper",
    semconv.PERFORMANCE_REFERENCE: "reference",
    semconv.PERFORMANCE_DEGRADED: "degraded",
    semconv.PERFORMANCE_SAMPLE_COUNT: "samples",
}


def _apply_performance(row: dict[str, object], p: GaugePoint) -> None:
    name = _PERF_FIELDS[p.metric]
    if name == "degraded":
        # 1 degraded, 0 fine, NO_VERDICT (-1: too few joined outcomes) stays None
        row[name] = p.value >= 0.5 if p.value >= 0 else None
    else:
        row[name] = p.value


def _apply(row: dict[str, object], p: GaugePoint) -> None:
    m, v = p.metric, p.value
    if m == semconv.DRIFT_SCORE:
        if p.method == "psi":
            row["psi"] = v
        elif p.method == "wasserstein":
            row["wasserstein"] = v
    elif m == semconv.DRIFT_P_VALUE:
        # Prefer the KS p-value (numeric features); chi-square's for categorical ones.
        if p.method in ("ks", "") or "p_value" not in row:
            row["p_value"] = v
    elif m == semconv.DRIFT_DETECTED:
        row["drift"] = v >= 0.5
    elif m == semconv.DRIFT_SAMPLE_COUNT:
        row["samples"] = v
    elif m == semconv.QUALITY_MISSING_RATIO:
        row["missing_ratio"] = v
    elif m == semconv.QUALITY_INVALID_RATIO:
        row["invalid_ratio"] = v
    elif m == semconv.QUALITY_OUT_OF_RANGE_RATIO:
        row["out_of_range_ratio"] = v
    elif m == semconv.QUALITY_UNSEEN_RATIO:
        row["unseen_ratio"] = v
    elif m == semconv.QUALITY_ALARM:
        row["alarm"] = v >= 0.5
