"""The embedder's similarity scale, measured: genuine and impostor cosine distributions.

Every ReID model has its own scale: OSNet x0.25 puts strangers at 0.3-0.7 and the same person
at 0.7-1.0, a ResNet-class model may put strangers at 0.1-0.4. A threshold written for one model
is wrong for another. ``reid-export`` (labelled calibration crops) and ``reid-eval --similarity``
measure the scale on identities held out of calibration, through the bundle's own embedder and
post-processing, and store it in the manifest under ``similarity``; the target lock derives its
thresholds from it (``edgereid.runtime.thresholds``).

Pairs: every unordered pair of distinct crops; *genuine* = same identity, *impostor* = different
identities. Quantiles are numpy's linear ones.
"""

from __future__ import annotations

from typing import Any, Dict, Sequence

import numpy as np

from edgereid.errors import InputError

SCHEMA = "edgereid.similarity/1"
MIN_IDENTITIES = 4  # fewer gives impostor quantiles from a handful of people: not a scale
FAR = 1e-3  # false-accept rate of the stored operating point


def pair_similarities(embeddings: np.ndarray, labels: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(genuine, impostor) cosine similarities of all unordered pairs of rows.

    Args:
        embeddings: (n, D) float, L2-normalised rows (normalised here again to be safe).
        labels: (n,) identity per row.
    """
    emb = np.asarray(embeddings, np.float64)
    emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    lab = np.asarray(labels)
    if len(emb) != len(lab):
        raise InputError(f"{len(emb)} embeddings but {len(lab)} labels.")
    if len(emb) < 2:
        return np.zeros(0), np.zeros(0)
    sims = emb @ emb.T
    upper = np.triu_indices(len(emb), k=1)
    same = lab[upper[0]] == lab[upper[1]]
    values = sims[upper]
    return values[same], values[~same]


def similarity_stats(embeddings: np.ndarray, labels: Sequence[int], source: str = "") -> Dict[str, Any]:
    """The manifest's ``similarity`` block from labelled embeddings.

    Returns:
        ``{"schema", "source", "identities", "crops", "pairs": {genuine, impostor},
        "genuine": {p01, p05, p10, p50}, "impostor": {p50, p99, p999, max},
        "threshold_far_1e-3", "genuine_below_far_1e-3"}``: the similarity that only 1 impostor pair
        in 1000 exceeds, and the share of genuine pairs it would refuse.

    Raises:
        InputError: fewer than 4 identities or no genuine pair.
    """
    identities = len(set(int(v) for v in labels))
    if identities < MIN_IDENTITIES:
        raise InputError(f"measuring the similarity scale needs crops of >= {MIN_IDENTITIES} identities, "
                         f"received {identities}.")
    genuine, impostor = pair_similarities(embeddings, labels)
    if len(genuine) == 0:
        raise InputError("measuring the similarity scale needs >= 2 crops of some identity (no genuine pair).")
    if not (np.all(np.isfinite(genuine)) and np.all(np.isfinite(impostor))):
        raise InputError("the embedder gave non-finite similarities: the scale cannot be measured.")
    threshold = float(np.quantile(impostor, 1.0 - FAR))

    def q(values: np.ndarray, p: float) -> float:
        return round(float(np.quantile(values, p)), 4)

    return {
        "schema": SCHEMA,
        "source": source,
        "identities": identities,
        "crops": int(len(labels)),
        "pairs": {"genuine": int(len(genuine)), "impostor": int(len(impostor))},
        "genuine": {"p01": q(genuine, 0.01), "p05": q(genuine, 0.05), "p10": q(genuine, 0.10),
                    "p50": q(genuine, 0.50)},
        "impostor": {"p50": q(impostor, 0.50), "p99": q(impostor, 0.99), "p999": q(impostor, 0.999),
                     "max": round(float(impostor.max()), 4)},
        "threshold_far_1e-3": round(threshold, 4),
        "genuine_below_far_1e-3": round(float(np.mean(genuine < threshold)), 4),
    }


def measure_bundle_similarity(runner: Any, crops: Sequence[np.ndarray], labels: Sequence[int],
                              source: str = "", batch: int = 32) -> Dict[str, Any]:
    """:func:`similarity_stats` of ``crops`` embedded by ``runner`` (an active ``EmbedderRunner``:
    the bundle's preprocessing, flip-averaging and L2 included)."""
    feats = [np.asarray(runner.embed(list(crops[i:i + batch])), np.float32) for i in range(0, len(crops), batch)]
    return similarity_stats(np.concatenate(feats) if feats else np.zeros((0, 1)), labels, source)


def add_similarity_scale(bundle_dir: str, data: str, fmt: str = "auto", backend: str = "ort",
                         max_crops: int = 1024, seed: int = 0, split_options: Dict[str, Any] | None = None,
                         write: bool = True) -> Dict[str, Any]:
    """Measure the scale of an existing bundle on a labelled dataset and store it in its manifest
    (``reid-eval --similarity``). Use identities the model was not trained on.

    Args:
        bundle_dir: the bundle directory (its manifest gains ``similarity``, written atomically).
        data / fmt / split_options: a ReID dataset, as ``reid-eval --data``; query and gallery crops
            are pooled and at most ``max_crops`` are sampled (seeded).
        backend: the embedder backend whose scale is measured (the one the car will run).
        write: False measures only.
    """
    from edgereid.bundle import Bundle, write_manifest
    from edgereid.evaluation.datasets import read_split
    from edgereid.evaluation.reid_eval import embed_paths
    from edgereid.runtime.embedder import load_embedder

    bundle = Bundle.load(bundle_dir)
    split = read_split(data, fmt, **(split_options or {}))
    paths = list(split.query) + list(split.gallery)
    labels = np.concatenate([split.q_ids, split.g_ids]).astype(np.int64)
    if len(paths) > max_crops:
        pick = np.sort(np.random.default_rng(seed).choice(len(paths), max_crops, replace=False))
        paths, labels = [paths[i] for i in pick], labels[pick]
    runner = load_embedder(bundle, backend)
    with runner:
        feats = embed_paths(runner, paths)
    block = similarity_stats(feats, labels.tolist(), source=f"{data} ({backend}, {len(paths)} crops)")
    if write:
        manifest = bundle.manifest
        manifest.extra["similarity"] = block
        write_manifest(bundle.root, manifest)
    return block
