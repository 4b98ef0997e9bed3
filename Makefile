# make run: set up and start the whole platform. make test: set up and run every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.robot-installed
# Debian packages the platform and its tests need: git for wikis, chromium and its driver for
# the browser tests, sqlite3 for inspecting databases, postgresql for the throwaway server that
# the tests start to run the platform DB on PostgreSQL (tests/postgres.py), caddy for the proxy
# in front that the tests run with the Caddyfile the Ansible role writes (tests/ops/test_caddy.py).
DEB_PACKAGES := git chromium chromium-driver sqlite3 postgresql caddy
# apt-get needs root; as another user, go through sudo.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

# axe-core for the accessibility tests, pinned by tests/a11y/package-lock.json.
A11Y_STAMP := tests/a11y/node_modules/.robot-installed

.PHONY: venv run test lint system-packages a11y bench bench-search clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

# Every setting comes from the environment (ROBOT_DATA_DIR, PLATFORM_DOMAIN, ROBOT_BIND_HOST,
# WIKI_PORT, MCP_PORT, API_PORT, AUTH_PORT, ...), so `WIKI_PORT=9000 ... make run` or
# `make run WIKI_PORT=9000 ...` starts a second instance beside the first.
run: venv
	$(BIN)/robot init
	exec $(BIN)/robot run

system-packages:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# npm comes with Debian's nodejs/npm packages; a machine that has node from elsewhere keeps it.
a11y: $(A11Y_STAMP)

$(A11Y_STAMP): tests/a11y/package.json tests/a11y/package-lock.json
	command -v npm >/dev/null || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
	npm ci --prefix tests/a11y --no-audit --no-fund
	touch $@

lint: venv
	$(BIN)/ruff check app tests bench
	$(BIN)/ruff format --check app tests bench

# Two pytest-xdist workers, whole files each (a module's shared fixtures stay in one process);
# most of a test's time is spent waiting on real services and browsers, so two overlap well.
test: venv system-packages a11y lint
	$(BIN)/pytest -q -n 2 --dist loadfile

bench: venv system-packages
	$(BIN)/python bench/tenancy.py

# Search through the full-text index vs the scan it replaced, on a 2,000-page wiki.
bench-search: venv system-packages
	$(BIN)/python bench/search.py

clean:
	rm -rf $(VENV) var tests/a11y/node_modules
