# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export YOLO_OFFLINE := 1
export PYTHONUNBUFFERED := 1

.PHONY: venv test demo lint clean

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
	$(PY) -m vermin --no-tips --violations -t=3.8- --eval-annotations edgereid/runtime edgereid/jetson edgereid/x3 edgereid/bundle.py edgereid/preprocess.py edgereid/errors.py edgereid/detections.py
	$(PY) -m pytest -q -n 2 --durations=15

demo: $(STAMP)
	$(PY) -m edgereid.demo

lint: $(STAMP)
	$(PY) -m ruff check edgereid tests benchmarks

clean:
	rm -rf $(VENV) demo_out .pytest_cache
