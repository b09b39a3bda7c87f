"""The demo's terminal views: a live rich dashboard, or plain lines for CI logs (``--no-live``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Protocol, TextIO

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

from otel_ml import semconv

from .status import DemoEvent, DemoResult, FeatureStatus, PerformanceStatus, SegmentStatus, outlier_detail
from .traffic import Scenario

HIGHLIGHT_SECONDS = 4.0


class DemoView(Protocol):
    """What :func:`otel_ml_demo.runner.run_demo` tells its view, in order: info*, start, update*, stop, finish."""

    def info(self, message: str) -> None: ...
    def start(self, scenario: Scenario, source: str = ...) -> None: ...
    def update(self, t: float, rows_sent: int, statuses: Sequence[FeatureStatus], new_events: Sequence[DemoEvent],
               changed_at: dict[tuple[str, str], float], performance: Sequence[PerformanceStatus] = (),
               multivariate: FeatureStatus | None = None, segments: Sequence[SegmentStatus] = ()) -> None: ...
    def stop(self) -> None: ...
    def finish(self, result: DemoResult, statuses: Sequence[FeatureStatus]) -> None: ...


def _fmt(v: float | None, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def _fmt_p(v: float | None, compact: bool) -> str:
    if v is None:
        return "–"
    if not compact:
        return format(v, ".2g")
    return format(v, ".2f") if v >= 0.01 else format(v, ".0e")


def _verdict(flag: bool | None, on: str, off: str = "ok") -> Text:
    if flag is None:
        return Text("…", style="dim")
    return Text(on, style="bold white on red") if flag else Text(off, style="green")


def status_table(
    statuses: Sequence[FeatureStatus],
    *,
    now: float | None = None,
    changed_at: dict[tuple[str, str], float] | None = None,
    title: str | None = None,
    compact: bool = False,
) -> Table:
    """Feature | PSI | Wasserstein | p-value | drift | missing | quality | rows: one row per feature.

    ``compact`` fits an 80x24 terminal: short headers, fewer digits, no vertical rules.
    """
    if compact:
        table = Table(title=title, title_justify="left", expand=False, box=box.SIMPLE_HEAD, pad_edge=False,
                      show_edge=False, title_style="bold")
        headers = ("feature", "PSI", "W1/σ", "p", "drift", "miss", "qual", "rows")
        formats = (".2f", ".2f")
    else:
        table = Table(title=title, title_justify="left", expand=False)
        headers = ("feature", "PSI", "Wasserstein", "p-value", "drift", "missing", "quality", "rows in window")
        formats = (".3f", ".3g")
    for header, justify in zip(headers, ("left", "right", "right", "right", "center", "right", "center", "right")):
        table.add_column(header, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    outputs_started = False
    for s in statuses:
        is_output = s.kind == semconv.DRIFT_KIND_PREDICTION
        if is_output and not outputs_started:
            table.add_section()
            outputs_started = True
        fresh = (
            now is not None
            and changed_at is not None
            and now - changed_at.get((s.kind, s.name), float("-inf")) < HIGHLIGHT_SECONDS
        )
        label = s.name if compact else ("output " if is_output else "") + s.name
        name = Text(label, style="bold yellow" if fresh else ("italic" if is_output else ""))
        if fresh:
            name.append(" ◀", style="bold yellow")
        psi_style = "red" if s.drift else ""
        miss_style = "red" if s.alarm else ""
        table.add_row(
            name,
            Text(_fmt(s.psi, formats[0]), style=psi_style),
            _fmt(s.wasserstein, formats[1]),
            _fmt_p(s.p_value, compact),
            _verdict(s.drift, "DRIFT"),
            Text(_fmt(s.missing_ratio, ".0%"), style=miss_style),
            Text("–") if is_output and s.alarm is None else _verdict(s.alarm, "ALARM"),
            _fmt(s.samples, ".0f"),
        )
    return table


def performance_text(performance: Sequence[PerformanceStatus]) -> Text:
    """One line per shown metric: realized value, interval, reference, verdict, joined outcomes."""
    if not performance:
        return Text("no joined outcomes yet", style="dim")
    text = Text()
    for i, p in enumerate(performance):
        if i:
            text.append("\n")
        text.append(p.detail() + "  ")
        verdict = _verdict(p.degraded, "DEGRADED")
        if p.degraded is None:
            verdict = Text("no verdict yet", style="dim")
        text.append_text(verdict)
        if p.samples is not None:
            text.append(f"  ({p.samples:,.0f} joined outcomes)", style="dim")
    return text


def multivariate_text(s: FeatureStatus | None, *, compact: bool = False) -> Text:
    """Status lines from the multivariate stream's gauges: its drift verdict (how the features move
    together) and the outlier share with the outlier alarm (one line when ``compact``)."""
    if s is None:
        return Text("no multivariate stream (the reference has no \"multivariate\" section)" if not compact
                    else "no multivariate stream", style="dim")
    text = Text("multivariate " if compact else "multivariate (PCA reconstruction error)  ")
    text.append(f"PSI {_fmt(s.psi, '.2f')}  " + ("" if compact else f"W1/σ {_fmt(s.wasserstein, '.2f')}  ")
                + f"p {_fmt_p(s.p_value, True)}  ")
    text.append_text(_verdict(s.drift, "DRIFT"))
    # one line on a small terminal
    text.append("   outliers " if compact else "\noutliers (share beyond the reference's threshold)  ")
    text.append(_fmt(s.out_of_range_ratio, ".1%") + "  ")
    text.append_text(_verdict(s.alarm, "ALARM"))
    detail = outlier_detail(s)
    if s.alarm and not detail.startswith("outliers"):
        text.append(f"  ({detail})" if compact else f"  ({detail}: rows with a missing value are not scored)",
                    style="dim")
    return text


_SEGMENT_VERDICTS = {"performance": "UNDERPERFORMS", "drift": "DRIFT", "quality": "ALARM"}


def segments_text(segments: Sequence[SegmentStatus], *, compact: bool = False) -> Text:
    """"Worst segments now": per signal, the ranked segments worst first, with the effect, its interval and
    the verdict (``compact``: the worst by realized performance only, one line)."""
    shown = [s for s in segments if s.signal == "performance"][:1] if compact else list(segments)
    if not shown:
        return Text("no segment judged yet" if not compact else "worst segment: none judged yet", style="dim")
    text = Text()
    for i, s in enumerate(shown):
        if i:
            text.append("\n")
        if compact:  # one line of 80 columns
            text.append(f"worst: {s.segment}  ", style="bold" if s.flagged else "")
            gap = "" if s.gap is None else f"  gap {s.gap:+.2f}"
            text.append(f"{s.measure} {_fmt(s.value, '.2f')} [{_fmt(s.lower, '.2f')}, {_fmt(s.upper, '.2f')}]{gap}  ")
            text.append_text(_verdict(s.flagged, _SEGMENT_VERDICTS[s.signal]))
            continue
        text.append(f"{s.signal:<11} #{s.rank} {s.segment}  ", style="bold" if s.flagged else "")
        text.append(s.detail() + "  ")
        text.append_text(_verdict(s.flagged, _SEGMENT_VERDICTS[s.signal]))
        if s.samples is not None and not compact:
            text.append(f"  ({s.samples:,.0f} joined outcomes)", style="dim")
    return text


def summary_text(result: DemoResult) -> Text:
    text = Text()
    for line in result.summary_lines():
        style = "red" if line.startswith("MISSED") else ("dim" if "injected:" in line else "")
        if line.startswith(("MISSED", "EARLY", "OVERALL")):
            style = "red"
        elif any(w in line for w in (" detected on ", " alarm on ", "performance degraded", "outlier alarm (",
                                     "multivariate drift detected", " underperforms:")):
            style = "bold"
        elif line.startswith("also flagged"):
            style = "yellow"
        text.append(line + "\n", style=style)
    caught = _caught(result) + (" were all" if result.concept_at is not None or result.outlier_at is not None
                                or result.segment_at is not None else " were both")
    verdict = (
        f"✔ the injected {caught} detected"
        if result.ok
        else "✘ the demo did not detect everything it injected"
    )
    text.append(verdict, style="bold green" if result.ok else "bold red")
    return text


def _caught(result: DemoResult) -> str:
    """``outlier burst, drift, segment degradation, data-quality incident and concept drift``: what the run
    injected."""
    parts = ["outlier burst"] if result.outlier_at is not None else []
    parts += ["drift"] + (["segment degradation"] if result.segment_at is not None else [])
    parts += ["data-quality incident"] + (["concept drift"] if result.concept_at is not None else [])
    return ", ".join(parts[:-1]) + " and " + parts[-1]


class LiveView:
    """A live terminal dashboard: progress bar, status table, timeline of injections and alerts."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self._progress = Progress(
            TextColumn("[bold]t={task.completed:>4.0f}s[/] / {task.total:.0f}s"),
            BarColumn(bar_width=40),
            TextColumn("{task.fields[rows]:>7,} rows  {task.description}"),
            console=self.console,
        )
        self._task = self._progress.add_task("starting", total=1, rows=0)
        self._live: Live | None = None
        self._lines: list[Text] = []  # injections (dim) and alerts, in order
        self._injected: set[float] = set()
        self._table: Table = status_table([])
        self._scenario: Scenario | None = None
        self._source = "processor"
        self._performance = performance_text(())
        self._multivariate = multivariate_text(None)
        self._segments = segments_text(())

    def info(self, message: str) -> None:
        self.console.print(f"[dim]•[/] {message}")

    def start(self, scenario: Scenario, source: str = "processor") -> None:
        self._scenario = scenario
        self._source = source
        self._progress.update(self._task, total=scenario.duration, description=scenario.phase(0))
        self._live = Live(self._render(), console=self.console, refresh_per_second=8, transient=False)
        self._live.start()

    @property
    def compact(self) -> bool:
        """A small terminal (80x24 and the like): no panels, short table, the last few events only."""
        return self.console.width < 110 or self.console.height < 36

    def _title(self) -> str:
        about = f" ({self._scenario.window:g}s window, from {self._source})" if self._scenario else ""
        return f"drift and data quality per feature{about}"

    def _render(self) -> Group:
        if self.compact:
            recent = Text("\n").join(self._lines[-2:]) if self._lines else Text("no alarms yet", style="dim")
            return Group(self._progress, self._table, self._multivariate, self._performance, self._segments, recent)
        recent = Text("\n").join(self._lines[-8:]) if self._lines else Text("no alarms yet", style="dim")
        return Group(
            self._progress,
            Text(""),
            Panel(self._table, title=self._title(), title_align="left", expand=False),
            Panel(self._multivariate, title="multivariate drift and outliers (no labels needed)",
                  title_align="left", expand=False),
            Panel(self._performance, title="realized performance (outcomes joined to predictions)",
                  title_align="left", expand=False),
            Panel(self._segments, title="worst segments now (rank 1 = worst; effect [95% interval])",
                  title_align="left", expand=False),
            Panel(recent, title="timeline", title_align="left", expand=False),
        )

    def update(
        self,
        t: float,
        rows_sent: int,
        statuses: Sequence[FeatureStatus],
        new_events: Sequence[DemoEvent],
        changed_at: dict[tuple[str, str], float],
        performance: Sequence[PerformanceStatus] = (),
        multivariate: FeatureStatus | None = None,
        segments: Sequence[SegmentStatus] = (),
    ) -> None:
        assert self._scenario is not None
        s = self._scenario
        self._performance = performance_text(performance)
        self._multivariate = multivariate_text(multivariate, compact=self.compact)
        self._segments = segments_text(segments, compact=self.compact)
        for at, what in ((s.outlier_at, f"outlier burst, {s.outlier_share:.0%} of rows implausible "
                                        "(every value within its training range)"),
                         (s.drift_at, f"{s.drift_feature!r} shifted by +{s.drift_shift:g}σ"),
                         (s.segment_at, f"segment degradation: {s.segment_what()}"),
                         (s.incident_at, f"{s.incident_feature!r} missing in {s.incident_missing:.0%} of rows"),
                         (s.concept_at, f"concept drift, {s.concept_what()}")):
            if t >= at and at not in self._injected:
                self._injected.add(at)
                self._lines.append(Text(f"t={at:.0f}s injected: {what}", style="dim"))
        for e in new_events:
            style = "bold red" if e.raised else "green"
            self._lines.append(Text(e.line(), style=style))
        self._progress.update(
            self._task,
            completed=min(t, self._scenario.duration),
            rows=rows_sent,
            description=self._scenario.phase(t),
        )
        compact = self.compact
        self._table = status_table(statuses, now=t, changed_at=changed_at, compact=compact,
                                   title=self._title() if compact else None)
        if self._live is not None:
            self._live.update(self._render())

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def finish(self, result: DemoResult, statuses: Sequence[FeatureStatus]) -> None:
        self.stop()
        self.console.print(Panel(summary_text(result), title="summary", title_align="left", expand=False))


