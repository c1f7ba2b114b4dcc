"""PyTorch embedder backend (development only: the car runs ONNX Runtime, TensorRT or the BPU).

Used as the reference side of the export parity check, through the same runner API as every
other backend (Polygraphy's Comparator habit), and by ``load_embedder(bundle, "torch")``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgereid.bundle import Bundle
from edgereid.errors import BackendError
from edgereid.lazy import require
from edgereid.preprocess import PreprocessSpec
from edgereid.runtime.embedder import EmbedderRunner


class TorchEmbedder(EmbedderRunner):
    """Runs an eval-mode ``torch.nn.Module`` on CPU.

    Args:
        model: the module (its forward returns the raw embedding, (N, D)).
        spec: preprocessing contract.
        threads: torch intra-op threads; None = torch's default.
    """

    def __init__(self, model: Any, spec: PreprocessSpec, threads: int | None = None, **kwargs: Any) -> None:
        super().__init__(spec, name=kwargs.pop("name", "torch"), **kwargs)
        self.model = model
        self.threads = threads

    def activate_impl(self) -> None:
        torch = require("torch", "the torch embedder")
        if self.threads:
            torch.set_num_threads(int(self.threads))
        self.model.eval()

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        torch = require("torch", "the torch embedder")
        with torch.no_grad():
            out = self.model(torch.from_numpy(np.ascontiguousarray(batch, np.float32)))
        if isinstance(out, (tuple, list)):
            out = out[0]
        return out.detach().cpu().numpy().astype(np.float32)


def embedder_from_bundle(bundle: Bundle, checkpoint: str | None = None, **options: Any) -> TorchEmbedder:
    """Rebuild the bundle's PyTorch model (same arch; checkpoint from the manifest or given).

    Raises:
        BackendError: the bundle came from a foreign ONNX model (there is no PyTorch model).
    """
    from edgereid.models import ARCHS, load_model

    m = bundle.manifest
    if m.arch not in ARCHS:
        raise BackendError(
            f"bundle {str(bundle.root)!r} was exported from {m.arch!r}, not a PyTorch architecture; "
            "use the 'ort' backend."
        )
    ckpt = checkpoint if checkpoint is not None else (m.source or {}).get("path")
    model = load_model(m.arch, ckpt, **({"folded": True} if m.arch.startswith("rga") else {}))
    return TorchEmbedder(
        model,
        bundle.preprocess,
        l2=bool(m.postprocess.get("l2_normalize", True)),
        flip_average=bool(m.postprocess.get("flip_average", False)),
        **options,
    )
