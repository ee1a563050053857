"""Runs a compiled graph with onnxruntime, from records of raw values."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import onnxruntime as ort


class OnnxModel:
    def __init__(self, path_or_bytes: str | Path | bytes):
        src = path_or_bytes if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        self.metadata = meta
        self.features = json.loads(meta["features"])
        self.outputs = [o.name for o in self.session.get_outputs()]

    def feeds(self, records: list[dict]) -> dict[str, np.ndarray]:
        feeds = {}
        for f in self.features:
            name = f["name"]
            values = [r.get(name) for r in records]
            if f["type"] == "string":
                feeds[name] = np.array(["" if v is None else str(v) for v in values], dtype=object).reshape(-1, 1)
            else:
                feeds[name] = np.array([math.nan if v is None else float(v) for v in values], dtype=np.float32).reshape(
                    -1, 1
                )
        return feeds

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        res = self.session.run(self.outputs, feeds)
        return {n: r.reshape(-1).astype(np.float64) for n, r in zip(self.outputs, res, strict=True)}

    def predict(self, records: list[dict]) -> dict[str, np.ndarray]:
        return self.run(self.feeds(records))
