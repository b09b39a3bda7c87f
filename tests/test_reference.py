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
    pytest.param(lambda d: d.update(format_version=99), "format_version", id="unknown_format_version"),
    pytest.param(lambda d: d.update(model={"name": ""}), "model", id="empty_model_name"),
    pytest.param(lambda d: d["features"][0].update(edges=[2.0, 1.0]), "features[0] ('z')", id="edges_not_increasing"),
    pytest.param(lambda d: d["features"][0].update(counts=[1]), "features[0] ('z')", id="counts_wrong_length"),
    pytest.param(lambda d: d["features"][0].update(kind="weird"), "kind", id="unknown_kind"),
    pytest.param(lambda d: d["features"][2].update(categories=["a", "a"]), "features[2] ('city')",
                 id="repeated_category"),
    pytest.param(lambda d: d["features"].append(dict(d["features"][0])), "duplicate", id="duplicate_feature"),
    pytest.param(lambda d: d.update(features=[]), "features", id="no_features"),
    pytest.param(lambda d: d["features"][0].update(min="low"), "min", id="min_not_a_number"),
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
    with pytest.raises(otel_ml.ReferenceProfileError, match=r"x\.json"):
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


# --- What save() writes, load() reads: refused at build time with a clear message, or round-tripped -----

LONG = "n" * (semconv.MAX_NAME_LENGTH + 1)


TOO_LONG = f"must be at most {semconv.MAX_NAME_LENGTH} characters, got {len(LONG)}"


@pytest.mark.parametrize("kwargs, message", [
    (dict(data={"x": [1.0, 2.0]}, model=LONG, version="1"), f"model: {TOO_LONG}"),
    (dict(data={"x": [1.0, 2.0]}, model="m", version=LONG), f"version: {TOO_LONG}"),
    (dict(data={LONG: [1.0, 2.0]}, model="m", version="1"), f"feature 'nnnnnnnnnn…': {TOO_LONG}"),
    (dict(data={"": [1.0, 2.0]}, model="m", version="1"), "feature '': must be a non-empty string"),
    (dict(data=np.ones((2, 1)), feature_names=[7], model="m", version="1"), "feature 7: must be a string, got int"),
    (dict(data={"x": [1.0, 2.0]}, model="m", version="1", predictions={LONG: [0.1, 0.2]}),
     f"output 'nnnnnnnnnn…': {TOO_LONG}"),
    (dict(data={"x": [1.0, 2.0]}, model="m", version="1", predictions=np.ones((2, 2)), class_names=["a", LONG]),
     f"output 'proba:nnnn…': must be at most {semconv.MAX_NAME_LENGTH} characters, got {len(LONG) + 6}"),
], ids=["model_name_too_long", "version_too_long", "feature_name_too_long", "feature_name_empty",
        "feature_name_not_a_string", "output_name_too_long", "class_name_too_long"])
def test_names_a_file_could_not_hold_are_refused_at_build_time(kwargs, message):
    with pytest.raises(otel_ml.ReferenceProfileError) as info:
        otel_ml.build_reference(**kwargs)
    assert message in str(info.value)


@pytest.mark.parametrize("kwargs, message", [
    (dict(predictions={1: [0.1, 0.2], "1": [0.3, 0.4]}), "duplicate output '1'"),
    (dict(predictions=np.ones((2, 2)), class_names=[1, "1"]), "duplicate output 'proba:1'"),
    (dict(data=np.ones((2, 2)), feature_names=["a", "a"]), "duplicate feature 'a'"),
], ids=["output_keys_equal_as_strings", "class_names_equal_as_strings", "feature_names_repeated"])
def test_duplicate_names_are_refused_at_build_time(kwargs, message):
    args = dict(data={"x": [1.0, 2.0]}, model="m", version="1") | kwargs
    with pytest.raises(otel_ml.ReferenceProfileError, match=message.replace("(", r"\(")):
        otel_ml.build_reference(**args)


def test_too_long_version_is_reported_as_too_long():
    with pytest.raises(otel_ml.ReferenceProfileError, match=f"at most {semconv.MAX_NAME_LENGTH} characters"):
        otel_ml.build_reference({"x": [1.0, 2.0]}, model="m", version="v" * 200)
    with pytest.raises(otel_ml.ConfigurationError, match=f"at most {semconv.MAX_NAME_LENGTH} characters"):
        otel_ml.monitor(model="m", version="v" * 200)


def test_categories_equal_in_their_first_128_characters_round_trip(tmp_path):
    prefix = "c" * semconv.MAX_NAME_LENGTH
    values = [prefix + "-one"] * 3 + [prefix + "-two"] * 2 + ["short"] * 4 + [semconv.OTHER_CATEGORY]
    ref = otel_ml.build_reference({"k": values}, model="m", version="1", categorical=["k"])
    path = tmp_path / "ref.json"
    ref.save(path)
    assert otel_ml.load_reference(path) == ref
    k = ref.feature("k")
    # Counted as the monitored process counts them: by their first 128 characters, and a value spelled
    # like the 'other' bucket lands in it.
    assert dict(zip(k.categories, k.counts)) == {prefix: 5, "short": 4}
    assert k.other_count == 1 and k.count == 10


def test_a_built_reference_always_loads(tmp_path):
    rng = np.random.default_rng(1)
    n = semconv.MAX_NAME_LENGTH
    data = {
        "f" * n: rng.normal(size=50),
        "g": rng.choice(["x" * (n + 5) + str(i) for i in range(3)] + ["y"], 50),
    }
    ref = otel_ml.build_reference(data, model="m" * n, version="v" * n,
                                  predictions=rng.uniform(size=(50, 2)), class_names=["a" * (n - 6), "b"])
    path = tmp_path / "ref.json"
    ref.save(path)
    assert otel_ml.load_reference(path) == ref


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["features"][2].update(categories=["a", "a"]),
     f"'categories' must be unique and must not contain '{semconv.OTHER_CATEGORY}'"),
    (lambda d: d["features"][0].update(counts="x"), "'counts' must be a list of non-negative integers"),
    (lambda d: d["features"][0].pop("edges"), "missing field 'edges'"),
    (lambda d: d["model"].update(version="v" * 200),
     f"model.version: must be at most {semconv.MAX_NAME_LENGTH} characters, got 200"),
    (lambda d: d["model"].update(name=""), "model.name: must be a non-empty string"),
    (lambda d: d["features"][0].update(name="f" * 200),
     f"features[0]: 'name' must be at most {semconv.MAX_NAME_LENGTH} characters, got 200"),
], ids=["quotes_kept", "quotes_kept_on_counts", "missing_field_named", "long_version_called_long",
        "empty_name_called_empty", "long_feature_name_called_long"])
def test_load_errors_say_exactly_what_is_wrong(ref, mutate, message):
    doc = ref.to_dict()
    mutate(doc)
    with pytest.raises(otel_ml.ReferenceProfileError) as info:
        loads_reference(json.dumps(doc), source="bad.json")
    assert message in str(info.value)
