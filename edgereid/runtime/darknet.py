"""Darknet YOLO person detector through OpenCV's dnn module (OpenCV 4.x only).

For the 1.2 MB Yolo-Fastest 1.1 "body" model in the shared assets: a ``.cfg`` and a
``.weights`` file with the same stem. OpenCV 5 removed ``readNetFromDarknet``; there this kind
raises :class:`MissingDependencyError`. The input is a plain resize (no letterbox), BGR, 1/255,
as the Yolo-Fastest samples do; OpenCV's region layer returns rows of (cx, cy, w, h) relative to
the image, objectness, then per-class scores already multiplied by objectness.
"""

from __future__ import annotations

import os
import re
from typing import Tuple

import numpy as np

from edgereid.detections import Detections
from edgereid.errors import InputError, MissingDependencyError
from edgereid.lazy import require
from edgereid.runtime.detector_base import Detector, to_detections
from edgereid.runtime.yolo_decode import PERSON_CLASS, nms


def darknet_pair(path: str) -> Tuple[str, str]:
    """(cfg, weights) paths for either file of a darknet pair (same stem)."""
    stem = os.path.splitext(path)[0]
    cfg, weights = stem + ".cfg", stem + ".weights"
    for p in (cfg, weights):
        if not os.path.isfile(p):
            raise InputError(f"A darknet detector needs {os.path.basename(cfg)} and "
                             f"{os.path.basename(weights)} side by side; {p} is missing.")
    return cfg, weights


def cfg_input_size(cfg_path: str) -> Tuple[int, int]:
    """(width, height) of the ``[net]`` section of a darknet cfg (416 x 416 when absent)."""
    text = open(cfg_path, encoding="utf-8", errors="replace").read()
    net = text.split("[", 2)[1] if text.lstrip().startswith("[net]") else text
    size = {}
    for key in ("width", "height"):
        found = re.search(rf"^\s*{key}\s*=\s*(\d+)", net, flags=re.M)
        size[key] = int(found.group(1)) if found else 416
    return size["width"], size["height"]


def decode_darknet(rows: np.ndarray, frame_w: int, frame_h: int, conf: float, iou: float
                   ) -> Tuple[np.ndarray, np.ndarray]:
    """(n, 5+C) region-layer rows -> person (k, 4) xyxy in frame pixels and (k,) scores, after NMS."""
    rows = np.asarray(rows, np.float32).reshape(-1, rows.shape[-1])
    scores = rows[:, 5 + PERSON_CLASS]
    rows, scores = rows[scores >= conf], scores[scores >= conf]
    cx, cy = rows[:, 0] * frame_w, rows[:, 1] * frame_h
    w, h = rows[:, 2] * frame_w, rows[:, 3] * frame_h
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    idx = nms(xyxy, scores, iou)
    return xyxy[idx], scores[idx]


class DarknetDetector(Detector):
    """Args: path (.cfg or .weights), conf, iou, size (input side; None = the cfg's)."""

    def __init__(self, path: str, conf: float = 0.4, iou: float = 0.5, size: int | None = None) -> None:
        cv2 = require("cv2", "a darknet detector")
        if not hasattr(cv2.dnn, "readNetFromDarknet"):
            raise MissingDependencyError(
                f"OpenCV {cv2.__version__} cannot read darknet models (OpenCV 5 removed readNetFromDarknet). "
                "How to fix: pip install 'opencv-python-headless<5', or use an ONNX detector."
            )
        cfg, weights = darknet_pair(path)
        try:
            self.net = cv2.dnn.readNetFromDarknet(cfg, weights)
        except cv2.error as exc:
            raise InputError(f"OpenCV cannot read the darknet model {cfg}: {exc}") from exc
        self.out_names = self.net.getUnconnectedOutLayersNames()
        self.size_wh = (int(size), int(size)) if size else cfg_input_size(cfg)
        self.conf, self.iou = float(conf), float(iou)
        self.name = f"darknet:{os.path.basename(cfg)}"

    def detect_impl(self, frame_bgr: np.ndarray) -> Detections:
        import cv2

        h, w = frame_bgr.shape[:2]
        blob = cv2.dnn.blobFromImage(frame_bgr, 1 / 255.0, self.size_wh, swapRB=False, crop=False)
        self.net.setInput(blob)
        outs = self.net.forward(self.out_names)
        rows = np.concatenate([np.asarray(o).reshape(-1, o.shape[-1]) for o in outs])
        xyxy, scores = decode_darknet(rows, w, h, self.conf, self.iou)
        return to_detections(xyxy, scores).clip(w, h)
