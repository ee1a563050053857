"""Compiles any single CatBoost model (numeric and categorical features) to one ONNX graph.

    python -m fnol_model compile model.cbm --out model.onnx [--data training.csv]

The graph has one input per feature, named as in the model (numbers FP32, categories
strings), and one output: `prediction` (regressors, what CatBoostRegressor.predict()
returns), `probability` (binary classifiers, predict_proba()[:, 1]) or `probabilities`
(multiclass, predict_proba(), one column per class in CatBoost's class order).

A .cbm file keeps only 32-bit hashes of the categorical values it saw, so the text of
those values comes from a data file (the training data, or any CSV holding every
category the model saw). Compilation stops when a value the model knows is missing
from it. Before anything is written, the graph is checked against CatBoost's own
predictions on the data rows and on adversarial rows (every split border and its float32
neighbours, NaN, infinities, unseen and empty categories).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd

from . import __version__, catboost_model, distributions
from .catboost_model import CatBoostModel, CompileError
from .cityhash import MASK, cat_feature_hash, combine_hash
from .onnx_graph import CategoricalInput, GraphBuilder, level_walk_fits
from .parity import ParityResult

OPSET = 21
ML_OPSET = 5  # TreeEnsemble
TOLERANCE = 1e-5  # |onnx - catboost| <= TOLERANCE * max(1, |catboost|)
Parity = ParityResult[float]  # one output per generic graph: one largest error
MAX_CTR_CASES = 2_000_000  # combinations tabulated for one CTR
UNSEEN = "\x00never-seen-category\x00"
MAX_REFERENCE_ROWS = 200_000  # reference distributions from a larger data file use a fixed sample


@dataclass
class Compiled:
    model: onnx.ModelProto
    source: CatBoostModel
    vocabulary: dict[str, list[str]]
    output: str


def output_name(model: CatBoostModel) -> str:
    if model.transform == "softmax" or model.dimension > 1:
        return "probabilities"
    if model.transform == "sigmoid":
        return "probability"
    return "prediction"


def read_data(path: str | Path, model: CatBoostModel) -> pd.DataFrame:
    """A CSV with a header naming the model's features: categories as their text, numbers as float."""
    return frame(read_features(path, model), model)


def read_features(path: str | Path, model: CatBoostModel) -> pd.DataFrame:
    """The model's feature columns of a CSV as a client would send them: categories as their text,
    numbers as float64 (NaN where a cell is not a number)."""
    path = Path(path)
    if not path.is_file():
        raise CompileError(f"{path}: no such data file; pass a CSV whose header names the model's features")
    cats = {c.name for c in model.cat_features}
    try:
        df = pd.read_csv(path, dtype={c: str for c in cats}, keep_default_na=False, na_values={})
    except Exception as exc:
        raise CompileError(f"{path}: cannot be read as CSV ({exc})") from exc
    missing = [n for n in model.feature_names if n not in df.columns]
    if missing:
        raise CompileError(f"{path}: the data has no column for the model's feature(s) {', '.join(missing)}")
    out = pd.DataFrame(index=range(len(df)))
    for n in model.feature_names:
        col = df[n].reset_index(drop=True)
        out[n] = col if n in cats else pd.to_numeric(col, errors="coerce").astype(np.float64)
    return out


def frame(df: pd.DataFrame, model: CatBoostModel) -> pd.DataFrame:
    """The model's features only, in its order: categories as str, numbers as float32 values (in float64)."""
    cats = {c.name for c in model.cat_features}
    out = pd.DataFrame(index=range(len(df)))
    for n in model.feature_names:
        col = df[n].reset_index(drop=True)
        if n in cats:
            out[n] = ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in col]
        else:
            out[n] = pd.to_numeric(col, errors="coerce").astype(np.float32).astype(np.float64)
    return out


def vocabulary(df: pd.DataFrame | None, model: CatBoostModel) -> dict[str, list[str]]:
    """Categories in the data, most frequent first (ties by text): the graph's index order."""
    vocab: dict[str, list[str]] = {}
    for c in model.cat_features:
        if df is None:
            vocab[c.name] = []
            continue
        counts = df[c.name].value_counts()
        vocab[c.name] = sorted(counts.index.astype(str), key=lambda v: (-int(counts[v]), v))
    return vocab


