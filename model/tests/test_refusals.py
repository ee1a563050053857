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

from fnol_model import catboost_model
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


def test_multiclass_is_refused(tmp_path):
    df = _small_frame()
    y = np.arange(len(df)) % 3
    m = CatBoostClassifier(iterations=5, loss_function="MultiClass", verbose=False, allow_writing_files=False)
    m.fit(df, y, cat_features=["c"])
    m.save_model(str(tmp_path / "multi.cbm"))
    with pytest.raises(CompileError, match="(?i)multi"):
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


def test_one_hot_features_are_refused(tmp_path):
    df = _small_frame()
    y = df["x"] * 2
    m = CatBoostRegressor(iterations=20, one_hot_max_size=10, verbose=False, allow_writing_files=False)
    m.fit(df, y, cat_features=["c"])
    m.save_model(str(tmp_path / "onehot.cbm"))
    with pytest.raises(CompileError, match="one-hot"):
        catboost_model.load(tmp_path / "onehot.cbm")


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
