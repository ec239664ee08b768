"""DVC stage entry points: read inputs, call one pure function, write outputs atomically.

Each module declares `PARAMS`, the params.yaml keys it reads; `dvc.yaml` lists the same keys
for the stage (a contract test holds the two equal).
"""