def check_coverage(model: CatBoostModel, vocab: dict[str, list[str]], data_hint: str) -> None:
    """Every category the model saw (one-hot values, CTR statistics) must have a name in the vocabulary."""
    hashes = {c.index: [cat_feature_hash(v) for v in vocab[c.name]] for c in model.cat_features}
    for c in model.cat_features:
        unknown = set(model.one_hot_values.get(c.index, [])) - set(hashes[c.index])
        if unknown:
            raise CompileError(
                f"{model.path}: {len(unknown)} one-hot encoded value(s) of {c.name} are not in {data_hint}; "
                "pass the training data (--data) so every category the model saw is known"
            )
    for ctr in model.ctrs:
        radices = [len(hashes[e.feature]) if e.kind == "cat" else 2 for e in ctr.elements]
        size = int(np.prod(radices, dtype=np.float64))
        if size > MAX_CTR_CASES:
            names = ", ".join(model.cat_features[e.feature].name for e in ctr.elements if e.kind == "cat")
            raise CompileError(
                f"{model.path}: the CTR over ({names}) has {size} combinations of known values; more than "
                f"{MAX_CTR_CASES} cannot be tabulated in the graph (train with a lower max_ctr_complexity)"
            )
        known = set()
        for digits in itertools.product(*(range(r) for r in radices)):
            h = 0
            for e, d in zip(ctr.elements, digits, strict=True):
                if e.kind == "cat":
                    v = hashes[e.feature][d]
                    h = combine_hash(h, v if v < 2**31 else (v - 2**32) & MASK)
                else:
                    h = combine_hash(h, d)
            known.add(h)
        unknown = set(ctr.table) - known
        if unknown:
            names = ", ".join(model.cat_features[e.feature].name for e in ctr.elements if e.kind == "cat")
            raise CompileError(
                f"{model.path}: {len(unknown)} combination(s) of ({names}) seen in training contain a category "
                f"that is not in {data_hint}; pass the training data (--data) so every category is known"
            )


def compile_model(
    cbm: str | Path,
    data: pd.DataFrame | None,
    *,
    name: str,
    version: str,
    data_hint: str = "the data",
    tree_ensemble: bool = False,
    previous_leaf_lookup: bool = False,
) -> Compiled:
    """`tree_ensemble` compiles every model as one TreeEnsemble, `previous_leaf_lookup` as the
    split-bit graph before MatMulInteger and GatherElements (the slower layouts, for comparisons)."""
    model = catboost_model.load(cbm)
    if model.cat_features and data is None:
        raise CompileError(
            f"{cbm}: the model has categorical features ({', '.join(c.name for c in model.cat_features)}); "
            "a .cbm file keeps only hashes of their values, so pass the training data with --data <csv> "
            "to name them"
        )
    vocab = vocabulary(data, model)
    check_coverage(model, vocab, data_hint)
    cats = {c.name for c in model.cat_features}
    numeric = [n for n in model.feature_names if n not in cats]
    builder = GraphBuilder(
        numeric=numeric,
        categorical=[CategoricalInput(c.name, vocab[c.name], {}) for c in model.cat_features],
        order=model.feature_names,
        opset=OPSET,
        ml_opset=ML_OPSET,
    )
    builder.previous_leaf_lookup = previous_leaf_lookup
    # Split bits shared by all trees; symmetric trees: one leaf lookup per tree; Depthwise and
    # Lossguide: a walk down the levels (TreeEnsemble when padding to full trees would be too large)
    if model.symmetric and model.trees and not tree_ensemble:
        raw = builder.oblivious_raw(model, "model")
    elif not model.symmetric and model.node_trees and level_walk_fits(model) and not tree_ensemble:
        raw = builder.levelwise_raw(model, "model")
    else:
        raw = builder.ensemble_raw(model, "model")
    out = output_name(model)
    builder.output(builder.prediction(model, raw, "model"), out)

    features_meta = [
        {"name": f, "type": "string", "nullable": False, "values": vocab[f]}
        if f in cats
        else {"name": f, "type": "number", "nullable": True}
        for f in model.feature_names
    ]
    kind = {
        "prediction": f"CatBoostRegressor.predict() of the {model.loss} model",
        "probability": f"probability of class {model.class_names[-1] if model.class_names else 1} "
        f"(predict_proba()[:, 1] of the {model.loss} model)",
        "probabilities": f"predict_proba() of the {model.loss} model, one column per class: "
        + ", ".join(model.class_names or [str(i) for i in range(model.dimension)]),
    }[out]
    metadata = {
        "name": name,
        "version": version,
        "feature_order": json.dumps(model.feature_names),
        "features": json.dumps(features_meta),
        "primary_output": out,
        "outputs": json.dumps({out: kind}),
        "loss_function": model.loss,
        "compiler": f"fnol-model-compiler {__version__}",
    }
    if model.class_names:
        metadata["class_names"] = json.dumps(model.class_names)
    width = model.dimension if out == "probabilities" else 1
    graph = builder.build(name, [out], metadata, widths={out: width})
    return Compiled(graph, model, vocab, out)


