"""Compile, prove parity, measure, and write the graph with its model card."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .card import metrics, model_card
from .catboost_model import CompileError
from .compiler import MODEL_NAME, add_self_test, compile_fnol, sha256_file
from .distributions import add_reference_distributions, document
from .fnol import CATEGORICAL, FEATURES, Sources, large_severity, read_graph_inputs, read_training_csv
from .parity import check, example_records, generated_records
from .reference import CatBoostReference
from .runtime import OnnxModel


def compile_and_verify(
    src: Sources,
    version: str,
    out: Path,
    *,
    progress: Callable[[str], None] = lambda _m: None,
    severity: float | None = None,
    training: dict | None = None,
    compare_with: Path | None = None,
) -> Path:
    progress(f"reading {src.training_csv.name}")
    df = read_training_csv(src.training_csv)
    sev = severity if severity is not None else large_severity(df)
    progress(f"compiling {src.attritional.name} and {src.large.name} to ONNX")
    compiled = compile_fnol(src, version, sev)
    reference = CatBoostReference(src.attritional, src.large, sev)
    examples = example_records(df)
    add_self_test(compiled.model, examples, {k: v.tolist() for k, v in reference.predict(examples).items()})
    onnx_model = OnnxModel(compiled.model.SerializeToString())

    progress(f"parity on the {len(df)} training rows")
    rows = df[FEATURES].to_dict("records")
    csv_parity = check(onnx_model, reference, rows)
    progress("parity on generated records (categorical combinations, unseen values, extreme numbers)")
    gen = generated_records(df, compiled.vocabulary)
    gen_parity = check(onnx_model, reference, gen)
    for label, res in (("training rows", csv_parity), ("generated records", gen_parity)):
        if res.failures:
            raise CompileError(
                f"parity gate failed on {label}: {res.failures} predictions differ from CatBoost beyond "
                f"tolerance (largest relative error {max(res.max_rel_error.values()):.3g}); the graph was not written"
            )
        progress(f"{label}: {res.cases} cases, largest relative error {max(res.max_rel_error.values()):.3g}")

    out.mkdir(parents=True, exist_ok=True)
    cases_path = out / f"{MODEL_NAME}-{version}.parity-cases.json"
    write_parity_cases(cases_path, rows + gen, reference.predict(rows + gen))

    progress("metrics on the historical claims")
    pred = onnx_model.predict(rows)
    m = metrics(df, pred)
    if compare_with is not None and compare_with.is_file():
        base = json.loads(compare_with.read_text())
        m["compared_with"] = {
            "version": base["version"],
            "metrics": {k: v for k, v in base["metrics"].items() if not isinstance(v, (list, dict))},
        }

    progress("reference distributions of the inputs and outputs on the historical claims")
    distributions = fnol_reference_distributions(src.training_csv, pred)
    entry_bytes = add_reference_distributions(compiled.model, distributions)

    onnx_path = out / f"{MODEL_NAME}-{version}.onnx"
    tmp = onnx_path.with_suffix(".onnx.tmp")
    tmp.write_bytes(compiled.model.SerializeToString())
    tmp.replace(onnx_path)
    digest = sha256_file(onnx_path)
    card = model_card(
        name=MODEL_NAME,
        version=version,
        onnx_path=onnx_path,
        onnx_sha256=digest,
        sources={p.name: sha256_file(p) for p in (src.attritional, src.large, src.training_csv)},
        features=json.loads(dict((p.key, p.value) for p in compiled.model.metadata_props)["features"]),
        severity=sev,
        metrics=m,
        parity={"training_rows": csv_parity.as_dict(), "generated_records": gen_parity.as_dict()},
        training=training,
        reference_distributions=distributions,
    )
    card_path = out / f"{MODEL_NAME}-{version}.model-card.json"
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    progress(f"wrote {onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB, sha256 {digest})")
    progress(f"wrote {card_path}")
    progress(f"reference distributions: {entry_bytes} bytes of metadata")
    progress(
        f"MAE(ultimate_cost, Incurred) = {m['mae_ultimate_vs_incurred']:.0f}; mean predicted {m['mean_ultimate_cost']:.0f}"
        f" vs mean incurred {m['mean_incurred']:.0f}"
    )
    return onnx_path


def fnol_reference_distributions(training_csv: Path, predictions: dict[str, np.ndarray]) -> dict:
    """Inputs as the CSV gives them to the graph (before its cleaning), outputs as the graph
    predicts them on the same rows (`predictions`, one array per output in graph order)."""
    raw = read_graph_inputs(training_csv)
    return document(
        {f: ("string" if f in CATEGORICAL else "number", raw[f].tolist()) for f in FEATURES},
        predictions,
        rows=len(raw),
        source={"file": training_csv.name, "sha256": sha256_file(training_csv)},
    )


def write_parity_cases(path: Path, records: list[dict], expected: dict) -> None:
    """Records and CatBoost's predictions, columnar, for the runtimes that serve the graph to check."""
    columns = {
        f: [None if isinstance(v, float) and v != v else v for v in (r.get(f) for r in records)] for f in FEATURES
    }
    path.write_text(json.dumps({"features": columns, "expected": {k: v.tolist() for k, v in expected.items()}}))
