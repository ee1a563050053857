"""Baseline for the scorer benchmark: the FNOL model served the way the original
Azure ML deployment would have served it (azureml-inference-server-http entry
script, catboost in-process), with the same {"data": [[...]]} -> {"result": [...]}
contract. Model files come from AZUREML_MODEL_DIR (the delivered .cbm files).
"""

import json
import os

from catboost import CatBoostClassifier, CatBoostRegressor

# fnol/README.md, "What the model predicts"
LARGE_SEVERITY = 128818.101010101

attritional = None
large = None


def init():
    global attritional, large
    model_dir = os.environ["AZUREML_MODEL_DIR"]
    attritional = CatBoostRegressor()
    attritional.load_model(os.path.join(model_dir, "fnol_attritional_model.cbm"))
    large = CatBoostClassifier()
    large.load_model(os.path.join(model_dir, "fnol_large_model.cbm"))


def run(raw_data):
    try:
        rows = json.loads(raw_data)["data"]
        cost = (
            attritional.predict(rows) + large.predict_proba(rows)[:, 1] * LARGE_SEVERITY
        )
        return {"result": cost.tolist()}
    except Exception as error:  # the original contract: errors as a 200 body
        return {"error": str(error)}
