# The commands in the README. `make repro` and `make test` set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
# Every package's version, pinned: the same params give the same figures only with the same
# TensorFlow, NumPy, librosa... (`make lock` writes it; docs/testing.md).
CONSTRAINTS := constraints.txt
# Stage commands call `python` and `dvc`: take them from the project's environment.
RUN := PATH="$(BIN):$$PATH"

.PHONY: setup lock repro repro-all test test-fast fuzz lint format bench clean

setup: $(STAMP)

# The last step compiles and caches librosa's numba functions once, here (about 20 s), not
# in several processes at a time later (src/ser/features/librosa_import.py).
$(STAMP): pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c $(CONSTRAINTS) -e '.[dev]'
	$(BIN)/python -c 'from ser.features.librosa_import import import_librosa; import_librosa()'
	$(BIN)/python -c 'import matplotlib.pyplot'  # builds its font cache once, here
	touch $(STAMP)

# Rewrites constraints.txt with the newest versions pyproject.toml allows, from a fresh
# environment beside .venv. Figures measured before and after a new lock may differ.
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	.venv-lock/bin/python -m pip freeze --all --exclude-editable | grep -v '^pip==' > $(CONSTRAINTS)
	rm -rf .venv-lock

# The fixed-split pipeline, download -> evaluate: the quick start (a few minutes).
repro: setup
	$(RUN) dvc repro evaluate

# Everything, the actor cross-validation stages included (six trainings instead of one).
repro-all: setup
	$(RUN) dvc repro

# On every core: the tests are mostly separate processes (dvc, stages, TensorFlow start-up)
# that keep a worker per core busy; worksteal balances the few long pipeline tests.
# Times: docs/testing.md.
# One test file alone: .venv/bin/python -m pytest tests/test_x.py (serial, no workers).
# --durations lists the 40 slowest tests, the ones to look at when the suite grows.
test: setup lint
	$(RUN) python -m pytest -n auto --dist worksteal --durations=40

# The quick loop while editing (under a minute here): the tests not marked slow
# (pytest.mark.slow: dvc runs, stage and benchmark subprocesses, long audio, TensorFlow
# subprocesses; tests/conftest.py marks every test that trains or needs a trained model).
# `make test` runs them all.
test-fast: setup
	$(RUN) python -m pytest -m "not slow" -n auto --dist worksteal

# The fuzz tests with many fresh random examples (hypothesis profile "fuzz", tests/conftest.py)
# instead of the small fixed set `make test` runs; takes several minutes.
fuzz: setup
	$(RUN) python -m pytest tests/test_broken_audio.py --hypothesis-profile=fuzz --hypothesis-show-statistics

lint: setup
	$(BIN)/ruff check src stages tests benchmarks
	$(BIN)/ruff format --check src stages tests benchmarks
	$(BIN)/lint-imports  # the layer rules, [tool.importlinter] in pyproject.toml

format: setup
	$(BIN)/ruff format src stages tests benchmarks
	$(BIN)/ruff check --fix src stages tests benchmarks

bench: setup
	$(RUN) python benchmarks/pipeline_speed.py

clean:
	rm -rf $(VENV) .venv-lock .pytest_cache .ruff_cache .hypothesis

# The example outside the package (examples/onnx_predict.py) is linted too.
lint: lint-examples
.PHONY: lint-examples bench-predict
lint-examples: setup
	$(BIN)/ruff check examples
	$(BIN)/ruff format --check examples

# Speed of `ser predict` (README, measured figures: prediction speed).
bench-predict: setup
	$(RUN) python benchmarks/predict_speed.py
