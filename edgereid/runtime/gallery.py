"""The followed person's gallery: at most M embeddings, kept diverse.

Similarity is a pluggable callable (norfair's ``reid_distance_function`` habit), resolved by
name through a registry whose error lists the valid names. All embeddings are L2-normalised
(N, D) float32, so cosine similarity is a dot product in [-1, 1].
"""

from __future__ import annotations

from typing import Callable, Dict, Union

import numpy as np

from edgereid.errors import InputError

# (queries (n, D), gallery (m, D)) -> (n,) similarity; higher = more alike.
SimilarityFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def max_cosine(queries: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """Best match over the gallery: robust to the view changing (back, side) while walking."""
    return (queries @ gallery.T).max(axis=1)


def mean_cosine(queries: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """Average over the gallery: stricter, penalises a stranger who matches one view only."""
    return (queries @ gallery.T).mean(axis=1)


def top2_cosine(queries: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """Mean of the two best matches: between the two above."""
    sims = np.sort(queries @ gallery.T, axis=1)[:, ::-1]
    return sims[:, : min(2, sims.shape[1])].mean(axis=1)


SIMILARITIES: Dict[str, SimilarityFn] = {
    "max_cosine": max_cosine,
    "mean_cosine": mean_cosine,
    "top2_cosine": top2_cosine,
}


def get_similarity_by_name(name: str) -> SimilarityFn:
    try:
        return SIMILARITIES[name]
    except KeyError:
        raise InputError(f"unknown gallery similarity {name!r}; valid names: {sorted(SIMILARITIES)}.") from None


class Gallery:
    """Bounded set of the target's embeddings.

    Args:
        max_size: M, the most embeddings kept (memory and compare cost are bounded by it).
            More = remembers more views, slower compare and slower to forget a wrong update.
        similarity: a name from :data:`SIMILARITIES` or a callable ``(q (n,D), g (m,D)) -> (n,)``.
    """

    def __init__(self, max_size: int = 16, similarity: Union[str, SimilarityFn] = "max_cosine") -> None:
        if max_size < 1:
            raise InputError(f"gallery max_size must be >= 1, received {max_size}.")
        self.max_size = int(max_size)
        self.similarity_fn = get_similarity_by_name(similarity) if isinstance(similarity, str) else similarity
        self._items = np.zeros((0, 0), np.float32)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def embeddings(self) -> np.ndarray:
        """(m, D) copy of the stored embeddings."""
        return self._items.copy()

    def clear(self) -> None:
        self._items = np.zeros((0, 0), np.float32)

    def add(self, embedding: np.ndarray) -> bool:
        """Add one (D,) embedding; when full, drop the most redundant entry.

        The most redundant entry is the one whose nearest neighbour (among the stored ones and the
        new one) is nearest; if that is the new embedding itself, nothing changes. So the gallery
        keeps spread-out views instead of the last M near-identical frames.

        Returns:
            True when the gallery changed. Non-finite or zero vectors are refused (False).
        """
        vec = np.asarray(embedding, np.float32).reshape(-1)
        norm = float(np.linalg.norm(vec)) if np.all(np.isfinite(vec)) else 0.0
        if norm <= 1e-6:
            return False
        vec = vec / norm
        if len(self._items) and self._items.shape[1] != len(vec):
            raise InputError(f"embedding has {len(vec)} dims, the gallery holds {self._items.shape[1]}-dim ones.")
        if len(self._items) < self.max_size:
            self._items = np.vstack([self._items.reshape(-1, len(vec)), vec[None]])
            return True
        pool = np.vstack([self._items, vec[None]])
        sims = pool @ pool.T
        np.fill_diagonal(sims, -np.inf)
        nearest = sims.max(axis=1)
        redundant = int(np.argmax(nearest[:-1]))
        if nearest[-1] >= nearest[redundant]:  # the new view adds least (ties keep the old one)
            return False
        self._items[redundant] = vec
        return True

    def similarity(self, embeddings: np.ndarray) -> np.ndarray:
        """(n,) similarity of each (n, D) row to the gallery; NaN for non-finite rows or an empty gallery."""
        q = np.asarray(embeddings, np.float32).reshape(len(embeddings), -1)
        out = np.full(len(q), np.nan, np.float32)
        if len(self._items) == 0 or len(q) == 0:
            return out
        finite = np.all(np.isfinite(q), axis=1)
        if finite.any():
            out[finite] = self.similarity_fn(q[finite], self._items)
        return out
