"""The detector interface every backend implements (OpenCV HOG, darknet, ONNX/TensorRT YOLO, X3 BPU).

Its own module so that the backends import it without importing :mod:`edgereid.runtime.detector`,
which picks a backend by file kind and imports them in turn (no import circle).
"""

from __future__ import annotations

import numpy as np

from edgereid.detections import Detections
from edgereid.errors import InputError


class Detector:
    """Base class: ``detect(frame_bgr) -> Detections`` of people in frame pixels."""

    name = "detector"

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        """Detect people in one (H, W, 3) uint8 BGR frame."""
        check_frame(frame_bgr)
        return self.detect_impl(frame_bgr)

    def detect_impl(self, frame_bgr: np.ndarray) -> Detections:
        raise NotImplementedError

    def close(self) -> None:
        """Free the backend (engines hold device memory)."""

    def __enter__(self) -> Detector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_frame(frame: np.ndarray) -> None:
    """Raise InputError unless ``frame`` is a non-empty (H, W, 3) uint8 image."""
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.size == 0:
        shape = getattr(frame, "shape", type(frame).__name__)
        raise InputError(f"A detector needs an (H, W, 3) uint8 BGR frame, received {shape}.")
    if frame.dtype != np.uint8:
        raise InputError(f"A detector needs a uint8 frame, received dtype {frame.dtype}.")


def to_detections(xyxy: np.ndarray, scores: np.ndarray) -> Detections:
    """Person Detections (class id 0) without boxes of zero area."""
    det = Detections(xyxy, scores, np.zeros(len(scores), np.int32))
    return det[det.area > 0]
