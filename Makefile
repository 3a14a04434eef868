# Each target sets up .venv itself (pinned torch CPU wheel via constraints.txt) and is
# safe to run on a fresh clone.
VENV ?= .venv
PYTHON ?= python3
PIP := $(VENV)/bin/pip install --quiet -c constraints.txt

.PHONY: demo test test-fast docs lint bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) -e '.[test,docs]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/marginlab run digits-cnn

# The whole suite, one line per file with its progress, then the slowest tests.
test: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests benchmarks examples docs
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest
	$(MAKE) docs

# Under two minutes on 2 cores: the tests marked slow (end-to-end runs, reproductions,
# the README walk-through) are left out.
test-fast: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests benchmarks examples docs
	$(VENV)/bin/pytest -m "not slow" --durations=5

# The site in site/; building it executes the tutorials, and any warning (a broken link, a
# docstring mkdocstrings cannot read) or a tutorial cell that raises fails it.
docs: $(VENV)/.installed
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

bench: $(VENV)/.installed
	$(VENV)/bin/python benchmarks/bench_mnist_cnn.py

clean:
	rm -rf $(VENV) build site *.egg-info
