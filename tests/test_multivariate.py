"""The multivariate summary: the estimator against sklearn's PCA, the reference section, the hot path."""

from __future__ import annotations

import functools
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import otel_ml
from otel_ml import _multivariate, semconv
from otel_ml._binning import bucket_counts
from otel_ml._errors import ReferenceProfileError
from otel_ml._reference import loads_reference
from otel_ml.reference import CategoricalProfile
from otel_ml.stats import PolicyBook, reference_ratios

from _otel_ml_support import SPANS, point, value

NAMES = [f"x{i}" for i in range(6)]
_build = functools.partial(otel_ml.build_reference, multivariate=True)  # the section is opt-in


def _data(n: int = 5000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6)) * [1.0, 2.0, 0.5, 3.0, 1.0, 1.0] + [0.0, 5.0, -1.0, 2.0, 0.0, 10.0]
    x[:, 1] += 1.6 * x[:, 0]
    x[:, 4] = 0.9 * x[:, 2] / 0.5 + 0.3 * x[:, 4]
    return x


@pytest.fixture(scope="module")
def ref() -> otel_ml.Reference:
    return _build(_data(), model="m", version="1", feature_names=NAMES)


def test_errors_match_sklearn_pca_reconstruction(ref: otel_ml.Reference) -> None:
    from sklearn.decomposition import PCA

    x = _data()
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    pca = PCA(n_components=0.9, svd_solver="full").fit(z)
    assert ref.multivariate is not None
    summary = ref.multivariate.summary
    assert summary.components.shape == (pca.n_components_, 6)
    assert np.allclose(summary.mean, x.mean(axis=0)) and np.allclose(summary.scale, x.std(axis=0))
    new = _data(300, seed=9)
    zn = (new - x.mean(axis=0)) / x.std(axis=0)
    oracle = ((zn - pca.inverse_transform(pca.transform(zn))) ** 2).sum(axis=1)
    assert np.allclose(summary.errors(new), oracle, rtol=1e-9, atol=1e-9)
    train_err = ((z - pca.inverse_transform(pca.transform(z))) ** 2).sum(axis=1)
    assert summary.threshold == pytest.approx(np.quantile(train_err, 0.999, method="inverted_cdf"), rel=1e-9)
    error = ref.multivariate.error
    assert error.name == semconv.RECONSTRUCTION_ERROR_FEATURE
    assert error.edges[-1] == summary.threshold and error.max == summary.threshold
    own = summary.errors(x)
    assert np.allclose(own, train_err, rtol=1e-9, atol=1e-9)
    assert list(error.counts) == bucket_counts(own, np.asarray(error.edges)).tolist()
    assert reference_ratios(error)["out_of_range"] == pytest.approx((own > summary.threshold).mean())


def test_rows_with_a_missing_value_are_skipped_and_counted() -> None:
    x = _data(2000)
    x[:7, 3] = np.nan
    x[7, 0] = np.inf
    ref = _build(x, model="m", version="1", feature_names=NAMES)
    assert ref.multivariate is not None
    assert ref.multivariate.error.missing == 8 and ref.multivariate.error.count == 1992
    assert np.isnan(ref.multivariate.summary.errors(x[:9])[:8]).all()


def test_at_least_one_direction_is_left_out_and_components_are_bounded() -> None:
    rng = np.random.default_rng(1)
    ref = _build(rng.standard_normal((3000, 3)), model="m", version="1")
    assert ref.multivariate is not None
    assert ref.multivariate.summary.components.shape[0] == 2  # independent features: 90 % needs all 3
    wide = _build(rng.standard_normal((400, 260)), model="m", version="1")
    assert wide.multivariate is not None
    assert len(wide.multivariate.summary.features) == _multivariate.MAX_FEATURES
    assert wide.multivariate.summary.components.shape[0] == _multivariate.MAX_COMPONENTS


