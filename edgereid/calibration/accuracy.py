"""FP32 vs simulated INT8 accuracy on held-out crops, so users know the INT8 cost before the device.

Both sides run through the embedder runner API with the bundle's post-processing (flip
averaging, L2), i.e. exactly what the car computes. With identity labels the report adds the
Market-1501 protocol rank-1 / mAP (query = the lowest camera id, gallery = the other cameras).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from edgereid.runtime.embedder import EmbedderRunner


def per_crop_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N,) cosine similarity of matching rows of (N, D) arrays."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    den = np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)
    return (a * b).sum(1) / den


def query_gallery_split(labels: Sequence[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray] | None:
    """Boolean masks (query, gallery): query = lowest camera id, gallery = all other cameras.

    None when fewer than two cameras are present (no cross-camera retrieval to score).
    """
    cams = np.asarray([lab[1] for lab in labels])
    if len(np.unique(cams)) < 2:
        return None
    query = cams == cams.min()
    return query, ~query


def retrieval_metrics(embeddings: np.ndarray, labels: Sequence[tuple[int, int]]) -> dict[str, float] | None:
    """rank-1 / rank-5 / mAP of embeddings under :func:`query_gallery_split`, or None."""
    from edgereid.evaluation.metrics import cosine_distmat, evaluate

    split = query_gallery_split(labels)
    if split is None:
        return None
    q, g = split
    ids = np.asarray([lab[0] for lab in labels])
    cams = np.asarray([lab[1] for lab in labels])
    res = evaluate(cosine_distmat(embeddings[q], embeddings[g]), ids[q], ids[g], cams[q], cams[g])
    return {"rank1": res["rank1"], "rank5": res["rank5"], "mAP": res["mAP"],
            "queries": int(res["num_valid_queries"]), "gallery": int(g.sum())}


def accuracy_report(
    fp32: EmbedderRunner,
    int8: EmbedderRunner,
    crops_bgr: Sequence[np.ndarray],
    labels: Sequence[tuple[int, int]] | None = None,
    note: str = "",
    batch: int = 16,
) -> dict[str, Any]:
    """Compare two embedders on the same crops.

    Returns:
        ``{"crops", "cosine": {"min", "mean", "p05", "per_crop"}, "fp32": metrics | None,
        "int8": metrics | None, "delta_rank1_points", "delta_mAP_points", "note"}``.
    """
    a = _embed_all(fp32, crops_bgr, batch)
    b = _embed_all(int8, crops_bgr, batch)
    cos = per_crop_cosine(a, b)
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
        m32, m8 = retrieval_metrics(a, labels), retrieval_metrics(b, labels)
        report["fp32"], report["int8"] = m32, m8
        if m32 and m8:
            report["delta_rank1_points"] = 100.0 * (m8["rank1"] - m32["rank1"])
            report["delta_mAP_points"] = 100.0 * (m8["mAP"] - m32["mAP"])
    return report


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The manifest's short form of an accuracy report (no per-crop list)."""
    out = {k: v for k, v in report.items() if k != "cosine"}
    out["cosine"] = {k: v for k, v in report["cosine"].items() if k != "per_crop"}
    return out


def _embed_all(runner: EmbedderRunner, crops: Sequence[np.ndarray], batch: int) -> np.ndarray:
    with runner:
        parts = [runner.embed(crops[i : i + batch]) for i in range(0, len(crops), batch)]
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)
