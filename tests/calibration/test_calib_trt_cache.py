from __future__ import annotations

import struct

import pytest

from edgereid.calibration.ranges import TensorRanges
from edgereid.calibration.trt_cache import (
    cache_header,
    hex_to_scale,
    parse_cache_text,
    scale_to_hex,
    trt_version_code,
    write_cache_text,
)
from edgereid.errors import InputError


@pytest.mark.parametrize(
    "version, code",
    [("8.5.2", 8502), ("8.4.1", 8401), ("8.6.1", 8601), ("8.5.2.2", 8502), ("10.3.0", 10300)],
)
def test_version_code(version, code):
    assert trt_version_code(version) == code


@pytest.mark.parametrize("bad", ["8.5", "eight", "8.5.x", ""])
def test_version_code_rejects(bad):
    with pytest.raises(InputError, match="--trt-version"):
        trt_version_code(bad)


def test_header():
    assert cache_header("8.5.2") == "TRT-8502-EntropyCalibration2"
    assert cache_header("8.4.1") == "TRT-8401-EntropyCalibration2"


@pytest.mark.parametrize("scale, hexed", [(1.0, "3f800000"), (0.5, "3f000000"), (2.0, "40000000"),
                                          (1 / 127, "3c010204")])
def test_scale_hex_is_big_endian_float32(scale, hexed):
    assert scale_to_hex(scale) == hexed
    assert hex_to_scale(hexed) == pytest.approx(scale, rel=1e-7)


def test_write_and_parse_round_trip():
    ranges = TensorRanges("percentile", {
        "images": (-2.1, 2.6), "/conv/Conv_output_0": (0.0, 12.7), "stale_name": (-1.0, 1.0),
        "output": (-0.25, 0.125),
    })
    graph = ["images", "/conv/Conv_output_0", "output", "shape_tensor"]
    text = write_cache_text(ranges, graph, "8.5.2")
    lines = text.splitlines()
    assert lines[0] == "TRT-8502-EntropyCalibration2"
    assert [ln.split(": ")[0] for ln in lines[1:]] == ["images", "/conv/Conv_output_0", "output"]
    header, scales = parse_cache_text(text)
    assert header == "TRT-8502-EntropyCalibration2"
    assert scales["images"] == pytest.approx(2.6 / 127, rel=1e-6)
    assert scales["/conv/Conv_output_0"] == pytest.approx(0.1, rel=1e-6)
    assert scales["output"] == pytest.approx(0.25 / 127, rel=1e-6)
    # each hex is exactly the float32 bytes, big-endian
    assert lines[2].split(": ")[1] == struct.pack(">f", 12.7 / 127).hex()


def test_parse_rejects_garbage():
    with pytest.raises(InputError, match="not a TensorRT calibration cache"):
        parse_cache_text("hello\nimages: 3f800000\n")
    with pytest.raises(InputError, match="malformed"):
        parse_cache_text("TRT-8502-EntropyCalibration2\nimages: 3f8000\n")
