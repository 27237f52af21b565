# Everything a fresh machine needs is installed by these targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8443
METRICS_PORT ?= 9999

.PHONY: run test lint bench certs clean

$(STAMP): pyproject.toml
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq python3-venv)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

certs/tls.crt: | $(STAMP)
	$(BIN)/pod-identity-webhook certs --out certs --service pod-identity-webhook --namespace default --ip 127.0.0.1 --dns localhost

certs: certs/tls.crt

run: $(STAMP) certs/tls.crt
	$(BIN)/pod-identity-webhook serve --bind-address 127.0.0.1 --port $(PORT) \
		--metrics-port $(METRICS_PORT) \
		--tls-cert certs/tls.crt --tls-key certs/tls.key \
		--service-accounts-file examples/serviceaccounts.yaml \
		--aws-default-region us-west-2

test: $(STAMP)
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check webhook tests $(wildcard benchmarks)
	$(BIN)/ruff format --check webhook tests $(wildcard benchmarks)
	$(BIN)/mypy

bench: $(STAMP)
	@command -v wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
