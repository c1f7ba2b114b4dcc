"""Person detector: ``load_detector(path) -> Detector`` with ``detect(frame_bgr) -> Detections``.

The kind is read from the file: ``.onnx`` (onnxruntime), ``.engine``/``.plan`` (our TensorRT
runner, same decoders), ``.bin`` (Horizon X3 BPU), ``.pt`` (Ultralytics, optional extra),
``.cfg``/``.weights`` (darknet through OpenCV 4.x). With no file, OpenCV's HOG people detector
(OpenCV 4.x only). The YOLO decoder is picked from the output shape of one warm-up inference
(:func:`edgereid.runtime.yolo_decode.choose_decoder`), so a wrong model fails at start-up, not
on the first frame of a run. Boxes come back in frame pixels, person class only (class id 0).
"""

from __future__ import annotations

import importlib
import logging
import os
from typing import Any, Callable, Dict, List, Tuple

import numpy as np

from edgereid.detections import Detections
from edgereid.errors import BackendError, InputError, MissingDependencyError
from edgereid.lazy import require
from edgereid.runtime import yolo_decode
from edgereid.runtime.detector_base import Detector, check_frame, to_detections  # noqa: F401 - re-exported

log = logging.getLogger(__name__)

ACCEPTED_KINDS = ".onnx (onnxruntime), .engine/.plan (TensorRT), .bin (X3 BPU), .pt (Ultralytics), " \
    ".cfg/.weights (darknet, OpenCV 4.x); none = OpenCV HOG"
DEFAULT_SIZE = 640  # only for models whose input size is dynamic


def _import_backend(module: str, attr: str, purpose: str) -> Any:
    """A device backend class, imported only when asked for (TensorRT / hobot_dnn live on the car)."""
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise MissingDependencyError(f"{module}.{attr} is needed for {purpose} but cannot be imported here "
                                     f"({exc}). It runs on the device (Jetson / X3) only.") from exc


