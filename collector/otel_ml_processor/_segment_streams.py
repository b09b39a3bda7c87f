"""Segment streams: what the library's per-segment metrics feed, and what they cost in exported series.

The library emits, per segment column and value (``ml.segment.name``, ``ml.segment.value``), the rows
(``ml.segment.rows``), the outputs (``ml.segment.prediction.value`` / ``.class.count``) and the quality
counters summed over the features (``ml.segment.feature.*``). They become two kinds of streams of the
:class:`~._state.State` (same series, windows and checkpoint machinery as the overall streams):

* :data:`KIND_SEGMENT_PREDICTION` -- one per (model, version, output, column, value), with the output's
  buckets (and the unused quality cells every stream has);
* :data:`KIND_SEGMENT_QUALITY` -- one per (model, version, column, value): one cell of rows, then the four
  quality counters.

Their ``name`` packs ``(output, column, value)`` with :func:`pack_name` (the output is empty for the
quality stream); names or values holding the separator, or longer than ``MAX_NAME_LENGTH``, are refused.

The budget (``state.max_segment_series``) counts the Prometheus series the processor exports per model
for its segment gauges, over all windows ``W``:

* a segment prediction stream: ``3 W`` (``ml.segment.drift.detected``, ``.score``, ``.rank``);
* a segment quality stream: ``6 W`` (``ml.segment.quality.ratio`` x 4 kinds, ``.alarm``, ``.rank``);
* a segment column: ``W`` (``ml.segment.mix.detected``);
* a realized-performance slice of one window: ``7`` (``ml.segment.performance.value``, ``.lower``,
  ``.upper``, ``.gap``, ``.degraded``, ``.rank``, ``ml.segment.sample_count``).

Streams are admitted while they fit (memory stays bounded whatever segment values a sender invents); the
performance slices of each evaluation share what the streams leave.
"""

from __future__ import annotations

from otel_ml import semconv

KIND_SEGMENT_PREDICTION = "segment.prediction"
KIND_SEGMENT_QUALITY = "segment.quality"
SEGMENT_KINDS = frozenset({KIND_SEGMENT_PREDICTION, KIND_SEGMENT_QUALITY})

#: Default of ``state.max_segment_series``: exported segment series per model.
DEFAULT_MAX_SEGMENT_SERIES = 2000
#: Exported series per window of each thing the budget counts (module docstring).
SERIES_PER_PREDICTION_STREAM = 3
SERIES_PER_QUALITY_STREAM = 2 + len(semconv.QUALITY_KINDS)
SERIES_PER_COLUMN = 1
SERIES_PER_PERFORMANCE_SLICE = 7

#: The metric of each quality counter cell of a segment quality stream (cell 0 holds the rows).
QUALITY_CELL = {semconv.SEGMENT_ROWS: 0,
                **{semconv.SEGMENT_QUALITY_COUNTERS[k]: 1 + i for i, k in enumerate(semconv.QUALITY_KINDS)}}
OUTPUT_METRICS = frozenset({semconv.SEGMENT_PREDICTION_VALUE, semconv.SEGMENT_PREDICTION_CLASS_COUNT})
METRICS = frozenset(QUALITY_CELL) | OUTPUT_METRICS

_SEP = "\x1f"


def pack_name(output: str, column: str, value: str) -> str:
    """The stream name of ``(output, column, value)`` (``output`` empty for a quality stream)."""
    return f"{output}{_SEP}{column}{_SEP}{value}"


def unpack_name(name: str) -> tuple[str, str, str]:
    """Inverse of :func:`pack_name`; ``ValueError`` if ``name`` is not one."""
    output, column, value = name.split(_SEP)
    return output, column, value


def valid_part(text: str | None) -> bool:
    """Whether a segment column or value can be part of a stream name (non-empty, bounded, no separator)."""
    return bool(text) and len(text) <= semconv.MAX_NAME_LENGTH and _SEP not in text  # type: ignore[arg-type,operator]


def stream_cost(kind: str, windows: int) -> int:
    """Exported series of one segment stream of ``kind`` over ``windows`` windows."""
    per = SERIES_PER_PREDICTION_STREAM if kind == KIND_SEGMENT_PREDICTION else SERIES_PER_QUALITY_STREAM
    return per * windows
