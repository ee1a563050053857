"""Parity between a compiled graph and CatBoost, on the training rows and generated records."""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import pandas as pd

from .fnol import CATEGORICAL, CLEANING, FEATURES, NUMERIC
from .reference import CatBoostReference
from .runtime import OnnxModel

TOLERANCE = 1e-4  # |onnx - catboost| <= TOLERANCE * max(1, |catboost|)
EXTREMES = [None, -1.0, 0.0, 1.0, 1e9, -1e9, 0.5, 3.0]


def example_records(df: pd.DataFrame) -> list[dict]:
    """The original smoke rows ([1..37] and [37..1], positional) and the first CSV row."""
    up = list(range(1, 38))
    return [
        positional_to_record(up),
        positional_to_record(up[::-1]),
        {f: _plain(df.iloc[0][f]) for f in FEATURES},
    ]


def positional_to_record(values: list) -> dict:
    """A row of the original {"data": [[...]]} contract; integers in categorical positions become text."""
    return {
        f: (str(v) if f in CATEGORICAL and isinstance(v, int) else v) for f, v in zip(FEATURES, values, strict=True)
    }


def _plain(v: object) -> object:
    if isinstance(v, (np.floating, float)):
        return None if math.isnan(float(v)) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


def generated_records(df: pd.DataFrame, vocab: dict[str, list[str]], seed: int = 7) -> list[dict]:
    """Every combination of categorical values (known, unseen, integer text, raw values the cleaning
    maps, missing where allowed), each with numbers from a training row; then rows with missing and
    extreme numbers."""
    rng = random.Random(seed)
    choices = {}
    for c in CATEGORICAL:
        extra = ["never-seen", "2"] + [raw for raw in CLEANING.get(c, {}) if raw not in vocab[c]]
        choices[c] = vocab[c] + extra
    rows = df[NUMERIC].to_dict("records")
    out = []
    for combo in itertools.product(*(choices[c] for c in CATEGORICAL)):
        rec = dict(rows[rng.randrange(len(rows))])
        rec.update(zip(CATEGORICAL, combo, strict=True))
        out.append(rec)
    for _ in range(3000):
        rec = dict(rows[rng.randrange(len(rows))])
        for c in CATEGORICAL:
            rec[c] = rng.choice(choices[c])
        for f in rng.sample(NUMERIC, rng.randint(1, 8)):
            rec[f] = rng.choice(EXTREMES)
        out.append(rec)
    return out


# The largest errors: one number, or one per output (the FNOL graph's several outputs).
Errors = TypeVar("Errors", float, dict[str, float])


@dataclass
class ParityResult(Generic[Errors]):
    """A parity check's outcome, as the model card and the compile command report it."""

    cases: int
    max_abs_error: Errors
    max_rel_error: Errors
    failures: int
    tolerance: float = TOLERANCE

    def as_dict(self) -> dict:
        return {
            "cases": self.cases,
            "tolerance": f"|onnx - catboost| <= {self.tolerance} * max(1, |catboost|)",
            "max_abs_error": self.max_abs_error,
            "max_rel_error": self.max_rel_error,
            "failures": self.failures,
        }


def compare(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> ParityResult[dict[str, float]]:
    abs_err: dict[str, float] = {}
    rel_err: dict[str, float] = {}
    failures = 0
    n = 0
    for k, w in want.items():
        g = got[k]
        n = len(w)
        diff = np.abs(g - w)
        scaled = diff / np.maximum(1.0, np.abs(w))
        bad = ~(scaled <= TOLERANCE)  # NaN counts as a failure
        failures += int(bad.sum())
        abs_err[k] = float(np.nanmax(diff)) if n else 0.0
        rel_err[k] = float(np.nanmax(scaled)) if n else 0.0
    return ParityResult(n, abs_err, rel_err, failures)


def check(model: OnnxModel, reference: CatBoostReference, records: list[dict]) -> ParityResult[dict[str, float]]:
    return compare(model.predict(records), reference.predict(records))
