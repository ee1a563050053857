"""Reads a CatBoost model into the plain structures the ONNX compiler works from.

Everything the compiler cannot reproduce exactly is refused here with a
`CompileError` naming what was found and what is supported.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .cityhash import MASK, cat_feature_hash, combine_hash

# The dense hash map CatBoost saves its CTR tables in reports its empty-slot marker
# as a key; no real combination hashes to it.
EMPTY_BUCKET_KEY = MASK

SUPPORTED_CTR_TYPES = ("Borders", "Buckets", "BinarizedTargetMeanValue", "Counter", "FeatureFreq")
# Loss -> how the raw tree sum becomes the prediction CatBoost gives by default:
# CatBoostRegressor.predict() for regressors, predict_proba() for classifiers
# (measured with catboost 1.2.10, see docs/model-compiler.md).
PREDICTION_TRANSFORMS = {
    "RMSE": "identity",
    "MAE": "identity",
    "Quantile": "identity",
    "Expectile": "identity",
    "MAPE": "identity",
    "Huber": "identity",
    "LogCosh": "identity",
    "Lq": "identity",
    "LogLinQuantile": "identity",
    "Cox": "identity",
    "Tweedie": "exp",
    "Poisson": "exp",
    "Logloss": "sigmoid",
    "CrossEntropy": "sigmoid",
    "MultiClass": "softmax",
    "MultiClassOneVsAll": "sigmoid",
}
# Losses whose model has more than one output per record that the contract has no name for.
REFUSED_LOSSES = {
    "MultiRMSE": "a multi-target regressor (one prediction per target)",
    "RMSEWithUncertainty": "a regressor that predicts a mean and a variance",
    "MultiLogloss": "a multi-label classifier",
    "MultiCrossEntropy": "a multi-label classifier",
    "SurvivalAft": "a survival model with an interval target",
}


class CompileError(Exception):
    """The model cannot be compiled exactly; the message says why and what to do."""


@dataclass(frozen=True)
class FloatFeature:
    index: int  # position among float features
    flat_index: int  # position among all features
    name: str
    nan_as_true: bool  # NaN compares greater than every border


@dataclass(frozen=True)
class CatFeature:
    index: int  # position among categorical features
    flat_index: int
    name: str


@dataclass(frozen=True)
class Element:
    """One element of a CTR's feature combination."""

    kind: str  # "cat", "float" or "onehot"
    feature: int  # cat feature index or float feature index
    border: float = 0.0  # float: the bit is value > border; onehot: the bit is hash(value) == border


@dataclass
class Ctr:
    ctr_type: str
    elements: tuple[Element, ...]
    prior_num: float
    prior_denom: float
    shift: float
    scale: float
    target_border_idx: int
    borders: list[float]
    # hash of the combination -> statistics: counts per target class (Borders, Buckets),
    # [count] (Counter, FeatureFreq) or [sum, count] (BinarizedTargetMeanValue)
    table: dict[int, list[float]] = field(default_factory=dict)
    counter_denominator: int = 0

    def value(self, counts: list[float] | None) -> np.float32:
        """The CTR value for a combination, in float32 exactly as CatBoost's model evaluator computes it."""
        f32 = np.float32
        t = self.ctr_type
        good: float
        total: float
        if t in ("Counter", "FeatureFreq"):
            good, total = (counts[0] if counts else 0), self.counter_denominator
        elif counts is None:
            good, total = 0, 0
        elif t == "BinarizedTargetMeanValue":
            good, total = counts[0], counts[1]
        elif t == "Buckets":
            good, total = counts[self.target_border_idx], sum(int(c) for c in counts)
        elif len(counts) == 2:  # Borders, binary target
            good, total = counts[1], counts[0] + counts[1]
        else:  # Borders, target binarized into more than two classes
            good = sum(int(c) for c in counts[self.target_border_idx + 1 :])
            total = sum(int(c) for c in counts[: self.target_border_idx + 1]) + good
        ctr = (f32(good) + f32(self.prior_num)) / (f32(total) + f32(self.prior_denom))
        return f32((f32(ctr) + f32(self.shift)) * f32(self.scale))


@dataclass(frozen=True)
class Split:
    kind: str  # "float", "ctr" or "onehot"
    feature: int  # float feature index, ctr index or cat feature index
    border: float  # float/ctr: the bit is value > border; onehot: the bit is hash(value) == border (uint32)


@dataclass
class Tree:
    """A symmetric (oblivious) tree: splits[d] is bit d of the leaf index."""

    splits: list[Split]
    leaf_values: list[float]  # leaf-major: leaf i has leaf_values[i * dimension : (i + 1) * dimension]


@dataclass
class Node:
    """A node of a non-symmetric (Depthwise, Lossguide) tree: a split with two subtrees, or a leaf."""

    split: Split | None = None
    left: Node | None = None  # the split is false
    right: Node | None = None  # the split is true
    values: list[float] | None = None  # leaf: one value per model dimension


@dataclass
class CatBoostModel:
    path: str
    loss: str
    transform: str
    float_features: list[FloatFeature]
    cat_features: list[CatFeature]
    ctrs: list[Ctr]
    trees: list[Tree]
    scale: float
    bias: float
    feature_names: list[str]
    dimension: int = 1
    biases: list[float] = field(default_factory=lambda: [0.0])
    class_names: list[str] = field(default_factory=list)
    symmetric: bool = True
    node_trees: list[Node] = field(default_factory=list)  # non-symmetric trees
    one_hot_values: dict[int, list[int]] = field(default_factory=dict)  # cat index -> uint32 hashes

    @property
    def splits(self) -> list[Split]:
        """Every split of every tree."""
        if self.symmetric:
            return [s for t in self.trees for s in t.splits]
        out: list[Split] = []
        stack = list(self.node_trees)
        while stack:
            n = stack.pop()
            if n.split is not None:
                out.append(n.split)
                stack += [c for c in (n.left, n.right) if c is not None]
        return out

    def cat_feature_by_name(self, name: str) -> CatFeature:
        return next(c for c in self.cat_features if c.name == name)


def combination_hash(ctr: Ctr, cat_hashes: dict[int, int], float_bits: dict[tuple[int, float], bool]) -> int:
    """CatBoost's hash of one combination: categorical hashes first, then float bits."""
    h = 0
    for e in ctr.elements:
        if e.kind == "cat":
            v = cat_hashes[e.feature]
            h = combine_hash(h, v if v < 2**31 else (v - 2**32) & MASK)  # int32 sign extension
        elif e.kind == "onehot":
            h = combine_hash(h, 1 if cat_hashes[e.feature] == int(e.border) else 0)
        else:
            h = combine_hash(h, 1 if float_bits[(e.feature, e.border)] else 0)
    return h


def _as_f32(x: float) -> float:
    return float(np.float32(x))


def load(path: str | Path) -> CatBoostModel:
    """Loads a .cbm file (through catboost's own JSON export) and validates it."""
    path = Path(path)
    if not path.is_file():
        raise CompileError(f"{path}: no such file; pass the path of a CatBoost .cbm model")
    import catboost  # imported here: catboost is heavy and only needed to read models

    model = catboost.CatBoost()
    try:
        model.load_model(str(path))
    except Exception as exc:  # catboost raises its own error type for any unreadable file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CompileError(f"{path}: not a CatBoost model file ({first})") from exc
    for getter, kind in (("get_text_feature_indices", "text"), ("get_embedding_feature_indices", "embedding")):
        if getattr(model, getter, lambda: [])():
            raise CompileError(
                f"{path}: the model has {kind} features; only numeric and categorical features compile exactly to ONNX"
            )
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "model.json"
        try:
            model.save_model(str(out), format="json")
        except Exception as exc:
            raise CompileError(f"{path}: catboost cannot export this model for compilation ({exc})") from exc
        doc = json.loads(out.read_text())
    return parse(doc, str(path))


