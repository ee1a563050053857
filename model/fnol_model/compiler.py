"""Builds the FNOL ONNX graph from the data scientists' deliverable."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from . import __version__, catboost_model
from .catboost_model import CatBoostModel, CompileError
from .fnol import CATEGORICAL, CLEANING, FEATURES, NUMERIC, OUTPUTS, Sources, large_severity, read_training_csv
from .fnol import vocabulary as training_vocabulary
from .onnx_graph import CategoricalInput, GraphBuilder

MODEL_NAME = "fnol"


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Compiled:
    model: onnx.ModelProto
    attritional: CatBoostModel
    large: CatBoostModel
    severity: float
    vocabulary: dict[str, list[str]]


def check_features(model: CatBoostModel) -> None:
    if model.feature_names != FEATURES:
        raise CompileError(
            f"{model.path}: features {model.feature_names} differ from the FNOL feature order; "
            "the compiler expects the 37 training columns documented in docs/model-format.md"
        )
    cats = [c.name for c in model.cat_features]
    if sorted(cats) != sorted(CATEGORICAL):
        raise CompileError(f"{model.path}: categorical features {cats} differ from {CATEGORICAL}")


def add_self_test(model: onnx.ModelProto, records: list[dict], expected: dict[str, list[float]]) -> None:
    """Records and the predictions they must get: the scorer checks them before it is ready."""
    value = json.dumps({"records": records, "expected": expected, "tolerance": {"relative": 1e-4, "absolute": 1e-4}})
    model.metadata_props.append(onnx.StringStringEntryProto(key="self_test", value=value))


def compile_fnol(sources: Sources, version: str, severity: float | None = None) -> Compiled:
    for p in (sources.attritional, sources.large, sources.training_csv):
        if not Path(p).is_file():
            raise CompileError(f"{p}: not found; set FNOL_ARTIFACTS to the folder with the FNOL deliverable")
    attritional = catboost_model.load(sources.attritional)
    large = catboost_model.load(sources.large)
    if attritional.transform != "exp":
        raise CompileError(
            f"{attritional.path}: the attritional model must be a Tweedie regressor, not {attritional.loss}"
        )
    if large.transform != "sigmoid":
        raise CompileError(f"{large.path}: the large-loss model must be a binary classifier, not {large.loss}")
    for m in (attritional, large):
        check_features(m)

    df = read_training_csv(sources.training_csv)
    vocab = training_vocabulary(df)
    for m in (attritional, large):
        catboost_model.check_vocabulary(m, vocab)
    if severity is None:
        severity = large_severity(df)

    builder = GraphBuilder(
        numeric=NUMERIC,
        categorical=[CategoricalInput(c, vocab[c], CLEANING.get(c, {})) for c in CATEGORICAL],
        order=FEATURES,
    )
    attr = builder.prediction(attritional, builder.model_raw(attritional, "attritional"), "attritional")
    prob = builder.prediction(large, builder.model_raw(large, "large"), "large")
    sev = builder.const("large_severity", np.array(severity, dtype=np.float64))
    ultimate = builder.node("Add", [attr, builder.node("Mul", [prob, sev], "expected_large")], "ultimate")
    builder.output(ultimate, "ultimate_cost")
    builder.output(attr, "attritional_cost")
    builder.output(prob, "large_loss_probability")

    features_meta = [
        {"name": f, "type": "string", "nullable": f in CLEANING and "" in CLEANING[f], "values": vocab[f]}
        if f in CATEGORICAL
        else {"name": f, "type": "number", "nullable": True}
        for f in FEATURES
    ]
    metadata = {
        "name": MODEL_NAME,
        "version": version,
        "feature_order": json.dumps(FEATURES),
        "features": json.dumps(features_meta),
        "primary_output": "ultimate_cost",
        "outputs": json.dumps(OUTPUTS),
        "large_severity": repr(severity),
        "source_sha256": json.dumps(
            {Path(p).name: sha256_file(p) for p in (sources.attritional, sources.large, sources.training_csv)}
        ),
        "compiler": f"fnol-model-compiler {__version__}",
    }
    model = builder.build(f"{MODEL_NAME}_{version}", list(OUTPUTS), metadata)
    return Compiled(model, attritional, large, severity, vocab)
