"""DVC stage entry points: read inputs, call one pure function, write outputs atomically.

`report` is the one module here that is not a dvc.yaml stage: it is the shell of
`tabml report`, which compares the workspace with a git revision.

Each module declares `PARAMS`, the params.yaml keys it reads; `dvc.yaml` lists the same keys
for the stage (a contract test holds the two equal).
"""