def test_categorical_levels_are_encoded_and_one_column_gets_no_section() -> None:
    x = _data(1000)
    data = {**{n: x[:, i] for i, n in enumerate(NAMES)}, "plan": ["a", "b"] * 500,
            "flag": ["on"] * 1000, "city": [f"c{i % 12}" for i in range(1000)]}
    ref = _build(data, model="m", version="1")
    assert ref.multivariate is not None and ref.multivariate.summary.features == tuple(NAMES)
    # plan: "b" is implied by "a"; flag: in every row, says nothing; city: the 8 most frequent of 12
    city = ref.feature("city")
    assert isinstance(city, CategoricalProfile) and len(city.categories) == 12
    assert ref.multivariate.summary.categorical == (("plan", ("a",)), ("city", city.categories[:8]))
    assert ref.multivariate.summary.components.shape[1] == len(NAMES) + 1 + 8
    one = _build({"a": x[:, 0], "plan": ["a"] * 1000}, model="m", version="1")
    assert one.multivariate is None and one.streamed_features == one.features
    off = otel_ml.build_reference(x, model="m", version="1")
    assert off.multivariate is None and "multivariate" not in off.to_dict()


def test_section_round_trips_and_old_references_stay_valid(ref: otel_ml.Reference) -> None:
    again = loads_reference(ref.to_json())
    assert again == ref and again.streamed_features[-1] == ref.multivariate.error  # type: ignore[union-attr]
    doc = ref.to_dict()
    del doc["multivariate"]
    old = loads_reference(json.dumps(doc))
    assert old.multivariate is None and old.streamed_features == old.features


@pytest.mark.parametrize(("edit", "message"), [
    (lambda s: s.update(components=[[1.0] * 5]), "rows of 6"),
    (lambda s: s.update(mean=[0.0] * 5), "'mean'"),
    (lambda s: s["scale"].__setitem__(0, 0.0), "positive"),
    (lambda s: s.update(components=[[1.0] * 6] * 7), "components"),
    (lambda s: s.update(threshold=-1.0), "threshold"),
    (lambda s: s.update(features=["x0", "nope"]), "numeric features"),
    (lambda s: s.update(section_version=3), "section_version"),
    (lambda s: s.update(section_version=2), "'categorical' must list"),
    (lambda s: s.update(categorical=[{"feature": "x0", "levels": ["a"]}]), "needs 'section_version' 2"),
    (lambda s: s["error"].update(edges=[0.1, 0.2], counts=[1, 1, 1]), "top edge"),
    (lambda s: s["error"].update(name="x0"), "numeric profile"),
    (lambda s: s.pop("error"), "missing field 'error'"),
])
def test_bad_sections_are_refused_naming_the_field(ref: otel_ml.Reference, edit, message: str) -> None:
    doc = ref.to_dict()
    edit(doc["multivariate"])
    text = json.dumps(doc)
    with pytest.raises(ReferenceProfileError, match="multivariate") as info:
        loads_reference(text, source="r.json")
    assert message in str(info.value)


def test_non_finite_numbers_are_refused(ref: otel_ml.Reference) -> None:
    text = ref.to_json().replace('"threshold": ', '"threshold": NaN, "x": ', 1)
    with pytest.raises(ReferenceProfileError, match="multivariate"):
        loads_reference(text)


def test_a_feature_named_like_the_reserved_stream_is_refused() -> None:
    x = _data(500)
    with pytest.raises(ReferenceProfileError, match="reserved"):
        _build({semconv.RECONSTRUCTION_ERROR_FEATURE: x[:, 0], "b": x[:, 1]}, model="m",
                                version="1")


def test_monitor_exports_the_error_stream_like_a_direct_computation(exporter, ref: otel_ml.Reference) -> None:
    assert ref.multivariate is not None
    summary, error = ref.multivariate.summary, ref.multivariate.error

    @otel_ml.monitor(model="m", version="1", reference=ref)
    def predict(x: np.ndarray) -> np.ndarray:
        return np.zeros(len(x))

    x = _data(1500, seed=3)
    x[5, 2] = np.nan  # skipped for the error, counted as missing
    x[1001, 3] = np.inf
    x[10, 0], x[10, 1] = 3.0, -3.0  # an impossible pair: an outlier
    predict(x[:1000])
    for i in range(1000, 1250, 2):  # small batches: the buffered path
        predict(x[i:i + 2])
    for i in range(1250, 1500):  # single rows: the online-serving path
        predict(x[i:i + 1])
    assert otel_ml.flush(5.0)
    data = exporter.last
    reserved = {semconv.FEATURE_NAME: semconv.RECONSTRUCTION_ERROR_FEATURE}
    hist = point(data, semconv.FEATURE_VALUE, **reserved)
    assert list(hist.explicit_bounds) == list(error.edges)
    err = summary.errors(x)
    finite = err[np.isfinite(err)]
    assert list(hist.bucket_counts) == bucket_counts(finite, np.asarray(error.edges)).tolist()
    assert value(data, semconv.FEATURE_MISSING, **reserved) == 2
    outliers = value(data, semconv.FEATURE_OUT_OF_RANGE, **reserved)
    assert outliers == int((finite > summary.threshold).sum()) >= 1
    spans = [s for s in SPANS.get_finished_spans() if s.name == "predict m"]
    scores = [s.attributes[semconv.OUTLIER_MAX_SCORE] for s in spans]
    assert scores[0] == pytest.approx(np.nanmax(err[:1000]) / summary.threshold) and scores[0] > 1
    assert scores[1] == pytest.approx(np.nanmax(err[1000:1002]) / summary.threshold)
    assert scores[-1] == pytest.approx(err[1499] / summary.threshold)
    assert all(not k.startswith(semconv.FEATURE_VALUE_ATTRIBUTE_PREFIX) for s in spans for k in s.attributes)


