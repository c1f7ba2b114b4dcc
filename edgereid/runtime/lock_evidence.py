"""What the target lock knows about who is, and who is not, the target (``target_lock.py`` decides).

Kept apart from the state machine so each can be read on its own: the target's own similarity
history (typical level, steps down, the last good crop of its track), the known strangers
(negative evidence, ``strangers.py``), where each track was born (plausibility), and which track
ids once took over the target's track.
"""

from __future__ import annotations

import collections
from typing import Deque, Dict, List, Optional, Tuple

import numpy as np

from edgereid.detections import Detections, box_iou_batch
from edgereid.runtime.config import LockConfig, QualityConfig
from edgereid.runtime.quality import touches_bottom
from edgereid.runtime.strangers import StrangerBank

MAX_REMEMBERED_TRACKS = 256  # birth positions / contradicted ids / sample times kept (oldest dropped)


class LockEvidence:
    """Evidence for and against candidates, bounded in memory.

    Args:
        config: the resolved lock thresholds (no None left).
        quality: the crop quality gates (for the bottom edge).
    """

    def __init__(self, config: LockConfig, quality: QualityConfig) -> None:
        self.config = config
        self.quality = quality
        self.strangers = StrangerBank(config.max_strangers)
        self.frame = 0
        self.target_in_front = False  # target last seen clear of the bottom edge (walking away)
        self._history: Deque[float] = collections.deque(maxlen=50)  # verified similarities, good crops
        self._born_at_bottom: Dict[int, bool] = collections.OrderedDict()
        self._contradicted: Dict[int, bool] = collections.OrderedDict()
        self._sampled: Dict[int, int] = {}  # track id -> frame its crop was last banked as a stranger
        self._settled: Dict[int, Tuple[int, int]] = {}  # track id -> (clear rejections in a row, frame checked)
        self.new_track()

    def clear(self) -> None:
        """Forget everything (a new enrollment)."""
        self.strangers.clear()
        self._history.clear()
        self._contradicted.clear()
        self.target_in_front = False
        self.new_track()

    def new_track(self) -> None:
        """The lock now follows another track (or none): its crop-to-crop memory starts over."""
        self.last_good: Optional[np.ndarray] = None
        self._recent: Deque[float] = collections.deque(maxlen=self.config.sustained_frames)

    # -- the target's own level --------------------------------------------------------------
    def record(self, sim: float, embedding: np.ndarray, good: bool) -> None:
        """A verified check of the target: ``good`` crops join the history and the track's memory."""
        self._recent.append(sim)
        if good:
            self._history.append(sim)
            self.last_good = embedding

    def typical(self) -> Optional[float]:
        """The target's own typical similarity (median of its last 50 good checks), or None."""
        return float(np.median(np.asarray(self._history))) if len(self._history) >= 3 else None

    def sustained_drop(self) -> bool:
        """A step down: the last ``sustained_frames`` checks held below the level of the ten checks
        before them. A slow decline (the target shrinking as it walks away) moves both windows and
        is no step; a swap to someone else is."""
        k = self.config.sustained_frames
        if len(self._recent) < k or len(self._history) < k + 10:
            return False
        before = list(self._history)[-(k + 10):-k]
        return float(np.median(np.asarray(self._recent))) < float(np.median(before)) - self.config.sustained_drop

    def recent_level(self) -> float:
        return float(np.median(np.asarray(self._recent))) if self._recent else float("nan")

    # -- contradictions ----------------------------------------------------------------------
    def below_floor(self, sim: float, anchor_sim: float) -> Optional[str]:
        """The absolute floor, for the gallery and for the anchors alone (so learnt views cannot carry
        the lock off to someone else)."""
        floor = self.config.reject_threshold
        if sim < floor:
            return f"appearance contradicts the gallery (similarity {sim:.2f} < {floor:.2f})"
        if anchor_sim < floor:
            return f"appearance contradicts the enrollment anchors (similarity {anchor_sim:.2f} < {floor:.2f})"
        return None

    def contradiction(self, embedding: np.ndarray, sim: float, anchor_sim: float,
                      stranger: float) -> Tuple[Optional[str], bool]:
        """(why this good crop of the target's track is someone else or None, whether that is strong
        evidence on its own: the floor or a jump; a stranger match or a drop must be sustained).
        ``stranger`` is the crop's highest similarity to a known stranger."""
        cfg = self.config
        floor = self.below_floor(sim, anchor_sim)
        if floor is not None:
            return floor, True
        if self.last_good is not None:
            jump = float(embedding @ self.last_good)
            if jump < cfg.jump_threshold:
                return f"appearance jumped between consecutive crops of the track (cosine {jump:.2f})", True
        if stranger >= cfg.accept_threshold and stranger > sim + cfg.stranger_margin:
            return f"looks more like a known stranger ({stranger:.2f}) than the target ({sim:.2f})", False
        return self.dropped(sim), False

    def dropped(self, sim: float) -> Optional[str]:
        """A fall of ``reject_drop`` below the target's own typical similarity, or None."""
        typical = self.typical()
        if typical is not None and sim < typical - self.config.reject_drop:
            return f"similarity {sim:.2f} fell below the target's typical {typical:.2f}"
        return None

    def took_over(self, track_id: int, embedding: Optional[np.ndarray]) -> None:
        """Track ``track_id`` now holds someone else: remember it (and its look, when the crop is good)."""
        if embedding is not None:
            self.strangers.add(track_id, embedding)
        _remember(self._contradicted, track_id, True)

    # -- candidates --------------------------------------------------------------------------
    def note_births(self, tracks: Detections, frame_size: Tuple[int, int]) -> None:
        self.frame += 1
        if tracks.track_ids is None:
            return
        for row, track_id in enumerate(tracks.track_ids):
            if int(track_id) not in self._born_at_bottom:
                born = touches_bottom(tracks.xyxy[row], frame_size[1], self.quality)
                _remember(self._born_at_bottom, int(track_id), born)

    def plausible(self, track_id: int, sim: float) -> bool:
        """May this track be re-acquired at all (before its appearance is weighed)?"""
        if self.config.block_bottom_entry and self.target_in_front and self._born_at_bottom.get(track_id, False):
            return False  # came from behind the car while the target walked away in front
        if track_id in self._contradicted:  # took the target's track once: needs the target's own level
            typical = self.typical()
            return sim >= (1.0 if typical is None else typical)
        return True

    def stranger_samples(self, tracks: Detections, target_row: int, good: np.ndarray) -> List[int]:
        """Rows of bystanders to embed this frame as known strangers (never-sampled tracks first)."""
        budget = self.config.stranger_checks_per_frame
        if budget <= 0:
            return []
        iou = box_iou_batch(tracks.xyxy[target_row:target_row + 1], tracks.xyxy)[0]
        rows = [r for r in range(len(tracks)) if r != target_row and good[r] and iou[r] <= 0]
        rows.sort(key=lambda r: self._sampled.get(int(tracks.track_ids[r]), -1))
        return rows[:budget]

    def bank_bystanders(self, tracks: Detections, target_row: int, good: np.ndarray) -> None:
        """Everyone embedded beside the verified target, not touching it, is someone else."""
        if tracks.embeddings is None:
            return
        iou = box_iou_batch(tracks.xyxy[target_row:target_row + 1], tracks.xyxy)[0]
        for r in range(len(tracks)):
            emb = tracks.embeddings[r]
            if r != target_row and good[r] and iou[r] <= 0 and np.all(np.isfinite(emb)):
                self._bank(int(tracks.track_ids[r]), emb)

    def lost_rows_to_embed(self, tracks: Detections) -> np.ndarray:
        """(n,) bool while LOST: everyone, except tracks clearly rejected 3 times in a row, which are
        re-checked every ``lost_recheck_frames`` frames (a crowd of known strangers would otherwise
        be embedded every frame; a re-check above the limit makes the track unsettled again)."""
        every = self.config.lost_recheck_frames
        mask = np.ones(len(tracks), bool)
        if every <= 1 or tracks.track_ids is None:
            return mask
        for row, track_id in enumerate(tracks.track_ids):
            streak, checked = self._settled.get(int(track_id), (0, -10**9))
            mask[row] = streak < 3 or self.frame + 1 - checked >= every
        return mask

    def bank_rejected(self, tracks: Detections, good: np.ndarray, sims: np.ndarray, candidate: Optional[int]) -> None:
        """Good crops clearly below acceptance while LOST are strangers too (near-misses are not:
        they may be the target in an odd view); one view per track every 5 frames."""
        limit = self.config.accept_threshold - self.config.accept_margin
        for r in np.flatnonzero(np.isfinite(sims)):
            track_id = int(tracks.track_ids[r])
            streak = self._settled.get(track_id, (0, 0))[0]
            self._settled[track_id] = (streak + 1 if sims[r] < limit else 0, self.frame)
            if good[r] and sims[r] < limit and track_id != candidate:
                if self.frame - self._sampled.get(track_id, -10**9) >= 5:
                    self._bank(track_id, tracks.embeddings[r])

    def _bank(self, track_id: int, embedding: np.ndarray) -> None:
        self.strangers.add(track_id, embedding)
        self._sampled[track_id] = self.frame
        for store in (self._sampled, self._settled):
            if len(store) > MAX_REMEMBERED_TRACKS:
                for key in list(store)[: len(store) - MAX_REMEMBERED_TRACKS]:  # insertion order: oldest first
                    del store[key]


def _remember(store: Dict[int, bool], key: int, value: bool) -> None:
    """Insert into a bounded insertion-ordered dict (oldest dropped)."""
    store[key] = value
    while len(store) > MAX_REMEMBERED_TRACKS:
        store.pop(next(iter(store)))
