"""Property check of the generic compiler: many randomly configured CatBoost models, each compiled
and compared with CatBoost on held-out and adversarial rows.

    python -m fnol_model soak --models 200 --seed 1

Every model is drawn from a seeded generator (grow policy, depth, one_hot_max_size, CTR types
and combinations, NaN mode, border count, loss, class count, data set) so a failure is
reproduced by its seed and index. The property: |onnx - catboost| <= 1e-5 * max(1, |catboost|)
for every output of every row.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import catboost_model, generic

REGRESSION_LOSSES = [
    "RMSE",
    "MAE",
    "Quantile:alpha=0.3",
    "Expectile:alpha=0.7",
    "MAPE",
    "Poisson",
    "Tweedie:variance_power=1.5",
    "Huber:delta=1.0",
    "LogCosh",
    "Lq:q=1.5",
    "LogLinQuantile:alpha=0.4",
]
CTR_TYPES = ["Borders", "Buckets", "BinarizedTargetMeanValue", "Counter"]
FNOL_CSV = Path(__file__).resolve().parents[2] / ".." / "shared" / "fnol" / "Data_Scientist_Interview_Task.csv"


@dataclass
class Case:
    index: int
    seed: int
    dataset: str
    task: str  # regression, binary, multiclass
    params: dict
    rows: int


@dataclass
class Outcome:
    case: Case
    parity: dict[str, generic.Parity] = field(default_factory=dict)
    error: str = ""
    seconds: float = 0.0
    graph: str = ""  # how the trees were compiled: "split bits" (symmetric), "level walk" or "TreeEnsemble"

    @property
    def failures(self) -> int:
        return sum(p.failures for p in self.parity.values()) + (1 if self.error else 0)

    @property
    def max_rel_error(self) -> float:
        return max((p.max_rel_error for p in self.parity.values()), default=0.0)


def draw(index: int, seed: int) -> Case:
    rng = np.random.default_rng([seed, index])
    pick = lambda xs: xs[int(rng.integers(len(xs)))]  # noqa: E731
    task = pick(["regression", "regression", "binary", "multiclass"])
    grow = pick(["SymmetricTree", "SymmetricTree", "Depthwise", "Lossguide"])
    params: dict = {
        "iterations": int(rng.integers(3, 16)),
        "grow_policy": grow,
        "one_hot_max_size": pick([1, 2, 3, 6, 255]),
        "nan_mode": pick(["Min", "Max", "Forbidden"]),
        "border_count": pick([1, 4, 16, 64, 254]),
        "max_ctr_complexity": int(rng.integers(1, 4)),
        "random_strength": float(pick([0.0, 1.0])),
        "learning_rate": float(pick([0.05, 0.3])),
    }
    if grow == "Lossguide":
        params["max_leaves"] = int(rng.integers(2, 17))
        params["depth"] = int(rng.integers(2, 8))
    else:
        params["depth"] = int(rng.integers(1, 7))
    types = [t for t in CTR_TYPES if rng.random() < 0.5] or [pick(CTR_TYPES)]
    if task != "regression" or rng.random() < 0.7:
        params["simple_ctr"] = [
            f"{t}:TargetBorderCount={int(rng.integers(1, 4))}"
            if task == "regression" and t in ("Borders", "Buckets")
            else t
            for t in types
        ]
        params["combinations_ctr"] = [pick(CTR_TYPES)]
    if task == "regression":
        params["loss_function"] = pick(REGRESSION_LOSSES)
        if params["loss_function"] != "RMSE" and "simple_ctr" in params:  # TargetBorderCount is for RMSE only
            params["simple_ctr"] = [t.split(":")[0] for t in params["simple_ctr"]]
    elif task == "binary":
        params["loss_function"] = pick(["Logloss", "Logloss", "CrossEntropy"])
    else:
        params["loss_function"] = pick(["MultiClass", "MultiClassOneVsAll"])
        params["classes_count"] = int(rng.integers(3, 6))
    dataset = pick(["fnol", "generated", "generated"]) if FNOL_CSV.is_file() else "generated"
    return Case(index, seed, dataset, task, params, int(rng.integers(200, 700)))


def dataset(case: Case) -> tuple[pd.DataFrame, list[str], np.ndarray]:
    """Features (categorical columns as str), categorical names and a raw target."""
    rng = np.random.default_rng([case.seed, case.index, 1])
    if case.dataset == "fnol":
        from .fnol import CATEGORICAL, FEATURES

        full = pd.read_csv(FNOL_CSV, dtype={c: str for c in CATEGORICAL}, keep_default_na=False)
        full = full.sample(min(len(full), case.rows * 3), random_state=int(rng.integers(1 << 30)))
        numeric = [f for f in FEATURES if f not in CATEGORICAL]
        cols = list(rng.choice(numeric, size=int(rng.integers(2, 10)), replace=False))
        cats = [c for c in CATEGORICAL if rng.random() < 0.7] or [CATEGORICAL[0]]
        X = full[[*cols, *cats]].reset_index(drop=True)
        for c in cols:
            X[c] = X[c].astype(np.float64)
        y = np.log1p(np.clip(full["Capped Incurred"].to_numpy(dtype=np.float64), 0, None))
        return X, cats, y
    n = case.rows
    nf, nc = int(rng.integers(1, 5)), int(rng.integers(0, 4))
    X = pd.DataFrame({f"x{i}": rng.normal(size=n) * (10.0 ** int(rng.integers(-2, 3))) for i in range(nf)})
    cats = []
    y = np.zeros(n)
    for i in range(nf):
        y += rng.normal() * np.tanh(X[f"x{i}"].to_numpy() / X[f"x{i}"].std())
        # a few repeated values, as real data has
        X.loc[rng.random(n) < 0.1, f"x{i}"] = float(np.round(X[f"x{i}"].iloc[0], 2))
    for j in range(nc):
        card = int(rng.integers(2, 12))
        values = np.array([f"v{j}_{k}" for k in range(card)] + ([""] if rng.random() < 0.3 else []), dtype=object)
        col = values[rng.integers(len(values), size=n)]
        X[f"c{j}"] = col
        effect = {v: rng.normal() for v in values}
        y += np.array([effect[v] for v in col])
        cats.append(f"c{j}")
    y += rng.normal(scale=0.3, size=n)
    return X, cats, y


def target(case: Case, y: np.ndarray) -> np.ndarray:
    loss = case.params["loss_function"].split(":")[0]
    if case.task == "binary":
        if loss == "CrossEntropy":
            return 1 / (1 + np.exp(-(y - np.median(y))))
        return (y > np.median(y)).astype(int)
    if case.task == "multiclass":
        k = case.params["classes_count"]
        return np.digitize(y, np.quantile(y, np.linspace(0, 1, k + 1)[1:-1]))
    if loss in ("Poisson", "Tweedie"):
        return np.round(np.exp(y - y.mean()) * 3)
    if loss in ("MAPE", "LogLinQuantile"):
        return np.abs(y) + 1.0
    return y


def layout(ops: set[str]) -> str:
    """The layout a compiled graph's trees took, from its operators: TreeEnsemble, the symmetric
    trees' split bits (leaf indices by MatMulInteger) or the level walk of Depthwise/Lossguide trees."""
    if "TreeEnsemble" in ops:
        return "TreeEnsemble"
    return "split bits" if "MatMulInteger" in ops else "level walk"


