# Two commands matter: `make demo` and `make test`. Each sets up .venv on its own:
# created when missing, rebuilt when requirements.txt or pyproject.toml changed.
# `make test` ends with the real-browser test (JupyterLab + Debian's Chromium +
# Playwright), which installs Chromium when it is missing (root and apt needed).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
REQ_HASH := $(shell cat requirements.txt pyproject.toml | sha256sum | cut -c1-16)
STAMP := $(VENV)/.fmcnet-$(REQ_HASH)
# Tests, nbval and the demo keep their data and caches inside the checkout.
export FMCNET_DATA ?= $(CURDIR)/.cache/data
export MPLBACKEND ?= Agg

.PHONY: venv demo test test-unit test-notebooks test-e2e figures notebooks lab lint bench clean gpu-check pretrain

venv: $(STAMP)

$(STAMP):
	@if [ -d $(VENV) ] && [ ! -f $(STAMP) ]; then echo "requirements changed: rebuilding $(VENV)"; rm -rf $(VENV); fi
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $(STAMP)

demo: venv
	$(PY) -m fmcnet demo --out runs/demo

# The ImageNet stand-in that `quick` starts from (fmcnet/pretrain.py): rewrites the
# committed weights and their .json / .log. The recipe's defaults are the committed ones.
STANDIN ?= fmcnet/weights/standin_resnet18_w16.pt
pretrain: venv
	$(PY) -m fmcnet pretrain --out $(STANDIN)

test: venv
	$(PY) -m pytest tests -q -m "not e2e"
	FMCNET_PROFILE=smoke OMP_NUM_THREADS=1 $(PY) -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider notebooks -q
	FMCNET_PROFILE=smoke PY=$(PY) bash tests/e2e/run_e2e.sh

test-unit: venv
	$(PY) -m pytest tests -q -m "not e2e"

test-notebooks: venv
	FMCNET_PROFILE=smoke OMP_NUM_THREADS=1 $(PY) -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider notebooks -q

test-e2e: venv
	FMCNET_PROFILE=smoke PY=$(PY) bash tests/e2e/run_e2e.sh

# The README's pictures (docs/usage.md shows them) from the reference run (runs/demo) and
# notebook 01's MD on/off pair (runs/01_decompose_features-quick), each trained when
# missing; the browser picture is a screenshot of notebook 08 in Chromium (the e2e test).
figures: venv
	$(PY) -m fmcnet figures --out figures
	FMCNET_PROFILE=quick FMCNET_E2E_SCREENSHOT=$(CURDIR)/figures/ranking_browser.png PY=$(PY) bash tests/e2e/run_e2e.sh

# Notebooks 00-08 executed in place with their outputs, from the reference run of `make demo`
# (runs/demo; notebook 02 trains it when missing) and notebook 01's MD on/off pair (`make
# figures` trains it, else 01 does), each naming the commit it was rendered from: commit
# first, then run this, then commit the notebooks. Prints each one's time.
notebooks: venv
	FMCNET_PROFILE=quick OMP_NUM_THREADS=1 $(PY) -m fmcnet.notebooks

lab: venv
	FMCNET_PROFILE=quick $(VENV)/bin/jupyter lab notebooks/

lint: venv
	$(VENV)/bin/ruff check fmcnet fmcnet_bench tests bench

bench: venv
	$(PY) bench/train_throughput.py --quick
	$(PY) bench/eval_speed.py --quick
	$(PY) bench/data_pipeline.py --quick
	$(PY) bench/browser_speed.py --quick
	$(PY) bench/cpu_ranks.py --quick

clean:
	rm -rf .cache runs .pytest_cache

# The GPU acceptance check: one call on a GPU machine, with whatever python3 has torch
# (no venv, nothing installed). Writes $(GPU_CHECK_OUT)/gpu-check.json and .md.
GPU_CHECK_OUT ?= runs/gpu-check
gpu-check:
	$(PYTHON) -m fmcnet gpu-check --out $(GPU_CHECK_OUT)
