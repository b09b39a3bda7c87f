"""The reference-format contract shared by the library, the processor and the CLI.

A reference profile (``docs/reference-format.md``) is the versioned JSON that fixes, per feature and
model output, the bins every part compares on: the library bins live traffic with its edges, the
processor judges windows against its counts, ``otel-ml reference`` and ``otel-ml drift`` read and
write it. This module is the public face of that format for code outside the library (the processor
imports it instead of the library's private modules); its names are re-exported from the library's
implementation, so there is one definition of each.
"""

from __future__ import annotations

from ._reference import (
    OUTPUT_LABEL,
    OUTPUT_VALUE,
    PROBA_PREFIX,
    CalibrationBin,
    CategoricalProfile,
    NumericProfile,
    Profile,
    Reference,
    ReferencePerformance,
    SegmentColumnProfile,
    SegmentValueProfile,
    load_reference,
    loads_reference,
)

__all__ = [
    "OUTPUT_LABEL",
    "OUTPUT_VALUE",
    "PROBA_PREFIX",
    "CalibrationBin",
    "CategoricalProfile",
    "NumericProfile",
    "Profile",
    "Reference",
    "ReferencePerformance",
    "SegmentColumnProfile",
    "SegmentValueProfile",
    "load_reference",
    "loads_reference",
]
