# tabml: `make repro` builds the environment and runs the pipeline; `make test` runs every check.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV_VERSION := 0.13.8
# use uv from PATH if there is one, else a private copy installed with pip into .tools/
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
RUN := $(UV) run --locked --no-sync
# the Pythons tabml's dependencies support (NannyML 0.13.1: up to 3.12); one uv.lock for both
PYTHONS := >=3.11,<3.13
# uv uses a matching python on PATH; `make repro PYTHON=3.12` picks one, and
# `make repro UV_PYTHON_DOWNLOADS=automatic` lets uv fetch one where the machine allows it
PYTHON ?= $(UV_PYTHON)
ifneq ($(PYTHON),)
export UV_PYTHON := $(PYTHON)
endif
export UV_PYTHON_DOWNLOADS ?= never
# compile .pyc once at install: every stage is its own process, and where the environment sets
# PYTHONDONTWRITEBYTECODE (as CI images often do) each one would otherwise recompile pandas,
# DVC and NannyML from source on every start (pandas alone: 1.0 s instead of 0.3 s)
export UV_COMPILE_BYTECODE := 1
export NML_DISABLE_USAGE_LOGGING := 1
export ITERATIVE_DO_NOT_TRACK := 1

.PHONY: help sync repro test test-fast lint typecheck pytest params bench push pull clean-outputs report pipeline-image \
	docs-report gate release image podman offline-plots tune

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

.tools/bin/uv:
	@echo ">> installing uv $(UV_VERSION) into .tools/ (no uv on PATH)"
	python3 -m venv .tools
	.tools/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# checkov (the Kubernetes and Dockerfile checks) in an environment of its own: its pins would
# downgrade the pipeline's (boto3, packaging, dask) if it shared uv.lock
CHECKOV_VERSION := 3.3.30
.tools/checkov/bin/checkov: $(if $(filter .tools/bin/uv,$(UV)),.tools/bin/uv)
	@echo ">> installing checkov $(CHECKOV_VERSION) into .tools/checkov/"
	$(UV) venv --quiet --allow-existing --python '$(or $(PYTHON),$(PYTHONS))' .tools/checkov
	VIRTUAL_ENV=.tools/checkov $(UV) pip install --quiet "checkov==$(CHECKOV_VERSION)"

sync: $(if $(filter .tools/bin/uv,$(UV)),.tools/bin/uv) ## create/update .venv exactly from uv.lock
	@$(UV) python find '$(or $(PYTHON),$(PYTHONS))' >/dev/null 2>&1 || { \
	  echo "error: tabml needs Python 3.11 or 3.12 (its dependencies support no newer one), and" >&2; \
	  echo "  none was found$(if $(PYTHON), for PYTHON=$(PYTHON)) (python3 here: $$(python3 --version 2>&1))." >&2; \
	  echo "  Install one (e.g. 'apt install python3.12' or 'pyenv install 3.12'), then run" >&2; \
	  echo "  'make repro' again (or 'make repro PYTHON=3.12' to choose it); where the machine" >&2; \
	  echo "  may download, 'make repro UV_PYTHON_DOWNLOADS=automatic' lets uv fetch one." >&2; \
	  exit 2; }
	@echo ">> uv sync --locked"
	$(UV) sync --locked

repro: sync ## run the whole pipeline on the bundled default data (dvc repro)
	@echo ">> dvc repro"
	$(RUN) dvc repro

push: sync ## send data, models and the run-cache to the DVC remote 'storage' (S3)
	@echo ">> dvc push --run-cache (remote: $$($(RUN) dvc remote default))"
	$(RUN) dvc push --run-cache

pull: sync ## fetch data, models and the run-cache from 'storage'; dvc repro then skips what ran
	@echo ">> dvc pull --run-cache"
	$(RUN) dvc pull --run-cache --allow-missing

params: sync ## regenerate params.yaml from conf/ (what dvc exp run does)
	$(RUN) tabml params

BASE ?= HEAD
report: sync ## preview the pull-request comment: the workspace against HEAD (or BASE=REV)
	@echo ">> tabml report --base $(BASE) (after dvc repro)"
	$(RUN) tabml report --base $(BASE) --output reports/pull-request/report.md \
	  --html reports/pull-request/report.html
	@echo ">> open reports/pull-request/report.html in a browser (drawn offline; report.md is the comment)"

# Vega, Vega-Lite and vega-embed inlined into .dvc/plots-offline.html, so that `dvc plots show`
# draws without network (the versions and their sha512 are pinned in deploy/vega/build)
offline-plots: ## rebuild .dvc/plots-offline.html from the pinned npm packages (needs npm)
	deploy/vega/build

