"""CMC (rank-k) and mAP under the Market-1501 protocol.

For each query, gallery items with the same identity AND the same camera are excluded (they are
the same person seen by the same camera: too easy), and queries without any valid match are
skipped. AP is the mean of precision at each correct hit (non-interpolated), which is what
scikit-learn's ``average_precision_score`` computes from version 0.19 on. The RGA repository
pins scikit-learn 0.18.1, whose AP *interpolated* the precision-recall curve; figures from that
code can therefore differ slightly from ours (and from every current ReID paper's).

Worked example (the project's reference text): correct matches at ranks 1, 3, 6, 9, 10 give
AP = (1 + 2/3 + 3/6 + 4/9 + 5/10) / 5 = 0.622; at ranks 2, 5, 7, AP = (1/2 + 2/5 + 3/7) / 3 = 0.443.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from edgereid.errors import InputError


def cosine_distmat(query: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """1 - cosine similarity.

    Args:
        query: (q, D) embeddings (need not be normalised).
        gallery: (g, D) embeddings.

    Returns:
        (q, g) float64 distances in [0, 2].
    """
    q = np.asarray(query, np.float64)
    g = np.asarray(gallery, np.float64)
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    g = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
    return 1.0 - q @ g.T


def average_precision(matches: np.ndarray) -> float:
    """Non-interpolated AP of one ranked 0/1 match vector: mean of precision at each hit."""
    matches = np.asarray(matches, dtype=bool)
    hits = np.flatnonzero(matches)
    if len(hits) == 0:
        return 0.0
    precision_at_hits = np.arange(1, len(hits) + 1) / (hits + 1)
    return float(precision_at_hits.mean())


def evaluate(
    distmat: np.ndarray,
    q_ids: np.ndarray,
    g_ids: np.ndarray,
    q_cams: np.ndarray,
    g_cams: np.ndarray,
    max_rank: int = 50,
) -> dict[str, Any]:
    """Market-1501 protocol rank-k and mAP.

    Args:
        distmat: (q, g) distances, smaller = more similar.
        q_ids, g_ids: (q,), (g,) identity labels.
        q_cams, g_cams: (q,), (g,) camera labels.
        max_rank: length of the returned CMC curve (clipped to the gallery size).

    Returns:
        ``{"mAP", "cmc" ((max_rank,) float array), "rank1", "rank5", "rank10",
        "num_valid_queries", "ap" ((num_valid,) per-query AP), "rank1_hits" ((num_valid,) bool),
        "query_ids" ((num_valid,) the scored queries' identities, for a per-identity bootstrap)}``;
        fractions in [0, 1].

    Raises:
        InputError: shapes disagree, or no query has a valid match in the gallery.
    """
    distmat = np.asarray(distmat, np.float64)
    q_ids, g_ids = np.asarray(q_ids).reshape(-1), np.asarray(g_ids).reshape(-1)
    q_cams, g_cams = np.asarray(q_cams).reshape(-1), np.asarray(g_cams).reshape(-1)
    if distmat.ndim != 2 or distmat.shape != (len(q_ids), len(g_ids)):
        raise InputError(
            f"distmat must be (num_query, num_gallery) = ({len(q_ids)}, {len(g_ids)}), received {distmat.shape}."
        )
    if len(q_cams) != len(q_ids) or len(g_cams) != len(g_ids):
        raise InputError("camera labels must have one entry per query / gallery item.")
    max_rank = max(1, min(max_rank, len(g_ids)))
    # Stable sort: ties keep gallery order, so results are reproducible.
    order = np.argsort(distmat, axis=1, kind="stable")
    cmc_sum = np.zeros(max_rank, np.float64)
    aps: list[float] = []
    hits: list[bool] = []
    scored: list[int] = []
    for i in range(len(q_ids)):
        ranked = order[i]
        keep = ~((g_ids[ranked] == q_ids[i]) & (g_cams[ranked] == q_cams[i]))
        matches = g_ids[ranked][keep] == q_ids[i]
        if not matches.any():
            continue  # no valid match for this query: skipped, as in the protocol
        first_hit = int(np.argmax(matches))
        if first_hit < max_rank:
            cmc_sum[first_hit:] += 1
        aps.append(average_precision(matches))
        hits.append(first_hit == 0)
        scored.append(i)
    if not aps:
        raise InputError(
            "no query has a valid match in the gallery (same id seen by another camera); "
            "check the query/gallery split and the camera labels."
        )
    n = len(aps)
    cmc = cmc_sum / n

    def rank(k: int) -> float:
        return float(cmc[min(k, max_rank) - 1])

    return {
        "mAP": float(np.mean(aps)),
        "cmc": cmc,
        "rank1": rank(1),
        "rank5": rank(5),
        "rank10": rank(10),
        "num_valid_queries": n,
        "ap": np.asarray(aps),
        "rank1_hits": np.asarray(hits, bool),
        "query_ids": q_ids[np.asarray(scored, np.int64)],
    }


def paired_bootstrap_ci(reference: np.ndarray, other: np.ndarray, resamples: int = 2000, level: float = 0.95,
                        seed: int = 0, groups: np.ndarray | None = None) -> tuple[float, float]:
    """Confidence interval of mean(reference - other) over the same queries, by paired bootstrap.

    Why: a backend's rank-1 on a few hundred queries moves by whole queries; the loss against FP32
    needs an error bar before it can say "within 1 point". Both arrays hold one value per query
    (rank-1 hit 0/1, or AP), in the same order. Deterministic (fixed seed).

    ``groups`` (one label per query, e.g. the query's identity): resample whole groups instead of
    single queries (cluster bootstrap). The 8 views of one PKU person, or both camera directions of
    one identity, succeed or fail together; treating them as independent draws makes the interval
    too narrow. Groups of one query each give exactly the plain paired bootstrap.
    """
    diff = np.asarray(reference, np.float64) - np.asarray(other, np.float64)
    if diff.ndim != 1 or diff.size == 0:
        raise InputError("paired_bootstrap_ci needs two equal-length 1-D arrays of per-query values.")
    rng = np.random.default_rng(seed)
    if groups is None:
        means = diff[rng.integers(0, diff.size, (resamples, diff.size))].mean(axis=1)
    else:
        labels = np.asarray(groups).reshape(-1)
        if labels.size != diff.size:
            raise InputError(f"groups needs one label per query: {labels.size} labels for {diff.size} queries.")
        _, index = np.unique(labels, return_inverse=True)
        sums, counts = np.bincount(index, weights=diff), np.bincount(index).astype(np.float64)
        draw = rng.integers(0, sums.size, (resamples, sums.size))
        means = sums[draw].sum(axis=1) / counts[draw].sum(axis=1)
    tail = 100 * (1 - level) / 2
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def rowwise_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N,) cosine similarity of matching rows of two (N, D) arrays (e.g. FP32 vs INT8 per crop)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    den = np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)
    return (a * b).sum(1) / den


def labelled_retrieval(embeddings: np.ndarray, labels: Sequence[tuple[int, int]]) -> dict[str, Any] | None:
    """Rank-k / mAP of labelled crops, each camera in turn the query against every other camera.

    Used for accuracy reports on calibration hold-out crops (export, X3 simulation, the
    ``--max-drop`` search). Every crop is a query once: with two cameras both directions, twice
    the queries of "camera 1 -> 2", so a rank-1 change moves in steps half as large (a hold-out of
    8 PKU identities: 128 queries, 0.8 points each, against 1.6 one way).

    Args:
        embeddings: (N, D) one row per crop.
        labels: N (pid, cam) pairs.

    Returns:
        ``{"rank1", "rank5", "mAP", "queries", "gallery"}`` (queries = queries with a valid match,
        gallery = crops searched, i.e. all of them), or None when fewer than two cameras are
        present or no query has a valid match.
    """
    return retrieval_summary(labelled_evaluation(embeddings, labels))


def retrieval_summary(res: dict[str, Any] | None) -> dict[str, Any] | None:
    """The JSON part of a :func:`labelled_evaluation` result (None stays None)."""
    if res is None:
        return None
    return {"rank1": res["rank1"], "rank5": res["rank5"], "mAP": res["mAP"],
            "queries": int(res["num_valid_queries"]), "gallery": int(res["gallery"])}


def labelled_evaluation(embeddings: np.ndarray, labels: Sequence[tuple[int, int]]) -> dict[str, Any] | None:
    """:func:`evaluate` (per-query arrays included) of :func:`labelled_retrieval`'s protocol, pooled
    over the query cameras, plus "gallery"."""
    ids = np.asarray([lab[0] for lab in labels])
    cams = np.asarray([lab[1] for lab in labels])
    if len(np.unique(cams)) < 2:
        return None
    parts = []
    for cam in np.unique(cams):
        q = cams == cam
        try:
            parts.append(evaluate(cosine_distmat(embeddings[q], embeddings[~q]), ids[q], ids[~q], cams[q], cams[~q]))
        except InputError:
            continue  # no query of this camera has a match elsewhere
    if not parts:
        return None
    return {**pool_results(parts), "gallery": int(len(ids))}


def pool_results(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One :func:`evaluate` result of several (query cameras, folds, directions): every query counted
    once, the CMC curve weighted by each part's queries, per-query arrays concatenated in order."""
    n = sum(p["num_valid_queries"] for p in parts)
    width = min(len(p["cmc"]) for p in parts)
    cmc = sum(p["cmc"][:width] * p["num_valid_queries"] for p in parts) / n
    pooled = {k: np.concatenate([p[k] for p in parts]) for k in ("ap", "rank1_hits", "query_ids")}
    return {
        "mAP": float(pooled["ap"].mean()), "cmc": cmc, "rank1": float(pooled["rank1_hits"].mean()),
        "rank5": float(cmc[min(5, width) - 1]), "rank10": float(cmc[min(10, width) - 1]),
        "num_valid_queries": n, **pooled,
    }
