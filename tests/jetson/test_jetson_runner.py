"""Host-side decisions of the TensorRT runner/calibrator (tensorrt and pycuda are not installed here)."""

from __future__ import annotations

import pytest

from edgereid.errors import BackendError, InputError, MissingDependencyError
from edgereid.jetson.calibrator import check_cache_header
from edgereid.jetson.runner import TrtRunner, check_batch, resolve_shape


def test_resolve_shape():
    assert resolve_shape((-1, 3, 256, 128), 4) == (4, 3, 256, 128)
    assert resolve_shape((2, 512), 7) == (2, 512)
    with pytest.raises(InputError, match="dynamic non-batch"):
        resolve_shape((1, -1, 256, 128), 1)


def test_check_batch():
    check_batch(4, 1, 8)
    with pytest.raises(InputError, match="outside the engine's profile"):
        check_batch(9, 1, 8)


def test_cache_header_must_match_device_version():
    text = "TRT-8502-EntropyCalibration2\nimages: 3c010204\n"
    assert check_cache_header(text, "8.5.2.2") == "TRT-8502-EntropyCalibration2"
    with pytest.raises(InputError, match="--trt-version 8.4.1"):
        check_cache_header(text, "8.4.1")


def test_runner_says_what_is_missing(tmp_path):
    runner = TrtRunner(tmp_path / "model.fp16.engine")
    with pytest.raises(MissingDependencyError, match="tensorrt"):
        runner.activate()
    with pytest.raises(BackendError, match="activate"):
        runner.infer({})
