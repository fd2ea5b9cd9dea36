# Veil: `make run` serves the panel with a demo organisation; `make test` runs every test.
# Both start from a fresh clone with Python 3.11 and Node 20; everything else is installed here.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
EXTENSION_DIR := $(CURDIR)/dist/extension
export VEIL_INSTANCE_PATH ?= $(CURDIR)/instance

.PHONY: run test install panel-assets deps-python deps-node translations update-translations extension browser lint pytest jstest e2e clean

run: install extension
	@$(BIN)/veil init
	@$(BIN)/veil demo
	@echo ""
	@echo "Extension: load $(EXTENSION_DIR) as an unpacked extension (chrome://extensions, Developer mode)."
	@echo "Panel:     http://127.0.0.1:$${VEIL_PORT:-5000}/"
	@echo ""
	@$(BIN)/veil serve

install: deps-python deps-node translations panel-assets

deps-python: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing Python packages into $(VENV) ..."
	@$(BIN)/pip install --disable-pip-version-check --progress-bar on -q -e '.[test]'
	@touch $@

deps-node: node_modules/.installed
node_modules/.installed: package.json package-lock.json
	@echo "Installing npm packages (npm ci) ..."
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

translations: deps-python
	@$(BIN)/pybabel -q compile -d backend/translations 2>/dev/null || $(BIN)/pybabel compile -d backend/translations

# Refresh the catalogue after adding or changing user-visible text; then translate the new entries.
update-translations: deps-python
	$(BIN)/pybabel extract -F backend/babel.cfg -k _l -k lazy_gettext --no-location --sort-output \
		-o backend/translations/messages.pot backend
	$(BIN)/pybabel update -i backend/translations/messages.pot -d backend/translations --no-fuzzy-matching --ignore-obsolete

# The panel's page scripts (backend/static/src -> backend/static/build), bundled with what npm installed.
panel-assets: deps-node
	@npm run --silent build:panel

extension: deps-node deps-python
	@VEIL_SERVER_URL="$${VEIL_SERVER_URL:-http://127.0.0.1:$${VEIL_PORT:-5000}}" npm run --silent build

# Debian's Chromium and ChromeDriver for the browser tests (root, or sudo when it is there).
browser:
	@if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then \
		echo "Installing chromium and chromium-driver with apt-get ..."; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	fi

lint: deps-python
	$(BIN)/ruff check backend tests e2e bench

pytest: install
	$(BIN)/python -m pytest tests

jstest: deps-node
	npm test

e2e: install extension browser
	$(BIN)/python -m pytest e2e

test: install extension browser lint
	$(BIN)/python -m pytest tests e2e
	npm test

clean:
	rm -rf $(VENV) node_modules dist instance .pytest_cache
