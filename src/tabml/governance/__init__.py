"""Governance: personal data and its erasure (`privacy`, `erasure`), retention of logs
(`retention`), fairness per segment (`fairness`), champion against challenger (`compare`),
releases and their gates (`release`), and carrying an experiment into conf/ (`promote`).

Imports only `tabml.core` and `tabml.adapters`.
"""