def test_outlier_policy_lowers_the_quality_floor_of_the_reserved_stream_only() -> None:
    book = PolicyBook.from_mapping({"quality_min_increase": 0.03, "features": {"x0": {"alpha": 0.01}}})
    assert book.policy_for(semconv.RECONSTRUCTION_ERROR_FEATURE).quality_min_increase == 0.005
    assert book.policy_for("x1").quality_min_increase == 0.03
    own = PolicyBook.from_mapping({"features": {semconv.RECONSTRUCTION_ERROR_FEATURE: {"quality_min_increase": 0.1}}})
    assert own.policy_for(semconv.RECONSTRUCTION_ERROR_FEATURE).quality_min_increase == 0.1


_BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "multivariate_calibration.py"


def _calibration():
    module = sys.modules.get("multivariate_calibration")
    if module is None:
        spec = importlib.util.spec_from_file_location("multivariate_calibration", _BENCH)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["multivariate_calibration"] = module
        spec.loader.exec_module(module)
    return module


def test_calibration_correlation_swap_and_outlier_burst() -> None:
    """A fast seeded version of benchmarks/multivariate_calibration.py, with tolerant bounds."""
    r = _calibration().run(windows=40, rows=1000)
    assert r["swap"]["multivariate"] >= 0.85 and r["swap"]["univariate"] <= 0.12
    assert r["none"]["multivariate"] <= 0.12 and r["none"]["outlier_alarm"] <= 0.12
    assert r["burst"]["outlier_alarm"] >= 0.85 and r["burst"]["univariate"] <= 0.12


