"""The compiled graph predicts what CatBoost predicts, on every case we can think of."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fnol_model.fnol import CATEGORICAL, FEATURES
from fnol_model.parity import TOLERANCE, check, compare, example_records, generated_records, positional_to_record


def _report(label, res):
    print(f"\n{label}: {res.cases} cases, max abs {res.max_abs_error}, max rel {res.max_rel_error}")


def test_every_training_row(onnx_model, reference, rows):
    res = check(onnx_model, reference, rows)
    _report("training rows", res)
    assert res.cases == 7691
    assert res.failures == 0, res.as_dict()


def test_generated_records(onnx_model, reference, training, compiled):
    records = generated_records(training, compiled.vocabulary)
    res = check(onnx_model, reference, records)
    _report("generated records", res)
    assert res.cases > 10_000
    assert res.failures == 0, res.as_dict()


def test_every_combination_of_known_categories_is_covered(training, compiled):
    records = generated_records(training, compiled.vocabulary)
    seen = {tuple(r[c] for c in CATEGORICAL) for r in records}
    for combo in [("Motorway", "SNOW,ICE,FOG", "n/k", "N", "Y"), ("never-seen", "N/A", "2", "Other", "#")]:
        assert combo in seen


def test_example_records_match_catboost(onnx_model, reference, training):
    records = example_records(training)
    assert records[0]["Location_of_incident"] == "2"  # integers in categorical positions read as text
    assert records[0]["Notification_period"] == 1
    res = check(onnx_model, reference, records)
    assert res.failures == 0


@pytest.mark.parametrize("value", [math.nan, -1.0, 0.0, 1e9, -1e9, 1e-30])
def test_missing_and_extreme_numbers_in_every_column(onnx_model, reference, rows, value):
    base = rows[0]
    records = []
    for f in FEATURES:
        if f not in CATEGORICAL:
            r = dict(base)
            r[f] = None if isinstance(value, float) and math.isnan(value) else value
            records.append(r)
    res = check(onnx_model, reference, records)
    assert res.failures == 0, res.as_dict()


def test_cleaning_is_part_of_the_graph(onnx_model, rows):
    r = dict(rows[0])
    variants = []
    for weather in ["N/K", "N/A", "", None, "NA", "null"]:
        variants.append({**r, "Weather_conditions": weather})
    for ph in ["n/k", "#"]:
        variants.append({**r, "PH_considered_TP_at_fault": ph})
    out = onnx_model.predict(variants)["ultimate_cost"]
    assert np.all(out[:6] == out[0]), "missing/N/A weather must score as N/K"
    assert out[6] == out[7], "'#' must score as n/k"
    assert out[0] != onnx_model.predict([{**r, "Weather_conditions": "WET"}])["ultimate_cost"][0]


def test_unseen_value_scores_like_catboost_unseen(onnx_model, reference, rows):
    r = dict(rows[0])
    recs = [{**r, c: "value-never-seen-in-training"} for c in CATEGORICAL]
    res = check(onnx_model, reference, recs)
    assert res.failures == 0
    # two different unseen values are indistinguishable, as in CatBoost
    a = onnx_model.predict([{**r, "Location_of_incident": "Lay-by"}])["ultimate_cost"]
    b = onnx_model.predict([{**r, "Location_of_incident": "Driveway"}])["ultimate_cost"]
    assert a[0] == b[0]


def test_positional_rows_convert_integer_categories():
    rec = positional_to_record(list(range(1, 38)))
    assert rec["Weather_conditions"] == "3" and rec["TP_region_yorkshire"] == 37


def test_compare_flags_differences_beyond_tolerance():
    want = {"x": np.array([1000.0, 0.5])}
    assert compare({"x": np.array([1000.0 * (1 + 2 * TOLERANCE), 0.5])}, want).failures == 1
    assert compare({"x": np.array([1000.0, 0.5 + 2 * TOLERANCE])}, want).failures == 1
    assert compare({"x": np.array([np.nan, 0.5])}, want).failures == 1
    assert compare({"x": np.array([1000.0 * (1 + TOLERANCE / 2), 0.5])}, want).failures == 0
