"""Helper of generic-serving.test.ts: trains CatBoost models on the FNOL CSV and prints the
records to score with CatBoost's own predictions for them.

    python models.py train OUT_DIR         -> OUT_DIR/defaults.cbm, classifier.cbm, multiclass.cbm
    python models.py expect MODEL.cbm CSV  -> JSON {"records": [...], "expected": [...]} on stdout
                                              (multiclass: "expected" holds one list per record,
                                              and "classes" CatBoost's class order)
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from catboost import CatBoostClassifier, CatBoostRegressor

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "model"))
from fnol_model.fnol import CATEGORICAL, FEATURES  # noqa: E402


def read(csv: str) -> pd.DataFrame:
    # the CSV's text as it is: categories are strings, nothing is read as missing
    return pd.read_csv(csv, dtype={c: str for c in CATEGORICAL}, keep_default_na=False)


def train(csv: str, out: Path) -> None:
    df = read(csv)
    out.mkdir(parents=True, exist_ok=True)
    # CatBoost's defaults: RMSE, 1000 symmetric trees of depth 6, one_hot_max_size and CTRs as it chooses
    reg = CatBoostRegressor(verbose=False, allow_writing_files=False)
    reg.fit(df[FEATURES], df["Capped Incurred"], cat_features=CATEGORICAL)
    reg.save_model(str(out / "defaults.cbm"))
    # a binary classifier with one-hot encoding and depthwise trees
    large = (df["Incurred"] > df["Capped Incurred"]).astype(int)
    cls = CatBoostClassifier(
        iterations=60,
        grow_policy="Depthwise",
        one_hot_max_size=4,
        verbose=False,
        allow_writing_files=False,
    )
    cls.fit(df[FEATURES], large, cat_features=CATEGORICAL)
    cls.save_model(str(out / "classifier.cbm"))
    # a multiclass model with text labels: the claim's size band
    band = pd.cut(
        df["Capped Incurred"],
        [-np.inf, 1000, 10000, np.inf],
        labels=["small", "medium", "large"],
    ).astype(str)
    multi = CatBoostClassifier(
        iterations=80,
        loss_function="MultiClass",
        verbose=False,
        allow_writing_files=False,
    )
    multi.fit(df[FEATURES], band, cat_features=CATEGORICAL)
    multi.save_model(str(out / "multiclass.cbm"))


def expect(model_path: str, csv: str) -> None:
    df = read(csv)
    rng = np.random.default_rng(3)
    rows = (
        df[FEATURES]
        .iloc[rng.choice(len(df), 200, replace=False)]
        .reset_index(drop=True)
    )
    records = rows.to_dict("records")
    # unseen and empty categories, missing numbers
    for i, r in enumerate(records[:60]):
        r[CATEGORICAL[i % len(CATEGORICAL)]] = ["never seen", "", "N/A"][i % 3]
        if i % 2:
            r["Notification_period"] = None
    frame = pd.DataFrame(
        [{f: (np.nan if r[f] is None else r[f]) for f in FEATURES} for r in records],
        columns=FEATURES,
    )
    for f in FEATURES:
        if f not in CATEGORICAL:
            frame[f] = frame[f].astype(np.float32).astype(np.float64)
    probe = CatBoostClassifier()
    probe.load_model(model_path)
    classes: list[str] | None = None
    loss = probe.get_all_params()["loss_function"]
    if loss in ("Logloss", "CrossEntropy"):
        expected = probe.predict_proba(frame)[:, 1]
    elif loss in ("MultiClass", "MultiClassOneVsAll"):
        expected = probe.predict_proba(frame)
        classes = [str(c) for c in probe.classes_]
    else:
        reg = CatBoostRegressor()
        reg.load_model(model_path)
        expected = reg.predict(frame)
    plain = [
        {
            k: (
                None
                if isinstance(v, float) and math.isnan(v)
                else (float(v) if isinstance(v, (int, float)) else v)
            )
            for k, v in r.items()
        }
        for r in records
    ]
    answer: dict[str, object] = {"records": plain, "expected": np.asarray(expected, dtype=float).tolist()}
    if classes is not None:
        answer["classes"] = classes
    print(json.dumps(answer))


if __name__ == "__main__":
    if sys.argv[1] == "train":
        train(sys.argv[3], Path(sys.argv[2]))
    else:
        expect(sys.argv[2], sys.argv[3])
