# proftpy: `make run` starts the daemon on the development config; `make test` runs the whole suite.
# PYTHON: the newest supported interpreter that measured best (scripts/pick-python.sh); `make PYTHON=python3.11`
# picks another (supported: 3.11, 3.12, 3.13). `make python` builds an optimised 3.13 (PGO + LTO, 30-40 minutes)
# under /opt/proftpy, which the pick prefers from then on.
PYTHON ?= $(shell sh scripts/pick-python.sh)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed$(subst /,_,$(shell command -v $(PYTHON)))

.PHONY: run test bench docs deps python clean

$(STAMP): setup.cfg pyproject.toml scripts/install-deps.sh scripts/pick-python.sh
	@sh scripts/install-deps.sh
	@# a venv of another interpreter is made again
	@test -x $(BIN)/python && [ "$$($(BIN)/python -c 'import sys; print(sys.base_prefix, sys.version_info[:2])')" = \
	    "$$($(PYTHON) -c 'import sys; print(sys.base_prefix, sys.version_info[:2])')" ] || { rm -rf $(VENV); $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,bench]' --config-settings editable_mode=compat
	@$(BIN)/python -m compileall -q proftpy >/dev/null
	@touch $(STAMP)

deps: $(STAMP)

run: $(STAMP)
	@$(BIN)/python -m compileall -q proftpy >/dev/null
	$(BIN)/python scripts/devserver.py

test: $(STAMP)
	@$(BIN)/python -m compileall -q proftpy >/dev/null
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --dist loadfile tests

bench: $(STAMP)
	@$(BIN)/python -m compileall -q proftpy >/dev/null
	$(BIN)/python scripts/bench.py

python:
	sh scripts/build-python.sh

docs: $(STAMP)
	$(BIN)/python scripts/gen_directives.py > docs/directives.md
	$(BIN)/python scripts/gen_commands.py > docs/commands.md

clean:
	rm -rf $(VENV) run build *.egg-info
