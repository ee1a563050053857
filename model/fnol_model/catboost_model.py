"""Reads a CatBoost model into the plain structures the ONNX compiler works from.

Everything the compiler cannot reproduce exactly is refused here with a
`CompileError` naming what was found and what is supported.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .cityhash import MASK, cat_feature_hash, combine_hash

# The dense hash map CatBoost saves its CTR tables in reports its empty-slot marker
# as a key; no real combination hashes to it.
EMPTY_BUCKET_KEY = MASK

SUPPORTED_CTR_TYPES = ("Borders", "Counter", "FeatureFreq")
# Loss -> how the raw tree sum becomes the prediction CatBoost's predict() returns.
PREDICTION_TRANSFORMS = {
    "RMSE": "identity",
    "MAE": "identity",
    "Quantile": "identity",
    "Tweedie": "exp",
    "Poisson": "exp",
    "Logloss": "sigmoid",
    "CrossEntropy": "sigmoid",
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

    kind: str  # "cat" or "float"
    feature: int  # cat feature index or float feature index
    border: float = 0.0  # float elements only: the bit is value > border


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
    # hash of the combination -> counts ([n_class0, n_class1] for Borders, [n] for Counter)
    table: dict[int, list[int]] = field(default_factory=dict)
    counter_denominator: int = 0

    def value(self, counts: list[int] | None) -> np.float32:
        """The CTR value for a combination, in float32 exactly as CatBoost computes it."""
        f32 = np.float32
        if self.ctr_type == "Borders":
            good, total = (counts[1], counts[0] + counts[1]) if counts else (0, 0)
        else:  # Counter, FeatureFreq
            good, total = (counts[0] if counts else 0), self.counter_denominator
        ctr = (f32(good) + f32(self.prior_num)) / (f32(total) + f32(self.prior_denom))
        return f32((f32(ctr) + f32(self.shift)) * f32(self.scale))


@dataclass(frozen=True)
class Split:
    kind: str  # "float" or "ctr"
    feature: int  # float feature index or ctr index
    border: float


@dataclass
class Tree:
    splits: list[Split]  # splits[d] is bit d of the leaf index
    leaf_values: list[float]


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

    def cat_feature_by_name(self, name: str) -> CatFeature:
        return next(c for c in self.cat_features if c.name == name)


def combination_hash(ctr: Ctr, cat_hashes: dict[int, int], float_bits: dict[tuple[int, float], bool]) -> int:
    """CatBoost's hash of one combination: categorical hashes first, then float bits."""
    h = 0
    for e in ctr.elements:
        if e.kind == "cat":
            v = cat_hashes[e.feature]
            h = combine_hash(h, v if v < 2**31 else (v - 2**32) & MASK)  # int32 sign extension
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
                "features compile exactly to ONNX"
            )
    if doc.get("non_symmetric_trees") or "oblivious_trees" not in doc:
        raise CompileError(f"{path}: only symmetric (oblivious) trees are supported")

    params = doc.get("model_info", {}).get("params", {})
    loss = params.get("loss_function", {}).get("type", "")
    if loss in ("MultiClass", "MultiClassOneVsAll", "MultiLogloss", "MultiRMSE"):
        raise CompileError(f"{path}: multi-dimensional model (loss {loss}); only one output per model is supported")
    if loss not in PREDICTION_TRANSFORMS:
        raise CompileError(
            f"{path}: loss function {loss or '(unknown)'} is not supported; "
            f"supported: {', '.join(sorted(PREDICTION_TRANSFORMS))}"
        )
    class_params = doc.get("model_info", {}).get("class_params") or {}
    if len(class_params.get("class_names", [])) > 2:
        raise CompileError(f"{path}: multiclass classifier; only binary classifiers are supported")

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
    names = [""] * (len(float_features) + len(cat_features))
    for f in (*float_features, *cat_features):
        names[f.flat_index] = f.name
    if info.get("one_hot_features") or any(
        s.get("split_type") == "OneHotFeature" for t in doc["oblivious_trees"] for s in t["splits"]
    ):
        raise CompileError(f"{path}: one-hot encoded categorical features are not supported yet")

    ctrs: list[Ctr] = []
    for c in info.get("ctrs", []):
        if c["ctr_type"] not in SUPPORTED_CTR_TYPES:
            raise CompileError(
                f"{path}: CTR type {c['ctr_type']} is not supported; supported: {', '.join(SUPPORTED_CTR_TYPES)}"
            )
        elements = []
        for e in c["elements"]:
            kind = e["combination_element"]
            if kind == "cat_feature_value":
                elements.append(Element("cat", e["cat_feature_index"]))
            elif kind == "float_feature":
                elements.append(Element("float", e["float_feature_index"], _as_f32(e["border"])))
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
            borders=[_as_f32(b) for b in c["borders"]],
        )
        data = doc.get("ctr_data", {}).get(c["identifier"])
        if data is None:
            raise CompileError(f"{path}: CTR {c['identifier']} has no statistics table")
        stride = data["hash_stride"]
        expected_stride = 3 if ctr.ctr_type == "Borders" else 2
        if stride != expected_stride:
            raise CompileError(
                f"{path}: CTR {ctr.ctr_type} with {stride - 1} target classes is not supported "
                "(only binary target statistics)"
            )
        if ctr.ctr_type == "Borders" and ctr.target_border_idx != 0:
            raise CompileError(f"{path}: CTR target border index {ctr.target_border_idx} is not supported")
        hm = data["hash_map"]
        for i in range(0, len(hm), stride):
            key = int(hm[i])
            if key != EMPTY_BUCKET_KEY:
                ctr.table[key] = [int(x) for x in hm[i + 1 : i + stride]]
        ctr.counter_denominator = int(data.get("counter_denominator", 0))
        ctrs.append(ctr)

    # A split's split_index counts all binary features: float borders, then CTR borders.
    index: list[tuple[str, int, float]] = []
    for f, raw in zip(float_features, info.get("float_features", []), strict=True):
        index += [("float", f.index, _as_f32(b)) for b in raw["borders"]]
    for i, ctr in enumerate(ctrs):
        index += [("ctr", i, b) for b in ctr.borders]

    trees = []
    for t in doc["oblivious_trees"]:
        splits = []
        for s in t["splits"]:
            kind = s["split_type"]
            if kind not in ("FloatFeature", "OnlineCtr"):
                raise CompileError(f"{path}: split type {kind} is not supported")
            k, feat, border = index[s["split_index"]]
            if k != ("float" if kind == "FloatFeature" else "ctr") or not math.isclose(
                border, _as_f32(s["border"]), rel_tol=0, abs_tol=0
            ):
                raise CompileError(f"{path}: split {s['split_index']} does not match the model's feature borders")
            splits.append(Split(k, feat, border))
        if len(t["leaf_values"]) != 2 ** len(splits):
            raise CompileError(f"{path}: a tree has {len(t['leaf_values'])} leaves for {len(splits)} splits")
        trees.append(Tree(splits, [float(v) for v in t["leaf_values"]]))

    scale, biases = doc.get("scale_and_bias", [1, [0]])
    if len(biases) != 1:
        raise CompileError(f"{path}: {len(biases)} model dimensions; only one is supported")
    return CatBoostModel(
        path=path,
        loss=loss,
        transform=PREDICTION_TRANSFORMS[loss],
        float_features=float_features,
        cat_features=cat_features,
        ctrs=ctrs,
        trees=trees,
        scale=float(scale),
        bias=float(biases[0]),
        feature_names=names,
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
