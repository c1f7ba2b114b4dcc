"""Pure numpy pieces of a YOLO person detector: letterbox, decoders, NMS.

Kept apart from the runners (onnxruntime, TensorRT) so every decision a detector makes on
the car is a plain function tested here. Three output layouts are understood, told apart by
the output shape and the input size (see :func:`choose_decoder`):

- ``yolox``  [1, N, 5+C]: raw YOLOX head (``decode_in_inference=False``), N = grid cells of
  strides 8/16/32; per row (x, y) cell offsets, log (w, h), objectness, C class scores
  (sigmoid already applied by the exported head).
- ``yolov8`` [1, 4+C, N]: Ultralytics YOLOv8/YOLO11 head, (cx, cy, w, h) in input pixels and C
  class scores, no objectness.
- ``end2end`` [1, K, 6]: NMS-free head (YOLO26 default, YOLOv10): (x1, y1, x2, y2, score,
  class) in input pixels, K = max detections (300).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence, Tuple

import numpy as np

from edgereid.errors import InputError

PERSON_CLASS = 0
YOLOX_STRIDES = (8, 16, 32)
DECODERS = ("yolox", "yolov8", "end2end")


@dataclass(frozen=True)
class Letterbox:
    """How a frame was fitted into the network input: ``input = frame * scale + (pad_x, pad_y)``.

    Attributes:
        scale: resize factor frame -> input (same for x and y).
        pad_x: left padding in input pixels.
        pad_y: top padding in input pixels.
        frame_w: original frame width in pixels (to clip boxes).
        frame_h: original frame height in pixels.
    """

    scale: float
    pad_x: float
    pad_y: float
    frame_w: int
    frame_h: int


def letterbox(
    image: np.ndarray, size_hw: Tuple[int, int], center: bool = True, pad_value: int = 114
) -> Tuple[np.ndarray, Letterbox]:
    """Resize keeping the aspect ratio and pad to ``size_hw``.

    Args:
        image: (H, W, 3) uint8.
        size_hw: network input (height, width).
        center: pad both sides equally (Ultralytics) or only right/bottom (YOLOX ``preproc``).
        pad_value: grey level of the padding (114 for both families).

    Returns:
        (size_h, size_w, 3) uint8 image and the :class:`Letterbox` that inverts it.
    """
    import cv2

    h, w = image.shape[:2]
    in_h, in_w = int(size_hw[0]), int(size_hw[1])
    scale = min(in_h / h, in_w / w)
    new_w, new_h = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    resized = image if (new_w, new_h) == (w, h) else cv2.resize(
        image, (new_w, new_h), interpolation=cv2.INTER_LINEAR
    )
    pad_x = (in_w - new_w) // 2 if center else 0
    pad_y = (in_h - new_h) // 2 if center else 0
    out = np.full((in_h, in_w, 3), pad_value, dtype=np.uint8)
    out[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    return out, Letterbox(float(scale), float(pad_x), float(pad_y), int(w), int(h))


def boxes_to_frame(xyxy_input: np.ndarray, box: Letterbox) -> np.ndarray:
    """Map (n, 4) xyxy boxes from network-input pixels back to frame pixels, clipped to the frame."""
    xyxy = np.asarray(xyxy_input, np.float32).reshape(-1, 4).copy()
    xyxy[:, [0, 2]] = (xyxy[:, [0, 2]] - box.pad_x) / box.scale
    xyxy[:, [1, 3]] = (xyxy[:, [1, 3]] - box.pad_y) / box.scale
    xyxy[:, [0, 2]] = np.clip(xyxy[:, [0, 2]], 0, box.frame_w)
    xyxy[:, [1, 3]] = np.clip(xyxy[:, [1, 3]], 0, box.frame_h)
    return xyxy


def nms(xyxy: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression.

    Args:
        xyxy: (n, 4) boxes.
        scores: (n,) scores.
        iou_threshold: a box overlapping a better one by more than this is dropped.

    Returns:
        (k,) int64 indices of the kept boxes, best score first; empty when n == 0.
    """
    xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, np.float32).reshape(-1), kind="stable")
    if len(order) == 0:
        return np.zeros((0,), np.int64)
    areas = np.clip(xyxy[:, 2] - xyxy[:, 0], 0, None) * np.clip(xyxy[:, 3] - xyxy[:, 1], 0, None)
    keep = []
    while len(order):
        i = order[0]
        keep.append(i)
        rest = order[1:]
        tl = np.maximum(xyxy[i, :2], xyxy[rest, :2])
        br = np.minimum(xyxy[i, 2:], xyxy[rest, 2:])
        inter = np.prod(np.clip(br - tl, 0, None), axis=1)
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, np.int64)


def yolox_grid(size_hw: Tuple[int, int], strides: Sequence[int] = YOLOX_STRIDES) -> Tuple[np.ndarray, np.ndarray]:
    """Cell origins and strides of the YOLOX head, in output row order (cached per size).

    Returns:
        (N, 2) float32 (x, y) cell indices and (N, 1) float32 strides, N = sum (H/s)(W/s).
        Read-only arrays shared between calls.
    """
    return _yolox_grid(int(size_hw[0]), int(size_hw[1]), tuple(int(s) for s in strides))


@lru_cache(maxsize=8)
def _yolox_grid(in_h: int, in_w: int, strides: Tuple[int, ...]) -> Tuple[np.ndarray, np.ndarray]:
    grids, steps = [], []
    for s in strides:
        gh, gw = in_h // s, in_w // s
        ys, xs = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
        grids.append(np.stack([xs, ys], axis=-1).reshape(-1, 2))
        steps.append(np.full((gh * gw, 1), s))
    grid, step = np.concatenate(grids).astype(np.float32), np.concatenate(steps).astype(np.float32)
    grid.flags.writeable = False
    step.flags.writeable = False
    return grid, step


