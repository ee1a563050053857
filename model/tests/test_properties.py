"""Property: every randomly configured CatBoost model compiles to a graph that gives CatBoost's
predictions, |onnx - catboost| <= 1e-5 * max(1, |catboost|), on held-out and adversarial rows.

A fixed seed keeps `npm test` reproducible and short; `npm run model:soak` runs hundreds.
The mutation tests break the compiler on purpose and check that the same property catches it.
"""

from __future__ import annotations

import numpy as np
import pytest

from fnol_model import catboost_model, onnx_graph, soak

SEED = 20261201
MODELS = 40


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    return [soak.run_case(soak.draw(i, SEED), tmp_path_factory.mktemp("soak")) for i in range(MODELS)]


def test_random_models_match_catboost(outcomes):
    ran = [o for o in outcomes if "_skipped" not in o.case.params]
    assert len(ran) >= MODELS * 0.8, "most random configurations are valid CatBoost trainings"
    failed = [(o.case.index, o.case.params, o.error, o.max_rel_error) for o in ran if o.failures]
    assert not failed, failed
    s = soak.summary(outcomes, 0)
    # the fixed seed covers every tree kind, the three task kinds and both data sets
    assert set(s["coverage"]["grow_policy"]) == {"SymmetricTree", "Depthwise", "Lossguide"}
    # symmetric trees take the split-bit layout, Depthwise and Lossguide the level walk
    for o in ran:
        assert o.graph == ("split bits" if o.case.params["grow_policy"] == "SymmetricTree" else "level walk")
    assert {"MultiClass", "Logloss"} <= set(s["coverage"]["loss"])
    assert set(s["coverage"]["dataset"]) == {"fnol", "generated"}
    assert set(s["coverage"]["nan_mode"]) == {"Min", "Max", "Forbidden"}
    assert s["max_rel_error"] <= 1e-5


# Each mutation is a plausible compiler bug; the property must catch every one.
def _flip_border_comparison(mp):
    mp.setattr(onnx_graph, "BRANCH_GT", 2)  # >= instead of > (TreeEnsemble)
    mp.setattr(onnx_graph, "SPLIT_COMPARISON", "GreaterOrEqual")  # and in the split bits of symmetric trees


def _drop_ctr_prior(mp):
    value = catboost_model.Ctr.value

    def no_prior(self, counts):
        saved = self.prior_num
        self.prior_num = 0.0
        try:
            return value(self, counts)
        finally:
            self.prior_num = saved

    mp.setattr(catboost_model.Ctr, "value", no_prior)


def _leaf_off_by_one(mp):
    mp.setattr(onnx_graph, "oblivious_leaf", lambda index, depth: (index + 1) % (1 << depth))


def _split_bits_in_reverse_depth_order(mp):
    # bit d of a symmetric tree's leaf index taken from split depth - 1 - d
    mp.setattr(
        onnx_graph, "depth_weights", lambda depth: (2 ** np.arange(depth, dtype=np.float32))[::-1].reshape(1, -1)
    )


def _nan_goes_the_other_way(mp):
    parse = catboost_model.parse

    def flipped(doc, path="<json>"):
        m = parse(doc, path)
        m.float_features = [
            catboost_model.FloatFeature(f.index, f.flat_index, f.name, not f.nan_as_true) for f in m.float_features
        ]
        return m

    mp.setattr(catboost_model, "parse", flipped)


def _left_right_swapped(mp):
    parse = catboost_model.parse

    def swapped(doc, path="<json>"):
        m = parse(doc, path)
        stack = list(m.node_trees)
        while stack:
            n = stack.pop()
            if n.split is not None:
                n.left, n.right = n.right, n.left
                stack += [c for c in (n.left, n.right) if c is not None]
        return m

    mp.setattr(catboost_model, "parse", swapped)


def _shallow_leaf_not_padded(mp):
    # a leaf above the last level placed at its own index instead of the one the walk reaches
    mp.setattr(onnx_graph, "level_leaf", lambda index, depth, full_depth: index)


def _level_walk_bit_of_the_parent(mp):
    # each level's bit taken from the split of the root instead of the current node
    build = onnx_graph.GraphBuilder.levelwise_raw

    def from_root(self, model, prefix):
        node = self.node

        def patched(op, inputs, prefix_=None, domain="", **attrs):
            if op == "GatherElements" and attrs.get("axis") == 1 and "_split" in (prefix_ or ""):
                inputs = [inputs[0], self.node("Mul", [inputs[1], self.const("zero", np.zeros((1, 1), np.int32))])]
            return node(op, inputs, prefix_, domain, **attrs)

        self.node = patched
        try:
            return build(self, model, prefix)
        finally:
            del self.node

    mp.setattr(onnx_graph.GraphBuilder, "levelwise_raw", from_root)


MUTATIONS = {
    "border comparison > becomes >=": (_flip_border_comparison, None),
    "CTR prior dropped": (_drop_ctr_prior, None),
    "symmetric tree leaf index off by one": (_leaf_off_by_one, "SymmetricTree"),
    "symmetric tree split bits in reverse depth order": (_split_bits_in_reverse_depth_order, "SymmetricTree"),
    "NaN sent to the other branch": (_nan_goes_the_other_way, None),
    "non-symmetric tree branches swapped": (_left_right_swapped, "Depthwise"),
    "level walk: a shallow leaf not padded to the last level": (_shallow_leaf_not_padded, "Lossguide"),
    "level walk: every level's split taken at the root": (_level_walk_bit_of_the_parent, "Depthwise"),
}


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_the_property_fails_when_the_compiler_is_wrong(name, monkeypatch, tmp_path):
    mutate, grow = MUTATIONS[name]
    mutate(monkeypatch)
    caught = 0
    tried = 0
    for i in range(MODELS):
        case = soak.draw(i, SEED)
        if grow and case.params["grow_policy"] != grow:
            continue
        if name == "CTR prior dropped" and not case.params.get("simple_ctr") and case.dataset != "fnol":
            continue
        if name == "NaN sent to the other branch" and case.params["nan_mode"] == "Forbidden":
            continue
        o = soak.run_case(case, tmp_path)
        if "_skipped" in case.params:
            continue
        tried += 1
        caught += bool(o.failures)
        if caught:
            break
        if tried >= 6:
            break
    assert caught, f"mutation '{name}' went unnoticed by {tried} random models"


