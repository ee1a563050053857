"""Stand-in for azureml.core.model, so the data scientists' score.py runs unchanged
outside Azure ML. Model.get_model_path resolves a registered model name to the file
of that name in AZUREML_MODEL_DIR (the benchmark fills that folder with links to the
delivered files). Nothing else of the Azure ML SDK is provided."""

import os


class Model:
    @staticmethod
    def get_model_path(model_name, version=None, _workspace=None):
        folder = os.environ["AZUREML_MODEL_DIR"]
        path = os.path.join(folder, model_name)
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"model {model_name!r} is not in AZUREML_MODEL_DIR ({folder})"
            )
        return path
