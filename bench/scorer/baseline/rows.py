"""Prints the first K rows of the training CSV as positional rows (the 37 features
in model order, with the training-time cleaning), for the benchmark's requests."""

import json
import os
import sys

import pandas as pd

DROPPED = [
    "Claim Number",
    "Notifier",
    "Loss_code",
    "Loss_description",
    "Inception_to_loss",
    "date_of_loss",
    "Time_hour",
]
TARGETS = ["Incurred", "Capped Incurred"]

frame = pd.read_csv(
    os.path.join(os.environ["FNOL_ARTIFACTS"], "Data_Scientist_Interview_Task.csv"),
    nrows=int(sys.argv[1]),
)
frame = frame.drop(columns=DROPPED + TARGETS)
frame["Weather_conditions"] = frame["Weather_conditions"].fillna("N/K")
frame["PH_considered_TP_at_fault"] = frame["PH_considered_TP_at_fault"].replace(
    "#", "n/k"
)
json.dump(
    [
        [v.item() if hasattr(v, "item") else v for v in row]
        for row in frame.itertuples(index=False)
    ],
    sys.stdout,
)
