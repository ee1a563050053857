"""Reference distributions of a model's inputs and outputs on its training data, for drift monitoring.

The compiler records them in the graph's metadata (key `reference_distributions`) and in the
model card; a scorer bins the values it serves the same way and compares the two with the
population stability index (PSI). docs/model-format.md defines the document and the bins.

Numbers: interior bin edges e_1 < ... < e_k; bin 0 holds x <= e_1, bin i holds e_i < x <= e_{i+1},
bin k holds x > e_k (upper-inclusive bins, open at both ends). NaN or an absent value is
missing. Categories: one share per listed value, `other` for every other value, `missing`
for null, absent or the empty string.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import onnx

METADATA_KEY = "reference_distributions"
FORMAT_VERSION = 1
BINS = 10  # quantile bins of a number with more distinct values than this
QUANTILES = [i / BINS for i in range(1, BINS)]  # the interior edges: deciles 0.1 ... 0.9
MAX_CATEGORIES = 50  # categories listed by name; the rest are pooled as `other`
MAX_CATEGORY_LENGTH = 100  # longer texts are pooled as `other` too: the document stays a few KB
EDGE_DIGITS = 6  # significant digits of an edge
SHARE_DECIMALS = 6  # shares are multiples of 1e-6 that sum to exactly 1e6 units
PSI_EPSILON = 1e-4  # a share below this counts as this in the PSI (empty bins)


def _round_edge(x: float) -> float:
    e = float(f"{x:.{EDGE_DIGITS}g}")
    return int(e) if e.is_integer() else e  # 3, not 3.0: a byte less in the JSON


def numeric_edges(values: np.ndarray) -> list[float]:
    """Interior edges from the non-missing values: each distinct value when there are at most BINS of
    them, else the deciles (the smallest value v with share(x <= v) >= p), rounded and deduplicated."""
    v = values[~np.isnan(values)]
    if v.size == 0:
        return []
    distinct = np.unique(v)
    points = distinct if distinct.size <= BINS else np.quantile(v, QUANTILES, method="inverted_cdf")
    edges: list[float] = []
    for p in points:
        e = _round_edge(float(p))
        if math.isfinite(e) and (not edges or e > edges[-1]):
            edges.append(e)
    return edges


def numeric_bin(x: float | None, edges: Sequence[float]) -> int | None:
    """The bin of one value (None when missing): the number of edges strictly below it."""
    if x is None or math.isnan(x):
        return None
    lo, hi = 0, len(edges)
    while lo < hi:  # first edge >= x
        mid = (lo + hi) // 2
        if edges[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


def numeric_counts(values: np.ndarray, edges: Sequence[float]) -> tuple[list[int], int]:
    """Rows per bin (len(edges) + 1 bins) and missing rows, with the upper-inclusive convention."""
    v = np.asarray(values, dtype=np.float64)
    missing = np.isnan(v)
    bins = np.searchsorted(np.asarray(edges, dtype=np.float64), v[~missing], side="left")
    counts = np.bincount(bins, minlength=len(edges) + 1)
    return [int(c) for c in counts], int(missing.sum())


def is_missing_category(value: object) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def category_counts(values: Iterable[object]) -> tuple[Counter[str], int]:
    counts: Counter[str] = Counter()
    missing = 0
    for value in values:
        if is_missing_category(value):
            missing += 1
        else:
            counts[str(value)] += 1
    return counts, missing


def shares(counts: Sequence[int]) -> list[float]:
    """Counts as shares rounded to SHARE_DECIMALS with the largest remainder, so they sum to 1."""
    total = sum(counts)
    if total == 0:
        return [0.0 for _ in counts]
    unit = 10**SHARE_DECIMALS
    exact = [c * unit / total for c in counts]
    units = [math.floor(x) for x in exact]
    short = unit - sum(units)
    for i in sorted(range(len(counts)), key=lambda i: (-(exact[i] - units[i]), i))[:short]:
        units[i] += 1
    return [u // unit if u in (0, unit) else u / unit for u in units]  # 0 and 1 as integers: shorter JSON


def numeric_distribution(values: Iterable[float | None]) -> dict[str, Any]:
    v = np.array([math.nan if x is None else float(x) for x in values], dtype=np.float64)
    edges = numeric_edges(v)
    counts, missing = numeric_counts(v, edges)
    s = shares([*counts, missing])
    return {"type": "number", "edges": edges, "shares": s[:-1], "missing": s[-1]}


def categorical_distribution(values: Iterable[object]) -> dict[str, Any]:
    counts, missing = category_counts(values)
    ranked = sorted(counts, key=lambda c: (-counts[c], c))
    listed = [c for c in ranked if len(c) <= MAX_CATEGORY_LENGTH][:MAX_CATEGORIES]
    other = sum(counts.values()) - sum(counts[c] for c in listed)
    s = shares([*(counts[c] for c in listed), other, missing])
    return {"type": "string", "values": listed, "shares": s[:-2], "other": s[-2], "missing": s[-1]}


def output_distribution(values: np.ndarray) -> dict[str, Any]:
    """One output: a number per record, or K columns (one distribution per column, in column order)."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 2 and v.shape[1] > 1:
        return {"type": "columns", "columns": [numeric_distribution(v[:, j]) for j in range(v.shape[1])]}
    return numeric_distribution(v.reshape(-1))


