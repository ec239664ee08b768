"""DVC stage entry points: load the stage's params model, read its inputs, call one pure
function, write what it returns atomically (docs/pipeline.md, "Architecture").

`report`, `compare`, `release`, `append` and `forget` are the shells of commands that are not
dvc.yaml stages (`compare` is shared by `tabml report` and the release gate).

Each module's `PARAMS` is its params model's `param_keys()` (tabml.core.config): the keys of
params.yaml it reads, which `dvc.yaml` lists for the stage (a contract test holds the two
equal).
"""
