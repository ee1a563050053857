"""Baseline of the model benchmark: CatBoost's own predict on the rows the ONNX graphs get.

    python catboost_predict.py ARTIFACTS OUT_DIR SECONDS

Prepares the benchmark models in OUT_DIR (the FNOL recipe's graph is built by
`npm run model:build`, its graph in the previous split-bit layout here; a regressor trained with CatBoost's defaults on the FNOL CSV and two
generated models are trained once and compiled with the generic command on every run), writes the rows
of each model (columnar JSON, 10,000 rows), and prints per model and batch size CatBoost's
records per second and milliseconds per call (thread_count=-1: every core).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pandas as pd

from fnol_model import compiler, generic, onnx_graph
from fnol_model.fnol import (
    CATEGORICAL,
    FEATURES,
    Sources,
    large_severity,
    read_training_csv,
)
from fnol_model.reference import CatBoostReference

BATCHES = (1, 100, 1000, 10000)


def measure(fn, seconds: float) -> tuple[int, float]:
    fn()  # warm up
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or calls < 3:
        fn()
        calls += 1
    return calls, time.perf_counter() - start


def rows_of(df: pd.DataFrame, n: int) -> pd.DataFrame:
    return df.iloc[np.arange(n) % len(df)].reset_index(drop=True)


def columns(df: pd.DataFrame) -> dict:
    return {
        c: [None if isinstance(v, float) and v != v else v for v in df[c].tolist()]
        for c in df.columns
    }


def generated(out: Path, csv: Path) -> dict[str, tuple[Path, pd.DataFrame]]:
    from catboost import CatBoostClassifier, CatBoostRegressor

    models: dict[str, tuple[Path, pd.DataFrame]] = {}
    raw = pd.read_csv(csv, dtype={c: str for c in CATEGORICAL}, keep_default_na=False)
    X = raw[FEATURES]
    rng = np.random.default_rng(0)
    n = 20000
    G = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(8)})
    for j in range(3):
        G[f"c{j}"] = np.array([f"v{k}" for k in range(6 + 3 * j)], dtype=object)[
            rng.integers(6 + 3 * j, size=n)
        ]
    y = G["x0"] + np.sin(G["x1"]) + (G["c0"] == "v1") + rng.normal(scale=0.3, size=n)
    specs = {
        "fnol-defaults-rmse": (
            CatBoostRegressor(),
            X,
            raw["Capped Incurred"],
            CATEGORICAL,
        ),
        "generated-multiclass-depthwise": (
            CatBoostClassifier(
                loss_function="MultiClass",
                grow_policy="Depthwise",
                iterations=300,
                one_hot_max_size=6,
            ),
            G,
            np.digitize(y, [-1, 0.5, 2]),
            ["c0", "c1", "c2"],
        ),
        "generated-logloss-symmetric": (
            CatBoostClassifier(iterations=500, depth=8),
            G,
            (y > 0.5).astype(int),
            ["c0", "c1", "c2"],
        ),
    }
    for name, (model, data, target, cats) in specs.items():
        cbm, onnx_path, data_csv = (
            out / f"{name}.cbm",
            out / f"{name}.onnx",
            out / f"{name}.csv",
        )
        if not (cbm.is_file() and data_csv.is_file()):
            model.set_params(verbose=False, allow_writing_files=False, random_seed=0)
            model.fit(data, target, cat_features=cats)
            model.save_model(str(cbm))
            data.to_csv(data_csv, index=False)
        # trained once, compiled on every run: the graph measured is the current compiler's
        generic.compile_file(cbm, onnx_path, data_csv, name, "1.0.0")
        source = generic.catboost_model.load(cbm)
        # the previous split-bit layout of symmetric trees, measured beside the current one
        if source.symmetric:
            generic.compile_file(
                cbm,
                out / f"{name}.previous.onnx",
                data_csv,
                name,
                "1.0.0",
                previous_leaf_lookup=True,
            )
        # every model as one TreeEnsemble (the layout of Depthwise trees before the level walk)
        generic.compile_file(
            cbm,
            out / f"{name}.tree-ensemble.onnx",
            data_csv,
            name,
            "1.0.0",
            tree_ensemble=True,
        )
        models[name] = (cbm, generic.read_data(data_csv, source))
    return models


def previous_fnol_recipe(src: Sources, out: Path) -> None:
    """The FNOL recipe's graph in the split-bit layout before MatMulInteger and GatherElements."""
    onnx_graph.GraphBuilder.previous_leaf_lookup = True
    try:
        onnx.save(
            compiler.compile_fnol(src, "1.0.0").model,
            str(out / "fnol-recipe.previous.onnx"),
        )
    finally:
        onnx_graph.GraphBuilder.previous_leaf_lookup = False


def main() -> None:
    folder, out, seconds = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    result: dict = {}
    src = Sources.from_folder(folder)
    previous_fnol_recipe(src, out)
    df = read_training_csv(src.training_csv)
    ref = CatBoostReference(src.attritional, src.large, large_severity(df))
    frame = rows_of(df[FEATURES], max(BATCHES))
    (out / "fnol-recipe.rows.json").write_text(json.dumps(columns(frame)))
    result["fnol-recipe"] = {}
    for batch in BATCHES:
        rows = frame.iloc[:batch]
        calls, elapsed = measure(lambda rows=rows: ref.predict_frame(rows), seconds)
        result["fnol-recipe"][str(batch)] = {
            "records_per_s": calls * batch / elapsed,
            "ms_per_call": elapsed / calls * 1000,
        }
    for name, (cbm, data) in generated(out, src.training_csv).items():
        model = generic.catboost_model.load(cbm)
        reference = generic.Reference(cbm, model)
        frame = rows_of(data, max(BATCHES))
        (out / f"{name}.rows.json").write_text(json.dumps(columns(frame)))
        result[name] = {}
        for batch in BATCHES:
            rows = frame.iloc[:batch]
            calls, elapsed = measure(lambda rows=rows: reference.predict(rows), seconds)
            result[name][str(batch)] = {
                "records_per_s": calls * batch / elapsed,
                "ms_per_call": elapsed / calls * 1000,
            }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
