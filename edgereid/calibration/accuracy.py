"""FP32 vs simulated INT8 accuracy on held-out crops, so users know the INT8 cost before the device.

Both sides run through the embedder runner API with the bundle's post-processing (flip
averaging, L2), i.e. exactly what the car computes. With identity labels the report adds the
Market-1501 protocol rank-1 / mAP (query = the lowest camera id, gallery = the other cameras).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from edgereid.evaluation.metrics import labelled_evaluation, paired_bootstrap_ci, retrieval_summary, rowwise_cosine
from edgereid.runtime.embedder import EmbedderRunner


def accuracy_report(
    fp32: EmbedderRunner,
    int8: EmbedderRunner,
    crops_bgr: Sequence[np.ndarray],
    labels: Sequence[tuple[int, int]] | None = None,
    note: str = "",
    batch: int = 16,
    fp32_embeddings: np.ndarray | None = None,
) -> dict[str, Any]:
    """Compare two embedders on the same crops.

    Args:
        fp32_embeddings: ``embed_all(fp32, crops_bgr)`` when already computed (search loops).

    Returns:
        ``{"crops", "cosine": {"min", "mean", "p05", "per_crop"}, "fp32": metrics | None,
        "int8": metrics | None, "delta_rank1_points", "delta_rank1_ci95_points" (95 % paired
        bootstrap interval over the queries), "delta_mAP_points", "note"}``.
    """
    a = embed_all(fp32, crops_bgr, batch) if fp32_embeddings is None else fp32_embeddings
    b = embed_all(int8, crops_bgr, batch)
    cos = rowwise_cosine(a, b)
    report: dict[str, Any] = {
        "crops": len(crops_bgr),
        "cosine": {
            "min": float(cos.min()) if len(cos) else None,
            "mean": float(cos.mean()) if len(cos) else None,
            "p05": float(np.percentile(cos, 5)) if len(cos) else None,
            "per_crop": [round(float(c), 6) for c in cos],
        },
        "fp32": None,
        "int8": None,
        "note": note,
    }
    if labels is not None and len(labels) == len(crops_bgr) and len(crops_bgr):
        e32, e8 = labelled_evaluation(a, labels), labelled_evaluation(b, labels)
        m32, m8 = retrieval_summary(e32), retrieval_summary(e8)
        report["fp32"], report["int8"] = m32, m8
        if m32 and m8:
            report["delta_rank1_points"] = 100.0 * (m8["rank1"] - m32["rank1"])
            report["delta_mAP_points"] = 100.0 * (m8["mAP"] - m32["mAP"])
            # a few hundred queries move rank-1 by whole queries: the delta's 95 % paired interval,
            # resampling identities (a person's views succeed or fail together)
            lo, hi = paired_bootstrap_ci(e8["rank1_hits"], e32["rank1_hits"], groups=e32["query_ids"])
            report["delta_rank1_ci95_points"] = [round(100.0 * lo, 2), round(100.0 * hi, 2)]
    return report


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The manifest's short form of an accuracy report (no per-crop lists, nested reports too)."""
    out = {k: (summary(v) if isinstance(v, dict) and "cosine" in v else v)
           for k, v in report.items() if k != "cosine"}
    out["cosine"] = {k: v for k, v in report["cosine"].items() if k != "per_crop"}
    return out


def embed_all(runner: EmbedderRunner, crops: Sequence[np.ndarray], batch: int = 16) -> np.ndarray:
    """(N, D) embeddings of all crops, in batches of ``batch``."""
    with runner:
        parts = [runner.embed(crops[i : i + batch]) for i in range(0, len(crops), batch)]
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)
