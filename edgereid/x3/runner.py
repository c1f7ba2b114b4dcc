"""Embedder backends for the X3's BPU: ``hobot_dnn.pyeasy_dnn`` and ``bpu_infer_lib``.

Both run a ``.bin`` compiled by hb_mapper from a bundle (role ``x3_bin``); both import their
library only when activated. ``hobot_dnn`` ships in the X3's Ubuntu 20.04 image (Python 3.8);
``bpu_infer_lib`` comes from the ``bpu_infer_lib_x3`` wheel for the Ubuntu 22.04 image
(Python 3.10). The .bin does the mean/scale itself (hb_mapper's ``data_mean_and_scale``), so the
board feeds raw bytes: NV12 made from the BGR crop (``input_type_rt: nv12``, the default) or
resized uint8 NHWC pixels (``rgb`` / ``bgr``). Everything the board decides is in
:func:`board_input`, tested on the host; the library calls are thin.
Nothing here has run on an X3 yet (see docs/export-x3.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from edgereid.bundle import Bundle
from edgereid.errors import BackendError, InputError
from edgereid.lazy import require
from edgereid.preprocess import PreprocessSpec
from edgereid.runtime.embedder import EmbedderRunner, l2_normalize
from edgereid.x3.config import X3_INPUT_TYPES
from edgereid.x3.nv12 import bgr_to_nv12


def board_input(crop_bgr: np.ndarray, spec: PreprocessSpec, input_type: str) -> np.ndarray:
    """The bytes the .bin takes for one BGR crop.

    Returns:
        nv12: (H * 3 // 2, W) uint8 NV12 of the crop resized to the model size;
        rgb / bgr: (1, H, W, 3) uint8 in that channel order (``input_layout_rt: NHWC``).
    """
    if input_type not in X3_INPUT_TYPES:
        raise InputError(f"X3 input type must be one of {list(X3_INPUT_TYPES)}, received {input_type!r}.")
    resized = spec.resize(crop_bgr)
    if input_type == "nv12":
        return bgr_to_nv12(resized)
    pixels = resized[..., ::-1] if input_type == "rgb" else resized
    return np.ascontiguousarray(pixels[None])


class _BpuEmbedder(EmbedderRunner):
    """Shared part: per-crop forward of raw board input, flip-average and L2 on the host."""

    library = ""

    def __init__(self, model_path: str, spec: PreprocessSpec, input_type: str = "nv12", **kwargs) -> None:
        super().__init__(spec, name=kwargs.pop("name", f"{self.library}:{model_path}"), **kwargs)
        if input_type not in X3_INPUT_TYPES:
            raise InputError(f"X3 input type must be one of {list(X3_INPUT_TYPES)}, received {input_type!r}.")
        self.model_path = str(model_path)
        self.input_type = input_type
        self.max_batch = 1

    def activate_impl(self) -> None:
        if not Path(self.model_path).is_file():
            raise BackendError(f"{self.name}: the BPU model {self.model_path!r} does not exist.")
        self._load()

    def forward_one(self, board_bytes: np.ndarray) -> np.ndarray:  # pragma: no cover - device only
        raise NotImplementedError

    def _load(self) -> None:  # pragma: no cover - device only
        raise NotImplementedError

    def embed(self, crops_bgr: Sequence[np.ndarray]) -> np.ndarray:
        """(N, D) float32 embeddings; the crops go to the BPU as NV12/RGB/BGR bytes, not floats."""
        if not self.is_active:
            raise BackendError(f"{self.name}: call activate() (or use `with`) before embed().")
        if len(crops_bgr) == 0:
            return np.zeros((0, 0), np.float32)
        rows = []
        for crop in crops_bgr:
            feat = self.forward_one(board_input(crop, self.spec, self.input_type)).reshape(-1)
            if self.flip_average:
                mirrored = np.ascontiguousarray(crop[:, ::-1])
                feat = (feat + self.forward_one(board_input(mirrored, self.spec, self.input_type)).reshape(-1)) / 2
            rows.append(feat.astype(np.float32))
        feats = np.stack(rows)
        if not np.all(np.isfinite(feats)):
            raise BackendError(f"{self.name}: the BPU produced non-finite embeddings (NaN/Inf).")
        return l2_normalize(feats) if self.l2 else feats

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        raise BackendError(
            f"{self.name}: the BPU model takes raw {self.input_type} bytes (mean/scale are compiled in); "
            "call embed(crops) instead of infer(float batch)."
        )


class PyeasyDnnEmbedder(_BpuEmbedder):
    """``hobot_dnn.pyeasy_dnn``: ``dnn.load(path)[0].forward(bytes)[i].buffer``."""

    library = "hobot_dnn"

    def _load(self) -> None:
        dnn = require("hobot_dnn.pyeasy_dnn", "the X3 BPU embedder")
        self.model = dnn.load(self.model_path)[0]
        shape = list(self.model.inputs[0].properties.shape)
        _check_input_shape(shape, self.spec, self.input_type, self.name)

    def forward_one(self, board_bytes: np.ndarray) -> np.ndarray:
        outputs = self.model.forward(board_bytes)
        raw = np.asarray(outputs[0].buffer)
        if np.issubdtype(raw.dtype, np.integer):  # output left quantized: scale_data per last axis (or tensor)
            scale = np.asarray(getattr(self.model.outputs[0].properties, "scale_data", []), np.float32).reshape(-1)
            if scale.size == 0:
                raise BackendError(f"{self.name}: the .bin's output is {raw.dtype} without scale_data; recompile "
                                   "it with its output dequantized (hb_mapper's default).")
            return raw.astype(np.float32) * (scale if scale.size > 1 else scale[0])
        return raw.astype(np.float32)

    def deactivate_impl(self) -> None:
        self.model = None


class BpuInferLibEmbedder(_BpuEmbedder):
    """``bpu_infer_lib``: ``Infer(False)``, ``load_model``, ``read_input``, ``forward``, ``get_output``."""

    library = "bpu_infer_lib"

    def _load(self) -> None:  # pragma: no cover - device only
        lib = require("bpu_infer_lib", "the X3 BPU embedder")
        self.infer_obj = lib.Infer(False)
        self.infer_obj.load_model(self.model_path)

    def forward_one(self, board_bytes: np.ndarray) -> np.ndarray:  # pragma: no cover - device only
        self.infer_obj.read_input(np.ascontiguousarray(board_bytes), 0)
        self.infer_obj.forward()
        self.infer_obj.get_output()
        return np.asarray(self.infer_obj.outputs[0].data, np.float32)

    def deactivate_impl(self) -> None:
        self.infer_obj = None


def _check_input_shape(shape: list, spec: PreprocessSpec, input_type: str, name: str) -> None:
    """The .bin's input must be the bundle's size (NCHW or NHWC as hb_mapper reports it)."""
    hw = (spec.height, spec.width)
    if len(shape) == 4 and hw not in ((shape[2], shape[3]), (shape[1], shape[2])):
        raise BackendError(f"{name}: the .bin input is {shape}, the bundle's PreprocessSpec says {hw}.")


BPU_LIBRARIES = {"hobot_dnn": PyeasyDnnEmbedder, "bpu_infer_lib": BpuInferLibEmbedder}


def embedder_from_bundle(bundle: Bundle, library: str = "auto", **options) -> EmbedderRunner:
    """The registry's ``bpu`` backend: the bundle's ``x3_bin`` through hobot_dnn or bpu_infer_lib.

    Args:
        bundle: an X3 bundle with the compiled ``.bin`` added under role ``x3_bin``.
        library: ``auto`` (hobot_dnn if it imports, else bpu_infer_lib), or one of them.
        options: ``input_type`` overrides the manifest's ``x3.input_type_rt``; others go to the runner.
    """
    from edgereid.lazy import available

    if library == "auto":
        library = "hobot_dnn" if available("hobot_dnn") else "bpu_infer_lib"
    if library not in BPU_LIBRARIES:
        raise InputError(f"unknown BPU library {library!r}; valid: {['auto', *BPU_LIBRARIES]}.")
    m = bundle.manifest
    x3 = m.extra.get("x3") or {}
    input_type = options.pop("input_type", None) or x3.get("input_type_rt", "nv12")
    return BPU_LIBRARIES[library](
        str(bundle.path("x3_bin")),
        bundle.preprocess,
        input_type=input_type,
        l2=bool(m.postprocess.get("l2_normalize", True)),
        flip_average=bool(m.postprocess.get("flip_average", False)),
        **options,
    )
