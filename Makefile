# Two commands do everything on a fresh machine: `make book` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: book test notebooks bench serve clean

# (Re)create the virtualenv only when the pins or the package metadata change.
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# --all rewrites every page (the sidebar and the bibliography change when a chapter is added);
# executed notebooks stay cached, so only new or edited chapters run again.
# Notebook kernels get one compute thread each (as in tests/test_book.py): on a small shared
# machine the default XLA/BLAS pools only oversubscribe the CPU (see the stall measurements).
KERNEL_ENV := XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

book: $(STAMP)
	$(KERNEL_ENV) $(BIN)/jupyter-book build . --all -W --keep-going
	@echo "The book is at $(CURDIR)/_build/html/index.html"

# Two phases: the library's tests on every core (pytest-xdist), then the book build (one test)
# with the machine to itself. A stalled notebook fails that test, naming the chapter
# (tests/test_book.py; no retry). The unit tests alone: .venv/bin/python -m pytest -n 2 -m "not book".
test: $(STAMP)
	$(BIN)/python -m pytest -n auto --dist worksteal -m "not book"
	$(BIN)/python -m pytest -m book

# Regenerate the Colab twins (book/*.ipynb) from the MyST sources.
notebooks: $(STAMP)
	for f in $$(grep -l '^kernelspec:' book/*.md); do $(BIN)/jupytext --quiet --update --to ipynb "$$f"; done

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b; done

serve: book
	$(BIN)/python -m http.server -d _build/html 8000

clean:
	rm -rf _build
