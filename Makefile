# voicebus: `make run` starts the whole product locally, `make test` runs every check.
# Both install what they need first: a pinned uv in .tools/, then the locked workspace in .venv/.

UV_VERSION := 0.13.9
PYTHON ?= python3
UV := .tools/bin/uv
RUN := $(UV) run --frozen --all-packages
MEMBERS := $(wildcard libs/*/pyproject.toml services/*/pyproject.toml tools/*/pyproject.toml)

# Nothing is fetched at run time: models come from installed wheels. Make any attempt fail loudly.
export HF_HUB_OFFLINE := 1

.PHONY: install run test bench lint typecheck unit e2e clean

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

lint: install
	$(RUN) ruff check .
	$(RUN) ruff format --check .

typecheck: install
	$(RUN) mypy libs services tools tests

unit: install
	$(RUN) pytest -m "not e2e"

e2e: install
	$(RUN) pytest -m e2e

test: lint typecheck
	$(RUN) pytest

clean:
	rm -rf .venv .tools .voicebus .mypy_cache .ruff_cache .pytest_cache
