"""Detections: the one type that flows detector -> embedder -> tracker -> target lock.

Parallel (n, ...) arrays, ``None`` for absent fields, checks in ``__post_init__`` and
boolean-mask / index ``__getitem__`` (the habit of supervision's ``Detections``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from edgereid.errors import InputError


@dataclass
class Detections:
    """Boxes of one frame.

    Attributes:
        xyxy: (n, 4) float32 pixel boxes, x1 y1 x2 y2.
        scores: (n,) float32 detector confidence in [0, 1].
        class_ids: (n,) int32 class ids (0 = person), or None.
        track_ids: (n,) int64 tracker ids, or None before tracking.
        embeddings: (n, D) float32 L2-normalised appearance vectors, or None; rows of boxes that
            were not embedded this frame are NaN.
    """

    xyxy: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray | None = None
    track_ids: np.ndarray | None = None
    embeddings: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        n = len(self.xyxy)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        _check_len("scores", self.scores, n)
        if self.class_ids is not None:
            self.class_ids = np.asarray(self.class_ids, dtype=np.int32).reshape(-1)
            _check_len("class_ids", self.class_ids, n)
        if self.track_ids is not None:
            self.track_ids = np.asarray(self.track_ids, dtype=np.int64).reshape(-1)
            _check_len("track_ids", self.track_ids, n)
        if self.embeddings is not None:
            self.embeddings = np.asarray(self.embeddings, dtype=np.float32)
            if self.embeddings.ndim != 2 or len(self.embeddings) != n:
                raise InputError(f"embeddings must be (n={n}, D), received {self.embeddings.shape}.")

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0,), np.int32))

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: Any) -> Detections:
        """Select rows by boolean mask, integer array, slice or int (always returns Detections)."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Detections(
            xyxy=self.xyxy[index],
            scores=self.scores[index],
            class_ids=None if self.class_ids is None else self.class_ids[index],
            track_ids=None if self.track_ids is None else self.track_ids[index],
            embeddings=None if self.embeddings is None else self.embeddings[index],
        )

    def __iter__(self) -> Iterator[Detections]:
        for i in range(len(self)):
            yield self[i]

    @property
    def area(self) -> np.ndarray:
        """(n,) box areas in pixels²."""
        wh = np.clip(self.xyxy[:, 2:] - self.xyxy[:, :2], 0, None)
        return wh[:, 0] * wh[:, 1]

    @property
    def centers(self) -> np.ndarray:
        """(n, 2) box centres (x, y)."""
        return (self.xyxy[:, :2] + self.xyxy[:, 2:]) / 2.0

    @property
    def heights(self) -> np.ndarray:
        return self.xyxy[:, 3] - self.xyxy[:, 1]

    def clip(self, width: int, height: int) -> Detections:
        """Boxes clipped to the image; boxes of zero area are dropped."""
        xyxy = self.xyxy.copy()
        xyxy[:, [0, 2]] = np.clip(xyxy[:, [0, 2]], 0, width)
        xyxy[:, [1, 3]] = np.clip(xyxy[:, [1, 3]], 0, height)
        out = Detections(xyxy, self.scores, self.class_ids, self.track_ids, self.embeddings)
        return out[out.area > 0]


def _check_len(name: str, arr: np.ndarray, n: int) -> None:
    if len(arr) != n:
        raise InputError(f"{name} must have one entry per box (n={n}), received {len(arr)}.")


def box_iou_batch(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Pairwise IoU.

    Args:
        boxes_a: (n, 4) xyxy.
        boxes_b: (m, 4) xyxy.

    Returns:
        (n, m) IoU in [0, 1]; (n, 0) or (0, m) when a side is empty.
    """
    a = np.asarray(boxes_a, np.float32).reshape(-1, 4)
    b = np.asarray(boxes_b, np.float32).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0).astype(np.float32)