def test_drift_command_reports_the_multivariate_and_outlier_verdicts(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    from click.testing import CliRunner

    from otel_ml._cli import main

    module = _calibration()
    rng = np.random.default_rng(4)
    names = [f"x{i}" for i in range(module.D)]
    module.reference().save(tmp_path / "ref.json")
    reserved = semconv.RECONSTRUCTION_ERROR_FEATURE
    verdicts = {}
    for scenario in ("none", "swap", "burst"):
        pd.DataFrame(module.window(rng, scenario, 3000), columns=names).to_csv(tmp_path / "cur.csv", index=False)
        result = CliRunner().invoke(main, ["drift", "--reference", str(tmp_path / "ref.json"),
                                           "--data", str(tmp_path / "cur.csv"), "--format", "json"])
        doc = json.loads(result.output)
        by_name = {f["name"]: f for f in doc["features"]}
        assert set(by_name) == {*names, reserved} and by_name[reserved]["absent"] is False
        verdicts[scenario] = (result.exit_code, by_name[reserved]["detected"], by_name[reserved]["quality"]["alarm"],
                              any(by_name[n]["detected"] for n in names))
    assert verdicts["none"] == (0, False, False, False)
    assert verdicts["swap"] == (1, True, True, False)
    assert verdicts["burst"][0] == 1 and verdicts["burst"][2] is True and verdicts["burst"][3] is False


def test_training_errors_computed_in_slices_equal_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    x = _data(2500)
    whole = _build(x, model="m", version="1").multivariate
    monkeypatch.setattr(_multivariate, "_SLICE", 1000)
    sliced = _build(x, model="m", version="1").multivariate
    assert whole is not None and sliced is not None and sliced.error == whole.error


# --- categorical features in the summary ---------------------------------------------------------------
def _mixed(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A segment sets the mean of x0; plan is independent; a few missing and rare values."""
    rng = np.random.default_rng(seed)
    seg = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    plan = rng.choice(["p1", "p2", "p3", "rare"], n, p=[0.4, 0.35, 0.2499, 0.0001]).astype(object)
    plan[::97] = None
    x = rng.standard_normal((n, 3))
    x[:, 0] += np.select([seg == "a", seg == "b"], [1.0, -1.0], 0.0)
    return {"x0": x[:, 0], "seg": seg.astype(object), "x1": x[:, 1], "plan": plan, "x2": x[:, 2]}


def _indicators(data: dict[str, np.ndarray], summary: _multivariate.Multivariate) -> np.ndarray:
    """The summary's columns, computed directly: numeric features, then one 0/1 column per encoded level."""
    cols = [np.asarray(data[f], dtype=float) for f in summary.features]
    for name, levels in summary.categorical:
        cols += [(data[name] == level).astype(float) for level in levels]
    return np.column_stack(cols)


@pytest.fixture(scope="module")
def mixed_ref() -> otel_ml.Reference:
    return _build(_mixed(20_000), model="m", version="1", top_k=3)


def test_categorical_errors_match_sklearn_pca_on_standardised_indicators(mixed_ref: otel_ml.Reference) -> None:
    from sklearn.decomposition import PCA

    from otel_ml._binning import CategoricalTable

    assert mixed_ref.multivariate is not None
    summary = mixed_ref.multivariate.summary
    # seg: "c" is implied by "a" and "b"; plan: top_k=3 leaves "rare" as other, so all three are encoded
    assert summary.features == ("x0", "x1", "x2")
    assert summary.categorical == (("seg", ("a", "b")), ("plan", ("p1", "p2", "p3")))
    data = _mixed(20_000)
    complete = np.array([v is not None for v in data["plan"]])
    z_raw = _indicators(data, summary)[complete]
    mean, std = z_raw.mean(axis=0), z_raw.std(axis=0)
    assert np.allclose(summary.mean, mean) and np.allclose(summary.scale, std)
    z = (z_raw - mean) / std
    pca = PCA(n_components=0.9, svd_solver="full").fit(z)
    assert summary.components.shape == (pca.n_components_, z.shape[1])
    new = _mixed(500, seed=5)
    zn = (_indicators(new, summary) - mean) / std
    oracle = ((zn - pca.inverse_transform(pca.transform(zn))) ** 2).sum(axis=1)
    levels = []
    for j, (name, _) in enumerate(summary.categorical):
        table = CategoricalTable(mixed_ref.feature(name))  # type: ignore[arg-type]
        _, codes = table.stats_and_codes(new[name])
        levels.append(summary.level_rows(j, table.categories)[codes])
    x = np.column_stack([new[f] for f in summary.features])
    err = summary.errors(x, levels)
    missing = np.array([v is None for v in new["plan"]])
    assert np.isnan(err[missing]).all() and missing.sum() >= 5  # a missing category: skipped, not guessed
    assert np.allclose(err[~missing], oracle[~missing], rtol=1e-9, atol=1e-9)
    for i in np.flatnonzero(~missing)[:20]:  # the one-row path
        assert summary.row_error(x[i], [int(c[i]) for c in levels]) == pytest.approx(oracle[i], rel=1e-9, abs=1e-9)
    assert mixed_ref.multivariate.error.missing == int((~complete).sum())


def test_categorical_section_round_trips_and_numeric_only_sections_keep_version_1(
        mixed_ref: otel_ml.Reference, ref: otel_ml.Reference) -> None:
    doc = mixed_ref.to_dict()["multivariate"]
    assert doc["section_version"] == 2
    assert doc["categorical"] == [{"feature": "seg", "levels": ["a", "b"]},
                                  {"feature": "plan", "levels": ["p1", "p2", "p3"]}]
    again = loads_reference(mixed_ref.to_json())
    assert again == mixed_ref
    old = ref.to_dict()["multivariate"]
    assert old["section_version"] == 1 and "categorical" not in old
    for edit, message in ((lambda s: s["categorical"][0].update(feature="x0"), "categorical features"),
                          (lambda s: s["categorical"][1].update(levels=[f"l{i}" for i in range(9)]), "levels"),
                          (lambda s: s["categorical"][1].update(levels=["p1", "p1", "p2"]), "distinct"),
                          (lambda s: s["categorical"][1].update(levels=["p1", "p2", "rare"]), "categories of")):
        bad = mixed_ref.to_dict()
        edit(bad["multivariate"])
        with pytest.raises(ReferenceProfileError, match=message):
            loads_reference(json.dumps(bad))


def test_monitor_with_categoricals_exports_the_error_stream_like_a_direct_computation(
        exporter, mixed_ref: otel_ml.Reference) -> None:
    pd = pytest.importorskip("pandas")
    assert mixed_ref.multivariate is not None
    summary, error = mixed_ref.multivariate.summary, mixed_ref.multivariate.error

    @otel_ml.monitor(model="m", version="1", reference=mixed_ref)
    def predict(df: Any) -> np.ndarray:
        return np.zeros(len(df))

    data = _mixed(1400, seed=11)
    data["seg"][3] = "unknown"  # a value outside the levels sets none of them, as in training
    frame = pd.DataFrame(data)
    predict(frame.iloc[:1000])
    for i in range(1000, 1200, 2):  # small batches: the buffered path
        predict(frame.iloc[i:i + 2])
    for i in range(1200, 1400):  # single rows
        predict(frame.iloc[i:i + 1])
    wrong = frame.iloc[1:2].astype({"x1": object})  # (row 0 has a missing plan)
    wrong.loc[wrong.index[0], "x1"] = "oops"  # a wrong-typed number: the row's error is skipped too
    predict(wrong)
    assert otel_ml.flush(5.0)
    z = (_indicators(data, summary) - summary.mean) / summary.scale
    oracle = ((z - z @ summary.components.T @ summary.components) ** 2).sum(axis=1)
    missing = np.array([v is None for v in data["plan"]])
    reserved = {semconv.FEATURE_NAME: semconv.RECONSTRUCTION_ERROR_FEATURE}
    hist = point(exporter.last, semconv.FEATURE_VALUE, **reserved)
    assert list(hist.explicit_bounds) == list(error.edges)
    assert list(hist.bucket_counts) == bucket_counts(oracle[~missing], np.asarray(error.edges)).tolist()
    assert value(exporter.last, semconv.FEATURE_MISSING, **reserved) == int(missing.sum()) + 1


def test_calibration_relation_between_a_category_and_a_number() -> None:
    """A fast seeded version of the categorical world of benchmarks/multivariate_calibration.py: the
    segments' means of x0 swap with every marginal unchanged; a numeric-only summary cannot see it."""
    r = _calibration().run_categorical(windows=40, rows=1000)
    assert r["cat-relation"]["encoded"] >= 0.9 and r["cat-relation"]["univariate"] <= 0.12
    assert r["cat-relation"]["numeric_only"] <= 0.12
    assert r["cat-none"]["encoded"] <= 0.12


def test_drift_command_sees_a_category_and_number_relation_change(tmp_path: Path) -> None:
    """otel-ml drift on files counts the reconstruction error with the categorical levels, as a monitored
    process does: the segments' means swapped is flagged by the multivariate stream alone."""
    pd = pytest.importorskip("pandas")
    from click.testing import CliRunner

    from otel_ml._cli import main

    module = _calibration()
    encoded, _ = module.mixed_references()
    encoded.save(tmp_path / "ref.json")
    rng = np.random.default_rng(6)
    reserved = semconv.RECONSTRUCTION_ERROR_FEATURE
    seen = {}
    for swapped in (False, True):
        pd.DataFrame(module.mixed_sample(rng, 3000, swapped=swapped)).to_csv(tmp_path / "cur.csv", index=False)
        result = CliRunner().invoke(main, ["drift", "--reference", str(tmp_path / "ref.json"),
                                           "--data", str(tmp_path / "cur.csv"), "--format", "json"])
        by_name = {f["name"]: f for f in json.loads(result.output)["features"]}
        seen[swapped] = (by_name[reserved]["detected"], any(f["detected"] for n, f in by_name.items() if n != reserved))
    assert seen == {False: (False, False), True: (True, False)}
