"""CatBoost's own predictions, the reference every compiled graph is checked against."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .fnol import CATEGORICAL, FEATURES, clean_value


class CatBoostReference:
    def __init__(self, attritional: Path, large: Path, severity: float):
        from catboost import CatBoostClassifier, CatBoostRegressor

        self.attritional = CatBoostRegressor()
        self.attritional.load_model(str(attritional))
        self.large = CatBoostClassifier()
        self.large.load_model(str(large))
        self.severity = severity

    @staticmethod
    def frame(records: list[dict]) -> pd.DataFrame:
        """Records (raw values) -> the cleaned frame CatBoost is applied to."""
        rows = []
        for r in records:
            row = {}
            for f in FEATURES:
                v = r.get(f)
                if f in CATEGORICAL:
                    row[f] = clean_value(f, v)
                else:
                    row[f] = np.nan if v is None else float(v)
            rows.append(row)
        return pd.DataFrame(rows, columns=FEATURES)

    def predict_frame(self, df: pd.DataFrame) -> dict[str, np.ndarray]:
        df = df[FEATURES]
        attritional = np.asarray(self.attritional.predict(df), dtype=np.float64)
        probability = np.asarray(self.large.predict_proba(df)[:, 1], dtype=np.float64)
        return {
            "ultimate_cost": attritional + probability * self.severity,
            "attritional_cost": attritional,
            "large_loss_probability": probability,
        }

    def predict(self, records: list[dict]) -> dict[str, np.ndarray]:
        return self.predict_frame(self.frame(records))
