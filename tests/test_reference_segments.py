"""The reference's optional "segments" section (issue 13): build, save/load, validation, the CLI flag."""

from __future__ import annotations

import copy
import json
import math
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import otel_ml
from otel_ml import ReferenceProfileError, semconv as M
from otel_ml._cli import main
from otel_ml.reference import SegmentColumnProfile, SegmentValueProfile, loads_reference


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    n = 4000
    x = rng.normal(size=n)
    x[rng.random(n) < 0.05] = np.nan
    x[rng.random(n) < 0.02] = np.inf
    return pd.DataFrame({
        "x": x,
        "city": rng.choice(["paris", "lyon", "nice", "brest"], n, p=[0.4, 0.3, 0.2, 0.1]).astype(object),
        "tier": rng.choice(["gold", "silver", None], n).astype(object),
        "score": rng.uniform(size=n),
    })


def _direct(frame: pd.DataFrame, ref: otel_ml.Reference, column: str, top_k: int) -> dict[str, dict]:
    """Rows, output bucket counts and quality counts per value of ``column``, computed row by row."""
    keys = [None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in frame[column]]
    ranked = sorted(Counter(k for k in keys if k is not None).items(), key=lambda kv: (-kv[1], kv[0]))
    top = [k for k, _ in ranked[:top_k]]
    out: dict[str, dict] = {v: {"rows": 0, "quality": Counter(), "outputs": None} for v in [*top, M.OTHER_CATEGORY]}
    edges = ref.outputs[0].edges
    for v in out:
        out[v]["outputs"] = [0] * (len(edges) + 1)
    feats = {p.name: p for p in ref.features}
    for i, k in enumerate(keys):
        v = k if k in top else M.OTHER_CATEGORY
        out[v]["rows"] += 1
        x = frame["x"].iloc[i]
        out[v]["quality"]["missing"] += int(math.isnan(x))
        out[v]["quality"]["invalid"] += int(math.isinf(x))
        for name in ("city", "tier"):
            if name not in feats:
                continue
            c = frame[name].iloc[i]
            if c is None or (isinstance(c, float) and math.isnan(c)):
                out[v]["quality"]["missing"] += 1
            elif c not in feats[name].categories:
                out[v]["quality"]["unseen"] += 1
        out[v]["outputs"][sum(1 for e in edges if frame["score"].iloc[i] > e)] += 1
    return out


def test_build_profiles_each_top_value_with_rows_outputs_and_quality(frame):
    features = frame[["x", "city", "tier"]]
    ref = otel_ml.build_reference(features, model="m", version="1", predictions=frame["score"].to_numpy(),
                                  top_k=2, segments=["city", "tier"])
    assert ref.feature("city").categories == ("paris", "lyon")  # top_k = 2: nice and brest are "other"
    for column in ("city", "tier"):
        section = ref.segments[column]
        want = _direct(frame, ref, column, top_k=2)
        assert list(section.values) == list(want)  # the categorical feature's categories, then __other__
        for value, w in want.items():
            got = section.values[value]
            assert got.rows == w["rows"]
            assert list(got.outputs["value"]) == w["outputs"]
            assert dict(got.quality) == {k: w["quality"][k] for k in M.QUALITY_KINDS}
        assert sum(v.rows for v in section.values.values()) == ref.row_count
    assert ref.segments["city"].values[M.OTHER_CATEGORY].quality["unseen"] > 0  # nice and brest


def test_a_segment_column_that_is_not_a_feature_and_categorical_outputs():
    rng = np.random.default_rng(1)
    n = 1000
    data = {"a": rng.normal(size=n)}
    channel = rng.choice(["web", "app", "kiosk"], n, p=[0.6, 0.3, 0.1])
    labels = rng.choice(["yes", "no"], n)
    ref = otel_ml.build_reference(data, model="m", version="1", predictions=labels, top_k=2,
                                  segments={"channel": channel})
    assert ref.feature_names == ("a",)
    values = ref.segments["channel"].values
    assert list(values) == ["web", "app", M.OTHER_CATEGORY]
    for v in ("web", "app"):
        mask = channel == v
        assert values[v].rows == int(mask.sum())
        assert dict(values[v].outputs["label"]) == {"no": int((labels[mask] == "no").sum()),
                                                    "yes": int((labels[mask] == "yes").sum()),
                                                    M.OTHER_CATEGORY: 0}
    assert values[M.OTHER_CATEGORY].rows == int((channel == "kiosk").sum())


def test_save_load_round_trip_and_old_references(tmp_path, frame):
    ref = otel_ml.build_reference(frame[["x", "city"]], model="m", version="1",
                                  predictions=frame["score"].to_numpy(), segments=["city"])
    path = tmp_path / "ref.json"
    ref.save(path)
    back = otel_ml.load_reference(path)
    assert back == ref and hash(back) == hash(ref)
    assert isinstance(back.segments["city"], SegmentColumnProfile)
    assert isinstance(back.segments["city"].values["paris"], SegmentValueProfile)
    old = ref.to_dict()
    del old["segments"]
    assert loads_reference(json.dumps(old)).segments is None  # a reference without the section loads unchanged


