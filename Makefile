# `make test` and `make demo` do all the set-up on a fresh machine: the first run creates .venv with a
# Python >= 3.12 (found by .ci/find-python) and installs the package with its test extras.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# vspipe reads its configuration from here; keep it inside the venv so nothing in $HOME changes.
export XDG_CONFIG_HOME := $(abspath $(VENV))/config

.PHONY: test demo lint clean

$(STAMP): setup.cfg pyproject.toml
	@test -x $(PY) || { py=$$(.ci/find-python) && "$$py" -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	$(VENV)/bin/vapoursynth config >/dev/null
	@touch $@

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check vs_superslomo tests examples
	$(VENV)/bin/ruff format --check vs_superslomo tests

demo: $(STAMP)
	@$(VENV)/bin/vs-superslomo info
	@mkdir -p build/demo
	$(VENV)/bin/vspipe -c y4m examples/double_rate.vpy build/demo/bbb_2x.y4m.part
	@mv build/demo/bbb_2x.y4m.part build/demo/bbb_2x.y4m
	@echo "demo output: build/demo/bbb_2x.y4m"

clean:
	rm -rf build