def run_case(case: Case, workdir: Path) -> Outcome:
    from catboost import CatBoostClassifier, CatBoostRegressor

    start = time.perf_counter()
    X, cats, y = dataset(case)
    t = target(case, y)
    rng = np.random.default_rng([case.seed, case.index, 2])
    if case.params["nan_mode"] != "Forbidden":
        for c in X.columns:
            if c not in cats:
                X.loc[rng.random(len(X)) < 0.1, c] = np.nan
    split = int(len(X) * 0.7)
    train_X, test_X, train_t = X.iloc[:split], X.iloc[split:], t[:split]
    params = {k: v for k, v in case.params.items() if k != "classes_count"}
    cls = CatBoostRegressor if case.task == "regression" else CatBoostClassifier
    model = cls(**params, random_seed=case.index, verbose=False, allow_writing_files=False, thread_count=1)
    outcome = Outcome(case)
    try:
        model.fit(train_X, train_t, cat_features=cats)
    except Exception as exc:  # an invalid random configuration is not a compiler failure
        outcome.error = ""
        outcome.parity = {}
        outcome.seconds = time.perf_counter() - start
        outcome.case.params["_skipped"] = str(exc).splitlines()[0][:120]
        return outcome
    cbm = workdir / f"model-{case.index}.cbm"
    model.save_model(str(cbm))
    try:
        source = catboost_model.load(cbm)
        train_frame = generic.frame(train_X, source)
        compiled = generic.compile_model(cbm, train_frame if cats else None, name="soak", version="1.0.0")
        ops = {n.op_type for n in compiled.model.graph.node}
        outcome.graph = layout(ops)
        reference = generic.Reference(cbm, compiled.source)
        session = generic.session_of(compiled.model)
        held_out = generic.frame(test_X, source)
        adv = generic.adversarial_frame(compiled.source, compiled.vocabulary, held_out, case.index)
        for label, rows in (("held-out rows", held_out), ("adversarial rows", adv)):
            outcome.parity[label] = generic.compare(
                generic.run_graph(session, rows, compiled.source), reference.predict(rows)
            )
    except Exception as exc:
        outcome.error = f"{type(exc).__name__}: {exc}"
    outcome.seconds = time.perf_counter() - start
    return outcome