def _doc(frame: pd.DataFrame) -> dict:
    return otel_ml.build_reference(frame[["x", "city"]], model="m", version="1", predictions=frame["score"].to_numpy(),
                                   segments=["city"]).to_dict()


def _set(path: list, value):
    def change(doc):
        target = doc
        for key in path[:-1]:
            target = target[key]
        if value is _DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value
    return change


_DELETE = object()
_P = ["segments", "city", "values", "paris"]


@pytest.mark.parametrize(("change", "field"), [
    (_set(["segments"], []), "segments"),
    (_set(["segments"], {f"c{i}": {} for i in range(5)}), "segments"),
    (_set(["segments", "city", "extra"], 1), "segments.'city'"),
    (_set(["segments", "city", "values", M.OTHER_CATEGORY], _DELETE), "segments.'city'.values"),
    (_set([*_P, "rows"], -1), "segments.'city'.values.'paris'.rows"),
    (_set([*_P, "rows"], 2**60), "segments.'city'.values.'paris'.rows"),
    (_set([*_P, "rows"], 1.5), "segments.'city'.values.'paris'.rows"),
    (_set([*_P, "outputs"], {}), "segments.'city'.values.'paris'.outputs"),
    (_set([*_P, "outputs", "value"], [1, 2]), "segments.'city'.values.'paris'.outputs.'value'"),
    (_set([*_P, "quality", "missing"], _DELETE), "segments.'city'.values.'paris'.quality"),
    (_set([*_P, "quality", "unseen"], 10**9), "segments.'city'.values.'paris'.quality.unseen"),
    (_set([*_P, "colour"], "red"), "segments.'city'.values.'paris'"),
    (_set(["segments", "city", "values", "x" * 300], {}), "segments.'city'.values"),
])
def test_a_bad_segment_section_is_refused_naming_the_field(frame, change, field):
    doc = copy.deepcopy(_doc(frame))
    change(doc)
    with pytest.raises(ReferenceProfileError) as err:
        loads_reference(json.dumps(doc), source="ref.json")
    assert str(err.value).startswith(f"ref.json: {field}"), str(err.value)


def test_rows_must_add_up_to_the_row_count(frame):
    doc = _doc(frame)
    doc["segments"]["city"]["values"]["paris"]["rows"] += 1
    doc["segments"]["city"]["values"]["paris"]["outputs"]["value"][0] += 0
    with pytest.raises(ReferenceProfileError, match=r"segments.'city'.values: rows add up to \d+, not"):
        loads_reference(json.dumps(doc))


def test_build_refuses_unknown_or_too_many_segment_columns(frame):
    with pytest.raises(ReferenceProfileError, match="unknown columns"):
        otel_ml.build_reference(frame[["x"]], model="m", version="1", segments=["city"])
    with pytest.raises(ReferenceProfileError, match="1 to 4 columns"):
        otel_ml.build_reference(frame, model="m", version="1", segments={f"s{i}": frame["city"] for i in range(5)})
    with pytest.raises(ReferenceProfileError, match="one value per row"):
        otel_ml.build_reference(frame[["x"]], model="m", version="1", segments={"s": [1, 2]})


def test_cli_build_with_segments_from_csv_in_chunks_and_show(tmp_path, frame, monkeypatch):
    import otel_ml._cli_io as cli_io

    monkeypatch.setattr(cli_io, "CHUNK_ROWS", 700)  # the CSV is read in several chunks
    data = tmp_path / "train.csv"
    frame.assign(channel=np.where(np.arange(len(frame)) % 3 == 0, "web", "app")).to_csv(data, index=False)
    out = tmp_path / "ref.json"
    runner = CliRunner()
    r = runner.invoke(main, ["reference", "build", str(data), "--model", "m", "--version", "1",
                             "--prediction-column", "score", "--segment", "city", "--segment", "channel",
                             "--target", "channel", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "segments city (5 values), channel (3 values)" in r.output
    ref = otel_ml.load_reference(out)
    assert "channel" not in ref.feature_names  # --target: a segment only
    assert ref.segments["channel"].values["web"].rows == len(range(0, len(frame), 3))
    assert {v: p.rows for v, p in ref.segments["city"].values.items()} == {
        **frame["city"].value_counts().to_dict(), M.OTHER_CATEGORY: 0}
    r = runner.invoke(main, ["reference", "show", str(out)])
    assert r.exit_code == 0, r.output
    assert "segments" in r.output and "channel" in r.output and "web (1,334)" in r.output
    r = runner.invoke(main, ["reference", "build", str(data), "--model", "m", "--version", "1",
                             "--segment", "nope", "-o", str(out)])
    assert r.exit_code == 2 and "no column 'nope'" in r.output