# The rendered example in docs/: a throw-away worktree of HEAD with the model switched
# (model=logreg, the scikit-learn baseline), reproduced with this project's DVC cache, reported against HEAD.
EXAMPLE_CHANGE ?= model=logreg
docs-report: sync ## regenerate docs/pr-example/ (the example pull-request report)
	@set -euo pipefail; here=$$(pwd); tmp=$$(mktemp -d); trap 'git worktree remove --force "$$tmp/wt" >/dev/null 2>&1 || true; rm -rf "$$tmp"' EXIT; \
	echo ">> worktree of HEAD in $$tmp/wt, with $(EXAMPLE_CHANGE)"; \
	git worktree add --detach --quiet "$$tmp/wt" HEAD; \
	cd "$$tmp/wt"; export PATH="$$here/.venv/bin:$$PATH"; \
	"$$here/.venv/bin/dvc" cache dir --local "$$here/.dvc/cache"; \
	"$$here/.venv/bin/tabml" params "$(EXAMPLE_CHANGE)"; \
	echo ">> dvc repro (unchanged stages come from the run-cache)"; \
	"$$here/.venv/bin/dvc" repro; \
	"$$here/.venv/bin/tabml" report --base HEAD --output "$$here/docs/pr-example/report.md" \
	  --images-dir "$$here/docs/pr-example/images"

TRIALS ?=
tune: sync ## search LightGBM's settings (Optuna) on train and valid; propose conf/model/<dataset>_tuned.yaml
	$(RUN) tabml tune $(if $(TRIALS),--trials $(TRIALS))

gate: sync ## check the run against the release quality gates (conf/release/)
	$(RUN) tabml gate

release: sync ## tag a release after checks and gates: make release VERSION=v1.2.3 (gto register)
	@test -n "$(VERSION)" || { echo "usage: make release VERSION=v1.2.3" >&2; exit 2; }
	$(RUN) tabml release register --version $(VERSION)

podman: ## install podman (as root, apt) and build the local base image once (docs/deploy.md)
	deploy/podman/setup

pipeline-image: ## build the pipeline image (Dask scheduler, workers, the dvc repro job): deploy/k8s/dask
	@eval "$$(deploy/podman/setup)" && $${ENGINE:-podman} build --target pipeline \
	  $$(podman image exists localhost/tabml-base:bookworm 2>/dev/null && echo --build-arg BASE=localhost/tabml-base:bookworm) \
	  -t $${IMAGE:-localhost/tabml-pipeline}:latest -f Dockerfile .

image: ## build the serving image of a release: make image VERSION=v1.2.3 (after 'tabml release build')
	@test -n "$(VERSION)" || { echo "usage: make image VERSION=v1.2.3" >&2; exit 2; }
	@eval "$$(deploy/podman/setup)" && deploy/podman/build-image $(VERSION)

lint: sync ## ruff
	@echo ">> ruff"
	$(RUN) ruff check src tests benchmarks
	$(RUN) ruff format --check src tests benchmarks

typecheck: sync ## mypy
	@echo ">> mypy"
	$(RUN) mypy

# Every test in one pass on both cores (pytest-xdist, one module per worker): the integration
# tests first, the unit and contract tests (60 s each at most, tests/conftest.py) filling the
# workers' tails. OpenMP threads wait passively: two LightGBM trainings at once with spinning
# threads starve each other (4 minutes, not 10 s). PYTEST_ARGS=... runs just what it names,
# in one process.
pytest: sync .tools/checkov/bin/checkov ## pytest only (PYTEST_ARGS="tests/unit -k x" for a part)
ifeq ($(strip $(PYTEST_ARGS)),)
	@echo ">> pytest: every test (the integration tests first), 2 workers"
	OMP_WAIT_POLICY=PASSIVE $(RUN) pytest -n 2 --dist loadfile
else
	@echo ">> pytest $(PYTEST_ARGS)"
	$(RUN) pytest $(PYTEST_ARGS)
endif

test: lint typecheck pytest ## lint, types and every test

test-fast: sync .tools/checkov/bin/checkov ## the edit loop (under a minute): ruff, then every test not marked slow
	$(RUN) ruff check src tests benchmarks
	OMP_WAIT_POLICY=PASSIVE $(RUN) pytest -q -n 2 -m "not slow" --timeout 60 $(PYTEST_ARGS)

bench: sync ## run the benchmarks (slow; figures go to docs/benchmarks.md)
	$(RUN) python benchmarks/pipeline.py
	$(RUN) python benchmarks/quality.py
	$(RUN) python benchmarks/monitor.py
	$(RUN) python benchmarks/serve.py
