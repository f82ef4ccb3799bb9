# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv if missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export KERAS_BACKEND := tensorflow
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: demo test bench docs install clean

$(STAMP): setup.cfg pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[test,docs]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/kaug demo

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

# The documentation site, built offline into site/ (open site/index.html). `make test` also
# builds it with --strict (tests/test_docs.py): a broken link or reference fails.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# Runs benchmarks/layers.py and benchmarks/mixing.py and rewrites docs/benchmarks.md (long).
bench: $(STAMP)
	$(BIN)/pip install -q -e ".[test,bench]"
	$(BIN)/python benchmarks/report.py --out docs/benchmarks.md

clean:
	rm -rf $(VENV) runs .pytest_cache site
