"""TensorRT calibration cache text, for implicit INT8 and for DLA (which cannot read QDQ).

Format (what TensorRT's IInt8EntropyCalibrator2 writes, and what NVIDIA's qdq-translator in the
TensorRT repository writes)::

    TRT-8502-EntropyCalibration2
    images: 3c010204
    /conv1/Conv_output_0: 3d2e9f1a

The header carries the TensorRT version as major*1000 + minor*100 + patch; TensorRT silently
ignores a cache of another version and calibrates on whatever it is fed, so it must match the
device (JetPack 5.1.x: 8.5.2 -> 8502; JetPack 5.0.2: 8.4.1 -> 8401). Each line is an ONNX tensor
name of the shipped ``model.onnx`` and the big-endian IEEE-754 float32 scale = amax / 127 in hex.
"""

from __future__ import annotations

import re
import struct
from typing import Iterable

from edgereid.calibration.ranges import TensorRanges
from edgereid.errors import InputError

DEFAULT_TRT_VERSION = "8.5.2"
CALIBRATOR = "EntropyCalibration2"
FLOAT32_TINY = 1.1754943508222875e-38  # smallest normal float32

_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:\.\d+)?$")
_LINE = re.compile(r"^(.+): ([0-9a-fA-F]{8})$")


def trt_version_code(version: str) -> int:
    """'8.5.2' -> 8502 (TensorRT's NV_TENSORRT_VERSION numbering for 8.x)."""
    m = _VERSION.match(version.strip())
    if not m:
        raise InputError(f"--trt-version must look like 8.5.2, received {version!r}.")
    major, minor, patch = (int(g) for g in m.groups())
    if minor > 9 or patch > 99:
        raise InputError(f"--trt-version {version!r} is out of TensorRT's numbering range.")
    return major * 1000 + minor * 100 + patch


def cache_header(version: str = DEFAULT_TRT_VERSION, calibrator: str = CALIBRATOR) -> str:
    return f"TRT-{trt_version_code(version)}-{calibrator}"


def scale_to_hex(scale: float) -> str:
    """Big-endian float32 bytes of ``scale`` as 8 lowercase hex digits."""
    return struct.pack(">f", float(scale)).hex()


def hex_to_scale(text: str) -> float:
    return struct.unpack(">f", bytes.fromhex(text))[0]


def cache_tensor_names(ranges: TensorRanges, graph_tensors: Iterable[str]) -> list[str]:
    """Tensors that get a cache line: calibrated AND present in the shipped graph, in graph order."""
    return [name for name in graph_tensors if name in ranges.ranges]


def tensor_scale(amax: float) -> float:
    """amax / 127; an all-zero tensor gets 1.0, as ONNX Runtime's QDQ model does (same scales)."""
    scale = float(amax) / 127.0
    return scale if scale >= FLOAT32_TINY else 1.0


def write_cache_text(
    ranges: TensorRanges,
    graph_tensors: Iterable[str],
    trt_version: str = DEFAULT_TRT_VERSION,
) -> str:
    """The cache file's text (newline-terminated lines)."""
    lines = [cache_header(trt_version)]
    for name in cache_tensor_names(ranges, graph_tensors):
        lines.append(f"{name}: {scale_to_hex(tensor_scale(ranges.amax(name)))}")
    return "\n".join(lines) + "\n"


def parse_cache_text(text: str) -> tuple[str, dict[str, float]]:
    """(header, {tensor name: scale}) of a cache; a clear error on a malformed line."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines or not re.match(r"^TRT-\d+-\w+$", lines[0]):
        raise InputError(f"not a TensorRT calibration cache: first line {lines[:1]!r}.")
    scales = {}
    for ln in lines[1:]:
        m = _LINE.match(ln)
        if not m:
            raise InputError(f"malformed calibration cache line {ln!r} (expected 'name: 8 hex digits').")
        scales[m.group(1)] = hex_to_scale(m.group(2))
    return lines[0], scales


def graph_tensor_names(model) -> list[str]:
    """Graph input names then node output names, in graph order (what TensorRT's parser names)."""
    inits = {i.name for i in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in inits]
    for node in model.graph.node:
        names.extend(o for o in node.output if o)
    return names