class Reference:
    """CatBoost's own default predictions for a .cbm, shaped like the graph's output."""

    def __init__(self, cbm: str | Path, model: CatBoostModel):
        from catboost import CatBoostClassifier, CatBoostRegressor

        self.model = model
        self.output = output_name(model)
        self.cb = CatBoostRegressor() if self.output == "prediction" else CatBoostClassifier()
        self.cb.load_model(str(cbm))

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        df = df[self.model.feature_names]
        if self.output == "prediction":
            return np.asarray(self.cb.predict(df), dtype=np.float64).reshape(-1, 1)
        proba = np.asarray(self.cb.predict_proba(df), dtype=np.float64)
        return proba[:, 1:2] if self.output == "probability" else proba


def adversarial_frame(model: CatBoostModel, vocab: dict[str, list[str]], base: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Rows that probe every split: each border and its float32 neighbours, NaN, +-inf, every known,
    unseen and empty category, on top of rows of `base` (or zeros)."""
    rng = np.random.default_rng(seed)
    cats = {c.name for c in model.cat_features}
    if len(base) == 0:
        base = pd.DataFrame([{n: (vocab[n][0] if vocab[n] else "") if n in cats else 0.0 for n in model.feature_names}])
    rows: list[dict] = []

    def around(feature: str, values: list[Any]) -> None:
        for v in values:
            r = base.iloc[int(rng.integers(len(base)))].to_dict()
            r[feature] = v
            rows.append(r)

    borders: dict[int, set[float]] = {}
    for s in model.splits:
        if s.kind == "float":
            borders.setdefault(s.feature, set()).add(s.border)
    for c in model.ctrs:
        for e in c.elements:
            if e.kind == "float":
                borders.setdefault(e.feature, set()).add(e.border)
    f32 = np.float32
    for f in model.float_features:
        values = [math.nan, math.inf, -math.inf, 0.0]
        with np.errstate(over="ignore"):
            for b in sorted(borders.get(f.index, ())):
                values += [b, float(np.nextafter(f32(b), f32(math.inf))), float(np.nextafter(f32(b), f32(-math.inf)))]
        around(f.name, values)
    for cat in model.cat_features:
        around(cat.name, [*vocab[cat.name], UNSEEN, "", "0", "1"])
    # random mixes of the above
    probes: dict[str, list[Any]] = {
        f.name: [math.nan, math.inf, -math.inf, *sorted(borders.get(f.index, ()))] for f in model.float_features
    }
    choices: dict[str, list[Any]] = {c.name: [*vocab[c.name], UNSEEN, ""] for c in model.cat_features}
    for _ in range(200):
        r = base.iloc[int(rng.integers(len(base)))].to_dict()
        for n, vs in (*probes.items(), *choices.items()):
            if vs and rng.random() < 0.3:
                r[n] = vs[int(rng.integers(len(vs)))]
        rows.append(r)
    out = pd.DataFrame(rows, columns=model.feature_names)
    for n in model.feature_names:
        if n not in cats:
            out[n] = out[n].astype(np.float32).astype(np.float64)
    return out


def feeds(df: pd.DataFrame, model: CatBoostModel) -> dict[str, np.ndarray]:
    cats = {c.name for c in model.cat_features}
    out = {}
    for n in model.feature_names:
        if n in cats:
            out[n] = df[n].to_numpy(dtype=object).reshape(-1, 1)
        else:
            out[n] = df[n].to_numpy(dtype=np.float32).reshape(-1, 1)
    return out


def run_graph(session: Any, df: pd.DataFrame, model: CatBoostModel) -> np.ndarray:
    return np.asarray(session.run(None, feeds(df, model))[0], dtype=np.float64)


def compare(got: np.ndarray, want: np.ndarray) -> Parity:
    if got.shape != want.shape:
        return Parity(len(want), math.inf, math.inf, len(want), TOLERANCE)
    diff = np.abs(got - want)
    scaled = diff / np.maximum(1.0, np.abs(want))
    bad = ~(scaled <= TOLERANCE)  # NaN counts as a failure
    return Parity(
        len(want),
        float(np.nanmax(diff)) if diff.size else 0.0,
        float(np.nanmax(scaled)) if diff.size else 0.0,
        int(bad.any(axis=1).sum()),
        TOLERANCE,
    )


def session_of(model: onnx.ModelProto) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def check_parity(compiled: Compiled, reference: Reference, df: pd.DataFrame, seed: int = 0) -> dict[str, Parity]:
    session = session_of(compiled.model)
    sample = df if len(df) <= 20_000 else df.sample(20_000, random_state=seed)
    adv = adversarial_frame(compiled.source, compiled.vocabulary, sample, seed)
    out = {}
    for label, rows in (("data rows", sample), ("adversarial rows", adv)):
        if len(rows) == 0:
            continue
        out[label] = compare(run_graph(session, rows, compiled.source), reference.predict(rows))
    return out


def self_test(compiled: Compiled, reference: Reference, df: pd.DataFrame) -> None:
    """Adds records and CatBoost's predictions for them, which the scorer checks before it is ready."""
    rows = df.head(3) if len(df) else adversarial_frame(compiled.source, compiled.vocabulary, df, 0).head(3)
    records = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        for r in rows.to_dict("records")
    ]
    # JSON cannot carry infinities; the scorer takes finite numbers only
    records = [{k: v for k, v in r.items() if not (isinstance(v, float) and math.isinf(v))} for r in records]
    rows = frame(
        pd.DataFrame([{n: r.get(n, math.nan) for n in compiled.source.feature_names} for r in records]), compiled.source
    )
    expected = reference.predict(rows)
    value = {
        "records": records,
        "expected": {compiled.output: expected[:, 0].tolist()} if expected.shape[1] == 1 else {},
        "tolerance": {"relative": 1e-5, "absolute": 1e-5},
    }
    compiled.model.metadata_props.append(onnx.StringStringEntryProto(key="self_test", value=json.dumps(value)))


