from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from fnol_model.compiler import Compiled, add_self_test, compile_fnol
from fnol_model.fnol import FEATURES, Sources, large_severity, read_training_csv
from fnol_model.parity import example_records
from fnol_model.reference import CatBoostReference
from fnol_model.runtime import OnnxModel

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def sources() -> Sources:
    folder = Path(os.environ.get("FNOL_ARTIFACTS") or ROOT / ".." / "shared" / "fnol")
    return Sources.from_folder(folder)


@pytest.fixture(scope="session")
def training(sources):
    return read_training_csv(sources.training_csv)


@pytest.fixture(scope="session")
def reference(sources: Sources, training: pd.DataFrame) -> CatBoostReference:
    return CatBoostReference(sources.attritional, sources.large, large_severity(training))


@pytest.fixture(scope="session")
def compiled(sources, training, reference):
    examples = example_records(training)
    expected = {k: v.tolist() for k, v in reference.predict(examples).items()}
    compiled = compile_fnol(sources, "1.0.0")
    add_self_test(compiled.model, examples, expected)
    return compiled


@pytest.fixture(scope="session")
def onnx_model(compiled: Compiled) -> OnnxModel:
    return OnnxModel(compiled.model.SerializeToString())


@pytest.fixture(scope="session")
def rows(training: pd.DataFrame) -> list[dict]:
    return training[FEATURES].to_dict("records")
