"""FNOL model compiler: CatBoost models to one exact ONNX graph."""

__version__ = "1.0.0"
