"""Compute past one machine: the stages' work on a Dask cluster (`distributed`: the data stages,
evaluate's scoring and LightGBM's ranks) and monitoring on it (`monitor_cluster`).

Imports only the layers below: core to service.
"""