def run(models: int, seed: int, progress: Callable[[str], None] = lambda _m: None, start: int = 0) -> list[Outcome]:
    outcomes = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(start, start + models):
            case = draw(i, seed)
            o = run_case(case, Path(tmp))
            outcomes.append(o)
            status = "skipped" if "_skipped" in case.params else ("FAIL " + o.error if o.failures else "ok")
            progress(
                f"[{i}] {case.dataset} {case.params['loss_function']} {case.params['grow_policy']} "
                f"depth={case.params.get('depth')} one_hot={case.params['one_hot_max_size']} "
                f"nan={case.params['nan_mode']} borders={case.params['border_count']}: "
                f"{status} (max rel {o.max_rel_error:.2g}, {o.seconds:.1f} s)"
            )
    return outcomes


def summary(outcomes: list[Outcome], seconds: float) -> dict:
    ran = [o for o in outcomes if "_skipped" not in o.case.params]
    cover: dict[str, Counter] = {
        k: Counter()
        for k in ("loss", "grow_policy", "graph", "nan_mode", "one_hot_max_size", "dataset", "ctr", "border_count")
    }
    for o in ran:
        p = o.case.params
        cover["loss"][p["loss_function"].split(":")[0]] += 1
        cover["grow_policy"][p["grow_policy"]] += 1
        cover["graph"][o.graph or "not compiled"] += 1
        cover["nan_mode"][p["nan_mode"]] += 1
        cover["one_hot_max_size"][str(p["one_hot_max_size"])] += 1
        cover["dataset"][o.case.dataset] += 1
        cover["border_count"][str(p["border_count"])] += 1
        for t in p.get("simple_ctr", ["default"]):
            cover["ctr"][t.split(":")[0]] += 1
    return {
        "models": len(outcomes),
        "compiled_and_compared": len(ran),
        "skipped_invalid_configurations": len(outcomes) - len(ran),
        "failed": sum(1 for o in ran if o.failures),
        "rows_compared": sum(p.cases for o in ran for p in o.parity.values()),
        "max_rel_error": max((o.max_rel_error for o in ran), default=0.0),
        "seconds": round(seconds, 1),
        "coverage": {k: dict(sorted(v.items())) for k, v in cover.items()},
        "failures": [
            {"index": o.case.index, "params": o.case.params, "error": o.error, "max_rel_error": o.max_rel_error}
            for o in ran
            if o.failures
        ],
    }


def main(models: int, seed: int, out: Path | None, progress: Callable[[str], None]) -> int:
    start = time.perf_counter()
    outcomes = run(models, seed, progress)
    s = summary(outcomes, time.perf_counter() - start)
    text = json.dumps(s, indent=2)
    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
    return 0 if s["failed"] == 0 and not math.isnan(s["max_rel_error"]) else 1
