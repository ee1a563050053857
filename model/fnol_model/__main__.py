"""Command line: python -m fnol_model {build,train,predict,compile} ..."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from .catboost_model import CompileError


def _progress(msg: str) -> None:
    print(f"  - {msg}", flush=True)


def _artifacts(arg: str | None) -> Path:
    return Path(
        arg or os.environ.get("FNOL_ARTIFACTS") or Path(__file__).resolve().parents[2] / ".." / "shared" / "fnol"
    )


def build(args: argparse.Namespace) -> int:
    from .fnol import Sources

    src = Sources.from_folder(_artifacts(args.artifacts))
    if args.attritional:
        src.attritional = Path(args.attritional)
    if args.large:
        src.large = Path(args.large)
    from .pipeline import compile_and_verify

    compile_and_verify(src, args.version, Path(args.out), progress=_progress, severity=args.large_severity)
    return 0


def train(args: argparse.Namespace) -> int:
    from .fnol import Sources
    from .pipeline import compile_and_verify
    from .train import retrain

    src = Sources.from_folder(_artifacts(args.artifacts))
    out = Path(args.out)
    trained = retrain(src.training_csv, out / f"train-{args.version}", progress=_progress)
    compile_and_verify(
        Sources(trained.attritional, trained.large, src.training_csv),
        args.version,
        out,
        progress=_progress,
        training=trained.summary,
        compare_with=out / f"fnol-{args.baseline}.model-card.json",
    )
    return 0


def predict(args: argparse.Namespace) -> int:
    from .fnol import read_training_csv
    from .parity import example_records
    from .runtime import OnnxModel

    model = OnnxModel(args.model)
    df = read_training_csv(Path(_artifacts(args.artifacts)) / "Data_Scientist_Interview_Task.csv")
    records = example_records(df)
    pred = model.predict(records)
    labels = ["smoke row [1..37]", "smoke row [37..1]", "first CSV row"]
    meta = model.metadata
    print(f"{meta['name']} {meta['version']} ({args.model})")
    print(f"{'record':<20} {'ultimate_cost':>14} {'attritional_cost':>17} {'large_loss_prob':>16}")
    for i, label in enumerate(labels):
        print(
            f"{label:<20} {pred['ultimate_cost'][i]:>14.2f} {pred['attritional_cost'][i]:>17.2f}"
            f" {pred['large_loss_probability'][i]:>16.6f}"
        )
    if args.json:
        print(json.dumps({k: v.tolist() for k, v in pred.items()}))
    return 0


def compile_cmd(args: argparse.Namespace) -> int:
    from .generic import compile_file

    compile_file(
        Path(args.model),
        Path(args.out),
        Path(args.data) if args.data else None,
        args.name,
        args.version,
        progress=_progress,
        reference_data=Path(args.reference_data) if args.reference_data else None,
    )
    return 0


def soak_cmd(args: argparse.Namespace) -> int:
    from .soak import main as soak_main

    return soak_main(args.models, args.seed, Path(args.out) if args.out else None, _progress)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="fnol-model", description="Compile the FNOL CatBoost models to one ONNX graph.")
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="compile the delivered .cbm files")
    b.add_argument("--artifacts", help="folder with the deliverable (default: $FNOL_ARTIFACTS or ../shared/fnol)")
    b.add_argument("--attritional", help="attritional (Tweedie) model .cbm, overrides the folder's")
    b.add_argument("--large", help="large-loss (Logloss) model .cbm, overrides the folder's")
    b.add_argument("--large-severity", type=float, help="default: mean excess over the cap of large claims in the CSV")
    b.add_argument("--version", default="1.0.0")
    b.add_argument("--out", default="build/model")
    b.set_defaults(func=build)
    t = sub.add_parser("train", help="retrain the recipe from the CSV and compile it")
    t.add_argument("--artifacts")
    t.add_argument("--version", default="1.1.0")
    t.add_argument("--baseline", default="1.0.0", help="version whose metrics are set beside the new ones")
    t.add_argument("--out", default="build/model")
    t.set_defaults(func=train)
    r = sub.add_parser("predict", help="print a compiled model's predictions for the example records")
    r.add_argument("--model", required=True)
    r.add_argument("--artifacts")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=predict)
    c = sub.add_parser("compile", help="compile any single CatBoost model to ONNX (docs/model-compiler.md)")
    c.add_argument("model", help="the CatBoost model (.cbm)")
    c.add_argument("--out", required=True, help="where to write the ONNX graph")
    c.add_argument("--data", help="CSV with a header naming the features (needed when the model has categorical ones)")
    c.add_argument(
        "--reference-data",
        help="training data (CSV) for the reference distributions drift monitoring compares with "
        "(default: the --data file; without either the graph records none)",
    )
    c.add_argument("--name", help="model name in the graph's metadata (default: the file name)")
    c.add_argument("--version", default="1.0.0")
    c.set_defaults(func=compile_cmd)
    k = sub.add_parser("soak", help="train, compile and compare many randomly configured models")
    k.add_argument("--models", type=int, default=200)
    k.add_argument("--seed", type=int, default=1)
    k.add_argument("--out", help="write the summary (JSON) here")
    k.set_defaults(func=soak_cmd)
    args = p.parse_args(argv)
    start = time.time()
    try:
        rc = args.func(args)
    except CompileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.cmd not in ("predict", "soak"):
        print(f"  done in {time.time() - start:.1f} s", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
