"""Activation ranges of every float tensor of an ONNX model, with bounded memory.

ONNX Runtime's calibrators keep every intermediate output of every sample until
``collect_data`` returns (an RGA-SC crop has ~150-300 MB of them). Its histogram collectors
merge across calls, so we feed the data in chunks sized from a memory budget and call
``collect_data`` once per chunk: same histograms, memory bounded by the chunk.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgereid.calibration.reader import CropBatches, OrtReader
from edgereid.errors import InputError
from edgereid.lazy import require
from edgereid.progress import progress_bar

LOG = logging.getLogger(__name__)

CALIB_METHODS = ("entropy", "minmax", "percentile")
DEFAULT_BUDGET_BYTES = 2 << 30  # activations held per chunk; peak RAM is ~3x this
PERCENTILE = 99.999
ENTROPY_BINS = 2048  # TensorRT's entropy calibrator also starts from 2048 bins
ENTROPY_QUANTIZED_BINS = 128


@dataclass
class TensorRanges:
    """Calibrated (low, high) per tensor name, and the method that produced them."""

    method: str
    ranges: dict[str, tuple[float, float]]

    def amax(self, name: str) -> float:
        lo, hi = self.ranges[name]
        return max(abs(lo), abs(hi))

    def to_ort(self):
        """As onnxruntime.quantization TensorsData (for quantize_static's calibration cache)."""
        calibrate = require("onnxruntime.quantization.calibrate", "INT8 quantization")
        method = _ort_method(self.method)
        data = {
            k: calibrate.TensorData(lowest=np.float32(lo), highest=np.float32(hi))
            for k, (lo, hi) in self.ranges.items()
        }
        return calibrate.TensorsData(method, data)


def check_method(method: str) -> str:
    if method not in CALIB_METHODS:
        raise InputError(f"--calib-method must be one of {list(CALIB_METHODS)}, received {method!r}.")
    return method


def activation_bytes_per_feed(model_path: str | Path, batch: int = 1) -> int:
    """Bytes of all float tensors one feed of ``batch`` produces (symbolic dims taken as batch)."""
    onnx = require("onnx", "calibration memory planning")
    model = onnx.shape_inference.infer_shapes(onnx.load(str(model_path)))
    total = 0
    for vi in list(model.graph.value_info) + list(model.graph.output) + list(model.graph.input):
        t = vi.type.tensor_type
        if t.elem_type != onnx.TensorProto.FLOAT:
            continue
        n = 1
        for d in t.shape.dim:
            n *= d.dim_value if d.HasField("dim_value") else batch
        total += 4 * n
    return total


def feeds_per_chunk(bytes_per_feed: int, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> int:
    """How many feeds one collect_data call may hold within ``budget_bytes`` (at least 1)."""
    return max(1, int(budget_bytes // max(1, bytes_per_feed)))


def calibrate_ranges(
    model_path: str | Path,
    batches: CropBatches,
    method: str = "percentile",
    symmetric: bool = True,
    budget_bytes: int = DEFAULT_BUDGET_BYTES,
    progress: bool = True,
    fast_histograms: bool = True,
) -> TensorRanges:
    """Ranges for every float activation tensor of ``model_path`` (input and all node outputs).

    Args:
        model_path: the shipped ``model.onnx``: its tensor names are the names the TensorRT
            cache must carry.
        batches: calibration feeds.
        method: entropy | minmax | percentile (99.999 %).
        symmetric: symmetric ranges (TensorRT int8); False for u8 activations on CPU.
        budget_bytes: activation bytes one chunk may hold.
        fast_histograms: merge later chunks into the (uniform) histograms with numpy's
            uniform-bin fast path instead of ORT's explicit-edge search (same bins, ~5x faster on
            RGA-SC); False keeps ORT's own merge (used by the test that compares the two).
    """
    check_method(method)
    calibrate = require("onnxruntime.quantization.calibrate", "INT8 calibration")
    chunk = feeds_per_chunk(activation_bytes_per_feed(model_path, batches.batch), budget_bytes)
    LOG.info("calibrating %d feeds (%s), %d feeds per chunk", len(batches), method, chunk)
    extra = {"symmetric": symmetric}
    if method == "percentile":
        extra.update(percentile=PERCENTILE, num_bins=2048)
    elif method == "entropy":
        extra.update(num_bins=ENTROPY_BINS, num_quantized_bins=ENTROPY_QUANTIZED_BINS)
    with tempfile.TemporaryDirectory(prefix="edgereid-calib-") as tmp:
        calibrator = calibrate.create_calibrator(
            Path(model_path),
            None,  # every float tensor: the TensorRT cache needs them all
            augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=_ort_method(method),
            extra_options=extra,
        )
        tiny: dict[str, float] = {}
        if hasattr(calibrator, "collector"):
            calibrator.collector = _safe_collector(calibrate, calibrator, tiny, fast_histograms)
        bar = progress_bar(len(batches), f"calibrating ({method})", progress, tty_only=True)
        for feeds in batches.chunks(chunk):
            _quiet(calibrator.collect_data, OrtReader(feeds))
            bar.update(len(feeds))
        bar.close()
        data = _quiet(calibrator.compute_data)
        del calibrator
    ranges = {}
    for name, td in data.items():
        lo, hi = (td.range_value if hasattr(td, "range_value") else (td.lowest, td.highest))
        ranges[name] = (float(np.asarray(lo).min()), float(np.asarray(hi).max()))
    for name, amax in tiny.items():
        ranges.setdefault(name, (-amax, amax))
    return TensorRanges(method, ranges)


_EPS32 = float(np.finfo(np.float32).eps)
TINY_AMAX = 1e-30  # below this np.histogram cannot make 2048 finite bins (ORT raises ValueError)


def _safe_collector(calibrate, calibrator, tiny: dict[str, float], fast: bool = True):
    """ORT's HistogramCollector, except that all-(near-)zero tensors are kept out of the histograms.

    Untrained or dead channels give tensors whose |values| are ~0 or all (nearly) equal; ORT's
    histogram then fails with "Too many bins for data range" (2048 bins cannot be told apart in
    float32). Those tensors get a min/max range instead (recorded in ``tiny``).
    """

    class SafeHistogramCollector(calibrate.HistogramCollector):
        def collect(self, name_to_arr):
            keep = {}
            for name, arrays in name_to_arr.items():
                absolute = [np.abs(a) for a in arrays if np.size(a)]
                amax = max((float(np.nanmax(a)) for a in absolute), default=0.0)
                amin = min((float(np.nanmin(a)) for a in absolute), default=0.0)
                degenerate = amax < TINY_AMAX or (amax - amin) < 8 * 2048 * _EPS32 * amax
                if name in tiny or (degenerate and name not in self.histogram_dict):
                    tiny[name] = max(tiny.get(name, 0.0), amax)
                else:
                    keep[name] = arrays
            return super().collect(keep)

        def collect_absolute_value(self, name_to_arr):
            if not fast:
                return super().collect_absolute_value(name_to_arr)
            # Same state as ORT's (hist, uniform edges, min, max); bins grow by the same width.
            for name, arrays in name_to_arr.items():
                data = np.concatenate([np.asarray(a).ravel() for a in arrays])
                if data.size == 0:
                    continue
                lo, hi = np.nanmin(data), np.nanmax(data)
                absolute = np.abs(data)
                if name not in self.histogram_dict:
                    hist, edges = np.histogram(absolute, bins=self.num_bins)
                    self.histogram_dict[name] = (hist, edges.astype(absolute.dtype), lo, hi)
                    continue
                old_hist, edges, old_lo, old_hi = self.histogram_dict[name]
                amax = np.nanmax(absolute)
                if amax > edges[-1]:
                    width = edges[1] - edges[0]
                    grow = np.arange(edges[-1] + width, amax + width, width)
                    edges = np.hstack((edges, grow)).astype(absolute.dtype)
                hist, _ = np.histogram(absolute, bins=len(edges) - 1, range=(float(edges[0]), float(edges[-1])))
                hist[: len(old_hist)] += old_hist
                self.histogram_dict[name] = (hist, edges, min(old_lo, lo), max(old_hi, hi))

    return SafeHistogramCollector(
        method=calibrator.method, symmetric=calibrator.symmetric, num_bins=calibrator.num_bins,
        num_quantized_bins=calibrator.num_quantized_bins, percentile=calibrator.percentile,
        scenario=calibrator.scenario,
    )


def _ort_method(method: str):
    q = require("onnxruntime.quantization", "INT8 quantization")
    return {
        "entropy": q.CalibrationMethod.Entropy,
        "minmax": q.CalibrationMethod.MinMax,
        "percentile": q.CalibrationMethod.Percentile,
    }[check_method(method)]


def _quiet(fn, *args):
    """ORT's collectors print progress lines to stdout; keep our CLI output clean."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args)