def parse(doc: dict, path: str = "<json>") -> CatBoostModel:
    info = doc.get("features_info", {})
    for kind in ("text_features", "embedding_features"):
        if info.get(kind):
            raise CompileError(
                f"{path}: the model has {kind.replace('_', ' ')}; only numeric and categorical "
                "features compile exactly to ONNX (text and embedding features are computed by "
                "CatBoost's own tokenizers and estimators, which ONNX has no operators for)"
            )
    symmetric = "oblivious_trees" in doc
    if not symmetric and "trees" not in doc:
        raise CompileError(f"{path}: the model has no trees")

    params = doc.get("model_info", {}).get("params", {})
    loss = params.get("loss_function", {}).get("type", "")
    if loss in REFUSED_LOSSES:
        raise CompileError(
            f"{path}: loss {loss} makes {REFUSED_LOSSES[loss]}; the compiled-model contract names one "
            "prediction, one probability or one probability per class (docs/model-format.md)"
        )
    if loss not in PREDICTION_TRANSFORMS:
        raise CompileError(
            f"{path}: loss function {loss or '(unknown)'} is not supported; "
            f"supported: {', '.join(sorted(PREDICTION_TRANSFORMS))}"
        )
    class_params = doc.get("model_info", {}).get("class_params") or {}
    class_names = [str(c) for c in class_params.get("class_names", [])]

    float_features = []
    for f in info.get("float_features", []):
        treatment = f.get("nan_value_treatment", "AsIs")
        if treatment not in ("AsIs", "AsFalse", "AsTrue"):
            raise CompileError(f"{path}: unknown NaN treatment {treatment} for {f.get('feature_id')}")
        float_features.append(
            FloatFeature(f["feature_index"], f["flat_feature_index"], f["feature_id"], treatment == "AsTrue")
        )
    cat_features = [
        CatFeature(c["feature_index"], c["flat_feature_index"], c["feature_id"])
        for c in info.get("categorical_features", [])
    ]
    one_hot_values = {
        c["feature_index"]: [int(v) & 0xFFFFFFFF for v in c["values"]]
        for c in info.get("categorical_features", [])
        if c.get("values")
    }
    features: list[FloatFeature | CatFeature] = [*float_features, *cat_features]
    n_flat = max((f.flat_index for f in features), default=-1) + 1
    names = [""] * n_flat
    for f in features:
        names[f.flat_index] = f.name or str(f.flat_index)

    ctrs: list[Ctr] = []
    for c in info.get("ctrs", []):
        if c["ctr_type"] not in SUPPORTED_CTR_TYPES:
            raise CompileError(
                f"{path}: CTR type {c['ctr_type']} is not supported (it is not produced by CPU training); "
                f"supported: {', '.join(SUPPORTED_CTR_TYPES)}"
            )
        elements = []
        for e in c["elements"]:
            kind = e["combination_element"]
            if kind == "cat_feature_value":
                elements.append(Element("cat", e["cat_feature_index"]))
            elif kind == "float_feature":
                elements.append(Element("float", e["float_feature_index"], _as_f32(e["border"])))
            elif kind == "cat_feature_exact_value":
                elements.append(Element("onehot", e["cat_feature_index"], float(int(e["value"]) & 0xFFFFFFFF)))
            else:
                raise CompileError(f"{path}: CTR combination element {kind} is not supported")
        ctr = Ctr(
            ctr_type=c["ctr_type"],
            elements=tuple(elements),
            prior_num=c["prior_numerator"],
            prior_denom=c["prior_denomerator"],
            shift=c["shift"],
            scale=c["scale"],
            target_border_idx=c.get("target_border_idx", 0),
            borders=[_as_f32(b) for b in c.get("borders", [])],
        )
        data = doc.get("ctr_data", {}).get(c["identifier"])
        if data is None:
            raise CompileError(f"{path}: CTR {c['identifier']} has no statistics table")
        stride = data["hash_stride"]
        if ctr.ctr_type in ("Counter", "FeatureFreq"):
            expected = stride == 2
        elif ctr.ctr_type == "BinarizedTargetMeanValue":
            expected = stride == 3
        else:
            expected = stride >= 3 and ctr.target_border_idx < stride - 1
        if not expected:
            raise CompileError(
                f"{path}: CTR {ctr.ctr_type} (target border {ctr.target_border_idx}) has a statistics table "
                f"with {stride - 1} values per entry, which this compiler does not know how to read"
            )
        hm = data["hash_map"]
        for i in range(0, len(hm), stride):
            key = int(hm[i])
            if key != EMPTY_BUCKET_KEY:
                ctr.table[key] = [float(x) for x in hm[i + 1 : i + stride]]
        ctr.counter_denominator = int(data.get("counter_denominator", 0))
        ctrs.append(ctr)

    # A split's split_index counts all binary features: float borders, one-hot values, then CTR borders.
    index: list[tuple[str, int, float]] = []
    for f, raw in zip(float_features, info.get("float_features", []), strict=True):
        index += [("float", f.index, _as_f32(b)) for b in raw.get("borders", [])]
    for cat, values in sorted(one_hot_values.items()):
        index += [("onehot", cat, float(v)) for v in values]
    for i, ctr in enumerate(ctrs):
        index += [("ctr", i, b) for b in ctr.borders]

    def split_of(s: dict) -> Split:
        kind = s["split_type"]
        if kind == "FloatFeature":
            split = Split("float", s["float_feature_index"], _as_f32(s["border"]))
        elif kind == "OneHotFeature":
            split = Split("onehot", s["cat_feature_index"], float(int(s["value"]) & 0xFFFFFFFF))
        elif kind == "OnlineCtr":
            k, feat, border = index[s["split_index"]] if 0 <= s["split_index"] < len(index) else ("", 0, 0.0)
            split = Split("ctr", feat, border)
            if k != "ctr" or border != _as_f32(s["border"]):
                raise CompileError(f"{path}: split {s['split_index']} does not match the model's CTR borders")
        else:
            raise CompileError(
                f"{path}: split type {kind} is not supported (only float, one-hot and CTR splits of "
                "numeric and categorical features)"
            )
        if split.kind != "ctr" and (0 <= s.get("split_index", -1) < len(index)):
            k, feat, border = index[s["split_index"]]
            if (k, feat, border) != (split.kind, split.feature, split.border):
                raise CompileError(f"{path}: split {s['split_index']} does not match the model's feature borders")
        return split

    scale, biases = doc.get("scale_and_bias", [1, [0]])
    biases = [float(b) for b in (biases if isinstance(biases, list) else [biases])]
    dimension = len(biases)
    if dimension > 1 and loss not in ("MultiClass", "MultiClassOneVsAll"):
        raise CompileError(f"{path}: {dimension} model dimensions for loss {loss}; only multiclass has several")

    trees: list[Tree] = []
    node_trees: list[Node] = []
    if symmetric:
        for t in doc["oblivious_trees"]:
            splits = [split_of(s) for s in t.get("splits") or []]
            if len(t["leaf_values"]) != dimension * 2 ** len(splits):
                raise CompileError(f"{path}: a tree has {len(t['leaf_values'])} leaf values for {len(splits)} splits")
            trees.append(Tree(splits, [float(v) for v in t["leaf_values"]]))
    else:

        def node_of(d: dict, depth: int) -> Node:
            if depth > 64:
                raise CompileError(f"{path}: a tree is deeper than 64 levels")
            if "split" not in d:
                v: Any = d.get("value")
                values = [float(x) for x in (v if isinstance(v, list) else [v])]
                if len(values) != dimension:
                    raise CompileError(f"{path}: a leaf has {len(values)} values for {dimension} dimensions")
                return Node(values=values)
            return Node(split_of(d["split"]), node_of(d["left"], depth + 1), node_of(d["right"], depth + 1))

        node_trees = [node_of(t, 0) for t in doc["trees"]]

    return CatBoostModel(
        path=path,
        loss=loss,
        transform=PREDICTION_TRANSFORMS[loss],
        float_features=float_features,
        cat_features=cat_features,
        ctrs=ctrs,
        trees=trees,
        scale=float(scale),
        bias=biases[0],
        feature_names=names,
        dimension=dimension,
        biases=biases,
        class_names=class_names,
        symmetric=symmetric,
        node_trees=node_trees,
        one_hot_values=one_hot_values,
    )


def check_vocabulary(model: CatBoostModel, vocab: dict[str, list[str]]) -> None:
    """Every value in a single-feature CTR table must be one we can name.

    The graph maps a categorical value to its statistics through the vocabulary. A
    table entry no vocabulary value hashes to would be a value seen in training that
    the graph would treat as unseen, so compilation stops instead.
    """
    for ctr in model.ctrs:
        if len(ctr.elements) != 1 or ctr.elements[0].kind != "cat":
            continue
        feat = model.cat_features[ctr.elements[0].feature]
        known = {combination_hash(ctr, {feat.index: cat_feature_hash(v)}, {}) for v in vocab.get(feat.name, [])}
        unknown = set(ctr.table) - known
        if unknown:
            raise CompileError(
                f"{model.path}: {len(unknown)} value(s) of {feat.name} seen in training are not in the "
                f"vocabulary ({', '.join(vocab.get(feat.name, [])) or 'empty'}); pass the training data "
                "so every category is known"
            )
