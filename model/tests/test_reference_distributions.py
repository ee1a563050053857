"""Reference distributions for drift monitoring: what the graph and the model card record, checked
against the training CSV read independently with the convention of docs/model-format.md."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
from catboost import CatBoostClassifier, CatBoostRegressor
from schema_check import errors

from fnol_model import distributions
from fnol_model.__main__ import main as cli_main
from fnol_model.distributions import METADATA_KEY, feature_psi, psi
from fnol_model.fnol import CATEGORICAL, FEATURES, NUMERIC, PANDAS_NA_TEXTS, Sources
from fnol_model.pipeline import compile_and_verify, fnol_reference_distributions
from fnol_model.runtime import OnnxModel

SCHEMA = json.loads(
    (Path(distributions.__file__).parent / "reference_distributions.schema.json").read_text(encoding="utf-8")
)
SHARE_TOLERANCE = 1.0000001e-6  # shares are rounded to 6 decimals


@pytest.fixture(scope="module")
def predictions(onnx_model: OnnxModel, rows: list[dict]) -> dict[str, np.ndarray]:
    return onnx_model.predict(rows)


@pytest.fixture(scope="module")
def doc(sources: Sources, predictions: dict[str, np.ndarray]) -> dict:
    return fnol_reference_distributions(sources.training_csv, predictions)


@pytest.fixture(scope="module")
def csv_rows(sources: Sources) -> list[dict[str, str]]:
    """The training CSV through the csv module: no pandas, no compiler code."""
    with open(sources.training_csv, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _number(cell: str) -> float:
    return math.nan if cell in PANDAS_NA_TEXTS else float(cell)


def _bin(x: float, edges: list[float]) -> int:
    """The documented convention, written out: bin 0 is x <= e1, bin i is e_i < x <= e_(i+1), the last x > e_k."""
    if edges and x <= edges[0]:
        return 0
    for i in range(1, len(edges)):
        if edges[i - 1] < x <= edges[i]:
            return i
    return len(edges)


def _expected_edges(values: np.ndarray) -> list[float]:
    """Each distinct value up to 10 of them, else the deciles: the smallest v with share(x <= v) >= p."""
    v = np.sort(values[~np.isnan(values)])
    distinct = sorted(set(v.tolist()))
    # ceil(p * n) - 1 is the position of the decile p in the sorted values
    points = distinct if len(distinct) <= 10 else [float(v[-(-i * len(v) // 10) - 1]) for i in range(1, 10)]
    out: list[float] = []
    for p in points:
        e = float(f"{p:.6g}")
        if not out or e > out[-1]:
            out.append(e)
    return out


def _all_distributions(doc: dict) -> Iterator[tuple[str, dict]]:
    for group in ("inputs", "outputs"):
        for name, d in doc[group].items():
            if d["type"] == "columns":
                for j, c in enumerate(d["columns"]):
                    yield f"{group}.{name}[{j}]", c
            else:
                yield f"{group}.{name}", d


def test_every_graph_input_and_output_is_described(doc, compiled):
    g = compiled.model.graph
    assert list(doc["inputs"]) == [i.name for i in g.input]
    assert list(doc["outputs"]) == [o.name for o in g.output]
    assert doc["rows"] == 7691 and doc["version"] == 1
    assert doc["source"]["file"] == "Data_Scientist_Interview_Task.csv"
    assert doc["source"]["sha256"] == "f78c3076e83a92b5d02dc76fa608bc2d5c08f88ef7cb01720a30dba443e49237"
    for f in FEATURES:
        assert doc["inputs"][f]["type"] == ("string" if f in CATEGORICAL else "number"), f


def test_document_validates_against_the_schema(doc):
    assert errors(doc, SCHEMA) == []
    # and the schema check is not a rubber stamp
    broken = json.loads(json.dumps(doc))
    broken["inputs"]["Notification_period"]["shares"].append(-0.5)
    broken["inputs"]["Weather_conditions"]["values"] = ["x"] * 51
    broken["outputs"]["ultimate_cost"]["type"] = "histogram"
    del broken["source"]["sha256"]
    problems = errors(broken, SCHEMA)
    for where in (
        "$.inputs.Notification_period",
        "$.inputs.Weather_conditions",
        "$.outputs.ultimate_cost",
        "$.source: lacks 'sha256'",
    ):
        assert any(p.startswith(where) for p in problems), (where, problems)


def test_shares_sum_to_one_and_fit_the_bins(doc):
    for where, d in _all_distributions(doc):
        parts = [*d["shares"], d["missing"], *([d["other"]] if d["type"] == "string" else [])]
        assert abs(sum(parts) - 1) < 1e-9, where
        assert all(0 <= s <= 1 for s in parts), where
        if d["type"] == "number":
            assert len(d["shares"]) == len(d["edges"]) + 1, where
            assert d["edges"] == sorted(set(d["edges"])), where
        else:
            assert len(d["shares"]) == len(d["values"]), where


def test_edges_are_the_training_quantiles(doc, csv_rows, predictions):
    for f in NUMERIC:
        values = np.array([_number(r[f]) for r in csv_rows])
        assert doc["inputs"][f]["edges"] == _expected_edges(values), f
    for name, values in predictions.items():
        assert doc["outputs"][name]["edges"] == _expected_edges(values), name
    # discrete features keep each value in its own bin; a long tail gets decile edges
    assert doc["inputs"]["Vechile_registration_present"]["edges"] == [0, 1]
    assert doc["inputs"]["TP_type_driver"]["edges"] == [0, 1, 2, 3, 4, 5]
    period = doc["inputs"]["Notification_period"]
    assert period["edges"][0] == 0 and len(period["edges"]) < 9  # 45 % of claims are notified the same day
    assert len(doc["outputs"]["ultimate_cost"]["edges"]) == 9


def test_shares_recomputed_from_the_csv_match(doc, csv_rows):
    n = len(csv_rows)
    for f in NUMERIC:
        d = doc["inputs"][f]
        counts = [0] * (len(d["edges"]) + 1)
        missing = 0
        for r in csv_rows:
            x = _number(r[f])
            if math.isnan(x):
                missing += 1
            else:
                counts[_bin(x, d["edges"])] += 1
        for got, want in zip(d["shares"], counts, strict=True):
            assert abs(got - want / n) <= SHARE_TOLERANCE, f
        assert abs(d["missing"] - missing / n) <= SHARE_TOLERANCE, f
    for f in CATEGORICAL:
        d = doc["inputs"][f]
        texts = [r[f] for r in csv_rows]
        for value, share in zip(d["values"], d["shares"], strict=True):
            assert abs(share - texts.count(value) / n) <= SHARE_TOLERANCE, (f, value)
        assert abs(d["missing"] - texts.count("") / n) <= SHARE_TOLERANCE, f
        assert d["other"] == 0, f  # every FNOL category is listed
    # the values as clients send them, before the graph's cleaning
    weather = doc["inputs"]["Weather_conditions"]
    assert weather["values"] == ["NORMAL", "WET", "N/K", "SNOW,ICE,FOG", "N/A"]
    assert weather["shares"][4] == round(345 / n, 6)
    assert "#" in doc["inputs"]["PH_considered_TP_at_fault"]["values"]


def test_output_shares_match_the_graph_predictions(doc, predictions):
    for name, values in predictions.items():
        d = doc["outputs"][name]
        counts = np.bincount([_bin(float(x), d["edges"]) for x in values], minlength=len(d["shares"]))
        for got, want in zip(d["shares"], counts, strict=True):
            assert abs(got - want / len(values)) <= SHARE_TOLERANCE, name
        # deciles of a continuous output: about a tenth of the claims per bin
        if name != "large_loss_probability":
            assert all(abs(s - 0.1) < 0.02 for s in d["shares"]), (name, d["shares"])


def test_metadata_stays_small(doc):
    size = len(distributions.metadata_value(doc).encode("utf-8"))
    assert 1000 < size < 8192, size


def test_categories_are_capped_and_long_texts_pooled():
    values = [f"v{i:03d}" for i in range(500) for _ in range(1 + i % 3)] + ["x" * 101] * 400 + [None, ""] * 10
    d = distributions.categorical_distribution(values)
    assert len(d["values"]) == 50 and "x" * 101 not in d["values"]
    assert all(s == pytest.approx(3 / len(values), abs=1e-6) for s in d["shares"])  # the most frequent, ties by text
    assert d["values"][:2] == ["v002", "v005"]
    assert d["missing"] == pytest.approx(20 / len(values), abs=1e-6)
    assert d["other"] == pytest.approx(1 - 20 / len(values) - 50 * 3 / len(values), abs=1e-6)
    big = distributions.numeric_distribution(np.random.default_rng(0).normal(size=100_000))
    assert len(big["edges"]) == 9 and len(distributions.metadata_value(big)) < 400


def test_bins_are_upper_inclusive_and_open_at_both_ends():
    edges = [0.0, 1.0, 5.0]
    values = [-math.inf, -3.0, 0.0, 0.5, 1.0, 5.0, 5.000001, math.inf, math.nan, None]
    assert [distributions.numeric_bin(x, edges) for x in values] == [0, 0, 0, 1, 1, 2, 3, 3, None, None]
    counts, missing = distributions.numeric_counts(np.array([math.nan if v is None else v for v in values]), edges)
    assert counts == [3, 2, 1, 2] and missing == 2


def test_shares_are_rounded_to_sum_to_exactly_one():
    s = distributions.shares([1, 1, 1])
    assert s == [0.333334, 0.333333, 0.333333] and sum(int(round(x * 1e6)) for x in s) == 1_000_000
    assert distributions.shares([0, 0]) == [0.0, 0.0]


def test_psi_worked_example():
    # the example of docs/model-format.md, for a scorer to reproduce
    assert psi([0.5, 0.5, 0.0], [0.25, 0.75, 0.0]) == pytest.approx(0.274653, abs=1e-6)
    assert psi([0.5, 0.5, 0.0], [0.45, 0.45, 0.1]) == pytest.approx(0.700621, abs=1e-6)
    assert psi([0.2, 0.8], [0.2, 0.8]) == 0
    with pytest.raises(ValueError, match="3 reference bins against 2"):
        psi([0.2, 0.3, 0.5], [0.5, 0.5])


@pytest.fixture(scope="module")
def csv_sample(sources: Sources) -> pd.DataFrame:
    """2,000 claims of the training CSV, every cell as its text."""
    return pd.read_csv(sources.training_csv, keep_default_na=False, dtype=str).sample(2000, random_state=7)


def test_psi_worked_examples_file():
    """The cases a scorer replays (model/tests/data/psi-worked-examples.json); the shares there were
    counted by hand: e.g. the first case, 20 values: 5 at or below 0, 5 in (0, 1], 3 in (1, 3], 2 in
    (3, 8], 4 above 8, 1 null."""
    cases = json.loads((Path(__file__).parent / "data" / "psi-worked-examples.json").read_text(encoding="utf-8"))
    assert cases["epsilon"] == distributions.PSI_EPSILON
    assert cases["cases"][0]["observed_shares"] == [0.25, 0.25, 0.15, 0.1, 0.2, 0.05]
    for case in cases["cases"]:
        d = case["distribution"]
        assert distributions.observed_shares(d, case["values"]) == pytest.approx(case["observed_shares"], abs=1e-12)
        assert feature_psi(d, case["values"]) == pytest.approx(case["psi"], abs=1e-9), case["name"]
        assert errors(d, SCHEMA["definitions"][d["type"]] | {"definitions": SCHEMA["definitions"]}) == []


def test_psi_is_near_zero_for_a_sample_of_the_training_data(doc, csv_sample, onnx_model):
    records = _records(csv_sample)
    for f in FEATURES:
        assert feature_psi(doc["inputs"][f], [r[f] for r in records]) < 0.05, f
    pred = onnx_model.predict(records)
    for name, values in pred.items():
        assert feature_psi(doc["outputs"][name], values.tolist()) < 0.05, name


def test_psi_flags_a_skewed_feature(doc, csv_sample, onnx_model):
    late = csv_sample.copy()
    late["Notification_period"] = np.random.default_rng(3).integers(30, 365, size=len(late)).astype(str)
    snow = csv_sample.copy()
    snow["Weather_conditions"] = "SNOW,ICE,FOG"
    for skewed, feature in ((late, "Notification_period"), (snow, "Weather_conditions")):
        records = _records(skewed)
        score = feature_psi(doc["inputs"][feature], [r[feature] for r in records])
        assert score > 0.2, (feature, score)
        others = [f for f in FEATURES if f != feature]
        assert max(feature_psi(doc["inputs"][f], [r[f] for r in records]) for f in others) < 0.05
    # every claim notified a month or more after the loss: the predicted cost moves with them
    late_pred = onnx_model.predict(_records(late))
    assert feature_psi(doc["outputs"]["ultimate_cost"], late_pred["ultimate_cost"].tolist()) > 0.2


def _records(frame: pd.DataFrame) -> list[dict]:
    """CSV rows as a client sends them: numbers as numbers, categories as their text, blanks as null."""
    out = []
    for r in frame[FEATURES].to_dict("records"):
        out.append(
            {
                f: (None if v == "" else v) if f in CATEGORICAL else (None if v in PANDAS_NA_TEXTS else float(v))
                for f, v in r.items()
            }
        )
    return out


def test_the_build_records_them_in_graph_and_card_and_keeps_the_graph(sources, compiled, onnx_model, rows, tmp_path):
    path = compile_and_verify(sources, "1.0.0", tmp_path)  # raises when the parity gate fails
    written = onnx.load(str(path))
    meta = {p.key: p.value for p in written.metadata_props}
    recorded = json.loads(meta[METADATA_KEY])
    assert errors(recorded, SCHEMA) == []
    card = json.loads((tmp_path / "fnol-1.0.0.model-card.json").read_text())
    assert card["reference_distributions"] == recorded
    # exactness unchanged: the same graph as without the entry, the same predictions
    assert written.graph.SerializeToString() == compiled.model.graph.SerializeToString()
    assert [p.key for p in written.metadata_props].count(METADATA_KEY) == 1
    got = OnnxModel(str(path)).predict(rows[:500])
    want = onnx_model.predict(rows[:500])
    for name in want:
        assert np.array_equal(got[name], want[name]), name
    assert len(meta[METADATA_KEY].encode("utf-8")) < 8192


# --- the generic compile command ---


def _numeric_model(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"x": rng.normal(size=300), "k": rng.integers(0, 4, size=300).astype(float)})
    df.loc[::10, "x"] = np.nan
    m = CatBoostRegressor(iterations=20, depth=3, verbose=False, allow_writing_files=False, random_seed=1)
    m.fit(df, df["x"].fillna(0) * 2 + df["k"])
    m.save_model(str(tmp_path / "numeric.cbm"))
    data = tmp_path / "numeric.csv"
    df.to_csv(data, index=False)
    return tmp_path / "numeric.cbm", data


def _meta(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def test_generic_compile_without_data_records_none(tmp_path, capsys):
    cbm, _ = _numeric_model(tmp_path)
    assert cli_main(["compile", str(cbm), "--out", str(tmp_path / "m.onnx")]) == 0
    assert METADATA_KEY not in _meta(tmp_path / "m.onnx")
    assert "no reference distributions recorded" in capsys.readouterr().out


def test_generic_compile_with_reference_data(tmp_path):
    cbm, data = _numeric_model(tmp_path)
    assert cli_main(["compile", str(cbm), "--out", str(tmp_path / "m.onnx"), "--reference-data", str(data)]) == 0
    doc = json.loads(_meta(tmp_path / "m.onnx")[METADATA_KEY])
    assert errors(doc, SCHEMA) == []
    assert list(doc["inputs"]) == ["x", "k"] and list(doc["outputs"]) == ["prediction"]
    assert doc["rows"] == 300 and doc["inputs"]["x"]["missing"] == 0.1
    assert doc["inputs"]["k"]["edges"] == [0, 1, 2, 3]
    assert doc["source"]["file"] == "numeric.csv"


def test_generic_multiclass_with_data_records_one_distribution_per_class(tmp_path):
    rng = np.random.default_rng(9)
    df = pd.DataFrame({"x": rng.normal(size=240), "c": rng.choice(["a", "b", "c", ""], size=240)})
    y = np.where(df["x"] > 0.5, "hi", np.where(df["x"] < -0.5, "lo", "mid"))
    m = CatBoostClassifier(
        iterations=10, depth=2, loss_function="MultiClass", verbose=False, allow_writing_files=False, random_seed=1
    )
    m.fit(df, y, cat_features=["c"])
    m.save_model(str(tmp_path / "multi.cbm"))
    df.to_csv(tmp_path / "multi.csv", index=False)
    out = tmp_path / "multi.onnx"
    assert (
        cli_main(["compile", str(tmp_path / "multi.cbm"), "--out", str(out), "--data", str(tmp_path / "multi.csv")])
        == 0
    )
    doc = json.loads(_meta(out)[METADATA_KEY])
    assert errors(doc, SCHEMA) == []
    probs = doc["outputs"]["probabilities"]
    assert probs["type"] == "columns" and len(probs["columns"]) == 3
    cat = doc["inputs"]["c"]
    assert sorted(cat["values"]) == ["a", "b", "c"]  # the empty string is missing
    assert cat["missing"] == pytest.approx((df["c"] == "").mean(), abs=1e-6)


def test_bad_reference_data_stops_before_anything_is_written(tmp_path, capsys):
    cbm, data = _numeric_model(tmp_path)
    out = tmp_path / "m.onnx"
    (tmp_path / "other.csv").write_text("y,z\n1,2\n")
    assert cli_main(["compile", str(cbm), "--out", str(out), "--reference-data", str(tmp_path / "other.csv")]) == 2
    assert "other.csv: the data has no column for the model's feature(s) x, k" in capsys.readouterr().err
    (tmp_path / "empty.csv").write_text("x,k\n")
    assert cli_main(["compile", str(cbm), "--out", str(out), "--reference-data", str(tmp_path / "empty.csv")]) == 2
    assert "empty.csv: has no data rows" in capsys.readouterr().err
    assert cli_main(["compile", str(cbm), "--out", str(out), "--reference-data", str(tmp_path / "absent.csv")]) == 2
    assert "absent.csv: no such data file" in capsys.readouterr().err
    assert not out.exists()


def test_reference_data_beside_a_vocabulary_file(tmp_path):
    """--data names the categories, --reference-data is what the distributions are counted on."""
    rng = np.random.default_rng(4)
    df = pd.DataFrame({"x": rng.normal(size=200), "c": rng.choice(["a", "b"], size=200, p=[0.9, 0.1])})
    m = CatBoostRegressor(iterations=10, depth=2, verbose=False, allow_writing_files=False, random_seed=1)
    m.fit(df, df["x"] + (df["c"] == "a"), cat_features=["c"])
    m.save_model(str(tmp_path / "m.cbm"))
    df.to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame({"x": [0.0, 0.0], "c": ["a", "b"]}).to_csv(tmp_path / "vocab.csv", index=False)
    out = tmp_path / "m.onnx"
    args = ["compile", str(tmp_path / "m.cbm"), "--out", str(out), "--data", str(tmp_path / "vocab.csv")]
    assert cli_main([*args, "--reference-data", str(tmp_path / "train.csv")]) == 0
    doc = json.loads(_meta(out)[METADATA_KEY])
    assert doc["rows"] == 200 and doc["source"]["file"] == "train.csv"
    assert doc["inputs"]["c"]["values"][0] == "a" and doc["inputs"]["c"]["shares"][0] == (df["c"] == "a").mean()
