"""Data: where raw files come from (`datasets`), cleaning (`clean`), splitting (`split`), larger
synthetic data (`synth`), a proposed config for a new data set (`profile`) and retraining data
from prediction logs (`retrain`).

Imports only `tabml.core`, `tabml.adapters` and `tabml.governance`.
"""
