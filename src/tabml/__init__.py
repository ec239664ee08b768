"""tabml: a declarative, reproducible MLOps pipeline for tabular machine learning."""

__version__ = "0.1.0"