# -- runners: one input in, named outputs out --------------------------------------------------
class OrtDetectorRunner:
    """onnxruntime session with the input metadata read from the model.

    Args:
        path: the .onnx file.
        threads: intra-op threads (None = onnxruntime's default, one per core); on the car,
            fewer threads leave cores for the embedder.

    Attributes:
        input_name: the one image input.
        input_shape: its shape, None for dynamic axes.
        input_dtype: numpy dtype the model wants (float32, float16 or uint8).
    """

    def __init__(self, path: str, threads: int | None = None) -> None:
        ort = require("onnxruntime", "an ONNX detector")
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                     if p in ort.get_available_providers()]
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        try:
            self.session = ort.InferenceSession(path, sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise InputError(f"Cannot load the ONNX detector {path}: {exc}. Expected a valid ONNX "
                             f"YOLO model. Accepted kinds: {ACCEPTED_KINDS}.") from exc
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise InputError(f"The detector {path} has {len(inputs)} inputs; expected one image input.")
        self.input_name = inputs[0].name
        self.input_shape = [d if isinstance(d, int) and d > 0 else None for d in inputs[0].shape]
        self.input_dtype = _ORT_DTYPES.get(inputs[0].type)
        if self.input_dtype is None:
            raise InputError(f"The detector input {self.input_name} is {inputs[0].type}; expected "
                             f"one of {sorted(_ORT_DTYPES)}.")
        self.output_names = [o.name for o in self.session.get_outputs()]

    def infer(self, feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        return dict(zip(self.output_names, self.session.run(self.output_names, feed)))

    def close(self) -> None:
        self.session = None


_ORT_DTYPES = {"tensor(float)": np.dtype(np.float32), "tensor(float16)": np.dtype(np.float16),
               "tensor(uint8)": np.dtype(np.uint8)}


class TrtDetectorRunner:
    """Adapter over :class:`edgereid.jetson.runner.TrtRunner` (TensorRT, written for the car)."""

    def __init__(self, path: str) -> None:
        TrtRunner = _import_backend("edgereid.jetson.runner", "TrtRunner", "a TensorRT .engine detector")
        self.runner = TrtRunner(path)
        self.runner.activate()
        self.input_name, self.input_shape, self.input_dtype = _trt_input(self.runner, path)

    def infer(self, feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        return self.runner.infer(feed)

    def close(self) -> None:
        self.runner.deactivate()


def _trt_input(runner: object, path: str) -> Tuple[str, List[int | None], np.dtype]:
    """(name, shape with None for dynamic axes, dtype) of the engine's one input.

    Reads Polygraphy-style ``get_input_metadata()`` ({name: (dtype, shape)}) when the runner has
    it, else the binding table that ``edgereid.jetson.runner.TrtRunner`` fills on activate.
    """
    if hasattr(runner, "get_input_metadata"):
        meta = dict(runner.get_input_metadata())
    else:
        meta = {b["name"]: (b["dtype"], b["shape"]) for b in getattr(runner, "_bindings", []) if b.get("input")}
    if not meta:
        raise BackendError(f"The TensorRT runner for {path} reports no inputs; cannot size the detector input.")
    if len(meta) != 1:
        raise InputError(f"The detector engine {path} has {len(meta)} inputs; expected one image input.")
    name, value = next(iter(meta.items()))
    dtype, shape = (value.dtype, value.shape) if hasattr(value, "shape") else value
    return name, [int(d) if int(d) > 0 else None for d in shape], np.dtype(dtype)


# -- YOLO over a runner ------------------------------------------------------------------------
class YoloDetector(Detector):
    """Letterbox -> runner -> decoder chosen from the output shape -> frame-pixel boxes.

    YOLOX wants BGR 0..255 padded at the right/bottom (its ``preproc``); Ultralytics models want
    RGB 0..1 padded on both sides. The family follows from the decoder.

    Args:
        runner: has ``input_name``, ``input_shape``, ``input_dtype``, ``infer``, ``close``.
        conf: minimum person score.
        iou: NMS IoU threshold (unused by NMS-free heads).
        size: input side for models with a dynamic input; must match a fixed input.
        name: for logs and reports.
    """

    def __init__(self, runner: object, conf: float, iou: float, size: int | None, name: str) -> None:
        self.runner, self.conf, self.iou, self.name = runner, float(conf), float(iou), name
        self.layout, self.size_hw = _input_geometry(runner.input_shape, size, name)
        probe = np.full((self.size_hw[0], self.size_hw[1], 3), 114, np.uint8)
        outputs = self.runner.infer({runner.input_name: self._to_input(probe, rgb=False, scale=False)})
        self.output_name, self.decoder = _pick_output(outputs, self.size_hw, name)
        self.rgb = self.scale01 = self.decoder != "yolox"
        log.info("detector %s: %s decoder, input %s %s %s", name, self.decoder, self.layout,
                 self.size_hw, np.dtype(runner.input_dtype).name)

    def preprocess(self, frame_bgr: np.ndarray) -> Tuple[np.ndarray, yolo_decode.Letterbox]:
        """Frame -> (model input tensor, letterbox params to invert the boxes)."""
        image, box = yolo_decode.letterbox(frame_bgr, self.size_hw, center=self.decoder != "yolox")
        return self._to_input(image, self.rgb, self.scale01), box

    def _to_input(self, image: np.ndarray, rgb: bool, scale: bool) -> np.ndarray:
        if rgb:
            image = image[:, :, ::-1]
        dtype = np.dtype(self.runner.input_dtype)
        if dtype == np.uint8:
            tensor = np.ascontiguousarray(image)
        else:
            tensor = image.astype(np.float32) * (1.0 / 255.0) if scale else image.astype(np.float32)
            tensor = tensor.astype(dtype, copy=False)
        if self.layout == "NCHW":
            tensor = tensor.transpose(2, 0, 1)
        return np.ascontiguousarray(tensor[None])

    def detect_impl(self, frame_bgr: np.ndarray) -> Detections:
        tensor, box = self.preprocess(frame_bgr)
        output = self.runner.infer({self.runner.input_name: tensor})[self.output_name]
        xyxy, scores = yolo_decode.decode(self.decoder, output, self.size_hw, self.conf, self.iou)
        return to_detections(yolo_decode.boxes_to_frame(xyxy, box), scores)

    def close(self) -> None:
        self.runner.close()


def _input_geometry(shape: List[int | None], size: int | None, name: str) -> Tuple[str, Tuple[int, int]]:
    """Layout (NCHW/NHWC) and (H, W) from the model's input shape and ``--det-size``."""
    if len(shape) != 4 or (shape[1] != 3 and shape[3] != 3):
        raise InputError(f"The detector {name} has input shape {shape}; expected an image [1,3,H,W] "
                         "or [1,H,W,3].")
    layout = "NCHW" if shape[1] == 3 else "NHWC"
    hw = shape[2:4] if layout == "NCHW" else shape[1:3]
    if hw[0] is not None and hw[1] is not None:
        if size is not None and (int(size), int(size)) != (hw[0], hw[1]):
            raise InputError(f"--det-size {size} does not fit the detector {name}, whose input is fixed "
                             f"at {hw[0]}x{hw[1]}. How to fix: drop --det-size or re-export at {size}.")
        return layout, (int(hw[0]), int(hw[1]))
    side = int(size) if size is not None else DEFAULT_SIZE
    if side % 32:
        raise InputError(f"--det-size must be a multiple of 32 (YOLO strides), received {side}.")
    return layout, (side, side)


def _pick_output(outputs: Dict[str, np.ndarray], size_hw: Tuple[int, int], name: str) -> Tuple[str, str]:
    """(output name, decoder) of the first output whose shape a decoder understands."""
    errors = []
    for out_name, value in outputs.items():
        try:
            return out_name, yolo_decode.choose_decoder(np.shape(value), size_hw)
        except InputError as exc:
            errors.append(str(exc))
    raise InputError(f"The detector {name} has no output a YOLO decoder understands: " + " | ".join(errors))


# -- other kinds -------------------------------------------------------------------------------
class UltralyticsDetector(Detector):
    """A ``.pt`` model through Ultralytics (optional extra; needs torch; AGPL-3.0).

    Ultralytics unpickles ``.pt`` files in full: load only files you trust, or export to ONNX.
    """

    def __init__(self, path: str, conf: float, iou: float, size: int | None) -> None:
        ultralytics = require("ultralytics", "a .pt detector")
        self.model = ultralytics.YOLO(path)
        self.conf, self.iou, self.size = float(conf), float(iou), int(size or DEFAULT_SIZE)
        self.name = f"ultralytics:{os.path.basename(path)}"

    def detect_impl(self, frame_bgr: np.ndarray) -> Detections:
        result = self.model.predict(frame_bgr, conf=self.conf, iou=self.iou, imgsz=self.size,
                                    classes=[yolo_decode.PERSON_CLASS], verbose=False)[0]
        boxes = result.boxes
        return to_detections(boxes.xyxy.cpu().numpy(), boxes.conf.cpu().numpy())


def _load_bpu(path: str, conf: float, iou: float, size: int | None) -> Detector:
    BpuYoloDetector = _import_backend("edgereid.x3.detector", "BpuYoloDetector", "an X3 BPU .bin detector")
    detector = BpuYoloDetector(path, conf=conf, iou=iou)
    if not getattr(detector, "name", None):
        detector.name = f"bpu:{os.path.basename(path)}"
    return detector


def _load_onnx(path: str, conf: float, iou: float, size: int | None) -> Detector:
    return YoloDetector(OrtDetectorRunner(path), conf, iou, size, f"onnx:{os.path.basename(path)}")


def _load_engine(path: str, conf: float, iou: float, size: int | None) -> Detector:
    return YoloDetector(TrtDetectorRunner(path), conf, iou, size, f"tensorrt:{os.path.basename(path)}")


def _load_darknet(path: str, conf: float, iou: float, size: int | None) -> Detector:
    from edgereid.runtime.darknet import DarknetDetector

    return DarknetDetector(path, conf=conf, iou=iou, size=size)


def _load_pt(path: str, conf: float, iou: float, size: int | None) -> Detector:
    return UltralyticsDetector(path, conf, iou, size)


LOADERS: Dict[str, Callable[[str, float, float, int | None], Detector]] = {
    ".onnx": _load_onnx, ".engine": _load_engine, ".plan": _load_engine, ".bin": _load_bpu,
    ".pt": _load_pt, ".cfg": _load_darknet, ".weights": _load_darknet,
}


def load_detector(path: str | None, conf: float = 0.4, iou: float = 0.5, size: int | None = None,
                  threads: int | None = None) -> Detector:
    """Person detector for a model file, or OpenCV's HOG people detector when ``path`` is None.

    Args:
        path: model file (kind from its extension, see :data:`ACCEPTED_KINDS`) or None.
        conf: minimum person score in [0, 1] (``--det-conf``).
        iou: NMS IoU threshold in [0, 1] (``--det-iou``).
        size: network input side for models with a dynamic input (``--det-size``); None = the
            model's own size (640 when dynamic).
        threads: onnxruntime intra-op threads of an ``.onnx`` detector (None = one per core);
            pin it when the embedder shares the CPU, or the two fight for the cores.

    Raises:
        InputError: missing/unreadable file, unknown extension, bad option values.
        MissingDependencyError: the backend for this kind is not installed here.
    """
    for flag, value in (("--det-conf", conf), ("--det-iou", iou)):
        if not 0.0 <= float(value) <= 1.0:
            raise InputError(f"{flag} must be in [0, 1], received {value}.")
    if size is not None and int(size) <= 0:
        raise InputError(f"--det-size must be a positive number of pixels, received {size}.")
    if path is None:
        from edgereid.runtime.hog import HogDetector

        log.warning("no --detector given: falling back to OpenCV's HOG people detector "
                    "(slow and far less accurate than a YOLO model)")
        return HogDetector(conf=conf, iou=iou)
    path = str(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in LOADERS:
        raise InputError(f"Unknown detector file kind {ext or '(no extension)'!r} for {path}. "
                         f"Accepted kinds: {ACCEPTED_KINDS}.")
    if not os.path.isfile(path):
        raise InputError(f"Detector file not found: {path}. Accepted kinds: {ACCEPTED_KINDS}.")
    if ext == ".onnx" and threads:
        return YoloDetector(OrtDetectorRunner(path, threads=int(threads)), float(conf), float(iou),
                            None if size is None else int(size), f"onnx:{os.path.basename(path)}")
    return LOADERS[ext](path, float(conf), float(iou), None if size is None else int(size))
