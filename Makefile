# ko-sparse developer entry points. Everything installs into .venv on first use.
VENV ?= .venv
# test-lowest's venv: the declared minimum of every direct dependency
LOWEST ?= .venv-lowest
PYTHON ?= python3
BIN := $(VENV)/bin
TORCH_INDEX_URL ?=  # e.g. https://download.pytorch.org/whl/cpu: the CPU build of torch, without CUDA libraries

.PHONY: install demo test test-all test-lowest lint bench

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(if $(TORCH_INDEX_URL),$(BIN)/pip install torch --index-url $(TORCH_INDEX_URL))
	$(BIN)/pip install -e ".[dev]"
	touch $@

demo: install  ## the main job, offline: train the tiny preset, benchmark it against BM25, show its expansions
	$(BIN)/ko-sparse train --preset tiny --output-dir outputs/tiny --overwrite
	$(BIN)/ko-sparse bench --index medical --model outputs/tiny/best
	$(BIN)/ko-sparse expand "당뇨병 치료" "서울에서 부산까지 기차" --model outputs/tiny/best --top-k 10

lint: install
	$(BIN)/ruff check ko_sparse tests benchmarks
	$(BIN)/ruff format --check ko_sparse tests benchmarks

test: lint  ## the unit tier: no OpenSearch node, no Java, no long training
	$(BIN)/pytest -m "not integration and not slow"

test-all: test  ## what .ci/run calls: then the integration tier (live clusters) and the slow tests
	$(BIN)/pytest -m "integration or slow"

# --upgrade: a lowest-direct resolution even where the venv already holds newer versions; --exact: nothing left over
test-lowest:  ## the unit tier (no OpenSearch node) against the minimum versions pyproject.toml declares
	$(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/pip install --quiet uv
	$(LOWEST)/bin/uv pip install --python $(LOWEST)/bin/python --resolution lowest-direct --upgrade --exact -e ".[dev]"
	$(LOWEST)/bin/pytest tests --ignore=tests/integration -m "not slow"

bench: install  ## every speed benchmark at 2-core CPU sizes, then the table in docs/speed.md (one whose peer needs .[benchmarks] is skipped)
	$(BIN)/python -m benchmarks all --quick
