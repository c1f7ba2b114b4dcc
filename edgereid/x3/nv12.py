"""BGR -> NV12 on the host and on the board, and the colour range it produces.

The X3's BPU model compiled with ``input_type_rt: nv12`` starts with a YUV -> RGB/BGR
conversion whose range is set by ``input_space_and_range`` in hb_mapper's YAML: ``regular``
(full range, Y 0..255) or ``bt601_video`` (video range, Y 16..235, UV 16..240). OpenCV's
``COLOR_BGR2YUV_I420`` (what Horizon's and D-Robotics' samples use to make NV12 from camera
frames) produces BT.601 *video* range: white -> Y 235, black -> Y 16. If the YAML said
``regular`` the board would see washed-out colours: a silent accuracy loss. So the YAML takes
its value from :data:`NV12_COLOR_RANGE`, and a test checks it against what OpenCV really gives.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from edgereid.errors import InputError
from edgereid.lazy import require

NV12_COLOR_RANGE = "bt601_video"  # what bgr_to_nv12 produces; written into hb_mapper_config.yaml


def bgr_to_nv12(bgr: np.ndarray) -> np.ndarray:
    """One BGR uint8 image (H, W, 3), H and W even -> NV12 bytes, shape (H * 3 // 2, W) uint8.

    Layout: H rows of Y, then H/2 rows of interleaved U, V (U first), each pair shared by a
    2x2 block of pixels. BT.601 video range (see module docstring).
    """
    if bgr is None or bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.dtype != np.uint8:
        got = None if bgr is None else (bgr.shape, bgr.dtype)
        raise InputError(f"bgr_to_nv12 expects an (H, W, 3) uint8 BGR image, received {got}.")
    h, w = bgr.shape[:2]
    if h % 2 or w % 2:
        raise InputError(f"NV12 needs an even height and width, received {h}x{w}.")
    cv2 = require("cv2", "BGR -> NV12 conversion")
    i420 = cv2.cvtColor(np.ascontiguousarray(bgr), cv2.COLOR_BGR2YUV_I420).reshape(-1)
    area = h * w
    nv12 = np.empty(area * 3 // 2, np.uint8)
    nv12[:area] = i420[:area]
    # I420 keeps U then V as two planes; NV12 interleaves them.
    nv12[area:] = i420[area:].reshape(2, area // 4).T.reshape(-1)
    return nv12.reshape(h * 3 // 2, w)


def nv12_planes(nv12: np.ndarray, height: int, width: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split NV12 bytes into Y (H, W), U (H/2, W/2), V (H/2, W/2)."""
    flat = np.asarray(nv12, np.uint8).reshape(-1)
    area = height * width
    if flat.size != area * 3 // 2:
        raise InputError(f"NV12 of {height}x{width} has {area * 3 // 2} bytes, received {flat.size}.")
    y = flat[:area].reshape(height, width)
    uv = flat[area:].reshape(height // 2, width // 2, 2)
    return y, uv[..., 0], uv[..., 1]


def nv12_to_yuv444(nv12: np.ndarray, height: int, width: int) -> np.ndarray:
    """(1, H, W, 3) uint8 YUV444 from NV12 (chroma repeated over each 2x2 block).

    This is the input form of hb_mapper's ``*_quantized_model.onnx`` for an ``nv12`` model in
    the X3 toolchain's HB_ONNXRuntime (with ``input_offset=128``), so the toolchain's own INT8
    model can be evaluated on exactly the bytes the board will see.
    """
    y, u, v = nv12_planes(nv12, height, width)
    up = lambda c: np.repeat(np.repeat(c, 2, axis=0), 2, axis=1)  # noqa: E731 - tiny local helper
    return np.stack([y, up(u), up(v)], axis=-1)[None]


def measured_color_range() -> str:
    """The range this machine's OpenCV conversion really gives: white -> Y 235 means video range."""
    white = np.full((2, 2, 3), 255, np.uint8)
    y_white = int(bgr_to_nv12(white)[0, 0])
    return "bt601_video" if y_white == 235 else "regular" if y_white == 255 else f"unknown(Y={y_white})"
