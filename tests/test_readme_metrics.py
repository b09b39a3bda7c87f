"""README's metrics table names only metrics and attributes that exist, spelled as semconv spells them."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

from otel_ml import semconv

README = Path(__file__).resolve().parents[1] / "README.md"


def _table_rows() -> list[list[str]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Metrics", 1)[1].split("\n## ", 1)[0]
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in section.splitlines() if line.startswith("| `")]


def _expand(name: str) -> list[str]:
    """``ml.quality.{missing,invalid}.ratio`` → both names; ``{,.lower}`` keeps the empty choice."""
    parts = re.split(r"\{([^}]*)\}", name)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*choices)]


def _known() -> set[str]:
    names: set[str] = set()
    for k, v in vars(semconv).items():
        if k.isupper():
            names |= {v} if isinstance(v, str) else {x for x in v.values() if isinstance(x, str)} \
                if isinstance(v, dict) else set()
    return names


def test_every_otel_name_in_the_readme_table_is_a_semconv_name() -> None:
    known = _known()
    rows = _table_rows()
    assert len(rows) >= 10, rows
    unknown = []
    for otel, _, _ in rows:
        names = re.findall(r"`([^`]+)`", otel)
        previous = ""
        for raw in names:
            # "`ml.feature.missing` / `.invalid`": a leading dot continues the previous name's prefix
            name = previous.rsplit(".", 1)[0] + raw if raw.startswith(".") else raw
            previous = name
            unknown += [n for n in _expand(name) if n not in known]
    assert not unknown, f"README names what semconv does not: {unknown}"


def test_every_prometheus_name_in_the_readme_table_is_what_the_translation_gives() -> None:
    translated = set(semconv.PROMETHEUS_NAMES.values())
    wrong = []
    for _, prom, _ in _table_rows():
        for name in re.findall(r"`(ml_[a-z_]+)`", prom):
            base = re.sub(r"_(bucket|count|sum)$", "", name)
            if name not in translated and base not in translated:
                wrong.append(name)
    assert not wrong, f"README's Prometheus names that the OTel translation does not produce: {wrong}"
