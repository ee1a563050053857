"""The graph's interface is the contract the scorer relies on (docs/model-format.md)."""

from __future__ import annotations

import json

from onnx import TensorProto

from fnol_model.fnol import CATEGORICAL, FEATURES


def _shape(v):
    return [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]


def test_inputs_are_named_features_in_order(compiled):
    g = compiled.model.graph
    assert [i.name for i in g.input] == FEATURES
    for i in g.input:
        want = TensorProto.STRING if i.name in CATEGORICAL else TensorProto.FLOAT
        assert i.type.tensor_type.elem_type == want, i.name
        assert _shape(i) == ["N", 1]


def test_outputs(compiled):
    g = compiled.model.graph
    assert [o.name for o in g.output] == ["ultimate_cost", "attritional_cost", "large_loss_probability"]
    for o in g.output:
        assert o.type.tensor_type.elem_type == TensorProto.FLOAT and _shape(o) == ["N", 1]


def test_metadata(compiled):
    meta = {p.key: p.value for p in compiled.model.metadata_props}
    assert meta["name"] == "fnol" and meta["version"] == "1.0.0"
    assert json.loads(meta["feature_order"]) == FEATURES
    assert meta["primary_output"] == "ultimate_cost"
    features = {f["name"]: f for f in json.loads(meta["features"])}
    assert features["Weather_conditions"]["nullable"] is True
    assert features["Location_of_incident"]["nullable"] is False
    assert "Motorway" in features["Location_of_incident"]["values"]
    assert features["Notification_period"]["type"] == "number"
    st = json.loads(meta["self_test"])
    assert len(st["records"]) == 3 and len(st["expected"]["ultimate_cost"]) == 3
    assert float(meta["large_severity"]) == compiled.severity


def test_graph_uses_standard_operators_only(compiled):
    domains = {n.domain for n in compiled.model.graph.node}
    assert domains <= {"", "ai.onnx.ml"}
    assert {n.op_type for n in compiled.model.graph.node if n.domain == "ai.onnx.ml"} == {"LabelEncoder"}


def test_severity_is_the_mean_excess_of_large_claims(compiled):
    assert abs(compiled.severity - 128818.101010101) < 1e-6
