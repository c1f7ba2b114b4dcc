"""Target lock: which tracked person is the one the car follows.

States (:class:`LockState`) and the only transitions there are::

    SEARCHING --candidate in front--> ENROLLING --stable K frames--> LOCKED
    LOCKED --missing > coast frames, or appearance contradicts the gallery--> LOST
    LOST --one candidate above threshold AND ahead of the runner-up, N frames in a row--> LOCKED
    any --explicit enrollment command (or opt-in re-enroll timeout while LOST)--> SEARCHING

LOST never adopts someone new by itself: leaving LOST needs a match to the enrolled gallery. A
gallery given up-front (``--enroll DIR``) starts the lock in LOST: the target is known, not yet
seen. Per frame the loop asks :meth:`TargetLock.needs_embedding` which tracked boxes need an
appearance check (only those are cropped and embedded, in one batch), then calls
:meth:`TargetLock.update` with their embeddings (rows not embedded are NaN).
"""

from __future__ import annotations

import collections
import enum
from dataclasses import dataclass
from typing import Deque, Dict, List, Optional, Tuple

import numpy as np

from edgereid.detections import Detections, box_iou_batch
from edgereid.runtime.config import GalleryConfig, LockConfig
from edgereid.runtime.gallery import Gallery, SimilarityFn


class LockState(enum.Enum):
    SEARCHING = "SEARCHING"  # nobody enrolled; waiting for a person in front of the car
    ENROLLING = "ENROLLING"  # a candidate is in front; collecting its views for K frames
    LOCKED = "LOCKED"  # following the enrolled person
    LOST = "LOST"  # enrolled person not confirmed in view; only they can be re-acquired


@dataclass
class LockResult:
    """What the lock decided this frame.

    Attributes:
        state: the state after this frame.
        track_id: the target's (or enrollment candidate's) track id, or None.
        box: its xyxy box in pixels (predicted while coasting), or None.
        similarity: its similarity to the gallery (last measured), or None.
        coasting: True while LOCKED on a predicted box (detector missed the target).
        enroll_height: box height in pixels at enrollment (speed reference), or None.
        event: a short description of a transition that happened this frame, or None.
    """

    state: LockState
    track_id: Optional[int] = None
    box: Optional[np.ndarray] = None
    similarity: Optional[float] = None
    coasting: bool = False
    enroll_height: Optional[float] = None
    event: Optional[str] = None


