"""An IInt8EntropyCalibrator2 that serves our calib.cache and never asks for data.

TensorRT calls ``read_calibration_cache`` first; when it returns a cache whose header matches
its own version and calibrator, it takes the scales from it and never calls ``get_batch``.
A mismatched header is ignored *silently* by TensorRT (it would then calibrate on the batches
we do not give), so we check the header against the running TensorRT before building.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgereid.calibration.trt_cache import CALIBRATOR, parse_cache_text, trt_version_code
from edgereid.errors import InputError
from edgereid.lazy import require


def check_cache_header(text: str, trt_version: str) -> str:
    """The cache header if it fits TensorRT ``trt_version``; a clear error otherwise."""
    header, _ = parse_cache_text(text)
    expected = f"TRT-{trt_version_code(trt_version)}-{CALIBRATOR}"
    if header != expected:
        raise InputError(
            f"calibration cache header {header!r} does not match this TensorRT ({trt_version}: {expected!r}); "
            f"TensorRT would ignore it. Re-export with --trt-version {trt_version}."
        )
    return header


def make_cache_calibrator(cache_path: str | Path, batch_size: int = 1) -> Any:
    """A tensorrt.IInt8EntropyCalibrator2 instance reading ``cache_path`` (TensorRT 8.x API)."""
    trt = require("tensorrt", "INT8 engine builds from a calibration cache")
    data = Path(cache_path).read_bytes()
    check_cache_header(data.decode("utf-8", "replace"), trt.__version__)

    class CacheCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)

        def get_batch_size(self) -> int:
            return int(batch_size)

        def get_batch(self, names):  # noqa: ARG002 - the cache holds every scale
            return None

        def read_calibration_cache(self) -> bytes:
            return data

        def write_calibration_cache(self, cache) -> None:  # keep the shipped cache as it is
            return None

    return CacheCalibrator()
