"""Reporting: the pull-request report (`report`), its Mermaid charts (`mermaid`) and HTML preview
(`preview`), PNG charts (`plots`), and experiments side by side (`leaderboard`, `latency`).

Imports only the layers below: core to compute. Only `tabml.stages` and the CLI import it.
"""
