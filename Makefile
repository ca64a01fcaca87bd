# `make test` and `make demo` do all the set-up on a fresh machine: the first run creates .venv with a
# Python >= 3.12 (found by .ci/find-python) and installs the package with its test extras.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test test-fast demo bench bench-e2e gpu-check lint clean

# .ci/venv-vspipe: .venv/bin/vspipe keeps VapourSynth's configuration in .venv/config and works with nothing
# exported; nothing in $HOME changes.
$(STAMP): setup.cfg pyproject.toml .ci/venv-vspipe
	@test -x $(PY) || { py=$$(.ci/find-python) && "$$py" -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	.ci/venv-vspipe $(VENV)
	@touch $@

test: $(STAMP)
	$(PY) -m pytest

# Everything but the tests marked slow (whole command lines, Ray, memory, regression): a minute or two.
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

# ruff, then mypy (strict; its settings and named exceptions are in pyproject.toml).
lint: $(STAMP)
	$(VENV)/bin/ruff check vs_superslomo tests examples
	$(VENV)/bin/ruff format --check vs_superslomo tests
	$(PY) -m mypy

# The main job on the bundled clip: 25 → 50 fps with audio (a lossless .y4m when ffmpeg is missing).
demo: $(STAMP)
	@mkdir -p build/demo
	$(VENV)/bin/vs-superslomo examples/bbb_640x360.mp4 -o build/demo/bbb_50fps.mp4 --overwrite
	@ls build/demo/bbb_50fps.* | sed 's/^/demo output: /'

# Speed and memory on this machine: the filter end to end and the network alone on every installed backend
# (torch, compile, onnxruntime, openvino), and the reference loop, in one run each: the full network at
# 448x256 8x, and the default weights at 640x360 2x; then the default weights' size on PyTorch eager with
# each flow source (the flow net, or OpenCV DIS).
bench: $(STAMP)
	$(PY) -m vs_superslomo bench --size 448x256 --factor 8 --width 1 --pairs 3 --reps 3 --json build/bench.json
	$(PY) -m vs_superslomo bench --size 640x360 --factor 2 --model default --pairs 6 --reps 3 \
		--json build/bench-default.json
	$(PY) -m vs_superslomo bench --size 640x360 --factor 2 8 --width 0.25 --flow net dis --pairs 3 --reps 3 \
		--backend torch --json build/bench-flow.json

# Whole processes, in turns: `vs-superslomo IN -o OUT` against ffmpeg minterpolate and mvtools FlowFPS (vspipe |
# ffmpeg), x264 CRF 18 each, on the bundled clip at its size and at 1280x720.
bench-e2e: $(STAMP)
	$(PY) -m vs_superslomo race --size 640x360 1280x720 --rounds 3 --startup --json build/race.json

# On a machine with a CUDA GPU (a few minutes): fp16 against fp32, determinism, 1080p 2x speed with DIS and with
# the flow network, and whether the host or the GPU is the bound; the table goes to build/gpu-check.md.
gpu-check: $(STAMP)
	$(PY) -m vs_superslomo gpu-check --out build/gpu-check.md

clean:
	rm -rf build
