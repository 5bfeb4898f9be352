# The two commands of the README: `make train` (the main job) and `make test` (the whole suite).
# Each sets up everything it needs on a fresh machine: a virtual environment with netdsl and
# its Keras extra, and (for the tests) Debian's Fashion-MNIST package.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SPEC   ?= specs/convnet2.net
FMNIST := /usr/share/datasets/fashion-mnist

.PHONY: setup train test lint data bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[keras,jax,torch,export,tensorboard,draw,dev]'
	touch $@

setup: $(BIN)/.installed

# Fashion-MNIST's IDX files from Debian (tests train on the real data set offline), and Graphviz's
# `dot` program for `netdsl draw`.
data:
	@if [ ! -d $(FMNIST) ] || ! command -v dot >/dev/null; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist graphviz) >/dev/null \
	      || echo "warning: could not install dataset-fashion-mnist and graphviz; their tests will be skipped"; \
	  else echo "note: run 'apt-get install dataset-fashion-mnist graphviz' as root for the Fashion-MNIST and draw tests"; fi; \
	fi

train: setup
	$(BIN)/netdsl train $(SPEC) --epochs 3

lint: setup
	$(BIN)/ruff check .

test: setup data lint
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
