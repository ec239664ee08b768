"""The core: what every other part stands on. Typed configuration (`config`), the catalog of
file names (`catalog`), the dataset schema and its checks (`schema`), reading and atomic
writing (`io`, `parquet_join`), errors for people (`errors`), progress output (`log`),
secrets from the environment (`secrets`), repeated-id finding (`repeats`), chunk rules
(`chunking`) and the params guard (`params_guard`).

Imports no other tabml subpackage.
"""
