"""Letterbox, NMS and the three YOLO decoders on constructed outputs with known boxes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgereid.errors import InputError
from edgereid.runtime import yolo_decode as yd


def _to_input(xyxy_frame, box: yd.Letterbox):
    """Frame box -> network-input box, by hand (the forward letterbox transform)."""
    x1, y1, x2, y2 = xyxy_frame
    s = box.scale
    return [x1 * s + box.pad_x, y1 * s + box.pad_y, x2 * s + box.pad_x, y2 * s + box.pad_y]


@pytest.mark.parametrize(
    "frame_hw, size_hw, center, scale, pad",
    [
        ((480, 640), (320, 320), True, 0.5, (0, 40)),
        ((480, 640), (320, 320), False, 0.5, (0, 0)),
        ((400, 200), (416, 416), True, 1.04, (104, 0)),
        ((416, 416), (416, 416), True, 1.0, (0, 0)),
    ],
)
def test_letterbox_params_and_padding(frame_hw, size_hw, center, scale, pad):
    frame = np.full(frame_hw + (3,), 7, np.uint8)
    out, box = yd.letterbox(frame, size_hw, center=center)
    assert out.shape == size_hw + (3,)
    assert box.scale == pytest.approx(scale)
    assert (box.pad_x, box.pad_y) == pad
    assert (box.frame_w, box.frame_h) == (frame_hw[1], frame_hw[0])
    new_h, new_w = round(frame_hw[0] * scale), round(frame_hw[1] * scale)
    assert (out[pad[1] : pad[1] + new_h, pad[0] : pad[0] + new_w] == 7).all()
    assert (out == 114).sum() == (size_hw[0] * size_hw[1] - new_h * new_w) * 3


def test_letterbox_round_trip_maps_boxes_back():
    frame = np.zeros((432, 768, 3), np.uint8)
    _, box = yd.letterbox(frame, (416, 416), center=True)
    boxes = np.array([[100, 50, 300, 400], [0, 0, 768, 432], [700, 10, 760, 60]], np.float32)
    in_net = np.array([_to_input(b, box) for b in boxes])
    np.testing.assert_allclose(yd.boxes_to_frame(in_net, box), boxes, atol=1e-3)


def test_boxes_to_frame_clips_to_the_frame():
    box = yd.Letterbox(scale=0.5, pad_x=0, pad_y=40, frame_w=640, frame_h=480)
    out = yd.boxes_to_frame(np.array([[-10, 20, 330, 300]], np.float32), box)
    np.testing.assert_allclose(out, [[0, 0, 640, 480]])


@pytest.mark.parametrize(
    "boxes, scores, thr, kept",
    [
        ([[0, 0, 10, 10], [1, 0, 11, 10]], [0.9, 0.8], 0.5, [0]),  # IoU 0.82 > 0.5
        ([[0, 0, 10, 10], [1, 0, 11, 10]], [0.7, 0.8], 0.5, [1]),  # better score wins
        ([[0, 0, 10, 10], [1, 0, 11, 10]], [0.9, 0.8], 0.9, [0, 1]),  # IoU 0.82 <= 0.9
        ([[0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 10, 9]], [0.5, 0.6, 0.4], 0.5, [1, 0]),
        (np.zeros((0, 4)), [], 0.5, []),
    ],
)
def test_nms(boxes, scores, thr, kept):
    assert yd.nms(np.array(boxes, np.float32), np.array(scores, np.float32), thr).tolist() == kept


def _yolox_row(cx, cy, w, h, stride, size_hw, obj, cls_scores):
    """Raw YOLOX row index and values for a box (input pixels) on the grid of ``stride``."""
    gx, gy = int(cx // stride), int(cy // stride)
    offset = 0
    for s in yd.YOLOX_STRIDES:
        if s == stride:
            break
        offset += (size_hw[0] // s) * (size_hw[1] // s)
    index = offset + gy * (size_hw[1] // stride) + gx
    row = [cx / stride - gx, cy / stride - gy, math.log(w / stride), math.log(h / stride), obj] + cls_scores
    return index, row


def test_decode_yolox_known_boxes():
    size_hw = (416, 416)
    n = sum((416 // s) ** 2 for s in (8, 16, 32))
    out = np.zeros((1, n, 85), np.float32)
    person = [0.8] + [0.0] * 79
    car = [0.0, 0.0, 0.95] + [0.0] * 77
    for spec in [
        (200, 120, 60, 150, 16, 0.9, person),  # person, score 0.72
        (202, 121, 60, 150, 8, 0.9, [0.6] + [0.0] * 79),  # duplicate, score 0.54 -> NMS
        (300, 300, 40, 40, 32, 0.9, car),  # a car: not a person
        (50, 60, 20, 50, 8, 0.5, person),  # score 0.4 < conf 0.45
    ]:
        i, row = _yolox_row(*spec[:5], size_hw, spec[5], spec[6])
        out[0, i] = row
    xyxy, scores = yd.decode_yolox(out, size_hw, conf=0.45, iou=0.5)
    np.testing.assert_allclose(xyxy, [[170, 45, 230, 195]], atol=1e-3)
    np.testing.assert_allclose(scores, [0.72], atol=1e-6)


def test_decode_yolox_rejects_wrong_grid():
    with pytest.raises(InputError, match="grid cells"):
        yd.decode_yolox(np.zeros((1, 100, 85), np.float32), (416, 416), 0.4, 0.5)


def test_decode_yolov8_known_boxes():
    out = np.zeros((1, 84, 2100), np.float32)  # 320x320 input
    out[0, :4, 5] = [100, 150, 40, 120]
    out[0, 4, 5] = 0.9  # person
    out[0, :4, 6] = [102, 151, 40, 120]
    out[0, 4, 6] = 0.7  # duplicate
    out[0, :4, 7] = [250, 250, 30, 30]
    out[0, 4 + 2, 7] = 0.99  # car
    out[0, :4, 8] = [20, 30, 10, 20]
    out[0, 4, 8] = 0.3  # below conf
    xyxy, scores = yd.decode_yolov8(out, conf=0.4, iou=0.5)
    np.testing.assert_allclose(xyxy, [[80, 90, 120, 210]])
    np.testing.assert_allclose(scores, [0.9], atol=1e-6)


def test_decode_end2end_keeps_persons_above_conf_best_first():
    out = np.zeros((1, 300, 6), np.float32)
    out[0, 0] = [10, 20, 50, 120, 0.6, 0]
    out[0, 1] = [100, 20, 150, 220, 0.95, 0]
    out[0, 2] = [5, 5, 80, 80, 0.99, 2]  # car
    out[0, 3] = [200, 20, 250, 120, 0.2, 0]  # low
    xyxy, scores = yd.decode_end2end(out, conf=0.4)
    np.testing.assert_allclose(xyxy, [[100, 20, 150, 220], [10, 20, 50, 120]])
    np.testing.assert_allclose(scores, [0.95, 0.6], atol=1e-6)


@pytest.mark.parametrize(
    "shape, size_hw, expected",
    [
        ((1, 3549, 85), (416, 416), "yolox"),
        ((1, 8400, 85), (640, 640), "yolox"),
        ((1, 3549, 6), (416, 416), "yolox"),  # one-class YOLOX is not an NMS-free head
        ((1, 84, 8400), (640, 640), "yolov8"),
        ((1, 5, 2100), (320, 320), "yolov8"),  # one-class YOLOv8
        ((1, 300, 6), (640, 640), "end2end"),
        ((1, 300, 6), (320, 320), "end2end"),
    ],
)
def test_choose_decoder(shape, size_hw, expected):
    assert yd.choose_decoder(shape, size_hw) == expected


@pytest.mark.parametrize("shape", [(1, 512), (1, 84, 100), (2, 300, 6), (1, 3549, 85, 1)])
def test_choose_decoder_rejects_unknown_shapes(shape):
    with pytest.raises(InputError, match="Expected YOLOX"):
        yd.choose_decoder(shape, (416, 416))
