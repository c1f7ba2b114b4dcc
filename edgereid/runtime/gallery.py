"""The followed person's gallery: fixed enrollment anchors plus at most M adaptive views, kept diverse.

The anchors are the enrollment views and never change until the next enrollment. Adaptive views
(learnt while LOCKED) help follow a person whose look changes as they walk; the target lock adds
one only when it matches the *anchors* well enough to be accepted on its own, and re-acquisition
is judged against the anchors alone, so no stranger can pull the gallery toward themselves.

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

    def __init__(self, max_size: int = 16, similarity: Union[str, SimilarityFn] = "max_cosine",
                 max_anchors: int = 16) -> None:
        if max_size < 1 or max_anchors < 1:
            raise InputError(f"gallery max_size and max_anchors must be >= 1, received {max_size}, {max_anchors}.")
        self.max_size = int(max_size)
        self.max_anchors = int(max_anchors)
        self.similarity_fn = get_similarity_by_name(similarity) if isinstance(similarity, str) else similarity
        self._items = np.zeros((0, 0), np.float32)
        self._anchors = np.zeros((0, 0), np.float32)

    def __len__(self) -> int:
        return len(self._items) + len(self._anchors)

    @property
    def embeddings(self) -> np.ndarray:
        """(m, D) copy of all stored embeddings, anchors first."""
        if len(self._anchors) == 0:
            return self._items.copy()
        if len(self._items) == 0:
            return self._anchors.copy()
        return np.vstack([self._anchors, self._items])

    @property
    def anchors(self) -> np.ndarray:
        """(a, D) copy of the enrollment anchors."""
        return self._anchors.copy()

    def clear(self) -> None:
        self._items = np.zeros((0, 0), np.float32)
        self._anchors = np.zeros((0, 0), np.float32)

    def set_anchors(self, embeddings: np.ndarray) -> int:
        """Replace everything with (n, D) enrollment views as anchors (the ``max_anchors`` most
        diverse, by the same redundancy rule as :meth:`add`); returns how many were kept."""
        self.clear()
        pool = Gallery(self.max_anchors, self.similarity_fn)
        for row in np.asarray(embeddings, np.float32).reshape(len(embeddings), -1):
            pool.add(row)
        self._anchors = pool._items.copy()
        return len(self._anchors)

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
        held = self._items if len(self._items) else self._anchors
        if len(held) and held.shape[1] != len(vec):
            raise InputError(f"embedding has {len(vec)} dims, the gallery holds {held.shape[1]}-dim ones.")
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
        """(n,) similarity of each (n, D) row to anchors and adaptive views; NaN for non-finite rows or
        an empty gallery."""
        return self._score(embeddings, self.embeddings)

    def anchor_similarity(self, embeddings: np.ndarray) -> np.ndarray:
        """(n,) similarity to the enrollment anchors alone (all views when no anchors were set)."""
        return self._score(embeddings, self._anchors if len(self._anchors) else self._items)

    def _score(self, embeddings: np.ndarray, reference: np.ndarray) -> np.ndarray:
        if len(embeddings) == 0:
            return np.zeros(0, np.float32)
        q = np.asarray(embeddings, np.float32).reshape(len(embeddings), -1)
        out = np.full(len(q), np.nan, np.float32)
        if len(reference) == 0:
            return out
        finite = np.all(np.isfinite(q), axis=1)
        if finite.any():
            out[finite] = self.similarity_fn(q[finite], reference)
        return out