def test_summary_reports_figures():
    o = soak.Outcome(soak.draw(0, SEED))
    s = soak.summary([o], 1.5)
    assert s["models"] == 1 and s["seconds"] == 1.5 and np.isfinite(s["max_rel_error"])


# Configurations the soak found broken (seed 7): a symmetric tree without splits (null in the
# JSON export) and multiclass one-vs-all lossguide trees with single-leaf trees.
@pytest.mark.parametrize("index", [29, 73])
def test_soak_findings_stay_fixed(index, tmp_path):
    o = soak.run_case(soak.draw(index, 7), tmp_path)
    assert "_skipped" not in o.case.params
    assert not o.failures, (o.error, {k: p.as_dict() for k, p in o.parity.items()})


def _deep_frame(seed):
    """3,000 rows of six normal floats and one categorical of five values."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    n = 3000
    df = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(6)})
    df["c"] = np.array(["a", "b", "c", "d", "e"], dtype=object)[rng.integers(5, size=n)]
    return rng, df


def _compile_deep(model, df, tmp_path):
    """Saves and compiles the model with df as the parity rows; asserts parity; the ONNX path."""
    from fnol_model import generic

    cbm, csv, out = tmp_path / "deep.cbm", tmp_path / "deep.csv", tmp_path / "deep.onnx"
    model.save_model(str(cbm))
    df.to_csv(csv, index=False)
    parity = generic.compile_file(cbm, out, csv, "deep", "1.0.0")
    assert all(p.failures == 0 and p.cases > 0 for p in parity.values()), {k: p.as_dict() for k, p in parity.items()}
    return out


# The soak draws depth 2 to 7; a symmetric tree of depth 8 has the largest uint8 weight (2^7)
# and deeper ones take a second row of weights in the leaf-index MatMulInteger.
@pytest.mark.parametrize("depth", [8, 10])
def test_deep_symmetric_trees_match_catboost(depth, tmp_path):
    import onnx
    from catboost import CatBoostRegressor

    rng, df = _deep_frame(depth)
    n = len(df)
    y = df["x0"] * df["x1"] + np.sin(3 * df["x2"]) + (df["c"] == "b") + rng.normal(scale=0.1, size=n)
    model = CatBoostRegressor(depth=depth, iterations=15, random_seed=0, verbose=False, allow_writing_files=False)
    model.fit(df, y, cat_features=["c"])
    out = _compile_deep(model, df, tmp_path)
    weights = {
        i.name: onnx.numpy_helper.to_array(i) for i in onnx.load(str(out)).graph.initializer if "powers" in i.name
    }
    (w,) = weights.values()
    assert w.dtype == np.uint8 and w.shape == ((1, depth) if depth <= 8 else (2, depth))


# Depthwise and Lossguide trees padded to full trees past LEVEL_WALK_MAX_LEAVES keep TreeEnsemble.
def test_non_symmetric_trees_too_large_for_the_level_walk_take_tree_ensemble(monkeypatch, tmp_path):
    monkeypatch.setattr(onnx_graph, "LEVEL_WALK_MAX_LEAVES", 1)
    case = next(
        c for c in (soak.draw(i, SEED) for i in range(MODELS)) if c.params["grow_policy"] in ("Depthwise", "Lossguide")
    )
    o = soak.run_case(case, tmp_path)
    assert "_skipped" not in o.case.params
    assert o.graph == "TreeEnsemble"
    assert not o.failures, (o.error, {k: p.as_dict() for k, p in o.parity.items()})

    # called directly, the level walk refuses such a model with the reason
    model = catboost_model.load(next(tmp_path.glob("*.cbm")))
    builder = onnx_graph.GraphBuilder([f.name for f in model.float_features], [], model.feature_names)
    with pytest.raises(catboost_model.CompileError, match="compile this model as one TreeEnsemble"):
        builder.levelwise_raw(model, "model")


# The soak draws depth 2 to 7; the level walk of deeper non-symmetric trees (tables of 2^depth
# per tree, Lossguide leaves far above the last level) is checked here.
@pytest.mark.parametrize("grow_policy", ["Depthwise", "Lossguide"])
def test_deep_non_symmetric_trees_take_the_level_walk_and_match_catboost(grow_policy, tmp_path):
    import onnx
    from catboost import CatBoostClassifier

    _, df = _deep_frame(10)
    y = np.digitize(df["x0"] * df["x1"] + np.sin(3 * df["x2"]) + (df["c"] == "b"), [-0.5, 0.5])
    extra = {"max_leaves": 64} if grow_policy == "Lossguide" else {}
    model = CatBoostClassifier(
        loss_function="MultiClass",
        grow_policy=grow_policy,
        depth=10,
        iterations=12,
        random_seed=0,
        verbose=False,
        allow_writing_files=False,
        **extra,
    )
    model.fit(df, y, cat_features=["c"])
    out = _compile_deep(model, df, tmp_path)
    graph = onnx.load(str(out)).graph
    assert soak.layout({n.op_type for n in graph.node}) == "level walk"
    assert any(i.name.startswith("model_level9_") for i in graph.initializer)  # ten levels walked
