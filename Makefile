# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export YOLO_OFFLINE := 1
export PYTHONUNBUFFERED := 1

.PHONY: venv test demo lint clean

# Code that runs on the car must run on Python 3.8 (JetPack 5's TensorRT bindings, the X3 image).
# No 3.8 interpreter here: vermin checks it statically; `from __future__ import annotations`
# in every module keeps `X | None` annotations unevaluated.
CAR_SIDE := edgereid/__init__.py edgereid/runtime edgereid/jetson edgereid/x3 edgereid/bundle.py \
	edgereid/preprocess.py edgereid/errors.py edgereid/detections.py edgereid/lazy.py \
	edgereid/evaluation/naming.py edgereid/cli/common.py edgereid/cli/follow.py

$(STAMP): pyproject.toml setup.py requirements-torch.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -r requirements-torch.txt
	$(PY) -m pip install -q -c constraints.txt -e ".[runtime,export,ultralytics,bench,dev]"
	$(PY) -c "import cv2; assert int(cv2.__version__.split('.')[0]) < 5, cv2.__version__"
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(PY) -m ruff check edgereid tests benchmarks
	$(VENV)/bin/vermin --no-tips --violations -q -t=3.8- $(CAR_SIDE)
	$(PY) -m pytest -q -n 2 --durations=15

demo: $(STAMP)
	$(PY) -m edgereid.demo

lint: $(STAMP)
	$(PY) -m ruff check edgereid tests benchmarks

clean:
	rm -rf $(VENV) demo_out .pytest_cache
