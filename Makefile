# Two entry points for a fresh machine: `make demo` and `make test`. Both build .venv by themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint lock clean bench

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "meshwright needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[sandbox,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/meshwright plan deployments/sandbox.yaml

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

lock: $(STAMP)
	$(BIN)/pip freeze --exclude-editable | sed '1i # Pinned versions for reproducible installs. Regenerate: make lock' > constraints.txt

clean:
	rm -rf $(VENV) .meshwright .mypy_cache .ruff_cache .pytest_cache
