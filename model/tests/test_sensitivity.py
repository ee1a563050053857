"""The parity suite catches an inexact graph: one changed leaf or CTR entry fails it."""

from __future__ import annotations

import copy

import numpy as np

from fnol_model import catboost_model
from fnol_model.fnol import CATEGORICAL, CLEANING, FEATURES, NUMERIC
from fnol_model.onnx_graph import CategoricalInput, GraphBuilder
from fnol_model.parity import compare
from fnol_model.runtime import OnnxModel


def _graph(model, vocab):
    b = GraphBuilder(NUMERIC, [CategoricalInput(c, vocab[c], CLEANING.get(c, {})) for c in CATEGORICAL], FEATURES)
    b.output(b.prediction(model, b.model_raw(model, "m"), "m"), "prediction")
    meta = {"features": "[]"}
    onnx_model = b.build("perturbed", ["prediction"], meta)
    m = OnnxModel.__new__(OnnxModel)
    import onnxruntime as ort

    m.session = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    m.features = [{"name": f, "type": "string" if f in CATEGORICAL else "number"} for f in FEATURES]
    m.outputs = ["prediction"]
    return m


def _catboost_attritional(reference, rows):
    return {"prediction": reference.predict(rows)["attritional_cost"]}


def test_unperturbed_graph_passes(sources, compiled, reference, rows):
    model = catboost_model.load(sources.attritional)
    res = compare(_graph(model, compiled.vocabulary).predict(rows), _catboost_attritional(reference, rows))
    assert res.failures == 0


def test_one_changed_leaf_value_fails(sources, compiled, reference, rows):
    model = copy.deepcopy(catboost_model.load(sources.attritional))
    tree = model.trees[0]
    leaf = int(np.argmax(np.abs(tree.leaf_values)))
    tree.leaf_values[leaf] += 0.01
    res = compare(_graph(model, compiled.vocabulary).predict(rows), _catboost_attritional(reference, rows))
    assert res.failures > 0


def test_one_changed_ctr_entry_fails(sources, compiled, reference, rows):
    model = copy.deepcopy(catboost_model.load(sources.attritional))
    # the most used statistics of the CTR the trees split on most often
    used: dict[int, int] = {}
    for t in model.trees:
        for s in t.splits:
            if s.kind == "ctr":
                used[s.feature] = used.get(s.feature, 0) + 1
    ctr = model.ctrs[max(used, key=lambda c: used[c])]
    key = max(ctr.table, key=lambda k: sum(ctr.table[k]))
    counts = ctr.table[key]
    ctr.table[key] = [counts[0] + 500] + counts[1:] if ctr.ctr_type == "Borders" else [counts[0] // 3]
    res = compare(_graph(model, compiled.vocabulary).predict(rows), _catboost_attritional(reference, rows))
    assert res.failures > 0
