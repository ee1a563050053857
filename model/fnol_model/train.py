"""Retrains the FNOL recipe from the CSV with the current catboost.

Same cleaning, features, objectives and random seed as the data scientists' models;
the tree counts are chosen by cross-validation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import catboost
import numpy as np

from .fnol import CAPPED_TARGET, CATEGORICAL, FEATURES, TARGET, read_training_csv

SEED = 69
TWEEDIE = "Tweedie:variance_power=1.99"
MAX_TREES = 1500
FOLDS = 3


@dataclass
class Trained:
    attritional: Path
    large: Path
    summary: dict


def _cv_trees(pool: catboost.Pool, params: dict, progress: Callable[[str], None], label: str, train_dir: Path) -> int:
    result = catboost.cv(
        pool,
        {**params, "iterations": MAX_TREES, "random_seed": SEED, "train_dir": str(train_dir)},
        fold_count=FOLDS,
        early_stopping_rounds=50,
        seed=SEED,
        logging_level="Silent",
    )
    metric = next(c for c in result.columns if c.startswith("test-") and c.endswith("-mean"))
    best = int(np.argmin(result[metric].to_numpy())) + 1
    progress(f"{label}: {FOLDS}-fold cross-validation chose {best} trees ({metric} {result[metric].min():.5g})")
    return best


def retrain(csv: Path, out: Path, progress: Callable[[str], None] = lambda _m: None) -> Trained:
    df = read_training_csv(csv)
    negative = df[TARGET] < 0
    capped = df[CAPPED_TARGET].where(~negative, 0.0)
    large = ((df[TARGET] > df[CAPPED_TARGET]) & ~negative).astype(int)
    X = df[FEATURES]
    out.mkdir(parents=True, exist_ok=True)
    progress(f"retraining on {len(df)} claims with catboost {catboost.__version__}")

    reg_pool = catboost.Pool(X, capped, cat_features=CATEGORICAL)
    reg_params = {"loss_function": TWEEDIE}
    reg_trees = _cv_trees(reg_pool, reg_params, progress, "attritional (Tweedie)", out / "catboost_info")
    reg = catboost.CatBoostRegressor(
        **reg_params, iterations=reg_trees, random_seed=SEED, verbose=False, allow_writing_files=False
    )
    reg.fit(reg_pool)

    cls_pool = catboost.Pool(X, large, cat_features=CATEGORICAL)
    cls_params = {"loss_function": "Logloss"}
    cls_trees = _cv_trees(cls_pool, cls_params, progress, "large loss (Logloss)", out / "catboost_info")
    cls = catboost.CatBoostClassifier(
        **cls_params, iterations=cls_trees, random_seed=SEED, verbose=False, allow_writing_files=False
    )
    cls.fit(cls_pool)

    attritional = out / "fnol_attritional_model.cbm"
    large_path = out / "fnol_large_model.cbm"
    reg.save_model(str(attritional))
    cls.save_model(str(large_path))
    return Trained(
        attritional,
        large_path,
        {
            "catboost": catboost.__version__,
            "random_seed": SEED,
            "attritional": {"objective": TWEEDIE, "trees": reg_trees},
            "large": {"objective": "Logloss", "trees": cls_trees},
            "tree_count_selection": f"{FOLDS}-fold cross-validation, early stopping after 50 rounds, at most {MAX_TREES}",
        },
    )
