"""Serving: the prediction service's core (`serving`), the HTTP service (`server`), who may call
it (`access`), its Prometheus metrics (`metrics`), the prediction log (`predlog`) and its
shipping to an object store (`logship`).

Imports only the layers below: core to learning.
"""
