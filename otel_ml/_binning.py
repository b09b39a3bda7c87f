"""Binning with a reference's edges: one vectorised pass over a whole column or batch.

Bucket semantics are OpenTelemetry's explicit-bucket histogram: with edges ``e[0] < ... < e[n-1]``,
bucket 0 is ``(-inf, e[0]]``, bucket ``i`` is ``(e[i-1], e[i]]`` and bucket ``n`` is
``(e[n-1], +inf)``; ``n`` edges give ``n + 1`` counts. Reference building uses :func:`bucket_counts`;
the predict hot path and ``otel-ml drift`` bin by the same rule in
:meth:`otel_ml._aggregate.NumericTable.stats` (comparison passes, cheaper for a few edges; tested
equal), so the processor can compare counts directly.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def bucket_index(values: FloatArray, edges: FloatArray) -> IntArray:
    """Index of the OTel explicit bucket holding each (finite) value."""
    return np.searchsorted(edges, values, side="left").astype(np.int64, copy=False)


def bucket_counts(values: FloatArray, edges: FloatArray) -> IntArray:
    """Counts per OTel explicit bucket (``len(edges) + 1`` of them) of the finite ``values``."""
    return np.bincount(bucket_index(values, edges), minlength=len(edges) + 1).astype(np.int64)


def quantile_edges(values: FloatArray, bins: int) -> FloatArray:
    """Edges that split ``values`` into about ``bins`` buckets holding a fair share each.

    Ties collapse duplicate edges, so an integer feature with three distinct values gets at most
    three buckets. The top edge sits below the maximum so the last bucket is never empty.
    """
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.empty(0, dtype=np.float64)
    qs = np.quantile(finite, np.linspace(0.0, 1.0, bins + 1)[1:-1], method="inverted_cdf")
    edges = np.unique(qs.astype(np.float64))
    return edges[edges < finite.max()]
