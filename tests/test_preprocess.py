from __future__ import annotations

import numpy as np
import pytest

from edgereid.errors import InputError
from edgereid.preprocess import IMAGENET_MEAN, IMAGENET_STD, PreprocessSpec


def test_rgb_normalisation_matches_the_formula():
    spec = PreprocessSpec(height=4, width=2)
    crop = np.zeros((4, 2, 3), np.uint8)
    crop[..., 0] = 255  # blue in BGR
    crop[..., 2] = 51  # red
    x = spec([crop])
    assert x.shape == (1, 3, 4, 2) and x.dtype == np.float32
    # model order is RGB: channel 0 = red = 51/255, channel 2 = blue = 1.0
    np.testing.assert_allclose(x[0, 0], (0.2 - IMAGENET_MEAN[0]) / IMAGENET_STD[0], rtol=1e-6)
    np.testing.assert_allclose(x[0, 1], (0.0 - IMAGENET_MEAN[1]) / IMAGENET_STD[1], rtol=1e-6)
    np.testing.assert_allclose(x[0, 2], (1.0 - IMAGENET_MEAN[2]) / IMAGENET_STD[2], rtol=1e-6)


def test_bgr_spec_keeps_channel_order():
    spec = PreprocessSpec(height=2, width=2, color="bgr", mean=(0, 0, 0), std=(1, 1, 1))
    crop = np.zeros((2, 2, 3), np.uint8)
    crop[..., 0] = 255
    assert spec([crop])[0, 0, 0, 0] == pytest.approx(1.0)


def test_resize_to_spec_size_and_raw_uint8():
    spec = PreprocessSpec(height=256, width=128)
    crops = [np.full((100, 40, 3), 7, np.uint8), np.full((300, 90, 3), 9, np.uint8)]
    assert spec(crops).shape == (2, 3, 256, 128)
    raw = spec.raw_uint8(crops)
    assert raw.shape == (2, 3, 256, 128) and raw.dtype == np.uint8
    assert int(raw[1].min()) == 9


def test_round_trip_through_dict():
    spec = PreprocessSpec(height=384, width=128, color="bgr", mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    assert PreprocessSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(height=0, width=128), "size must be positive"),
        (dict(height=256, width=128, color="yuv"), "color must be"),
        (dict(height=256, width=128, std=(0, 1, 1)), "std must be positive"),
        (dict(height=256, width=128, mean=(0.5,)), "need 3 values"),
        (dict(height=256, width=128, interpolation="lanczos9"), "interpolation must be"),
    ],
)
def test_bad_specs_are_refused(kwargs, message):
    with pytest.raises(InputError, match=message):
        PreprocessSpec(**kwargs)


def test_empty_crop_is_refused():
    with pytest.raises(InputError, match="non-empty"):
        PreprocessSpec(height=8, width=4)([np.zeros((0, 5, 3), np.uint8)])


def test_empty_batch_has_the_model_shape():
    assert PreprocessSpec(height=8, width=4)([]).shape == (0, 3, 8, 4)