class TargetLock:
    """The lock state machine (knobs and their trade-offs: ``follow_defaults.ini`` [lock], [gallery]).

    Args:
        config: lock thresholds.
        gallery_config: gallery size, similarity and update rule.
        similarity: a custom ``(queries (n, D), gallery (m, D)) -> (n,)`` similarity (higher = more
            alike) instead of the named one in ``gallery_config`` (norfair's pluggable-distance habit).
    """

    def __init__(self, config: LockConfig | None = None, gallery_config: GalleryConfig | None = None,
                 similarity: SimilarityFn | None = None) -> None:
        self.config = config or LockConfig()
        self.gallery_config = gallery_config or GalleryConfig()
        self.gallery = Gallery(self.gallery_config.max_size, similarity or self.gallery_config.similarity)
        self.state = LockState.SEARCHING
        self.target_id: Optional[int] = None
        self.enroll_height: Optional[float] = None
        self._strangers: Dict[int, float] = {}  # track id -> target's similarity level when it took over
        self._history: Deque[float] = collections.deque(maxlen=50)  # target's verified similarities
        self._reset_counters()

    def _reset_counters(self) -> None:
        self._candidate: Optional[int] = None
        self._enroll_embeddings: List[np.ndarray] = []
        self._enroll_heights: List[float] = []
        self._missed = 0
        self._rejects = 0
        self._accept_id: Optional[int] = None
        self._accepts = 0
        self._since_verify = 0
        self._since_update = 0
        self._lost_since: Optional[float] = None
        self._last_box: Optional[np.ndarray] = None
        self._last_similarity: Optional[float] = None
        self._level: Optional[float] = None  # running level of the target's similarity while LOCKED

    # -- commands ----------------------------------------------------------------------------
    def request_enrollment(self) -> None:
        """Forget the target and enroll whoever stands in front next (an explicit operator command)."""
        self.gallery.clear()
        self.state = LockState.SEARCHING
        self.target_id = None
        self.enroll_height = None
        self._strangers.clear()
        self._history.clear()
        self._reset_counters()

    def enroll_embeddings(self, embeddings: np.ndarray) -> None:
        """Pre-enroll from (n, D) embeddings of the person's crops (``--enroll DIR``); state -> LOST."""
        self.request_enrollment()
        for row in np.asarray(embeddings, np.float32).reshape(len(embeddings), -1):
            self.gallery.add(row)
        if len(self.gallery):
            self.state = LockState.LOST

    # -- per frame -----------------------------------------------------------------------------
    def needs_embedding(self, tracks: Detections, frame_size: Tuple[int, int]) -> np.ndarray:
        """(n,) bool: which tracked boxes need an appearance check this frame."""
        mask = np.zeros(len(tracks), bool)
        if len(tracks) == 0:
            return mask
        if self.state in (LockState.SEARCHING, LockState.ENROLLING):
            row = self._enrollment_candidate(tracks, frame_size)
            if row is not None:
                mask[row] = True
        elif self.state is LockState.LOST:
            mask[:] = True
        else:
            row = self._row_of(tracks, self.target_id)
            due = self._since_verify + 1 >= self.config.verify_interval
            if row is not None and (due or self._overlap(tracks, row) > 0):
                mask[row] = True
        return mask

    def update(self, tracks: Detections, frame_size: Tuple[int, int], now: float = 0.0,
               predicted: Dict[int, np.ndarray] | None = None) -> LockResult:
        """Advance the state machine by one frame.

        Args:
            tracks: this frame's tracked people (``track_ids`` set); ``embeddings`` (n, D) with NaN
                rows for boxes not embedded, or None when nothing was embedded.
            frame_size: (width, height) of the image in pixels.
            now: a timestamp in seconds (for the opt-in re-enroll timeout).
            predicted: track id -> predicted xyxy box of coasting tracks (``ByteTracker.predicted_boxes``).
        """
        sims = self._similarities(tracks)
        if self.state is LockState.SEARCHING:
            return self._search_phase(tracks, frame_size)
        if self.state is LockState.ENROLLING:
            return self._enroll_phase(tracks, frame_size)
        if self.state is LockState.LOCKED:
            result = self._follow_phase(tracks, sims, predicted or {})
            if self.state is LockState.LOST:
                self._lost_since = now  # the re-enroll timeout counts from here
            return result
        return self._reacquire_phase(tracks, sims, now)

    # -- phases ------------------------------------------------------------------------------
    def _search_phase(self, tracks: Detections, frame_size: Tuple[int, int]) -> LockResult:
        row = self._enrollment_candidate(tracks, frame_size)
        if row is None:
            return LockResult(LockState.SEARCHING)
        self.state = LockState.ENROLLING
        self._start_candidate(tracks, row)
        return self._enroll_phase(tracks, frame_size, first=True)

    def _enroll_phase(self, tracks: Detections, frame_size: Tuple[int, int], first: bool = False) -> LockResult:
        row = self._enrollment_candidate(tracks, frame_size)
        if row is None or (int(tracks.track_ids[row]) != self._candidate
                           and self._row_of(tracks, self._candidate) is None):
            # the candidate was not detected this frame: wait a few frames (detector misses)
            self._missed += 1
            if self._missed <= self.config.coast_frames and self._candidate is not None:
                return LockResult(LockState.ENROLLING, self._candidate, None)
            self.state = LockState.SEARCHING
            self._reset_counters()
            return LockResult(LockState.SEARCHING, event="enrollment candidate left")
        self._missed = 0
        if int(tracks.track_ids[row]) != self._candidate:
            self._start_candidate(tracks, row)  # someone else is now in front: start over
        elif not first:
            self._enroll_heights.append(float(tracks.heights[row]))
        embedding = self._embedding(tracks, row)
        if embedding is not None and self._overlap(tracks, row) <= self.gallery_config.max_overlap_iou:
            self._enroll_embeddings.append(embedding)
            self._enroll_embeddings = self._enroll_embeddings[-self.config.enroll_frames:]
        box = tracks.xyxy[row].copy()
        if len(self._enroll_heights) < self.config.enroll_frames or not self._enroll_embeddings:
            return LockResult(LockState.ENROLLING, self._candidate, box)
        self.gallery.clear()
        for emb in self._enroll_embeddings:
            self.gallery.add(emb)
        self.enroll_height = float(np.median(self._enroll_heights))
        target = self._candidate
        self._reset_counters()
        similarity = None if embedding is None else float(self.gallery.similarity(embedding[None])[0])
        self._lock_on(target, box, similarity)
        return self._result(event=f"enrolled track {target}")

    def _follow_phase(self, tracks: Detections, sims: np.ndarray, predicted: Dict[int, np.ndarray]) -> LockResult:
        row = self._row_of(tracks, self.target_id)
        if row is None:
            self._missed += 1
            if self._missed > self.config.coast_frames:
                return self._lose(f"target not seen for {self._missed} frames")
            box = predicted.get(self.target_id, self._last_box)
            self._last_box = None if box is None else np.asarray(box, np.float32).copy()
            return self._result(coasting=True)
        self._missed = 0
        self._last_box = tracks.xyxy[row].copy()
        self._since_verify += 1
        self._since_update += 1
        sim = sims[row]
        if not np.isfinite(sim):
            return self._result()
        self._since_verify = 0
        self._last_similarity = float(sim)
        overlap = self._overlap(tracks, row)
        # absolute floor, or a sudden drop below the target's own running level (an id swap in the
        # tracker hands the track to someone else: similarity falls from ~0.9 to a stranger's level)
        dropped = self._level is not None and sim < self._level - self.config.reject_drop
        contradicts = sim < self.config.reject_threshold or dropped
        self._rejects = self._rejects + 1 if contradicts else 0
        needed = 1 if overlap > 0 else self.config.reject_frames  # a crossing is when ids swap
        if self._rejects >= needed:
            self._strangers[int(self.target_id)] = self._level if self._level is not None else float(sim)
            while len(self._strangers) > 16:  # bounded: oldest first
                self._strangers.pop(next(iter(self._strangers)))
            return self._lose(f"appearance contradicts the gallery (similarity {sim:.2f})")
        self._level = float(sim) if self._level is None else 0.7 * self._level + 0.3 * float(sim)
        if overlap <= self.gallery_config.max_overlap_iou:
            self._history.append(float(sim))
        if (sim >= self.gallery_config.update_threshold and overlap <= self.gallery_config.max_overlap_iou
                and self._since_update >= self.gallery_config.update_interval):
            embedding = self._embedding(tracks, row)
            if embedding is not None and self.gallery.add(embedding):
                self._since_update = 0
        return self._result()

    def _reacquire_phase(self, tracks: Detections, sims: np.ndarray, now: float) -> LockResult:
        if self._lost_since is None:
            self._lost_since = now
        timeout = self.config.reenroll_timeout_s
        if timeout > 0 and now - self._lost_since >= timeout:
            self.request_enrollment()
            return LockResult(LockState.SEARCHING, event=f"re-enrollment after {timeout:g} s lost")
        finite = np.flatnonzero(np.isfinite(sims) & ~self._is_stranger(tracks, sims))
        if len(finite) == 0:
            self._accept_id, self._accepts = None, 0
            return LockResult(LockState.LOST)
        order = finite[np.argsort(-sims[finite])]
        best = int(order[0])
        runner_up = float(sims[order[1]]) if len(order) > 1 else -1.0
        best_sim = float(sims[best])
        if best_sim >= self.accept_floor() and best_sim - runner_up >= self.config.accept_margin:
            track_id = int(tracks.track_ids[best])
            self._accepts = self._accepts + 1 if track_id == self._accept_id else 1
            self._accept_id = track_id
        else:
            self._accept_id, self._accepts = None, 0
        if self._accepts < self.config.accept_frames:
            return LockResult(LockState.LOST, self._accept_id, None, best_sim)
        box = tracks.xyxy[best].copy()
        if self.enroll_height is None:
            self.enroll_height = float(tracks.heights[best])
        track_id = self._accept_id
        self._reset_counters()
        self._lock_on(track_id, box, best_sim)
        return self._result(event=f"re-acquired as track {track_id} (similarity {best_sim:.2f})")

    # -- helpers -------------------------------------------------------------------------------
    def accept_floor(self) -> float:
        """Similarity a candidate needs to be re-acquired: ``accept_threshold``, raised to the target's
        typical similarity while it was followed (median of the last 50 unoccluded checks) minus
        ``accept_drop``. The typical level says what "looks like the target" means for this model and
        this person; strangers in the same scene stay well below it."""
        floor = self.config.accept_threshold
        if self._history:
            floor = max(floor, float(np.median(np.asarray(self._history))) - self.config.accept_drop)
        return floor

    def _is_stranger(self, tracks: Detections, sims: np.ndarray) -> np.ndarray:
        """(n,) bool: tracks that already contradicted the gallery (the tracker handed the target's
        track to them) and do not look like the target did before; never re-acquired."""
        out = np.zeros(len(tracks), bool)
        if not self._strangers or tracks.track_ids is None:
            return out
        for row, track_id in enumerate(tracks.track_ids):
            level = self._strangers.get(int(track_id))
            out[row] = level is not None and not sims[row] >= level - self.config.reject_drop
        return out

    def _lock_on(self, track_id: Optional[int], box: np.ndarray, similarity: Optional[float]) -> None:
        self.state = LockState.LOCKED
        self.target_id = track_id
        self._last_box = box
        self._last_similarity = similarity

    def _lose(self, why: str) -> LockResult:
        self.state = LockState.LOST
        self.target_id = None
        self._reset_counters()
        return LockResult(LockState.LOST, enroll_height=self.enroll_height, event=f"lost: {why}")

    def _start_candidate(self, tracks: Detections, row: int) -> None:
        self._candidate = int(tracks.track_ids[row])
        self._enroll_embeddings = []
        self._enroll_heights = [float(tracks.heights[row])]

    def _result(self, coasting: bool = False, event: Optional[str] = None) -> LockResult:
        return LockResult(self.state, self.target_id, self._last_box, self._last_similarity, coasting,
                          self.enroll_height, event)

    def _similarities(self, tracks: Detections) -> np.ndarray:
        if tracks.embeddings is None or len(tracks) == 0:
            return np.full(len(tracks), np.nan, np.float32)
        return self.gallery.similarity(tracks.embeddings)

    def _enrollment_candidate(self, tracks: Detections, frame_size: Tuple[int, int]) -> Optional[int]:
        """Row of the largest person whose centre is in the central band and who is tall enough."""
        if len(tracks) == 0 or tracks.track_ids is None:
            return None
        width, height = frame_size
        offset = np.abs(tracks.centers[:, 0] - width / 2.0) / (width / 2.0)
        ok = (offset <= self.config.enroll_center_band) & (tracks.heights >= self.config.enroll_min_height * height)
        if not ok.any():
            return None
        rows = np.flatnonzero(ok)
        # largest area first, nearest the centre breaks ties
        best = sorted(rows, key=lambda r: (-round(float(tracks.area[r]), 1), float(offset[r])))[0]
        return int(best)

    @staticmethod
    def _row_of(tracks: Detections, track_id: Optional[int]) -> Optional[int]:
        if track_id is None or tracks.track_ids is None:
            return None
        rows = np.flatnonzero(tracks.track_ids == track_id)
        return int(rows[0]) if len(rows) else None

    @staticmethod
    def _overlap(tracks: Detections, row: int) -> float:
        """Largest IoU between box ``row`` and any other tracked box (0 when alone)."""
        if len(tracks) < 2:
            return 0.0
        iou = box_iou_batch(tracks.xyxy[row : row + 1], tracks.xyxy)[0]
        iou[row] = 0.0
        return float(iou.max())

    @staticmethod
    def _embedding(tracks: Detections, row: int) -> Optional[np.ndarray]:
        if tracks.embeddings is None:
            return None
        emb = tracks.embeddings[row]
        return emb.copy() if np.all(np.isfinite(emb)) else None
