"""The bundle's ``golden`` role: a few crops, their FP32 embeddings, and what simulated INT8 expects.

Written by reid-export into every bundle (``golden.npz`` + ``manifest.extra["golden"]``), read by
``reid-bench check`` on the device. The crops are stored resized to the model's input size as BGR
uint8, the one form every backend starts from (ONNX Runtime and TensorRT normalise them with the
PreprocessSpec; the X3 .bin takes them as NV12 bytes). The reference embeddings come from
model.onnx through ONNX Runtime in FP32 with the bundle's post-processing (flip-average, L2).

Tolerance: the lowest per-crop cosine against FP32 a backend may give, by the precision it runs:
FP32 0.999 (another ONNX Runtime build or CPU differs by ~1e-6), FP16 0.995 (TensorRT FP16 on
ReID CNNs stays above 0.999; the margin covers fused kernels), INT8 the lowest cosine of the
bundle's own INT8 simulation minus 0.03 (a device quantizer is not ONNX Runtime's), or 0.95 when
the bundle has no simulation. Car side: numpy only.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from edgereid.errors import BundleError

ROLE = "golden"
FILE_NAME = "golden.npz"
CROPS = 8
TOLERANCE = {"fp32": 0.999, "fp16": 0.995}
INT8_MARGIN = 0.03
INT8_DEFAULT = 0.95


def rowwise_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N,) cosine of matching rows of (N, D) arrays (zero rows give 0)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    return (a * b).sum(1) / np.maximum(na * nb, 1e-12)


def pick_crops(crops: Sequence[np.ndarray], spec: Any, count: int = CROPS) -> List[np.ndarray]:
    """``count`` crops spread over ``crops``, resized to the model input (BGR uint8)."""
    if not crops:
        return []
    idx = np.unique(np.linspace(0, len(crops) - 1, min(count, len(crops))).round().astype(int))
    return [np.ascontiguousarray(spec.resize(crops[i])) for i in idx]


class _Identity:
    """A spec whose resize keeps the crop (to pick crops before resizing them)."""

    @staticmethod
    def resize(crop: np.ndarray) -> np.ndarray:
        return crop


def int8_tolerance(sim_cosine_min: Optional[float]) -> float:
    if sim_cosine_min is None:
        return INT8_DEFAULT
    return round(max(0.0, float(sim_cosine_min) - INT8_MARGIN), 4)


def compute_golden(
    root: Path,
    files: Dict[str, str],
    spec: Any,
    postprocess: Dict[str, Any],
    crops: Sequence[np.ndarray],
    inputs: str,
    x3_sim_cosine_min: Optional[float] = None,
) -> Tuple[Dict[str, str], Dict[str, Any]]:
    """Write ``golden.npz`` into bundle (or staging) directory ``root``.

    Args:
        files: the bundle's roles so far (``onnx``; ``onnx_int8_cpu`` / ``onnx_int8_qdq`` when present).
        crops: resized BGR crops (:func:`pick_crops`); inputs: what they are, for the manifest.
        x3_sim_cosine_min: the X3 simulation's lowest hold-out cosine (its INT8 model is not shipped).

    Returns:
        ({"golden": file name}, the manifest's ``golden`` entry).
    """
    from edgereid.bundle import atomic_write_bytes
    from edgereid.runtime.embedder import OnnxruntimeEmbedder

    if not crops:
        raise BundleError("the golden role needs at least one crop.")
    opts = {"l2": bool(postprocess.get("l2_normalize", True)),
            "flip_average": bool(postprocess.get("flip_average", False)), "providers": ["CPUExecutionProvider"]}

    def embed(role: str) -> np.ndarray:
        with OnnxruntimeEmbedder(str(root / files[role]), spec, **opts) as runner:
            return runner.embed(list(crops))

    arrays = {"crops": np.stack(crops).astype(np.uint8), "fp32": embed("onnx")}
    info: Dict[str, Any] = {"file": FILE_NAME, "crops": len(crops), "inputs": inputs,
                            "reference": "model.onnx, ONNX Runtime CPU, FP32"}
    sim_role = next((r for r in ("onnx_int8_cpu", "onnx_int8_qdq") if r in files), None)
    sim_min = None
    if sim_role is not None:
        arrays["int8_sim"] = embed(sim_role)
        cos = rowwise_cosine(arrays["int8_sim"], arrays["fp32"])
        sim_min = float(cos.min())
        info["int8_sim"] = {"role": sim_role, "cosine": [round(float(c), 6) for c in cos],
                            "cosine_min": round(sim_min, 6)}
    elif x3_sim_cosine_min is not None:
        sim_min = float(x3_sim_cosine_min)
        info["int8_sim"] = {"role": None, "cosine_min": round(sim_min, 6),
                            "note": "X3 simulation on the export hold-out crops (its INT8 model is not shipped)"}
    info["tolerance"] = {**TOLERANCE, "int8": int8_tolerance(sim_min)}
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(root / FILE_NAME, buf.getvalue())
    return {ROLE: FILE_NAME}, info


def export_golden(root: Path, files: Dict[str, str], spec: Any, postprocess: Dict[str, Any], crops: Any,
                  extra: Dict[str, Any]) -> Tuple[Dict[str, str], Dict[str, Any]]:
    """The golden role of a bundle being exported: the hold-out crops, topped up from the calibration
    crops; labelled noise images when the export had no --calib-data (the check still tests the engine)."""
    holdout = list(crops.holdout)[:CROPS] if crops is not None else []
    calib = list(crops.calib) if crops is not None else []
    real = holdout + (pick_crops(calib, _Identity(), CROPS - len(holdout)) if len(holdout) < CROPS else [])
    if real:
        picked, inputs = [np.ascontiguousarray(spec.resize(c)) for c in real], "person crops (export calibration data)"
    else:
        rng = np.random.default_rng(0)
        picked = [rng.integers(0, 256, (spec.height, spec.width, 3), dtype=np.uint8) for _ in range(CROPS)]
        inputs = "synthetic noise images (exported without --calib-data)"
    x3_min = (extra.get("x3") or {}).get("int8_sim_cosine_min")
    return compute_golden(root, files, spec, postprocess, picked, inputs, x3_min)


@dataclass
class Golden:
    crops: np.ndarray
    fp32: np.ndarray
    int8_sim: Optional[np.ndarray]
    info: Dict[str, Any]

    def tolerance(self, precision: str) -> float:
        tol = dict(self.info.get("tolerance", {}))
        if precision == "int8":
            return float(tol.get("int8", INT8_DEFAULT))
        return float(tol.get(precision, TOLERANCE.get(precision, TOLERANCE["fp32"])))


def read_golden(bundle: Any) -> Golden:
    """The golden crops and embeddings of a loaded bundle; a clear error for older bundles."""
    if not bundle.has(ROLE):
        raise BundleError(
            f"bundle {str(bundle.root)!r} has no 'golden' role (it predates reid-bench check). Re-export it, "
            "or add one with edgereid.check.add_golden(bundle, crops) on the host."
        )
    path = bundle.path(ROLE)
    try:
        with np.load(str(path), allow_pickle=False) as data:
            crops, fp32 = data["crops"], data["fp32"]
            sim = data["int8_sim"] if "int8_sim" in data.files else None
    except (OSError, ValueError, KeyError) as exc:
        raise BundleError(f"{path} is not a readable golden file ({exc}); copy the bundle again.") from exc
    if crops.ndim != 4 or len(crops) != len(fp32):
        raise BundleError(f"{path}: {len(crops)} crops but {len(fp32)} reference embeddings.")
    return Golden(crops, fp32, sim, dict(bundle.manifest.extra.get("golden", {})))


def add_golden(bundle: Any, crops: Sequence[np.ndarray], inputs: str = "person crops") -> Dict[str, Any]:
    """Give an existing bundle (an older export, a hand-made one) its golden role, on the host."""
    from edgereid.bundle import write_manifest

    m = bundle.manifest
    x3_min = (m.extra.get("x3") or {}).get("int8_sim_cosine_min")
    files, info = compute_golden(bundle.root, m.files, bundle.preprocess, m.postprocess,
                                 pick_crops(list(crops), bundle.preprocess), inputs, x3_min)
    m.files.update(files)
    m.extra["golden"] = info
    write_manifest(bundle.root, m)
    return info
