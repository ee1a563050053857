"""The FNOL recipe: features, training-time cleaning, and how the two models combine.

ultimate_cost = attritional_cost + large_loss_probability * large_severity
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

CATEGORICAL = [
    "Location_of_incident",
    "Weather_conditions",
    "Vehicle_mobile",
    "Main_driver",
    "PH_considered_TP_at_fault",
]
FEATURES = [
    "Notification_period",
    *CATEGORICAL,
    "Vechile_registration_present",
    "Incident_details_present",
    "Injury_details_present",
    *[
        f"TP_type_{t}"
        for t in (
            "insd_pass_back",
            "insd_pass_front",
            "driver",
            "pass_back",
            "pass_front",
            "bike",
            "cyclist",
            "pass_multi",
            "pedestrian",
            "other",
            "nk",
        )
    ],
    *[f"TP_injury_{t}" for t in ("whiplash", "traumatic", "fatality", "unclear", "nk")],
    *[
        f"TP_region_{t}"
        for t in (
            "eastang",
            "eastmid",
            "london",
            "north",
            "northw",
            "outerldn",
            "scotland",
            "southe",
            "southw",
            "wales",
            "westmid",
            "yorkshire",
        )
    ],
]
NUMERIC = [f for f in FEATURES if f not in CATEGORICAL]
TARGET = "Incurred"
CAPPED_TARGET = "Capped Incurred"

# The texts pandas 1.3 (the training environment) reads as missing by default.
PANDAS_NA_TEXTS = (
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "n/a",
    "nan",
    "null",
)

# Training-time cleaning, raw value -> cleaned value, per categorical feature.
# Weather_conditions: missing values (and the texts pandas read as missing) became N/K.
# PH_considered_TP_at_fault: '#' became n/k.
CLEANING: dict[str, dict[str, str]] = {
    "Weather_conditions": {t: "N/K" for t in PANDAS_NA_TEXTS},
    "PH_considered_TP_at_fault": {"#": "n/k"},
}

OUTPUTS = {
    "ultimate_cost": "predicted ultimate claim cost: attritional_cost + large_loss_probability * large severity",
    "attritional_cost": "predicted capped (attritional) claim cost, Tweedie regressor",
    "large_loss_probability": "probability that the claim becomes a large loss, binary classifier",
}


def read_training_csv(path: str | Path) -> pd.DataFrame:
    """The CSV as the data scientists read it: pandas defaults, then the cleaning."""
    df = pd.read_csv(path, keep_default_na=False, na_values=list(PANDAS_NA_TEXTS), dtype={c: str for c in CATEGORICAL})
    return clean_frame(df)


def read_graph_inputs(path: str | Path) -> pd.DataFrame:
    """The CSV's feature columns as the graph receives them, before its cleaning: categories as
    their text (an empty cell is missing, `N/A` stays `N/A`), numbers as pandas read them."""
    df = pd.read_csv(
        path,
        usecols=FEATURES,
        keep_default_na=False,
        na_values={c: list(PANDAS_NA_TEXTS) for c in NUMERIC},
        dtype={c: str for c in CATEGORICAL},
    )
    for c in NUMERIC:
        df[c] = df[c].astype(np.float64)
    return df[FEATURES]


def clean_value(feature: str, value: object) -> object:
    """One categorical value as training saw it (None stands for missing)."""
    text = "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    return CLEANING.get(feature, {}).get(text, text)


def clean_frame(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for c in CATEGORICAL:
        out[c] = [clean_value(c, v) for v in out[c]]
    for c in NUMERIC:
        out[c] = out[c].astype(np.float64)
    return out


def vocabulary(df: pd.DataFrame) -> dict[str, list[str]]:
    """Categorical values seen in training (after cleaning), most frequent first."""
    return {c: [str(v) for v in df[c].value_counts().index] for c in CATEGORICAL}


def large_severity(df: pd.DataFrame) -> float:
    """Mean of Incurred - Capped Incurred over the large claims."""
    large = df[TARGET] > df[CAPPED_TARGET]
    return float((df[TARGET] - df[CAPPED_TARGET])[large].mean())


@dataclass
class Sources:
    attritional: Path
    large: Path
    training_csv: Path

    @staticmethod
    def from_folder(folder: str | Path) -> Sources:
        folder = Path(folder)
        return Sources(
            attritional=folder / "fnol_attritional_model.cbm",
            large=folder / "fnol_large_model.cbm",
            training_csv=folder / "Data_Scientist_Interview_Task.csv",
        )
