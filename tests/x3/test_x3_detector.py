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
    outputs = [*box, *cls]  # the zoo's order: box s/m/l, then cls s/m/l
    out_scales = [*scales, None, None, None]
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


# rdk_model_zoo (branch rdk_x3) demos/detect/YOLOv8/README.md, `hrt_model_exec model_info` of
# yolov8n_detect_..._640x640_nv12_modified.bin: output names, NHWC shapes, dtypes, and the first
# scale_data values of output0 / 326 / 334 (per channel, quantizeAxis 3; the rest repeat the pattern).
ZOO_NAMES = ["output0", "326", "334", "342", "350", "358"]
ZOO_SCALE_HEADS = ([0.000318929, 0.00032147, 0.000303427, 0.000281826],
                   [0.000231898, 0.000221052, 0.000178184, 0.000175],
                   [0.00026432, 0.000255302, 0.000239413, 0.000278062])


def _zoo_yolov8(person_cell=(10, 20), ltrb=(2, 3, 1, 4)):
    """The six zoo outputs for a 640x640 input: one person at stride 16 (row 10, column 20)."""
    sizes = (80, 40, 20)
    scales = [np.resize(np.asarray(head, np.float32), 64) for head in ZOO_SCALE_HEADS]
    box = [np.zeros((1, n, n, 64), np.int32) for n in sizes]
    cls = [np.full((1, n, n, 80), -8.0, np.float32) for n in sizes]
    row, col = person_cell
    cls[1][0, row, col, 0] = 2.5
    cls[1][0, row, col, 17] = 1.0  # a weaker second class in the same cell
    for side, b in enumerate(ltrb):
        ch = side * 16 + b
        box[1][0, row, col, ch] = int(round(20.0 / scales[1][ch]))  # 20 after dequantize: one-hot softmax
    return [*box, *cls], [*scales, None, None, None]


def test_yolov8_zoo_layout_worked_by_hand():
    outputs, scales = _zoo_yolov8()
    assert [o.dtype for o in outputs] == [np.int32] * 3 + [np.float32] * 3
    xyxy, scores = decode_bpu_outputs(outputs, scales, conf=0.4, iou=0.5, input_hw=(640, 640))
    # centre (20.5, 10.5) cells; (20.5-2, 10.5-3, 20.5+1, 10.5+4) * 16
    np.testing.assert_allclose(xyxy, [[296.0, 120.0, 344.0, 232.0]], atol=1e-2)
    np.testing.assert_allclose(scores, [1 / (1 + np.exp(-2.5))], rtol=1e-6)


def test_yolov8_outputs_matched_by_shape_not_position():
    outputs, scales = _zoo_yolov8()
    order = [4, 0, 5, 2, 3, 1]  # any order decodes the same
    xyxy, _ = decode_bpu_outputs([outputs[i] for i in order], [scales[i] for i in order], 0.4, 0.5, (640, 640))
    np.testing.assert_allclose(xyxy, [[296.0, 120.0, 344.0, 232.0]], atol=1e-2)
    # the old (cls, box)-pair reading would have taken box s as a class map: refused shapes stay refused
    bad = [outputs[0], outputs[1], outputs[2], outputs[3], outputs[4], outputs[4]]
    with pytest.raises(BackendError, match="do not pair by size"):
        decode_bpu_outputs(bad, scales, 0.4, 0.5, (640, 640))


def test_yolov8_box_scale_is_each_outputs_own():
    outputs, scales = _zoo_yolov8()
    box = outputs[1][0, 10, 20]
    box[:] = 0
    for side in range(4):  # a soft distribution: 1.0 at bin 2 after dequantize, 0 elsewhere
        box[side * 16 + 2] = int(round(1.0 / scales[1][side * 16 + 2]))
    e = np.e
    d = (2 * e + (sum(range(16)) - 2)) / (e + 15)  # expected distance in cells, the same for each side
    good, _ = decode_bpu_outputs(outputs, scales, 0.4, 0.5, (640, 640))
    np.testing.assert_allclose(good, [[(20.5 - d) * 16, (10.5 - d) * 16, (20.5 + d) * 16, (10.5 + d) * 16]],
                               atol=0.05)
    swapped = [scales[0], scales[0], scales[0], None, None, None]  # stride-16 box read with stride-8 scales
    wrong, _ = decode_bpu_outputs(outputs, swapped, 0.4, 0.5, (640, 640))
    assert np.abs(good - wrong).max() > 0.5


def test_yolov8_nc64_uses_the_integer_outputs_as_boxes():
    from edgereid.x3.detector import match_dfl_outputs

    shapes = [(1, 80, 80, 64), (1, 40, 40, 64), (1, 20, 20, 64)] * 2
    lv = match_dfl_outputs(shapes, [False, False, False, True, True, True], (640, 640))
    assert lv.box == [3, 4, 5] and lv.cls == [0, 1, 2] and lv.strides == [8, 16, 32]


class _ZooProps:
    def __init__(self, shape, dtype, scale_data):
        self.shape, self.dtype, self.scale_data = shape, dtype, scale_data


def test_detector_with_a_stand_in_hobot_dnn_zoo_yolov8(tmp_path, monkeypatch):
    import sys
    import types

    outputs, scales = _zoo_yolov8()
    fake = _FakeBpuModel(outputs)
    fake.inputs = [type("T", (), {"name": "images", "properties": _ZooProps((1, 3, 640, 640), "uint8", None)})()]
    fake.outputs = [
        type("T", (), {"name": n, "properties": _ZooProps(o.shape, str(o.dtype),
                                                          s if s is not None else np.array([], np.float32))})()
        for n, o, s in zip(ZOO_NAMES, outputs, scales)
    ]
    dnn = types.ModuleType("hobot_dnn.pyeasy_dnn")
    dnn.load = lambda path: [fake]
    monkeypatch.setitem(sys.modules, "hobot_dnn", types.ModuleType("hobot_dnn"))
    monkeypatch.setitem(sys.modules, "hobot_dnn.pyeasy_dnn", dnn)
    model = tmp_path / "yolov8n_detect_bernoulli2_640x640_nv12_modified.bin"
    model.write_bytes(b"x")
    det = BpuYoloDetector(str(model), conf=0.4, iou=0.5)
    assert det.input_hw == (640, 640)
    found = det.detect(np.zeros((640, 640, 3), np.uint8))  # no letterbox padding at the model size
    np.testing.assert_allclose(found.xyxy, [[296.0, 120.0, 344.0, 232.0]], atol=1e-2)
    assert found.class_ids.tolist() == [0]
