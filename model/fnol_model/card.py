"""The model card: what a compiled model is, where it came from and how good it is."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from .fnol import CAPPED_TARGET, FEATURES, OUTPUTS, TARGET


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    ranks[order] = np.arange(1, len(score) + 1)
    # average ranks of ties
    s = score[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j + 2) / 2
        i = j + 1
    pos = y.astype(bool)
    n1, n0 = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)) if n1 and n0 else float("nan")


def metrics(df: pd.DataFrame, pred: dict[str, np.ndarray]) -> dict:
    """Metrics a reserving actuary asks for, on the historical claims."""
    actual = df[TARGET].to_numpy(dtype=np.float64)
    capped = df[CAPPED_TARGET].to_numpy(dtype=np.float64)
    large = (actual > capped).astype(int)
    ult = pred["ultimate_cost"]
    err = ult - actual
    deciles = pd.qcut(ult, 10, labels=False, duplicates="drop")
    by_decile = [
        {
            "decile": int(d) + 1,
            "claims": int((deciles == d).sum()),
            "mean_predicted": float(ult[deciles == d].mean()),
            "mean_actual": float(actual[deciles == d].mean()),
        }
        for d in sorted(set(deciles))
    ]
    p = pred["large_loss_probability"]
    return {
        "claims": len(df),
        "mean_ultimate_cost": float(ult.mean()),
        "mean_incurred": float(actual.mean()),
        "total_predicted": float(ult.sum()),
        "total_incurred": float(actual.sum()),
        "reserve_adequacy_ratio": float(ult.sum() / actual.sum()),
        "mae_ultimate_vs_incurred": float(np.abs(err).mean()),
        "rmse_ultimate_vs_incurred": float(np.sqrt((err**2).mean())),
        "median_abs_error": float(np.median(np.abs(err))),
        "mae_attritional_vs_capped": float(np.abs(pred["attritional_cost"] - capped).mean()),
        "large_claims": int(large.sum()),
        "large_loss_auc": _auc(large, p),
        "large_loss_brier": float(((p - large) ** 2).mean()),
        "mean_large_probability": float(p.mean()),
        "by_predicted_decile": by_decile,
        "note": "in-sample: these are the rows the models were trained on",
    }


def model_card(
    *,
    name: str,
    version: str,
    onnx_path: Path,
    onnx_sha256: str,
    sources: dict[str, str],
    features: list[dict],
    severity: float,
    metrics: dict,
    parity: dict,
    training: dict | None = None,
    reference_distributions: dict | None = None,
) -> dict:
    return {
        "name": name,
        "version": version,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "file": onnx_path.name,
        "sha256": onnx_sha256,
        "sources_sha256": sources,
        "features": features,
        "feature_order": FEATURES,
        "outputs": {k: {"type": "float32", "shape": ["N", 1], "meaning": v} for k, v in OUTPUTS.items()},
        "formula": "ultimate_cost = attritional_cost + large_loss_probability * large_severity",
        "large_severity": severity,
        "metrics": metrics,
        "parity": parity,
        **({"training": training} if training else {}),
        **({"reference_distributions": reference_distributions} if reference_distributions else {}),
    }
