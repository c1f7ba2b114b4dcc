"""Known strangers: negative evidence for the target lock.

Anyone seen in the same frame as the verified target is certainly someone else; so is a person
who took over the target's track, and a candidate clearly rejected while the target is lost.
Their embeddings are kept (bounded: ``max_size`` in all, at most ``per_track`` per track id,
oldest dropped first) and a candidate must be nearer the target's anchors than every known
stranger by a margin. A stranger who looks like the target (same coat) then blocks
re-acquisition of both: the car waits, which is the safe failure.
"""

from __future__ import annotations

import collections
from typing import Deque, Tuple

import numpy as np


class StrangerBank:
    """Bounded store of (track id, embedding) of people known not to be the target.

    Args:
        max_size: most embeddings kept in all (compare cost is n x max_size dot products).
        per_track: most embeddings kept per track id (so one long-visible person cannot fill it).
    """

    def __init__(self, max_size: int = 64, per_track: int = 4) -> None:
        self.max_size = int(max_size)
        self.per_track = int(per_track)
        self._items: Deque[Tuple[int, np.ndarray]] = collections.deque()

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        self._items.clear()

    def track_ids(self) -> set:
        return {t for t, _ in self._items}

    def add(self, track_id: int, embedding: np.ndarray) -> bool:
        """Keep one (D,) embedding of track ``track_id``; non-finite or zero vectors are refused."""
        vec = np.asarray(embedding, np.float32).reshape(-1)
        norm = float(np.linalg.norm(vec)) if np.all(np.isfinite(vec)) else 0.0
        if norm <= 1e-6:
            return False
        same = [i for i, (t, _) in enumerate(self._items) if t == track_id]
        if len(same) >= self.per_track:
            del self._items[same[0]]
        self._items.append((int(track_id), vec / norm))
        while len(self._items) > self.max_size:
            self._items.popleft()
        return True

    def similarity(self, embeddings: np.ndarray) -> np.ndarray:
        """(n,) highest cosine of each (n, D) row to any known stranger; -1 when none (or a NaN row)."""
        if len(embeddings) == 0:
            return np.zeros(0, np.float32)
        q = np.asarray(embeddings, np.float32).reshape(len(embeddings), -1)
        out = np.full(len(q), -1.0, np.float32)
        if not self._items or len(q) == 0:
            return out
        bank = np.stack([v for _, v in self._items])
        finite = np.all(np.isfinite(q), axis=1)
        if finite.any():
            out[finite] = (q[finite] @ bank.T).max(axis=1)
        return out
