"""Monitoring: the reference and the monitored batch, the summary of what NannyML found and its
alerts (`monitor`), and the HTML page drawn in a second process (`report_process`).

Imports only the layers below: core, adapters, governance, data.
"""
