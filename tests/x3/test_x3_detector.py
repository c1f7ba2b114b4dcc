"""BPU YOLO decoders on constructed per-level NHWC outputs (boxes worked out by hand)."""

from __future__ import annotations

import numpy as np
import pytest

from edgereid.errors import BackendError
from edgereid.x3.detector import BpuYoloDetector, decode_bpu_outputs, decode_yolov5, decode_yolov8, dequantize

NEG = -10.0


def _v5_outputs(nc: int = 2) -> list:
    return [np.full((1, 64 // s, 64 // s, 3 * (5 + nc)), NEG, np.float32) for s in (8, 16, 32)]


def test_yolov5_decode_one_box_by_hand():
    outs = _v5_outputs()
    ch = 7  # 5 + nc per anchor
    cell = outs[0][0, 3, 5]  # level 0 (stride 8), row 3, column 5
    cell[1 * ch : 1 * ch + 4] = 0.0  # anchor 1: sigmoid 0.5 for x, y, w, h
    cell[1 * ch + 4] = 5.0  # objectness
    cell[1 * ch + 5] = 5.0  # person
    other = outs[1][0, 0, 0]  # a confident non-person: ignored
    other[4], other[6] = 5.0, 5.0
    xyxy, scores = decode_yolov5(outs, conf=0.4)
    # xy = (2*0.5 - 0.5 + (5, 3)) * 8 = (44, 28); wh = (2*0.5)^2 * anchor (16, 30)
    np.testing.assert_allclose(xyxy, [[36.0, 13.0, 52.0, 43.0]], atol=1e-4)
    np.testing.assert_allclose(scores, [1 / (1 + np.exp(-5.0)) ** 2], rtol=1e-6)


def test_yolov5_int8_outputs_are_dequantized():
    outs = _v5_outputs()
    cell = outs[2][0, 1, 0]
    cell[0:4] = 0.0
    cell[4] = cell[5] = 4.0
    scale = np.float32(0.1)
    raw = [np.clip(np.round(o / scale), -128, 127).astype(np.int8) for o in outs]
    xyxy_f, s_f = decode_yolov5(outs, conf=0.4)
    xyxy_q, s_q = decode_yolov5(raw, conf=0.4, scales=[np.array([scale])] * 3)
    np.testing.assert_allclose(xyxy_q, xyxy_f, atol=1e-3)
    np.testing.assert_allclose(s_q, s_f, atol=1e-4)
    # level 2 (stride 32), column 0, row 1, anchor 0 = (116, 90)
    np.testing.assert_allclose(xyxy_f, [[16 - 58, 48 - 45, 16 + 58, 48 + 45]], atol=1e-3)


def _v8_outputs(nc: int = 3, bins: int = 16):
    cls = [np.full((1, 64 // s, 64 // s, nc), NEG, np.float32) for s in (8, 16, 32)]
    box = [np.zeros((1, 64 // s, 64 // s, 4 * bins), np.int32) for s in (8, 16, 32)]
    scales = [np.full(4 * bins, 0.5, np.float32) for _ in range(3)]
    return cls, box, scales


def test_yolov8_dfl_decode_by_hand():
    cls, box, scales = _v8_outputs()
    cls[1][0, 1, 2, 0] = 3.0  # person at stride 16, row 1, column 2
    dist = box[1][0, 1, 2].reshape(4, 16)
    for side, b in enumerate((2, 3, 1, 4)):  # l, t, r, b in cells
        dist[side, b] = 40  # * 0.5 = 20: softmax is one-hot to 1e-8
    xyxy, scores = decode_yolov8(cls, box, scales, conf=0.4)
    # centre (2.5, 1.5); x1 = (2.5-2)*16, y1 = (1.5-3)*16, x2 = (2.5+1)*16, y2 = (1.5+4)*16
    np.testing.assert_allclose(xyxy, [[8.0, -24.0, 56.0, 88.0]], atol=1e-3)
    np.testing.assert_allclose(scores, [1 / (1 + np.exp(-3.0))], rtol=1e-6)


def test_decode_picks_family_and_applies_nms():
    cls, box, scales = _v8_outputs()
    for x in (2, 3):  # two neighbouring cells predicting nearly the same box
        cls[0][0, 4, x, 0] = 2.0 + x
        dist = box[0][0, 4, x].reshape(4, 16)
        dist[:, 5] = 40
    outputs = [cls[0], box[0], cls[1], box[1], cls[2], box[2]]
    out_scales = [None, scales[0], None, scales[1], None, scales[2]]
    xyxy, scores = decode_bpu_outputs(outputs, out_scales, conf=0.4, iou=0.5)
    assert len(xyxy) == 1 and scores[0] == pytest.approx(1 / (1 + np.exp(-5.0)))
    xyxy, _ = decode_bpu_outputs(outputs, out_scales, conf=0.4, iou=0.95)
    assert len(xyxy) == 2
    with pytest.raises(BackendError, match="unrecognised"):
        decode_bpu_outputs(outputs[:4], out_scales[:4], 0.4, 0.5)


def test_dequantize_per_channel():
    raw = np.array([[1, 2, 3]], np.int32)
    np.testing.assert_allclose(dequantize(raw, np.array([1.0, 0.5, 2.0])), [[1.0, 1.0, 6.0]])
    np.testing.assert_allclose(dequantize(raw.astype(np.float32), None), raw)


def test_empty_outputs_give_no_boxes():
    xyxy, scores = decode_bpu_outputs(_v5_outputs(), [None] * 3, 0.4, 0.5)
    assert xyxy.shape == (0, 4) and scores.shape == (0,)


def test_detector_without_hobot_dnn_fails_at_construction(tmp_path):
    from edgereid.errors import InputError, MissingDependencyError

    with pytest.raises(InputError, match="does not exist"):
        BpuYoloDetector(str(tmp_path / "missing.bin"))
    model = tmp_path / "yolov5s.bin"
    model.write_bytes(b"x")
    with pytest.raises(MissingDependencyError, match="hobot_dnn"):
        BpuYoloDetector(str(model), conf=0.3, iou=0.6)


class _Props:
    def __init__(self, shape=None, scale_data=None):
        self.shape, self.scale_data = shape, scale_data


class _FakeBpuModel:
    """hobot_dnn.pyeasy_dnn's model object as documented: inputs/outputs with .properties, forward."""

    def __init__(self, outputs):
        self.inputs = [type("T", (), {"properties": _Props(shape=(1, 3, 64, 64))})()]
        self.outputs = [type("T", (), {"properties": _Props(scale_data=np.array([]))})() for _ in outputs]
        self._outputs, self.fed = outputs, []

    def forward(self, nv12):
        self.fed.append(nv12)
        return [type("T", (), {"buffer": o})() for o in self._outputs]


def test_detector_with_a_stand_in_hobot_dnn(tmp_path, monkeypatch):
    import sys
    import types

    outs = _v5_outputs()
    cell = outs[0][0, 3, 5]  # the hand-worked box of test_yolov5_decode_one_box_by_hand
    cell[7:11], cell[11], cell[12] = 0.0, 5.0, 5.0
    fake = _FakeBpuModel(outs)
    dnn = types.ModuleType("hobot_dnn.pyeasy_dnn")
    dnn.load = lambda path: [fake]
    monkeypatch.setitem(sys.modules, "hobot_dnn", types.ModuleType("hobot_dnn"))
    monkeypatch.setitem(sys.modules, "hobot_dnn.pyeasy_dnn", dnn)
    model = tmp_path / "yolov5s.bin"
    model.write_bytes(b"x")
    det = BpuYoloDetector(str(model), conf=0.4, iou=0.5)
    assert det.input_hw == (64, 64) and det.scales == [None, None, None]
    found = det.detect(np.zeros((64, 64, 3), np.uint8))
    np.testing.assert_allclose(found.xyxy, [[36.0, 13.0, 52.0, 43.0]], atol=1e-3)
    assert found.class_ids.tolist() == [0]
    assert fake.fed[0].dtype == np.uint8 and fake.fed[0].size == 64 * 64 * 3 // 2  # NV12