class PlainView:
    """Plain lines: setup, a progress line every few seconds, every event, then table and summary."""

    def __init__(self, stream: TextIO | None = None, progress_every: float = 5.0) -> None:
        self._stream = stream or sys.stdout
        self.console = Console(file=self._stream, force_terminal=False, no_color=True, width=120)
        self._every = progress_every
        self._next_progress = 0.0
        self._scenario: Scenario | None = None
        self._phase = ""

    def _print(self, line: str) -> None:
        print(line, file=self._stream, flush=True)

    def info(self, message: str) -> None:
        self._print(f"- {message}")

    def start(self, scenario: Scenario, source: str = "processor") -> None:
        self._scenario = scenario

    def update(
        self,
        t: float,
        rows_sent: int,
        statuses: Sequence[FeatureStatus],
        new_events: Sequence[DemoEvent],
        changed_at: dict[tuple[str, str], float],
        performance: Sequence[PerformanceStatus] = (),
        multivariate: FeatureStatus | None = None,
        segments: Sequence[SegmentStatus] = (),
    ) -> None:
        assert self._scenario is not None
        phase = self._scenario.phase(t)
        if t >= self._next_progress or phase != self._phase:
            self._print(f"[t={t:4.0f}s/{self._scenario.duration:.0f}s] {rows_sent:>7} rows sent; {phase}")
            self._next_progress = t + self._every
            self._phase = phase
        for e in new_events:
            self._print(f"  ALERT {e.line()}" if e.raised else f"  {e.line()}")

    def stop(self) -> None:
        pass

    def finish(self, result: DemoResult, statuses: Sequence[FeatureStatus]) -> None:
        self.console.print(status_table(statuses, title="final status"))
        self._print("multivariate drift and outliers:")
        self.console.print(multivariate_text(result.multivariate))
        self._print("realized performance:")
        self.console.print(performance_text(result.performance))
        self._print("worst segments (rank 1 = worst; effect [95% interval]):")
        self.console.print(segments_text(result.segments))
        self._print("summary:")
        for line in result.summary_lines():
            self._print(f"  {line}")
        caught = _caught(result)
        self._print(f"OK: {caught} detected" if result.ok else "FAILED: not everything was detected")
