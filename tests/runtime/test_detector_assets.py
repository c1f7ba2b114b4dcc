"""The real YOLOX-Nano ONNX on real photos, against boxes measured by eye on the images.

Reference boxes were read off the photos with a 50 px grid drawn over them (not produced by
the detector): bus.jpg (810x1080) has four people, the fourth cut by the left edge and only
half visible; zidane.jpg (1280x720) has two.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgereid.detections import box_iou_batch
from edgereid.runtime.detector import load_detector

pytestmark = pytest.mark.assets

BUS_PEOPLE = np.array([
    [50, 398, 245, 902],  # beige coat
    [222, 405, 345, 860],  # black coat
    [668, 395, 810, 880],  # right edge, walking
    [0, 550, 78, 875],  # left edge, half visible
], np.float32)
ZIDANE_PEOPLE = np.array([
    [125, 200, 710, 720],  # Zidane (body; his arm reaches further right)
    [750, 40, 1150, 720],  # Ancelotti
], np.float32)


@pytest.fixture(scope="module")
def yolox(yolox_onnx):
    return load_detector(str(yolox_onnx), conf=0.25, iou=0.5)


def _image(assets_dir, name):
    import cv2

    return cv2.imread(str(assets_dir / "images" / name))


def test_yolox_model_is_read_as_yolox(yolox):
    assert yolox.decoder == "yolox"
    assert yolox.size_hw == (416, 416) and yolox.layout == "NCHW"


@pytest.mark.parametrize("name, people", [("bus.jpg", BUS_PEOPLE), ("zidane.jpg", ZIDANE_PEOPLE)])
def test_yolox_finds_the_people(yolox, assets_dir, name, people):
    det = yolox.detect(_image(assets_dir, name))
    assert abs(len(det) - len(people)) <= 1
    assert (det.class_ids == 0).all()
    iou = box_iou_batch(people, det.xyxy)  # (people, detections)
    matched = iou.max(axis=1)
    # every clearly visible person is found with a tight box; at most one edge case missed
    assert (matched >= 0.6).sum() >= len(people) - 1, matched
    assert matched[:2].min() >= 0.7, matched


def test_default_conf_keeps_the_clear_people(yolox_onnx, assets_dir):
    det = load_detector(str(yolox_onnx)).detect(_image(assets_dir, "bus.jpg"))  # conf 0.4
    iou = box_iou_batch(BUS_PEOPLE[:3], det.xyxy).max(axis=1)
    assert (iou >= 0.6).all(), iou
    assert (det.scores >= 0.4).all()


def test_walking_video_first_walker(yolox, walking_video):
    """Frames 100-139: the first walker stands with her back to the camera (checked by eye:
    about x 380-510, y 10-410 at frame 100)."""
    from edgereid.runtime.sources import open_source

    found, boxes = 0, []
    with open_source(str(walking_video)) as src:
        for _ in range(100):
            src.capture()
        for _ in range(40):
            det = yolox.detect(src.capture().image)
            found += len(det) > 0
            boxes.extend(det.xyxy)
    assert found >= 30
    iou = box_iou_batch(np.array([[380, 10, 510, 410]], np.float32), np.array(boxes))
    assert np.median(iou) >= 0.6


def _cv2_has(attr_path: str) -> bool:
    import cv2

    obj = cv2
    for part in attr_path.split("."):
        obj = getattr(obj, part, None)
    return obj is not None


@pytest.mark.skipif(not _cv2_has("dnn.readNetFromDarknet"), reason="OpenCV 5 has no darknet reader")
def test_darknet_body_detector(assets_dir):
    det = load_detector(str(assets_dir / "detectors" / "yolo-fastest-1.1_body.cfg"))
    assert det.size_wh == (320, 320)  # read from the cfg's [net] section
    found = det.detect(_image(assets_dir, "bus.jpg"))
    matched = box_iou_batch(BUS_PEOPLE, found.xyxy).max(axis=1)
    assert (matched >= 0.5).sum() >= 3, matched


@pytest.mark.skipif(not _cv2_has("HOGDescriptor"), reason="OpenCV 5 has no HOG people detector")
def test_hog_fallback_finds_someone_on_bus(assets_dir):
    det = load_detector(None)
    found = det.detect(_image(assets_dir, "bus.jpg"))
    assert len(found) >= 1
    assert box_iou_batch(BUS_PEOPLE, found.xyxy).max() >= 0.4
