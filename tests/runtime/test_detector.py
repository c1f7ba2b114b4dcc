"""load_detector on tiny hand-made ONNX graphs whose output is a known constant.

Each graph returns a fixed YOLOX / YOLOv8 / NMS-free tensor with one person box in
network-input pixels (the image input only feeds a zero-weighted term, so onnxruntime keeps
it). Through load_detector that box must come back in frame pixels after the letterbox the
model family uses: YOLOX pads right/bottom, Ultralytics pads both sides.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgereid.detections import Detections
from edgereid.errors import InputError, MissingDependencyError
from edgereid.runtime.detector import YoloDetector, load_detector

onnx = pytest.importorskip("onnx")


def constant_model(path, output: np.ndarray, input_shape, input_type=None) -> str:
    """ONNX model: out = const + 0 * mean(images), with the given input shape (None = dynamic)."""
    from onnx import TensorProto, helper, numpy_helper

    input_type = TensorProto.FLOAT if input_type is None else input_type
    dims = [d if d is not None else f"d{i}" for i, d in enumerate(input_shape)]
    nodes = [
        helper.make_node("Cast", ["images"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["x"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
        helper.make_node("Add", ["const", "z"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes, "constant_head",
        [helper.make_tensor_value_info("images", input_type, dims)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, list(output.shape))],
        initializer=[numpy_helper.from_array(output.astype(np.float32), "const"),
                     numpy_helper.from_array(np.zeros((), np.float32), "zero")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return str(path)


def yolox_output(size, box_cxcywh, stride=16, obj=0.9, cls=0.8):
    n = sum((size // s) ** 2 for s in (8, 16, 32))
    out = np.zeros((1, n, 85), np.float32)
    cx, cy, w, h = box_cxcywh
    gx, gy = int(cx // stride), int(cy // stride)
    offset = (size // 8) ** 2 if stride == 16 else 0
    row = offset + gy * (size // stride) + gx
    out[0, row, :5] = [cx / stride - gx, cy / stride - gy, math.log(w / stride), math.log(h / stride), obj]
    out[0, row, 5] = cls
    return out


def yolov8_output(size, box_cxcywh, score=0.9):
    n = sum((size // s) ** 2 for s in (8, 16, 32))
    out = np.zeros((1, 84, n), np.float32)
    out[0, :4, 3] = box_cxcywh
    out[0, 4, 3] = score
    return out


def end2end_output(box_xyxy, score=0.9):
    out = np.zeros((1, 300, 6), np.float32)
    out[0, 0] = list(box_xyxy) + [score, 0]
    out[0, 1] = [1, 1, 30, 30, 0.99, 5]  # a bus
    return out


FRAME = np.zeros((480, 640, 3), np.uint8)  # into 320x320: scale 0.5


@pytest.mark.parametrize(
    "kind, output, expected_frame_box",
    [
        # YOLOX: image at the top-left, no pad: box (100,60)-(160,210) in input -> /0.5
        ("yolox", yolox_output(320, (130, 135, 60, 150)), [200, 120, 320, 420]),
        # Ultralytics: pad_y = 40: input (100,60)-(160,210) -> ((x)/0.5, (y-40)/0.5)
        ("yolov8", yolov8_output(320, (130, 135, 60, 150)), [200, 40, 320, 340]),
        ("end2end", end2end_output((100, 60, 160, 210)), [200, 40, 320, 340]),
    ],
)
def test_decoder_from_output_shape_and_boxes_in_frame_pixels(tmp_path, kind, output, expected_frame_box):
    path = constant_model(tmp_path / f"{kind}.onnx", output, [1, 3, 320, 320])
    det = load_detector(path, conf=0.4, iou=0.5)
    assert det.decoder == kind
    result = det.detect(FRAME)
    assert isinstance(result, Detections)
    np.testing.assert_allclose(result.xyxy, [expected_frame_box], atol=1e-2)
    assert result.class_ids.tolist() == [0]
    assert 0.4 <= float(result.scores[0]) <= 1.0


def test_conf_threshold_drops_weak_boxes(tmp_path):
    path = constant_model(tmp_path / "v8.onnx", yolov8_output(320, (130, 135, 60, 150), score=0.3),
                          [1, 3, 320, 320])
    assert len(load_detector(path, conf=0.4).detect(FRAME)) == 0
    assert len(load_detector(path, conf=0.25).detect(FRAME)) == 1


def test_preprocess_per_family(tmp_path):
    frame = np.zeros((320, 320, 3), np.uint8)
    frame[..., 0], frame[..., 2] = 10, 200  # B=10, R=200
    yolox = load_detector(constant_model(tmp_path / "x.onnx", yolox_output(320, (50, 50, 20, 40)),
                                         [1, 3, 320, 320]))
    tensor, _ = yolox.preprocess(frame)
    assert tensor.shape == (1, 3, 320, 320) and tensor.dtype == np.float32
    assert tensor[0, 0, 5, 5] == 10 and tensor[0, 2, 5, 5] == 200  # BGR, 0..255
    v8 = load_detector(constant_model(tmp_path / "v.onnx", yolov8_output(320, (50, 50, 20, 40)),
                                      [1, 3, 320, 320]))
    tensor, _ = v8.preprocess(frame)
    assert tensor[0, 0, 5, 5] == pytest.approx(200 / 255) and tensor[0, 2, 5, 5] == pytest.approx(10 / 255)


def test_nhwc_uint8_input_read_from_the_model(tmp_path):
    from onnx import TensorProto

    path = constant_model(tmp_path / "nhwc.onnx", end2end_output((100, 60, 160, 210)), [1, 320, 320, 3],
                          input_type=TensorProto.UINT8)
    det = load_detector(path)
    assert det.layout == "NHWC"
    tensor, _ = det.preprocess(FRAME)
    assert tensor.shape == (1, 320, 320, 3) and tensor.dtype == np.uint8
    np.testing.assert_allclose(det.detect(FRAME).xyxy, [[200, 40, 320, 340]], atol=1e-2)


def test_dynamic_input_uses_det_size(tmp_path):
    path = constant_model(tmp_path / "dyn.onnx", end2end_output((100, 60, 160, 210)), [1, 3, None, None])
    det = load_detector(path, size=320)
    assert det.size_hw == (320, 320)
    np.testing.assert_allclose(det.detect(FRAME).xyxy, [[200, 40, 320, 340]], atol=1e-2)
    with pytest.raises(InputError, match="multiple of 32"):
        load_detector(path, size=300)


def test_det_size_must_match_a_fixed_input(tmp_path):
    path = constant_model(tmp_path / "fixed.onnx", end2end_output((1, 1, 5, 5)), [1, 3, 320, 320])
    with pytest.raises(InputError, match="fixed at 320x320"):
        load_detector(path, size=640)


def test_unknown_output_shape_fails_at_load(tmp_path):
    path = constant_model(tmp_path / "emb.onnx", np.zeros((1, 512), np.float32), [1, 3, 320, 320])
    with pytest.raises(InputError, match="no output a YOLO decoder understands"):
        load_detector(path)


@pytest.mark.parametrize(
    "name, content, match",
    [
        ("model.tflite", b"x", "Unknown detector file kind '.tflite'"),
        ("model", b"x", "no extension"),
        ("missing.onnx", None, "not found"),
        ("garbage.onnx", b"not an onnx model", "Cannot load the ONNX detector"),
        ("model.engine", b"x", "TensorRT|tensorrt"),  # no TensorRT on this machine
        ("lonely.cfg", b"[net]\nwidth=320\n", "side by side|removed readNetFromDarknet"),
    ],
)
def test_bad_detector_files(tmp_path, name, content, match):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises((InputError, MissingDependencyError), match=match):
        load_detector(str(path))


@pytest.mark.parametrize("kwargs", [{"conf": 1.5}, {"iou": -0.1}, {"size": 0}])
def test_bad_options(tmp_path, kwargs):
    path = constant_model(tmp_path / "ok.onnx", end2end_output((1, 1, 5, 5)), [1, 3, 320, 320])
    with pytest.raises(InputError, match="--det-"):
        load_detector(path, **kwargs)


@pytest.mark.parametrize("frame", [np.zeros((0, 0, 3), np.uint8), np.zeros((10, 10), np.uint8),
                                   np.zeros((10, 10, 3), np.float32), None])
def test_bad_frames_raise_input_error(tmp_path, frame):
    det = load_detector(constant_model(tmp_path / "ok.onnx", end2end_output((1, 1, 5, 5)), [1, 3, 320, 320]))
    with pytest.raises(InputError):
        det.detect(frame)


def test_bin_goes_to_the_x3_bpu_detector(tmp_path):
    from edgereid.errors import MissingDependencyError

    path = tmp_path / "yolov5s_bernoulli2_nv12.bin"
    path.write_bytes(b"x")
    # off the board, the BPU detector is chosen and says at once what is missing
    with pytest.raises(MissingDependencyError, match="hobot_dnn.*X3 BPU person detector"):
        load_detector(str(path), conf=0.3, iou=0.6)


class FakeTrtRunner:
    """Stands in for edgereid.jetson.runner.TrtRunner (Polygraphy-style metadata)."""

    def __init__(self, output: np.ndarray) -> None:
        self.output, self.active, self.feeds = output, False, []
        self.input_name, self.input_shape, self.input_dtype = "images", [1, 3, 320, 320], np.float32

    def infer(self, feed):
        self.feeds.append(feed)
        return {"output0": self.output}

    def close(self):
        self.active = False


def test_yolo_detector_over_any_runner():
    runner = FakeTrtRunner(end2end_output((100, 60, 160, 210)))
    det = YoloDetector(runner, conf=0.4, iou=0.5, size=None, name="fake")
    np.testing.assert_allclose(det.detect(FRAME).xyxy, [[200, 40, 320, 340]], atol=1e-2)
    assert runner.feeds[-1]["images"].shape == (1, 3, 320, 320)


def test_engine_goes_through_the_tensorrt_runner(tmp_path, monkeypatch):
    """A stand-in for edgereid.jetson.runner (TensorRT cannot run here) with its call shapes."""
    import sys
    import types

    calls = []

    class StandInTrtRunner:
        def __init__(self, path):
            calls.append(("init", path))

        def activate(self):
            calls.append(("activate",))

        def get_input_metadata(self):
            return {"images": (np.float32, (1, 3, 320, 320))}

        def infer(self, feed):
            assert feed["images"].shape == (1, 3, 320, 320) and feed["images"].dtype == np.float32
            return {"output0": end2end_output((100, 60, 160, 210))}

        def deactivate(self):
            calls.append(("deactivate",))

    module = types.ModuleType("edgereid.jetson.runner")
    module.TrtRunner = StandInTrtRunner
    monkeypatch.setitem(sys.modules, "edgereid.jetson.runner", module)
    path = tmp_path / "yolo26n.engine"
    path.write_bytes(b"plan")
    with load_detector(str(path)) as det:
        assert det.name == "tensorrt:yolo26n.engine" and det.decoder == "end2end"
        np.testing.assert_allclose(det.detect(FRAME).xyxy, [[200, 40, 320, 340]], atol=1e-2)
    assert calls == [("init", str(path)), ("activate",), ("deactivate",)]


def test_trt_input_from_the_runner_binding_table():
    """edgereid.jetson.runner.TrtRunner keeps its bindings (name, input, shape, dtype) after activate."""
    from edgereid.runtime.detector import _trt_input

    runner = type("R", (), {})()
    runner._bindings = [
        {"name": "images", "input": True, "shape": (-1, 3, 416, 416), "dtype": np.float16},
        {"name": "output", "input": False, "shape": (-1, 3549, 85), "dtype": np.float16},
    ]
    assert _trt_input(runner, "x.engine") == ("images", [None, 3, 416, 416], np.dtype(np.float16))


def test_hog_fallback_or_clear_error():
    import cv2

    if hasattr(cv2, "HOGDescriptor"):
        det = load_detector(None)
        assert det.name == "opencv-hog"
        assert len(det.detect(np.zeros((256, 128, 3), np.uint8))) == 0
    else:
        with pytest.raises(MissingDependencyError, match="OpenCV 5 removed it"):
            load_detector(None)


@pytest.mark.parametrize("threads, expected", [(1, 1), (2, 2)])
def test_onnx_detector_threads_are_pinned(tmp_path, threads, expected):
    det = load_detector(constant_model(tmp_path / "t.onnx", end2end_output((1, 1, 5, 5)), [1, 3, 320, 320]),
                        threads=threads)
    session = det.runner.session
    assert session.get_session_options().intra_op_num_threads == expected
