# voicebus: `make run` starts the whole product locally, `make test` runs every check.
# Both install what they need first: a pinned uv in .tools/, then the locked workspace in .venv/.

UV_VERSION := 0.13.9
PYTHON ?= python3
UV := .tools/bin/uv
RUN := $(UV) run --frozen --all-packages
MEMBERS := $(wildcard libs/*/pyproject.toml services/*/pyproject.toml tools/*/pyproject.toml)

# Nothing is fetched at run time: models come from installed wheels. Make any attempt fail loudly.
export HF_HUB_OFFLINE := 1

.PHONY: install run test bench soak lint typecheck unit e2e chromium clean

install: .venv/.installed

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

.venv/.installed: $(UV) pyproject.toml uv.lock $(MEMBERS)
	$(UV) sync --frozen --all-packages
	@touch $@

# Several processes of a service: make run REPLICAS="stt=2 agent=2 gateway=2"
REPLICAS ?=

run: install
	VOICEBUS_REPLICAS="$(REPLICAS)" $(RUN) voicebus-stack run

bench: install
	$(RUN) voicebus-bench --out bench/results --readme README.md

# Many calls at once on the instant stack for minutes, apart from bench (which it would double):
# make soak CALLS=30 MINUTES=10
CALLS ?= 30
MINUTES ?= 10

soak: install
	$(RUN) voicebus-bench --out bench/results --readme README.md soak --calls $(CALLS) --minutes $(MINUTES)

lint: install
	$(RUN) ruff check .
	$(RUN) ruff format --check .

typecheck: install
	$(RUN) mypy libs services tools tests

unit: install
	$(RUN) pytest -m "not e2e"

e2e: install chromium
	$(RUN) pytest -m e2e

test: lint typecheck chromium
	$(RUN) pytest

# The browser tests (tests/e2e/browser) drive Debian's Chromium; Playwright's own browsers are never
# downloaded. Installed with apt-get when missing: as root, or with sudo when it asks no password.
CHROMIUM := /usr/bin/chromium
APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

chromium:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && $(APT_INSTALL); \
	  elif command -v apt-get >/dev/null && sudo -n true 2>/dev/null; then \
	    sudo apt-get update -qq && sudo $(APT_INSTALL); \
	  else \
	    echo "The browser tests need Chromium at $(CHROMIUM) (Debian: apt-get install chromium)." >&2; \
	    echo "Install it as root, then run make test again." >&2; exit 1; \
	  fi; }

clean:
	rm -rf .venv .tools .voicebus .mypy_cache .ruff_cache .pytest_cache .hypothesis
