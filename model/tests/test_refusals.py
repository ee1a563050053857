"""The compiler refuses what it cannot compile exactly, with a clear message and a non-zero exit."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from catboost import CatBoostClassifier, CatBoostRegressor

from fnol_model import catboost_model, generic
from fnol_model.catboost_model import CompileError

ROOT = Path(__file__).resolve().parents[2]


def _doc(path: Path) -> dict:
    from catboost import CatBoost

    m = CatBoost()
    m.load_model(str(path))
    out = path.with_suffix(".json")
    m.save_model(str(out), format="json")
    return json.loads(out.read_text())


def _small_frame(n=60):
    rng = np.random.default_rng(1)
    return pd.DataFrame({"x": rng.normal(size=n), "c": rng.choice(["a", "b", "c", "d"], size=n)})


def test_not_a_catboost_file(tmp_path):
    bogus = tmp_path / "model.cbm"
    bogus.write_bytes(b"this is not a model\x00\x01")
    with pytest.raises(CompileError, match="not a CatBoost model"):
        catboost_model.load(bogus)


def test_missing_file(tmp_path):
    with pytest.raises(CompileError, match="no such file"):
        catboost_model.load(tmp_path / "absent.cbm")


def test_multi_target_regressor_is_refused(tmp_path):
    df = _small_frame()
    y = np.stack([df["x"].to_numpy(), -df["x"].to_numpy()], axis=1)
    m = CatBoostRegressor(iterations=5, loss_function="MultiRMSE", verbose=False, allow_writing_files=False)
    m.fit(df, y, cat_features=["c"])
    m.save_model(str(tmp_path / "multi.cbm"))
    with pytest.raises(CompileError, match="loss MultiRMSE makes a multi-target regressor"):
        catboost_model.load(tmp_path / "multi.cbm")


def test_text_features_are_refused(tmp_path):
    words = ["red car", "blue van", "green bike", "red van", "blue car"]
    df = pd.DataFrame({"x": np.arange(50.0), "t": [words[i % 5] for i in range(50)]})
    y = np.arange(50) % 2
    m = CatBoostClassifier(iterations=5, verbose=False, allow_writing_files=False)
    m.fit(df, y, text_features=["t"])
    m.save_model(str(tmp_path / "text.cbm"))
    with pytest.raises(CompileError, match="text features"):
        catboost_model.load(tmp_path / "text.cbm")


def test_unknown_ctr_type_is_refused(sources, tmp_path):
    doc = _doc(Path(sources.attritional).resolve())
    broken = copy.deepcopy(doc)
    broken["features_info"]["ctrs"][0]["ctr_type"] = "FloatTargetMeanValue"
    with pytest.raises(CompileError, match="CTR type FloatTargetMeanValue is not supported"):
        catboost_model.parse(broken, "attritional")


def test_unsupported_loss_is_refused(sources):
    doc = _doc(Path(sources.attritional).resolve())
    broken = copy.deepcopy(doc)
    broken["model_info"]["params"]["loss_function"]["type"] = "YetiRank"
    with pytest.raises(CompileError, match="loss function YetiRank is not supported"):
        catboost_model.parse(broken, "attritional")


def test_categorical_model_without_data_is_refused(tmp_path):
    df = _small_frame()
    m = CatBoostRegressor(iterations=20, one_hot_max_size=10, verbose=False, allow_writing_files=False)
    m.fit(df, df["x"] * 2, cat_features=["c"])
    m.save_model(str(tmp_path / "onehot.cbm"))
    with pytest.raises(CompileError, match="keeps only hashes of their values, so pass the training data"):
        generic.compile_model(tmp_path / "onehot.cbm", None, name="m", version="1.0.0")


def test_data_without_a_category_the_model_saw_is_refused(tmp_path):
    df = _small_frame()
    for one_hot, what in ((10, "one-hot encoded value"), (1, "combination")):
        m = CatBoostRegressor(iterations=20, one_hot_max_size=one_hot, verbose=False, allow_writing_files=False)
        m.fit(df, df["x"] * 2 + (df["c"] == "a"), cat_features=["c"])
        m.save_model(str(tmp_path / "m.cbm"))
        partial = df[df["c"] != "d"]
        with pytest.raises(CompileError, match=f"{what}.* of .*c.* not in"):
            generic.compile_model(tmp_path / "m.cbm", partial, name="m", version="1.0.0")


def test_incomplete_vocabulary_is_refused(sources, compiled):
    model = catboost_model.load(sources.attritional)
    vocab = {k: list(v) for k, v in compiled.vocabulary.items()}
    vocab["Location_of_incident"].remove("Motorway")
    with pytest.raises(CompileError, match="Location_of_incident seen in training are not in the vocabulary"):
        catboost_model.check_vocabulary(model, vocab)


def test_cli_exits_non_zero_with_a_message(tmp_path, sources):
    bogus = tmp_path / "bogus.cbm"
    bogus.write_text("not a model")
    proc = subprocess.run(
        [sys.executable, "-m", "fnol_model", "build", "--attritional", str(bogus), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "model"), "FNOL_ARTIFACTS": str(Path(sources.training_csv).parent)},
    )
    assert proc.returncode == 2
    assert "error:" in proc.stderr and "not a CatBoost model" in proc.stderr
    assert not (tmp_path / "out").exists(), "nothing is written when compilation fails"


def test_compile_cli_exits_non_zero_and_writes_nothing(tmp_path):
    df = _small_frame()
    m = CatBoostRegressor(iterations=5, verbose=False, allow_writing_files=False)
    m.fit(df, df["x"], cat_features=["c"])
    m.save_model(str(tmp_path / "m.cbm"))
    proc = subprocess.run(
        [sys.executable, "-m", "fnol_model", "compile", str(tmp_path / "m.cbm"), "--out", str(tmp_path / "m.onnx")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "model")},
    )
    assert proc.returncode == 2
    assert "error:" in proc.stderr and "--data" in proc.stderr
    assert not (tmp_path / "m.onnx").exists()
