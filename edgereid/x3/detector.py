"""Person detector on the X3's BPU: a YOLO ``.bin`` from Horizon's / D-Robotics' model zoo.

The zoo's X3 (bernoulli2) YOLO models take NV12 and return per-level NHWC tensors:
- YOLOv5 (``yolov5s_..._bernoulli2_nv12.bin``): 3 outputs (1, H/s, W/s, 3*(5+nc)) for strides
  8/16/32, raw logits (sigmoid on the host), anchors per level;
- YOLOv8-style (DFL head, dequantize nodes of the box branch removed): 6 NHWC outputs in the
  order [box s, box m, box l, cls s, cls m, cls l] - box (1, H/s, W/s, 4*16) int32 with its own
  per-channel ``scale_data`` (quantizeAxis 3), cls (1, H/s, W/s, nc) float32 logits
  (D-Robotics/rdk_model_zoo branch rdk_x3, demos/detect/YOLOv8/README.md "Input / Output Data"
  and YOLOv8_Detect.py postProcess). We match outputs by channel count and spatial size, not by
  position, so a model compiled with another output order decodes the same.
The decoders below are pure functions of those arrays (tested on constructed outputs); only
:class:`BpuYoloDetector` touches hobot_dnn. Nothing here has run on an X3 yet.
"""

from __future__ import annotations

import os
from typing import List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from edgereid.detections import Detections
from edgereid.errors import BackendError, InputError
from edgereid.lazy import require
from edgereid.runtime.detector_base import Detector, to_detections
from edgereid.runtime.yolo_decode import boxes_to_frame, letterbox, nms
from edgereid.x3.nv12 import bgr_to_nv12

STRIDES = (8, 16, 32)
YOLOV5_ANCHORS = ((10, 13, 16, 30, 33, 23), (30, 61, 62, 45, 59, 119), (116, 90, 156, 198, 373, 326))
DFL_BINS = 16
PERSON = 0


def dequantize(raw: np.ndarray, scale: Optional[np.ndarray]) -> np.ndarray:
    """Float values of a BPU output: int8/int32 * per-channel (last axis) or per-tensor scale."""
    x = np.asarray(raw)
    if scale is None or (np.issubdtype(x.dtype, np.floating) and np.size(scale) == 0):
        return x.astype(np.float32)
    s = np.asarray(scale, np.float32).reshape(-1)
    return x.astype(np.float32) * (s if s.size > 1 else s[0])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _grid(h: int, w: int) -> np.ndarray:
    """(h*w, 2) cell indices (x, y), row-major like an NHWC map."""
    ys, xs = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
    return np.stack([xs.reshape(-1), ys.reshape(-1)], 1)


