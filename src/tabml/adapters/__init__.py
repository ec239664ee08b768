"""Adapters: the one place each volatile library is called. `dvc_adapter` for DVC's Python API,
`nannyml_adapter` for NannyML; an upgrade of either touches one file.

Imports only `tabml.core`.
"""
