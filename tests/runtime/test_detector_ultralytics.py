"""Real Ultralytics ONNX exports (untrained, built from yaml offline) pick the right decoder.

Untrained weights detect nothing meaningful, so only the layout is checked: YOLOv8/YOLO11
export [1, 84, N]; YOLO26 with ``nms=False`` exports the NMS-free [1, 300, 6] (Ultralytics
8.4's default ``nms=None`` gives [1, 84, N] for YOLO26 too). Each export takes ~1-2 s at 160 px.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from edgereid.detections import Detections
from edgereid.runtime.detector import load_detector

pytest.importorskip("ultralytics")
pytest.importorskip("torch")


def _export(tmp_path, yaml: str, **kwargs) -> str:
    from ultralytics import YOLO

    os.environ["YOLO_OFFLINE"] = "1"
    cwd = os.getcwd()
    os.chdir(tmp_path)  # Ultralytics writes next to the working directory
    try:
        path = YOLO(yaml).export(format="onnx", imgsz=160, simplify=False, verbose=False, **kwargs)
        return str(tmp_path / os.path.basename(str(path)))
    finally:
        os.chdir(cwd)


@pytest.mark.slow
@pytest.mark.parametrize(
    "yaml, kwargs, decoder",
    [
        ("yolov8n.yaml", {}, "yolov8"),
        ("yolo11n.yaml", {}, "yolov8"),
        ("yolo26n.yaml", {"nms": False}, "end2end"),
    ],
)
def test_ultralytics_export_layouts(tmp_path, yaml, kwargs, decoder):
    path = _export(tmp_path, yaml, **kwargs)
    det = load_detector(path, conf=0.01)
    assert det.decoder == decoder
    assert det.size_hw == (160, 160)
    result = det.detect(np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8))
    assert isinstance(result, Detections)
    if len(result):
        assert (result.class_ids == 0).all()
        assert (result.xyxy[:, [0, 2]] <= 320).all() and (result.xyxy[:, [1, 3]] <= 240).all()
        assert (result.scores >= 0.01).all()


@pytest.mark.slow
def test_pt_through_ultralytics(tmp_path):
    from ultralytics import YOLO

    path = tmp_path / "untrained.pt"
    YOLO("yolov8n.yaml").save(str(path))
    det = load_detector(str(path), conf=0.01, size=160)
    assert det.name == "ultralytics:untrained.pt"
    result = det.detect(np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8))
    assert isinstance(result, Detections)
    if len(result):
        assert (result.class_ids == 0).all()
