"""Baseline for the model benchmark: CatBoost's Python predict on the same rows.

Prints one JSON object: per batch size, records per second and per-call latency.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from fnol_model.fnol import FEATURES, Sources, large_severity, read_training_csv
from fnol_model.reference import CatBoostReference


def measure(fn, seconds: float) -> tuple[int, float]:
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        calls += 1
    return calls, time.perf_counter() - start


def main() -> None:
    folder, seconds = Path(sys.argv[1]), float(sys.argv[2])
    src = Sources.from_folder(folder)
    df = read_training_csv(src.training_csv)
    ref = CatBoostReference(src.attritional, src.large, large_severity(df))
    frame = df[FEATURES]
    out = {}
    for batch in (1, 1000):
        rows = frame.iloc[:batch]
        ref.predict_frame(rows)  # warm up
        calls, elapsed = measure(lambda rows=rows: ref.predict_frame(rows), seconds)
        out[str(batch)] = {"records_per_s": calls * batch / elapsed, "ms_per_call": elapsed / calls * 1000}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
