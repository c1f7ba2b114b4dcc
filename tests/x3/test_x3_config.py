"""hb_mapper YAML, calibration files, build script, and BGR -> NV12 against a reference formula."""

from __future__ import annotations

import numpy as np
import pytest

from edgereid.errors import InputError
from edgereid.preprocess import PreprocessSpec
from edgereid.x3 import config as cfg
from edgereid.x3.nv12 import NV12_COLOR_RANGE, bgr_to_nv12, measured_color_range, nv12_planes, nv12_to_yuv444

yaml = pytest.importorskip("yaml")

SPEC = PreprocessSpec(height=256, width=128)  # RGB, ImageNet mean/std, like RGA and OSNet


def _parse(config: dict) -> dict:
    return yaml.safe_load(cfg.render_yaml(config))


def test_yaml_has_the_four_groups_and_values():
    data = _parse(cfg.hb_mapper_config(SPEC, "images", "nv12", "kl", 2))
    assert list(data) == ["model_parameters", "input_parameters", "calibration_parameters", "compiler_parameters"]
    model, inp, cal, comp = (data[k] for k in data)
    assert model["march"] == "bernoulli2"
    assert model["onnx_model"] == "./model.x3.onnx"  # relative to the bundle directory
    assert inp["input_name"] == "images"
    assert inp["input_type_train"] == "rgb" and inp["input_layout_train"] == "NCHW"
    assert inp["input_type_rt"] == "nv12"
    assert inp["input_shape"] == "1x3x256x128"
    assert inp["norm_type"] == "data_mean_and_scale"
    mean = [float(v) for v in inp["mean_value"].split()]
    scale = [float(v) for v in inp["scale_value"].split()]
    np.testing.assert_allclose(mean, [123.675, 116.28, 103.53], rtol=1e-7)
    np.testing.assert_allclose(scale, [1 / (255 * 0.229), 1 / (255 * 0.224), 1 / (255 * 0.225)], rtol=1e-7)
    assert cal["cal_data_dir"] == "./x3_calibration_data" and cal["calibration_type"] == "kl"
    assert cal["cal_data_type"] == "float32"
    assert comp["core_num"] == 2 and comp["compile_mode"] == "latency"