def decode_yolov5(
    outputs: Sequence[np.ndarray],
    conf: float,
    scales: Optional[Sequence[Optional[np.ndarray]]] = None,
    anchors: Sequence[Sequence[float]] = YOLOV5_ANCHORS,
    strides: Sequence[int] = STRIDES,
) -> Tuple[np.ndarray, np.ndarray]:
    """Person boxes from YOLOv5 heads.

    Args:
        outputs: per level (1, h, w, 3 * (5 + nc)) logits, NHWC.
        conf: keep boxes whose sigmoid(obj) * sigmoid(person) >= conf.
        scales: per level dequantize scale or None (float outputs).

    Returns:
        (n, 4) xyxy in network-input pixels, (n,) scores (before NMS).
    """
    boxes, scores = [], []
    for level, raw in enumerate(outputs):
        x = dequantize(raw, None if scales is None else scales[level])
        _, h, w, ch = x.shape
        na = 3
        pred = x.reshape(h * w, na, ch // na)
        score = _sigmoid(pred[..., 4]) * _sigmoid(pred[..., 5 + PERSON])
        cell, anchor = np.nonzero(score >= conf)
        if len(cell) == 0:
            continue
        p = _sigmoid(pred[cell, anchor, :4])
        grid = _grid(h, w)[cell]
        anc = np.asarray(anchors[level], np.float32).reshape(na, 2)[anchor]
        xy = (p[:, :2] * 2.0 - 0.5 + grid) * strides[level]
        wh = (p[:, 2:4] * 2.0) ** 2 * anc
        boxes.append(np.concatenate([xy - wh / 2, xy + wh / 2], 1))
        scores.append(score[cell, anchor])
    return _stack(boxes, scores)


def decode_yolov8(
    class_maps: Sequence[np.ndarray],
    box_maps: Sequence[np.ndarray],
    box_scales: Sequence[Optional[np.ndarray]],
    conf: float,
    strides: Sequence[int] = STRIDES,
    bins: int = DFL_BINS,
) -> Tuple[np.ndarray, np.ndarray]:
    """Person boxes from a DFL head (YOLOv8/11 style, as the zoo's BPU samples decode it).

    Args:
        class_maps: per level (1, h, w, nc) class logits (float).
        box_maps: per level (1, h, w, 4 * bins) distance distributions, quantized.
        box_scales: per level (4 * bins,) dequantize scales (or None for float maps).
        conf: keep cells whose sigmoid(person logit) >= conf.

    Returns:
        (n, 4) xyxy in network-input pixels, (n,) scores (before NMS).
    """
    boxes, scores = [], []
    raw_threshold = -np.log(1.0 / conf - 1.0)  # compare logits, then sigmoid only the kept ones
    for level, (cls_map, box_map) in enumerate(zip(class_maps, box_maps)):
        _, h, w, nc = cls_map.shape
        logits = np.asarray(cls_map, np.float32).reshape(h * w, nc)[:, PERSON]
        keep = np.flatnonzero(logits >= raw_threshold)
        if len(keep) == 0:
            continue
        dist = dequantize(np.asarray(box_map).reshape(h * w, 4 * bins)[keep], box_scales[level])
        dist = dist.reshape(-1, 4, bins)
        prob = np.exp(dist - dist.max(axis=2, keepdims=True))
        prob /= prob.sum(axis=2, keepdims=True)
        ltrb = (prob * np.arange(bins, dtype=np.float32)).sum(axis=2)
        centre = _grid(h, w)[keep] + 0.5
        xyxy = np.concatenate([centre - ltrb[:, :2], centre + ltrb[:, 2:]], 1) * strides[level]
        boxes.append(xyxy)
        scores.append(_sigmoid(logits[keep]))
    return _stack(boxes, scores)


def _stack(boxes: List[np.ndarray], scores: List[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
    if not boxes:
        return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)
    return np.concatenate(boxes).astype(np.float32), np.concatenate(scores).astype(np.float32)


class DflLevels(NamedTuple):
    """The six DFL outputs sorted into levels (finest first): output indices and strides."""

    box: List[int]
    cls: List[int]
    strides: List[int]


def match_dfl_outputs(
    shapes: Sequence[Sequence[int]],
    integer: Sequence[bool],
    input_hw: Optional[Tuple[int, int]] = None,
    bins: int = DFL_BINS,
) -> DflLevels:
    """Which output is the box / class map of which stride, from shapes alone (NHWC).

    A box map has 4 * bins channels; the class map of the same level has the same H and W.
    When the class count is also 4 * bins, the quantized (integer) outputs are the box maps.
    Stride = input height / H when ``input_hw`` is known, else 8/16/32 from finest to coarsest.

    Raises:
        BackendError: the outputs do not form three (box, cls) pairs.
    """
    shapes = [tuple(int(d) for d in s) for s in shapes]

    def fail(why: str) -> BackendError:
        return BackendError(
            f"BPU YOLOv8 outputs {shapes} ({why}): expected three NHWC box maps (1, h, w, {4 * bins}) and "
            "three class maps (1, h, w, nc) of the same sizes (D-Robotics rdk_model_zoo X3 YOLOv8)."
        )

    if len(shapes) != 6 or any(len(s) != 4 for s in shapes):
        raise fail("not six 4-D tensors")
    box = [i for i, s in enumerate(shapes) if s[3] == 4 * bins]
    if len(box) == 6:
        box = [i for i in box if integer[i]]
    if len(box) != 3:
        raise fail(f"{len(box)} box maps")
    cls = [i for i in range(6) if i not in box]
    box.sort(key=lambda i: -shapes[i][1])
    by_hw = {shapes[i][1:3]: i for i in cls}
    if len(by_hw) != 3 or any(shapes[i][1:3] not in by_hw for i in box):
        raise fail("box and class maps do not pair by size")
    if len({shapes[i][3] for i in cls}) != 1:
        raise fail("class maps disagree on the class count")
    cls = [by_hw[shapes[i][1:3]] for i in box]
    if input_hw is not None and input_hw[0] > 0:
        strides = [int(round(input_hw[0] / shapes[i][1])) for i in box]
    else:
        strides = list(STRIDES)
    return DflLevels(box, cls, strides)


def decode_bpu_outputs(
    outputs: Sequence[np.ndarray],
    scales: Sequence[Optional[np.ndarray]],
    conf: float,
    iou: float,
    input_hw: Optional[Tuple[int, int]] = None,
) -> Tuple[np.ndarray, np.ndarray]:
    """Pick the decoder from the output count (3 = YOLOv5, 6 = DFL head), then NMS.

    Args:
        outputs: the BPU output buffers, in the .bin's order.
        scales: per output its ``scale_data`` (None when not quantized).
        input_hw: the network input (H, W), for the strides of a DFL head.

    Returns:
        (k, 4) xyxy in network-input pixels and (k,) scores, best first.
    """
    if len(outputs) == 3:
        xyxy, score = decode_yolov5(outputs, conf, scales)
    elif len(outputs) == 6:
        integer = [np.issubdtype(np.asarray(o).dtype, np.integer) for o in outputs]
        lv = match_dfl_outputs([np.shape(o) for o in outputs], integer, input_hw)
        xyxy, score = decode_yolov8([outputs[i] for i in lv.cls], [outputs[i] for i in lv.box],
                                    [scales[i] for i in lv.box], conf, lv.strides)
    else:
        shapes = [tuple(np.shape(o)) for o in outputs]
        raise BackendError(
            f"unrecognised BPU YOLO outputs {shapes}: expected 3 YOLOv5 heads or 6 DFL (cls, box) maps "
            "(D-Robotics rdk_model_zoo X3 models)."
        )
    keep = nms(xyxy, score, iou)
    return xyxy[keep], score[keep]


class BpuYoloDetector(Detector):
    """``detect(frame_bgr) -> Detections`` of people with a YOLO ``.bin`` on the X3 BPU (hobot_dnn).

    Args:
        model_path: the compiled ``.bin`` (NV12 input, e.g. the zoo's yolov5s bernoulli2 model).
        conf: score threshold; 0.4 trades a few missed far-away people for fewer ghost boxes.
        iou: NMS overlap threshold.
    """

    name = "bpu-yolo"

    def __init__(self, model_path: str, conf: float = 0.4, iou: float = 0.5) -> None:
        self.model_path = str(model_path)
        self.conf = float(conf)
        self.iou = float(iou)
        self.model = None
        self.input_hw: Tuple[int, int] = (0, 0)
        self.scales: List[Optional[np.ndarray]] = []
        # Load now, not on the first frame: a missing library or a bad .bin must stop reid-follow
        # at start-up with one message, not turn into a STOP on every frame.
        if not os.path.isfile(self.model_path):
            raise InputError(f"X3 detector model {self.model_path!r} does not exist (expected a compiled .bin).")
        self._activate()

    def _activate(self) -> None:
        dnn = require("hobot_dnn.pyeasy_dnn", "the X3 BPU person detector")
        self.model = dnn.load(self.model_path)[0]
        shape = list(self.model.inputs[0].properties.shape)
        self.input_hw = (int(shape[2]), int(shape[3])) if shape[1] in (1, 3) else (int(shape[1]), int(shape[2]))
        self.scales = []
        for out in self.model.outputs:
            scale = getattr(out.properties, "scale_data", None)
            self.scales.append(None if scale is None or np.size(scale) == 0 else np.asarray(scale, np.float32))

    def detect_impl(self, frame_bgr: np.ndarray) -> Detections:
        image, box = letterbox(frame_bgr, self.input_hw, center=True, pad_value=127)
        outputs = [np.asarray(t.buffer) for t in self.model.forward(bgr_to_nv12(image))]
        xyxy, scores = decode_bpu_outputs(outputs, self.scales, self.conf, self.iou, self.input_hw)
        return to_detections(boxes_to_frame(xyxy, box), scores)

    def close(self) -> None:
        self.model = None
