"""OpenCV's built-in HOG + linear SVM people detector: the fallback when no model is given.

It needs no file and no network, which is why it is the last resort; it is slow (several
hundred ms per 640-wide frame on a Xavier CPU core) and misses people shorter than its 128 px
window or seen from odd angles. OpenCV 5 removed it (``cv2.HOGDescriptor`` is gone), so on
OpenCV 5 the fallback raises :class:`MissingDependencyError` instead of pretending.
"""

from __future__ import annotations

import numpy as np

from edgereid.detections import Detections
from edgereid.errors import MissingDependencyError
from edgereid.lazy import require
from edgereid.runtime.detector_base import Detector, to_detections
from edgereid.runtime.yolo_decode import nms


class HogDetector(Detector):
    """People detector from ``cv2.HOGDescriptor_getDefaultPeopleDetector``.

    Args:
        conf: minimum score; the SVM margin ``m`` is mapped to ``sigmoid(m)`` so that 0.5 is
            OpenCV's own decision boundary (``hitThreshold=0``).
        iou: NMS IoU threshold over the multi-scale windows.
        max_width: frames wider than this are downscaled first (speed; boxes are mapped back).
        win_stride: sliding-window step in pixels; larger is faster and coarser.
        scale: pyramid step between scales.
    """

    name = "opencv-hog"

    def __init__(self, conf: float = 0.4, iou: float = 0.5, max_width: int = 640,
                 win_stride: int = 8, scale: float = 1.05) -> None:
        cv2 = require("cv2", "the HOG people detector")
        if not hasattr(cv2, "HOGDescriptor") or not hasattr(cv2, "HOGDescriptor_getDefaultPeopleDetector"):
            raise MissingDependencyError(
                f"OpenCV {cv2.__version__} has no HOG people detector (OpenCV 5 removed it), so there is "
                "no fallback when --detector is not given. How to fix: pass --detector "
                "(e.g. yolox_nano.onnx) or install OpenCV 4.x: pip install 'opencv-python-headless<5'."
            )
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.conf, self.iou, self.max_width = float(conf), float(iou), int(max_width)
        self.win_stride, self.scale = int(win_stride), float(scale)

    def detect_impl(self, frame_bgr: np.ndarray) -> Detections:
        import cv2

        h, w = frame_bgr.shape[:2]
        factor = min(1.0, self.max_width / float(w))
        image = frame_bgr if factor == 1.0 else cv2.resize(frame_bgr, (int(w * factor), int(h * factor)))
        rects, weights = self.hog.detectMultiScale(
            image, winStride=(self.win_stride, self.win_stride), padding=(8, 8), scale=self.scale
        )
        if len(rects) == 0:
            return Detections.empty()
        xywh = np.asarray(rects, np.float32).reshape(-1, 4) / factor
        xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        scores = 1.0 / (1.0 + np.exp(-np.asarray(weights, np.float32).reshape(-1)))
        keep = scores >= self.conf
        xyxy, scores = xyxy[keep], scores[keep]
        idx = nms(xyxy, scores, self.iou)
        det = to_detections(xyxy[idx], scores[idx])
        return det.clip(w, h)
