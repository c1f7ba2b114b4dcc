# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export YOLO_OFFLINE := 1
export PYTHONUNBUFFERED := 1

.PHONY: venv test test-py38 qemu demo lint clean

# Code that runs on the car must run on Python 3.8 (JetPack 5's TensorRT bindings, the X3 image).
# vermin checks it statically on every run (`from __future__ import annotations` in every module
# keeps `X | None` annotations unevaluated); test-py38 below also runs the car-side tests on 3.8.
CAR_SIDE := edgereid/__init__.py edgereid/runtime edgereid/jetson edgereid/x3 edgereid/bundle.py \
	edgereid/preprocess.py edgereid/errors.py edgereid/detections.py edgereid/lazy.py \
	edgereid/evaluation/naming.py edgereid/evaluation/follow_gt.py edgereid/progress.py edgereid/onnx_macs.py edgereid/cli/common.py edgereid/cli/follow.py \
	edgereid/check edgereid/doctor.py edgereid/cli/bench_device.py

$(STAMP): pyproject.toml setup.py requirements-torch.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -r requirements-torch.txt
	$(PY) -m pip install -q -c constraints.txt -e ".[runtime,export,ultralytics,bench,dev]"
	$(PY) -c "import cv2; assert int(cv2.__version__.split('.')[0]) < 5, cv2.__version__"
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP) qemu
	$(PY) -m ruff check edgereid tests benchmarks
	$(VENV)/bin/vermin --no-tips --violations -q -t=3.8- $(CAR_SIDE)
	$(PY) -m pytest -q -n 2 --durations=15
	$(MAKE) --no-print-directory test-py38

# ONNX Runtime's AVX2 (no VNNI) integer kernels are tested on any x86 host under QEMU's Haswell CPU
# (tests/calibration/test_u8s8_kernels.py). Installed where apt can (root); the test skips, saying
# so, where it cannot.
qemu:
	@command -v qemu-x86_64 >/dev/null || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null || \
		timeout 300 apt-get install -y -q qemu-user >/dev/null 2>&1 || \
		(timeout 300 apt-get update -q >/dev/null 2>&1 && timeout 300 apt-get install -y -q qemu-user >/dev/null 2>&1) || \
		echo "qemu: qemu-user could not be installed; the AVX2-kernel test will skip"

# The car-side tests again under a real CPython 3.8 with the car's packages only (numpy, OpenCV 4,
# onnxruntime; no torch), when such an interpreter is installed (pyenv puts one on our machines).
PY38 ?= $(firstword $(wildcard /root/.pyenv/versions/3.8*/bin/python3.8) $(shell command -v python3.8 2>/dev/null))
VENV38 := .venv38
CAR_TESTS := tests/runtime tests/scenario tests/jetson tests/benchmarks tests/evaluation \
	tests/cli/test_cli_bench.py tests/cli/test_cli_eval.py tests/test_preprocess.py tests/test_bundle.py \
	tests/test_detections.py tests/test_dependencies.py tests/x3/test_x3_runner.py tests/x3/test_x3_detector.py tests/test_doctor.py

$(VENV38)/.installed: constraints.txt
	$(PY38) -m venv $(VENV38)
	$(VENV38)/bin/python -m pip install -q -c constraints.txt "numpy>=1.19" "opencv-python-headless>=4.5,<5" \
		onnxruntime onnx pytest
	touch $@

test-py38:
ifeq ($(PY38),)
	@echo "test-py38: no Python 3.8 interpreter here; the car side was checked statically (vermin) only."
else
	$(MAKE) --no-print-directory $(VENV38)/.installed
	PYTHONPATH=$(CURDIR) $(VENV38)/bin/python -m pytest -q -p no:cacheprovider $(CAR_TESTS)
endif

demo: $(STAMP)
	$(PY) -m edgereid.demo

lint: $(STAMP)
	$(PY) -m ruff check edgereid tests benchmarks

clean:
	rm -rf $(VENV) $(VENV38) demo_out .pytest_cache
