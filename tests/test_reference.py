"""Reference profiles: building, JSON round trip, validation that names the file and field."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import otel_ml
from otel_ml import semconv
from otel_ml._binning import bucket_counts, bucket_index, quantile_edges
from otel_ml._reference import CategoricalProfile, NumericProfile, loads_reference


@pytest.fixture
def ref():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({
        "z": rng.normal(size=1000),  # standardised: half negative
        "n": rng.integers(0, 3, 1000),
        "city": rng.choice(["a", "b", "c", "d"], 1000, p=[0.4, 0.3, 0.2, 0.1]),
    })
    df.loc[:9, "z"] = np.nan
    return otel_ml.build_reference(df, model="m", version=3, predictions=rng.uniform(size=(1000, 2)),
                                   class_names=["no", "yes"], top_k=2)


def test_numeric_profile(ref):
    z = ref.feature("z")
    assert isinstance(z, NumericProfile)
    assert z.missing == 10 and z.count == 990 and z.rows == 1000
    assert z.min < 0 < z.max and len(z.counts) == len(z.edges) + 1
    assert sum(z.counts) == 990
    assert max(z.counts) - min(z.counts) <= 3  # quantile edges: a fair share per bucket
    n = ref.feature("n")
    assert len(n.edges) <= 2  # ties collapse: 3 distinct values, at most 3 buckets


def test_categorical_profile_top_k_and_other(ref):
    c = ref.feature("city")
    assert isinstance(c, CategoricalProfile)
    assert c.categories == ("a", "b") and c.other_count == 1000 - sum(c.counts)
    assert c.bucket_labels == ("a", "b", semconv.OTHER_CATEGORY)


def test_outputs_and_version_as_string(ref):
    assert ref.model_version == "3"
    assert [o.name for o in ref.outputs] == ["proba:no", "proba:yes"]
    labels = otel_ml.build_reference({"x": [1.0, 2.0, 3.0]}, model="m", version="1", predictions=np.array([0, 1, 1]))
    assert labels.outputs[0].name == "label" and labels.outputs[0].categories == ("1", "0")
    values = otel_ml.build_reference({"x": [1.0, 2.0, 3.0]}, model="m", version="1", predictions=[0.5, 1.5, 2.5])
    assert values.outputs[0].name == "value"


def test_json_round_trip(tmp_path, ref):
    path = tmp_path / "ref.json"
    ref.save(path)
    assert otel_ml.load_reference(path) == ref
    doc = json.loads(path.read_text())
    assert doc["format_version"] == 1 and doc["model"] == {"name": "m", "version": "3"}
    assert not list(tmp_path.glob("*.tmp-*"))  # atomic write leaves nothing behind


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d.update(format_version=99), "format_version"),
    (lambda d: d.update(model={"name": ""}), "model"),
    (lambda d: d["features"][0].update(edges=[2.0, 1.0]), "features[0] ('z')"),
    (lambda d: d["features"][0].update(counts=[1]), "features[0] ('z')"),
    (lambda d: d["features"][0].update(kind="weird"), "kind"),
    (lambda d: d["features"][2].update(categories=["a", "a"]), "features[2] ('city')"),
    (lambda d: d["features"].append(dict(d["features"][0])), "duplicate"),
    (lambda d: d.update(features=[]), "features"),
    (lambda d: d["features"][0].update(min="low"), "min"),
])
def test_malformed_profiles_are_rejected_with_the_field(tmp_path, ref, mutate, field):
    doc = ref.to_dict()
    mutate(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(otel_ml.ReferenceProfileError) as info:
        otel_ml.load_reference(path)
    assert "bad.json" in str(info.value) and field in str(info.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(otel_ml.ReferenceProfileError, match="no such"):
        otel_ml.load_reference(tmp_path / "nope.json")
    (tmp_path / "x.json").write_bytes(b"\xff\xfe junk")
    with pytest.raises(otel_ml.ReferenceProfileError, match="x.json"):
        otel_ml.load_reference(tmp_path / "x.json")
    with pytest.raises(otel_ml.ReferenceProfileError):
        loads_reference("[]")


def test_build_rejects_bad_arguments():
    with pytest.raises(otel_ml.ReferenceProfileError, match="bins"):
        otel_ml.build_reference({"x": [1.0, 2.0]}, model="m", version="1", bins=1)
    with pytest.raises(otel_ml.ReferenceProfileError, match="categorical"):
        otel_ml.build_reference({"x": [1.0, 2.0]}, model="m", version="1", categorical=["y"])
    with pytest.raises(otel_ml.ReferenceProfileError, match="finite"):
        otel_ml.build_reference({"x": [np.nan, np.inf]}, model="m", version="1")
    with pytest.raises(otel_ml.ReferenceProfileError, match="class_names"):
        otel_ml.build_reference({"x": [1.0, 2.0]}, model="m", version="1",
                                predictions=np.zeros((2, 2)), class_names=["a"])


def test_binning_semantics_are_otel_explicit_buckets():
    edges = np.array([-1.0, 0.0, 1.0])
    assert bucket_index(np.array([-5.0, -1.0, -0.5, 0.0, 1.0, 1.5]), edges).tolist() == [0, 0, 1, 1, 2, 3]
    assert bucket_counts(np.array([-5.0, 2.0, 2.0]), edges).tolist() == [1, 0, 0, 2]
    e = quantile_edges(np.arange(100.0), 4)
    assert e.tolist() == [24.0, 49.0, 74.0] and e.max() < 99.0
    assert quantile_edges(np.array([np.nan]), 4).size == 0
