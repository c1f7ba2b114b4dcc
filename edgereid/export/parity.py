"""Parity of the exported ONNX against its reference, measured on real person crops.

The reference is the PyTorch model (torch sources) or the user's original ONNX model (foreign
sources). Both sides run through the same runner API; the figures go into the manifest.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from edgereid.errors import InputError
from edgereid.runtime.embedder import EmbedderRunner


def check_finite(outputs: dict[str, np.ndarray]) -> None:
    """Refuse NaN/Inf in any parity output: such a model cannot be compared, calibrated or shipped.

    Args:
        outputs: label (e.g. ``"model.onnx"``) -> (N, D) raw outputs on the same N crops.

    Raises:
        InputError: naming which side and how many crops, and what usually causes it.
    """
    bad = {name: int((~np.isfinite(np.asarray(v).reshape(len(v), -1))).any(1).sum())
           for name, v in outputs.items() if len(v)}
    bad = {k: v for k, v in bad.items() if v}
    if bad:
        n = max(len(v) for v in outputs.values())
        where = ", ".join(f"{k} on {v} of {n} crops" for k, v in bad.items())
        raise InputError(
            f"the model outputs NaN or Inf ({where}); nothing was written. Usually a division by a "
            "zero variance or norm (e.g. MeanVarianceNormalization or LayerNorm without an epsilon) or "
            "an overflow; fix the model (add an epsilon) and export again."
        )


def compare_outputs(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    """Cosine min/mean per row and max abs error (also relative to the reference's max |value|).

    Args:
        reference, candidate: (N, D) raw embeddings.
    """
    a = np.asarray(reference, np.float64).reshape(len(reference), -1)
    b = np.asarray(candidate, np.float64).reshape(len(candidate), -1)
    num = (a * b).sum(1)
    den = np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)
    cos = num / den
    err = float(np.abs(a - b).max()) if a.size else 0.0
    scale = float(np.abs(a).max()) if a.size else 0.0
    return {
        "cosine_min": float(cos.min()) if len(cos) else 1.0,
        "cosine_mean": float(cos.mean()) if len(cos) else 1.0,
        "max_abs_error": err,
        "max_abs_error_rel": err / scale if scale > 0 else 0.0,
        "crops": len(a),
    }


def measure_parity(
    reference: EmbedderRunner,
    candidate: EmbedderRunner,
    crops_bgr: Sequence[np.ndarray],
    batch_check: bool = True,
) -> dict[str, Any]:
    """Raw-output parity of two runners on the same crops (preprocessed by the candidate's spec).

    With ``batch_check`` the candidate also runs the crops one by one, which catches a batch
    size baked into a reshape of a model whose batch axis is marked dynamic.

    Raises:
        InputError: NaN/Inf in either output (:func:`check_finite`).
    """
    batch = candidate.spec(crops_bgr)
    with reference, candidate:
        ref = reference.infer(batch)
        out = candidate.infer(batch)
        check_finite({reference.name: ref, candidate.name: out})
        result: dict[str, Any] = compare_outputs(ref, out)
        if batch_check and len(batch) > 1 and not candidate.max_batch:
            single = np.concatenate([candidate.infer(batch[i : i + 1]) for i in range(len(batch))])
            err = float(np.abs(single - out).max())
            result["batch_vs_single_max_abs"] = err
            scale = float(np.abs(out).max())
            result["batch_vs_single_rel"] = err / scale if scale > 0 else 0.0
    return result