def _finish(xyxy: np.ndarray, scores: np.ndarray, conf: float, iou: float) -> Tuple[np.ndarray, np.ndarray]:
    keep = scores >= conf
    xyxy, scores = xyxy[keep], scores[keep]
    if len(scores) > 1000:  # a pathological frame: bound NMS cost
        top = np.argsort(-scores)[:1000]
        xyxy, scores = xyxy[top], scores[top]
    idx = nms(xyxy, scores, iou)
    return xyxy[idx].astype(np.float32), scores[idx].astype(np.float32)


def decode_yolox(
    output: np.ndarray, size_hw: Tuple[int, int], conf: float, iou: float, cls: int = PERSON_CLASS
) -> Tuple[np.ndarray, np.ndarray]:
    """Decode a raw YOLOX output to person boxes in network-input pixels.

    Args:
        output: (1, N, 5+C) or (N, 5+C) raw head output.
        size_hw: network input (height, width) the grid was built for.
        conf: minimum objectness × class score.
        iou: NMS IoU threshold.
        cls: class id to keep.

    Returns:
        (k, 4) float32 xyxy and (k,) float32 scores, after NMS.
    """
    rows = np.asarray(output, np.float32).reshape(-1, output.shape[-1])
    grid, stride = yolox_grid(size_hw)
    if len(grid) != len(rows):
        raise InputError(
            f"YOLOX output has {len(rows)} rows but a {size_hw[0]}x{size_hw[1]} input has {len(grid)} "
            "grid cells (strides 8/16/32). How to fix: check --det-size against the model's input."
        )
    scores = rows[:, 4] * rows[:, 5 + cls]
    cand = scores >= conf
    rows, grid, stride, scores = rows[cand], grid[cand], stride[cand], scores[cand]
    centre = (rows[:, :2] + grid) * stride
    wh = np.exp(np.clip(rows[:, 2:4], -20.0, 20.0)) * stride
    xyxy = np.concatenate([centre - wh / 2, centre + wh / 2], axis=1)
    return _finish(xyxy, scores, conf, iou)


def decode_yolov8(
    output: np.ndarray, conf: float, iou: float, cls: int = PERSON_CLASS
) -> Tuple[np.ndarray, np.ndarray]:
    """Decode an Ultralytics YOLOv8/YOLO11 output (1, 4+C, N) to person boxes in input pixels.

    Returns:
        (k, 4) float32 xyxy and (k,) float32 scores, after NMS.
    """
    out = np.asarray(output, np.float32)
    out = out.reshape(out.shape[-2], out.shape[-1])
    scores = out[4 + cls]
    cand = scores >= conf
    cx, cy, w, h = out[:4, cand]
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    return _finish(xyxy, scores[cand], conf, iou)


def decode_end2end(
    output: np.ndarray, conf: float, iou: float | None = None, cls: int = PERSON_CLASS
) -> Tuple[np.ndarray, np.ndarray]:
    """Decode an NMS-free output (1, K, 6) = (x1, y1, x2, y2, score, class) in input pixels.

    Args:
        iou: None (the model already suppressed duplicates) or a threshold to run NMS anyway.

    Returns:
        (k, 4) float32 xyxy and (k,) float32 scores, best first.
    """
    rows = np.asarray(output, np.float32).reshape(-1, 6)
    rows = rows[(np.rint(rows[:, 5]) == cls) & (rows[:, 4] >= conf)]
    rows = rows[np.argsort(-rows[:, 4], kind="stable")]
    if iou is not None:
        rows = rows[nms(rows[:, :4], rows[:, 4], iou)]
    return rows[:, :4].copy(), rows[:, 4].copy()


def choose_decoder(output_shape: Sequence[int], size_hw: Tuple[int, int]) -> str:
    """Name of the decoder for one output shape (one of :data:`DECODERS`).

    YOLOX rows equal the grid cells of strides 8/16/32 for the input size; YOLOv8 has the same
    count in the last axis; an NMS-free head has rows of 6. Checking the cell count first keeps
    a one-class YOLOX ([1, N, 6]) apart from an NMS-free head ([1, 300, 6]).

    Raises:
        InputError: the shape fits none of them.
    """
    shape = tuple(int(d) for d in output_shape)
    cells = len(yolox_grid(size_hw)[0])
    if len(shape) == 3 and shape[0] == 1:
        _, a, b = shape
        if a == cells and b >= 6:
            return "yolox"
        if b == cells and a >= 5:
            return "yolov8"
        if b == 6 and a < cells:
            return "end2end"
    raise InputError(
        f"Cannot tell the detector's output layout from its shape {list(shape)} (input "
        f"{size_hw[0]}x{size_hw[1]}). Expected YOLOX [1,{cells},5+C], YOLOv8/11 [1,4+C,{cells}] or "
        "NMS-free YOLO26 [1,K,6]. How to fix: export the detector in one of these layouts."
    )


def decode(
    name: str, output: np.ndarray, size_hw: Tuple[int, int], conf: float, iou: float
) -> Tuple[np.ndarray, np.ndarray]:
    """Dispatch to the decoder ``name``; boxes in network-input pixels."""
    if name == "yolox":
        return decode_yolox(output, size_hw, conf, iou)
    if name == "yolov8":
        return decode_yolov8(output, conf, iou)
    if name == "end2end":
        return decode_end2end(output, conf)
    raise ValueError(f"unknown decoder {name!r}; valid: {', '.join(DECODERS)}")