def reference_distributions(compiled: Compiled, path: Path, raw: pd.DataFrame) -> dict[str, Any]:
    """Distributions of the inputs (as read from the CSV) and of the graph's output on its rows."""
    from .compiler import sha256_file

    source: dict[str, Any] = {"file": path.name, "sha256": sha256_file(path)}
    if len(raw) > MAX_REFERENCE_ROWS:
        source["sampled_from_rows"] = len(raw)
        raw = raw.sample(MAX_REFERENCE_ROWS, random_state=0).reset_index(drop=True)
    cats = {c.name for c in compiled.source.cat_features}
    predictions = run_graph(session_of(compiled.model), frame(raw, compiled.source), compiled.source)
    return distributions.document(
        {n: ("string" if n in cats else "number", raw[n].tolist()) for n in compiled.source.feature_names},
        {compiled.output: predictions},
        rows=len(raw),
        source=source,
    )


def compile_file(
    cbm: Path,
    out: Path,
    data: Path | None,
    name: str | None,
    version: str,
    progress: Callable[[str], None] = lambda _m: None,
    tree_ensemble: bool = False,
    previous_leaf_lookup: bool = False,
    reference_data: Path | None = None,
) -> dict[str, Parity]:
    """Compiles, checks parity and writes the graph. Reference distributions come from
    `reference_data`, else from `data`; with neither, the graph has none."""
    from .compiler import sha256_file

    model = catboost_model.load(cbm)
    raw = read_features(data, model) if data is not None else None
    df = frame(raw, model) if raw is not None else None
    ref_path = reference_data or data
    ref_raw = raw if reference_data is None else read_features(reference_data, model)
    if reference_data is not None and ref_raw is not None and len(ref_raw) == 0:
        raise CompileError(
            f"{reference_data}: has no data rows; pass the training data (CSV with a header and its rows) "
            "as --reference-data, or leave the option out to record no reference distributions"
        )
    progress(f"compiling {cbm.name} ({model.loss}, {'symmetric' if model.symmetric else 'non-symmetric'} trees)")
    compiled = compile_model(
        cbm,
        df,
        name=name or cbm.stem,
        version=version,
        data_hint=f"{data.name}" if data else "the data",
        tree_ensemble=tree_ensemble,
        previous_leaf_lookup=previous_leaf_lookup,
    )
    reference = Reference(cbm, compiled.source)
    base = df if df is not None else pd.DataFrame(columns=model.feature_names)
    self_test(compiled, reference, base)
    sources = {cbm.name: sha256_file(cbm)}
    if data is not None:
        sources[data.name] = sha256_file(data)
    compiled.model.metadata_props.append(onnx.StringStringEntryProto(key="source_sha256", value=json.dumps(sources)))
    parity = check_parity(compiled, reference, base)
    for label, res in parity.items():
        if res.failures:
            raise CompileError(
                f"parity gate failed on {label}: {res.failures} of {res.cases} predictions differ from CatBoost "
                f"beyond tolerance (largest relative error {res.max_rel_error:.3g}); nothing was written"
            )
        progress(f"parity on {res.cases} {label}: largest relative error {res.max_rel_error:.3g}")
    if ref_path is not None and ref_raw is not None and len(ref_raw) > 0:
        size = distributions.add_reference_distributions(
            compiled.model, reference_distributions(compiled, ref_path, ref_raw)
        )
        progress(f"reference distributions from {ref_path.name}: {size} bytes of metadata")
    else:
        progress(
            "no reference distributions recorded (drift monitoring has nothing to compare with): "
            "pass the training data with --reference-data <csv>"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(compiled.model.SerializeToString())
    tmp.replace(out)
    progress(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, output {compiled.output})")
    return parity
