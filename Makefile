# Each target sets up .venv itself (pinned torch CPU wheel via constraints.txt) and is
# safe to run on a fresh clone.
VENV ?= .venv
PYTHON ?= python3
PIP := $(VENV)/bin/pip install --quiet -c constraints.txt

.PHONY: demo test lint bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/marginlab run digits-cnn

test: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest -q

bench: $(VENV)/.installed
	$(VENV)/bin/python benchmarks/bench_mnist_cnn.py

clean:
	rm -rf $(VENV) build *.egg-info
