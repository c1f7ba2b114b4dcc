"""Embedder backend names -> a runner for a bundle, and what each name means: one home for
reid-follow, reid-bench (timing, follow, check) and reid-eval.

The factories themselves are registered in :mod:`edgereid.runtime.embedder` (``load_embedder``);
this module adds what every caller needs around them: which options a backend takes (``threads``
reaches onnxruntime only) and at which precision a backend runs a bundle (the tolerance a
self-check applies). Car side: Python 3.8, numpy only at import.
"""

from __future__ import annotations

import logging
from typing import Any, Dict

from edgereid.errors import InputError
from edgereid.runtime.embedder import load_embedder, resolve_backend  # noqa: F401 - resolve_backend re-exported

log = logging.getLogger(__name__)

ORT_BACKENDS = ("ort", "ort-int8")
PRECISIONS = ("fp32", "fp16", "int8")


def backend_options(backend: str, threads: int | None) -> Dict[str, Any]:
    """Factory options for ``load_embedder``: ``threads`` reaches the onnxruntime backends only
    (TensorRT and the BPU have no intra-op thread setting), so it is dropped elsewhere with a note."""
    if threads is None:
        return {}
    if backend in ORT_BACKENDS:
        return {"threads": int(threads)}
    log.info("--threads applies to the onnxruntime backends only; ignored for %r", backend)
    return {}


def open_embedder(bundle: Any, backend: str = "auto", threads: int | None = None, **options: Any) -> Any:
    """``load_embedder(bundle, backend, threads=...)`` with the options that backend takes (not activated)."""
    return load_embedder(bundle, backend, **backend_options(backend, threads), **options)


def backend_precision(bundle: Any, backend: str) -> str:
    """The arithmetic a backend runs this bundle in: ``fp32``, ``fp16`` or ``int8``.

    ort / torch: model.onnx in FP32; ort-int8: a QDQ model; bpu: always INT8; trt: the engine's
    build mode (the built one, else the manifest's default): fp16 or an INT8 mode.
    """
    if backend in ("ort", "torch"):
        return "fp32"
    if backend in ("ort-int8", "bpu"):
        return "int8"
    if backend == "trt":
        from edgereid.jetson.plan import plans_for_bundle

        trt = bundle.manifest.extra.get("trt", {})
        mode = trt.get("built_mode") or trt.get("default_mode", "fp16")
        (plan,) = plans_for_bundle(bundle.manifest, [mode])
        return "int8" if plan.int8 else "fp16"
    raise InputError(f"unknown embedder backend {backend!r}; valid: ort, ort-int8, trt, bpu, torch.")