def test_bgr_model_keeps_its_colour_order():
    spec = PreprocessSpec(height=64, width=32, color="bgr", mean=(0.1, 0.2, 0.3), std=(0.5, 0.25, 0.125))
    inp = _parse(cfg.hb_mapper_config(spec, "in", "bgr", "max", 1))["input_parameters"]
    assert inp["input_type_train"] == "bgr" and inp["input_type_rt"] == "bgr" and inp["input_layout_rt"] == "NHWC"
    assert "input_space_and_range" not in inp  # only meaningful for nv12
    np.testing.assert_allclose([float(v) for v in inp["mean_value"].split()], [25.5, 51.0, 76.5])
    np.testing.assert_allclose([float(v) for v in inp["scale_value"].split()], [2 / 255, 4 / 255, 8 / 255])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"input_type_rt": "yuv444"}, "x3-input"),
        ({"calibration_type": "mix"}, "x3-calibration"),
        ({"core_num": 3}, "x3-cores"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(InputError, match=match):
        cfg.hb_mapper_config(SPEC, "images", **kwargs)


def test_nv12_range_in_yaml_is_what_opencv_produces():
    """OpenCV's BGR2YUV_I420 (used on the board) is BT.601 video range: the YAML must say so."""
    assert measured_color_range() == "bt601_video"
    white = bgr_to_nv12(np.full((4, 4, 3), 255, np.uint8))
    black = bgr_to_nv12(np.zeros((4, 4, 3), np.uint8))
    assert white[:4].min() == 235 and black[:4].max() == 16
    inp = _parse(cfg.hb_mapper_config(SPEC, "images", "nv12"))["input_parameters"]
    assert inp["input_space_and_range"] == NV12_COLOR_RANGE == measured_color_range()


def _bt601_video(bgr: np.ndarray) -> tuple:
    b, g, r = (bgr[..., i].astype(np.float64) for i in range(3))
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return y, u, v


def test_bgr_to_nv12_matches_reference_formula(rng):
    h, w = 6, 8
    blocks = rng.integers(0, 256, (h // 2, w // 2, 3), dtype=np.uint8)
    bgr = np.repeat(np.repeat(blocks, 2, axis=0), 2, axis=1)  # 2x2-constant, so chroma is exact
    nv12 = bgr_to_nv12(bgr)
    assert nv12.shape == (h * 3 // 2, w) and nv12.dtype == np.uint8
    y, u, v = nv12_planes(nv12, h, w)
    ry, ru, rv = _bt601_video(bgr)
    assert np.abs(y - ry).max() <= 1.0
    assert np.abs(u - ru[::2, ::2]).max() <= 1.0
    assert np.abs(v - rv[::2, ::2]).max() <= 1.0
    # interleaving: U, V alternate after the Y plane
    flat = nv12.reshape(-1)
    assert flat[h * w] == u[0, 0] and flat[h * w + 1] == v[0, 0] and flat[h * w + 2] == u[0, 1]


def test_nv12_to_yuv444_for_the_toolchain_model(rng):
    bgr = rng.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    nv12 = bgr_to_nv12(bgr)
    yuv = nv12_to_yuv444(nv12, 4, 6)
    y, u, v = nv12_planes(nv12, 4, 6)
    assert yuv.shape == (1, 4, 6, 3) and yuv.dtype == np.uint8
    np.testing.assert_array_equal(yuv[0, ..., 0], y)
    assert yuv[0, 3, 5, 1] == u[1, 2] and yuv[0, 2, 4, 2] == v[1, 2]


def test_bgr_to_nv12_rejects_odd_sizes():
    with pytest.raises(InputError, match="even"):
        bgr_to_nv12(np.zeros((5, 4, 3), np.uint8))


@pytest.mark.parametrize("dtype", ["float32", "uint8"])
def test_calibration_files_raw_tofile(tmp_path, rng, dtype):
    spec = PreprocessSpec(height=16, width=8)
    crops = [rng.integers(0, 256, (30 + i, 12 + i, 3), dtype=np.uint8) for i in range(7)]
    paths = cfg.write_calibration_data(tmp_path / "cal", spec, crops, dtype, samples=5)
    assert len(paths) == 5 and sorted(p.name for p in (tmp_path / "cal").iterdir()) == [p.name for p in paths]
    itemsize = np.dtype(dtype).itemsize
    picked = cfg.pick_calibration(7, 5)
    assert picked == [0, 2, 3, 4, 6]
    for path, i in zip(paths, picked):
        assert path.stat().st_size == 3 * 16 * 8 * itemsize  # no header
        back = cfg.read_calibration_file(path, spec, dtype)
        # intended: resized with the spec's filter, RGB order, NCHW, raw 0..255 (not normalised)
        import cv2

        expected = cv2.resize(crops[i], (8, 16), interpolation=cv2.INTER_LINEAR)[..., ::-1].transpose(2, 0, 1)
        np.testing.assert_array_equal(back, expected.astype(dtype))


def test_calibration_needs_crops(tmp_path):
    with pytest.raises(InputError, match="at least one crop"):
        cfg.write_calibration_data(tmp_path, SPEC, [])


def test_build_script_runs_checker_then_makertbin():
    script = cfg.build_script("images", SPEC)
    lines = [ln for ln in script.splitlines() if ln.startswith("hb_mapper")]
    assert "m['files']['x3_bin']='model_output/model_x3.bin'" in script
    assert lines == [
        "hb_mapper checker --model-type onnx --march bernoulli2 --model model.x3.onnx --input-shape images 1x3x256x128",
        "hb_mapper makertbin --config hb_mapper_config.yaml --model-type onnx",
    ]
