"""Crop quality gates: which tracked boxes may enroll, re-acquire or teach the gallery.

A ReID embedding of a bad crop is not evidence: a head-and-shoulders box cut by the bottom edge
of the image (someone walking in from behind the car), a person a few pixels tall, or a box
overlapping another person (two appearances mixed) can score high against anyone. Real footage
showed each adopting a stranger. Such crops never enroll, re-acquire or update the gallery; at most
an already locked track keeps coasting on them (and is still checked for swaps).
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

from edgereid.detections import Detections, box_iou_batch
from edgereid.runtime.config import QualityConfig

# reasons, in the order they are checked (one per box, for events and the annotated video)
BORDER, SMALL, ASPECT, OVERLAP = "cut by the image border", "too small", "implausible aspect", "overlaps a person"


def crop_quality(tracks: Detections, frame_size: Tuple[int, int],
                 config: QualityConfig | None = None) -> Tuple[np.ndarray, List[str]]:
    """(n,) bool good crop, and per box the first gate it failed ("" when good).

    Args:
        tracks: this frame's boxes (xyxy pixels).
        frame_size: (width, height) in pixels.
        config: the gates (``[quality]`` in follow_defaults.ini).
    """
    config = config or QualityConfig()
    n = len(tracks)
    if n == 0:
        return np.zeros(0, bool), []
    width, height = frame_size
    box = np.asarray(tracks.xyxy, np.float32).reshape(-1, 4)
    margin = config.border_margin * min(width, height)
    border = ((box[:, 0] <= margin) | (box[:, 1] <= margin) | (box[:, 2] >= width - margin)
              | (box[:, 3] >= height - margin))
    h = box[:, 3] - box[:, 1]
    w = np.maximum(box[:, 2] - box[:, 0], 1e-6)
    small = h < config.min_height_px
    aspect = (h / w < config.min_aspect) | (h / w > config.max_aspect)
    overlap = max_overlap(box) > config.max_overlap_iou
    reasons = []
    for i in range(n):
        failed = [name for name, bad in ((BORDER, border[i]), (SMALL, small[i]), (ASPECT, aspect[i]),
                                         (OVERLAP, overlap[i])) if bad]
        reasons.append(failed[0] if failed else "")
    good = np.array([r == "" for r in reasons], bool)
    return good, reasons


def max_overlap(boxes: np.ndarray) -> np.ndarray:
    """(n,) largest IoU of each (n, 4) xyxy box with any other box (0 when alone)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if len(boxes) < 2:
        return np.zeros(len(boxes), np.float32)
    iou = box_iou_batch(boxes, boxes)
    np.fill_diagonal(iou, 0.0)
    return iou.max(axis=1)


def touches_bottom(box: np.ndarray, frame_height: float, config: QualityConfig | None = None) -> bool:
    """True when a box reaches the bottom image edge (within the border margin): for a car camera,
    someone there is right in front of (or beside) the bumper, or came from behind the car."""
    config = config or QualityConfig()
    return float(box[3]) >= frame_height - config.border_margin * frame_height
