"""Learning: column statistics (`stats`), preprocessing (`features`), LightGBM's data in blocks
(`lgbm_data`), the models (`model`), the pure metrics (`metrics`), evaluation (`evaluate`),
model packages and batch scoring (`package`, `predict`) and tuning (`tune`).

Imports only the layers below: core, adapters, governance, data, monitoring.
"""