def document(
    inputs: Mapping[str, tuple[str, Iterable[Any]]],
    outputs: Mapping[str, np.ndarray],
    *,
    rows: int,
    source: Mapping[str, Any],
) -> dict[str, Any]:
    """The reference document: `inputs` maps each graph input to its type ("number" or "string") and its
    training values, `outputs` each graph output to the graph's predictions on those rows."""
    return {
        "version": FORMAT_VERSION,
        "rows": rows,
        "source": dict(source),
        "psi_epsilon": PSI_EPSILON,
        "inputs": {
            name: numeric_distribution(values) if kind == "number" else categorical_distribution(values)
            for name, (kind, values) in inputs.items()
        },
        "outputs": {name: output_distribution(values) for name, values in outputs.items()},
    }


def observed_shares(distribution: Mapping[str, Any], values: Iterable[Any]) -> list[float]:
    """Shares of `values` in the bins of a recorded distribution, in the order the PSI sums over:
    numbers: the len(edges) + 1 bins, then missing; categories: the listed values, other, missing."""
    vals = list(values)
    if not vals:
        raise ValueError("no values to compare with the reference distribution")
    if distribution["type"] == "number":
        edges = distribution["edges"]
        counts = [0] * (len(edges) + 2)
        for x in vals:
            b = numeric_bin(None if x is None else float(x), edges)
            counts[len(edges) + 1 if b is None else b] += 1
    elif distribution["type"] == "string":
        index = {v: i for i, v in enumerate(distribution["values"])}
        counts = [0] * (len(index) + 2)
        for x in vals:
            counts[len(index) + 1 if is_missing_category(x) else index.get(str(x), len(index))] += 1
    else:
        raise ValueError(f"no single-column distribution of type {distribution['type']!r}")
    return [c / len(vals) for c in counts]


def expected_shares(distribution: Mapping[str, Any]) -> list[float]:
    """The recorded shares in the same order as observed_shares."""
    if distribution["type"] == "number":
        return [*distribution["shares"], distribution["missing"]]
    return [*distribution["shares"], distribution["other"], distribution["missing"]]


def psi(expected: Sequence[float], observed: Sequence[float], epsilon: float = PSI_EPSILON) -> float:
    """Population stability index: sum over bins of (o - e) * ln(o / e), each share at least epsilon."""
    if len(expected) != len(observed):
        raise ValueError(f"{len(expected)} reference bins against {len(observed)} observed bins")
    total = 0.0
    for e, o in zip(expected, observed, strict=True):
        e, o = max(e, epsilon), max(o, epsilon)
        total += (o - e) * math.log(o / e)
    return total


def feature_psi(distribution: Mapping[str, Any], values: Iterable[Any]) -> float:
    return psi(expected_shares(distribution), observed_shares(distribution, values))


def metadata_value(doc: Mapping[str, Any]) -> str:
    """The document as the compact JSON the graph carries."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def add_reference_distributions(model: onnx.ModelProto, doc: Mapping[str, Any]) -> int:
    """Adds (or replaces) the metadata entry; returns its size in bytes (UTF-8)."""
    value = metadata_value(doc)
    for i, p in enumerate(model.metadata_props):
        if p.key == METADATA_KEY:
            del model.metadata_props[i]
            break
    model.metadata_props.append(onnx.StringStringEntryProto(key=METADATA_KEY, value=value))
    return len(value.encode("utf-8"))
