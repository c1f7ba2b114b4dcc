"""PreprocessSpec: how a crop becomes a model input. The single source of truth.

Written once into a bundle's manifest; export, calibration, evaluation and the runtime all read
it from there. Never hard-code a second copy of mean/std or the input size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from edgereid.errors import InputError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_INTERPOLATIONS = ("bilinear", "nearest", "area", "bicubic")


@dataclass(frozen=True)
class PreprocessSpec:
    """Input contract of an embedder.

    Attributes:
        height: model input height in pixels.
        width: model input width in pixels.
        color: channel order the model expects, ``"rgb"`` or ``"bgr"``.
        mean: per-channel mean in the model's channel order, on the 0..1 scale.
        std: per-channel std in the model's channel order, on the 0..1 scale.
        scale: multiply uint8 pixels by this before mean/std (1/255 for 0..1 models).
        interpolation: resize filter; ``"bilinear"`` matches torchvision's default.
        layout: ``"NCHW"`` (all models here) or ``"NHWC"``.
    """

    height: int
    width: int
    color: str = "rgb"
    mean: Sequence[float] = field(default=IMAGENET_MEAN)
    std: Sequence[float] = field(default=IMAGENET_STD)
    scale: float = 1.0 / 255.0
    interpolation: str = "bilinear"
    layout: str = "NCHW"

    def __post_init__(self) -> None:
        if self.height <= 0 or self.width <= 0:
            raise InputError(f"PreprocessSpec size must be positive, got {self.height}x{self.width}.")
        if self.color not in ("rgb", "bgr"):
            raise InputError(f"PreprocessSpec color must be 'rgb' or 'bgr', got {self.color!r}.")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise InputError(f"PreprocessSpec mean/std need 3 values, got {self.mean} / {self.std}.")
        if any(s <= 0 for s in self.std):
            raise InputError(f"PreprocessSpec std must be positive, got {self.std}.")
        if self.interpolation not in _INTERPOLATIONS:
            raise InputError(
                f"PreprocessSpec interpolation must be one of {_INTERPOLATIONS}, got {self.interpolation!r}."
            )
        if self.layout not in ("NCHW", "NHWC"):
            raise InputError(f"PreprocessSpec layout must be NCHW or NHWC, got {self.layout!r}.")
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) for NCHW, (H, W, C) for NHWC."""
        if self.layout == "NCHW":
            return (3, self.height, self.width)
        return (self.height, self.width, 3)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"] = list(self.mean)
        d["std"] = list(self.std)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessSpec:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        missing = [k for k in ("height", "width") if k not in known]
        if missing:
            raise InputError(f"PreprocessSpec is missing {missing}; received keys {sorted(data)}.")
        return cls(**known)

    def resize(self, crop_bgr: np.ndarray) -> np.ndarray:
        """Resize one uint8 BGR crop (H, W, 3) to (height, width, 3), still BGR uint8."""
        cv2 = _cv2()
        if crop_bgr is None or crop_bgr.ndim != 3 or crop_bgr.shape[0] == 0 or crop_bgr.shape[1] == 0:
            shape = None if crop_bgr is None else crop_bgr.shape
            raise InputError(f"expected a non-empty (H, W, 3) crop, received shape {shape}.")
        flags = {
            "bilinear": cv2.INTER_LINEAR,
            "nearest": cv2.INTER_NEAREST,
            "area": cv2.INTER_AREA,
            "bicubic": cv2.INTER_CUBIC,
        }[self.interpolation]
        return cv2.resize(crop_bgr, (self.width, self.height), interpolation=flags)

    def to_model_order(self, image_bgr: np.ndarray) -> np.ndarray:
        """Reorder channels of a (..., 3) BGR array into the model's colour order."""
        return image_bgr[..., ::-1] if self.color == "rgb" else image_bgr

    def normalize(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 in model colour order -> float32 in the model layout, normalised."""
        x = images.astype(np.float32) * np.float32(self.scale)
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        if self.layout == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x, dtype=np.float32)

    def __call__(self, crops_bgr: Sequence[np.ndarray]) -> np.ndarray:
        """Turn BGR uint8 crops of any size into one float32 batch the model takes.

        Args:
            crops_bgr: N arrays (h_i, w_i, 3), uint8, BGR (OpenCV's order).

        Returns:
            (N, 3, H, W) float32 for NCHW (or (N, H, W, 3) for NHWC).
        """
        if len(crops_bgr) == 0:
            return np.zeros((0, *self.input_shape), np.float32)
        resized = np.stack([self.to_model_order(self.resize(c)) for c in crops_bgr])
        return self.normalize(resized)

    def raw_uint8(self, crops_bgr: Sequence[np.ndarray]) -> np.ndarray:
        """Resized, colour-ordered, NOT normalised (N, 3, H, W) uint8 (X3 calibration data)."""
        if len(crops_bgr) == 0:
            return np.zeros((0, 3, self.height, self.width), np.uint8)
        resized = np.stack([self.to_model_order(self.resize(c)) for c in crops_bgr])
        return np.ascontiguousarray(resized.transpose(0, 3, 1, 2))


def _cv2():
    from edgereid.lazy import require

    return require("cv2", "resizing crops")
