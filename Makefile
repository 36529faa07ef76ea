# make demo  - the main job on a CPU: the ablation table on MiniCity (no dataset, no GPU)
# make test  - the whole check: ruff, pytest on tests/, test-no-extras, nbval on notebooks/
# make test-fast - ruff and the tests not marked slow (about 40 s)
# make test-no-extras - the tests not marked slow with the notebook extras hidden
# Each creates .venv and installs the package with its extras on first use.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
SRC := $(wildcard dgcn tests benchmarks docs/book/build.py notebooks/[0-9]*.py)

.PHONY: demo test test-fast test-no-extras lint format install clean book bench

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "dgcn needs Python >= 3.10, found " + sys.version.split()[0]'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[notebooks,dev]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/dgcn reproduce

lint: $(STAMP)
	$(VENV)/bin/ruff check $(SRC)
	$(VENV)/bin/ruff format --check $(SRC)

format: $(STAMP)
	$(VENV)/bin/ruff check --fix $(SRC)
	$(VENV)/bin/ruff format $(SRC)

test: lint
	$(PY) -m pytest -q tests
	$(MAKE) --no-print-directory test-no-extras
	@if ls notebooks/[0-9]*.ipynb >/dev/null 2>&1; then \
		DGCN_SMOKE=1 $(PY) -m pytest -q -p no:cacheprovider --nbval-lax notebooks/[0-9]*.ipynb; \
	else echo "no notebooks yet: nbval skipped"; fi

# the quick lane while editing: lint and the tests not marked slow (no notebooks)
test-fast: lint
	$(PY) -m pytest -q -m "not slow" tests

# the CPU test suite (the tests not marked slow) with only the core dependencies:
# tests/no_extras/sitecustomize.py makes matplotlib, pandas, ipywidgets, jupytext, nbval,
# scipy, ... unimportable; tests that need one skip with the reason (about 75 s on 2 cores;
# tests/test_no_extras.py runs train, evaluate, predict and reproduce the same way)
test-no-extras: $(STAMP)
	PYTHONPATH=$(CURDIR)/tests/no_extras $(PY) -m pytest -q -p no:cacheprovider -p no:nbval \
		-m "not slow" tests

# the book as HTML under build/book/: notebooks executed in smoke mode on a CPU, MathJax local
# (the pages load no remote script, so the equations render offline)
book: $(STAMP)
	DGCN_SMOKE=1 $(PY) docs/book/build.py build/book

# speed and memory benchmarks (CUDA parts run only on a GPU); JSON in benchmarks/results/
bench: $(STAMP)
	$(PY) benchmarks/modules.py
	$(PY) benchmarks/train_step.py
	@if $(PY) -c 'import sys, torch; sys.exit(not torch.cuda.is_available())'; then \
		$(PY) benchmarks/train_step.py --compile; fi
	$(PY) benchmarks/evaluation.py
	$(PY) benchmarks/data_loading.py
	nice $(PY) benchmarks/context_cost.py
	$(PY) benchmarks/inspector_redraw.py
	$(PY) benchmarks/report.py --out benchmarks/results/README.md

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache
