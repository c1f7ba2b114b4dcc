"""INT8 calibration on the host: crop sets, ranges, QDQ models, TensorRT caches, reports."""

from __future__ import annotations

from edgereid.calibration.crops import CropSet, load_calibration_set
from edgereid.calibration.qdq import DEFAULT_METHOD, DEFAULT_OP_TYPES, quantize_qdq
from edgereid.calibration.ranges import TensorRanges, calibrate_ranges
from edgereid.calibration.trt_cache import parse_cache_text, write_cache_text

__all__ = [
    "DEFAULT_METHOD",
    "DEFAULT_OP_TYPES",
    "CropSet",
    "TensorRanges",
    "calibrate_ranges",
    "load_calibration_set",
    "parse_cache_text",
    "quantize_qdq",
    "write_cache_text",
]
