"""Target lock: which tracked person is the one the car follows.

States (:class:`LockState`) and the only transitions there are::

    SEARCHING --candidate in front--> ENROLLING --stable K frames--> LOCKED
    LOCKED --missing > coast frames, or the evidence says it is someone else--> LOST
    LOST --one good crop matches the anchors, beats the runner-up and every known stranger,
           N frames in a row--> LOCKED
    any --explicit enrollment command (or opt-in re-enroll timeout while LOST)--> SEARCHING

The promise: after the target is gone the car stays stopped; it never follows someone else.
What keeps it (each a tested gate; thresholds from the bundle's similarity scale, ``thresholds.py``):

* **anchored gallery** - enrollment views are fixed anchors; a view is learnt only when it matches
  the anchors on its own, and re-acquisition is judged against the anchors alone (``gallery.py``);
* **crop quality** - border-cut, tiny, head-only or overlapping crops never enroll, re-acquire or
  teach the gallery (``quality.py``); a locked track may coast on them;
* **negative evidence** - people seen beside the verified target, whoever took over its track, and
  candidates clearly rejected while LOST are known strangers; a candidate must be nearer the
  anchors than every one of them by ``stranger_margin`` (``strangers.py``), and a locked target
  that looks more like a known stranger than like itself is lost;
* **swaps inside a track** - below ``reject_threshold``, a fall of ``reject_drop`` below the
  target's own typical level, a smaller fall held ``sustained_frames`` checks, or a jump between
  consecutive good crops of the track ends the lock;
* **plausibility** - a track born at the bottom image edge came from behind the car; while the
  target was last seen walking away in front, it is never re-acquired (``block_bottom_entry``).

Per frame the loop asks :meth:`TargetLock.needs_embedding` which boxes to embed (in one batch),
then calls :meth:`TargetLock.update` with their embeddings (rows not embedded are NaN).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from edgereid.detections import Detections
from edgereid.runtime.config import GalleryConfig, LockConfig, QualityConfig
from edgereid.runtime.gallery import Gallery, SimilarityFn
from edgereid.runtime.lock_evidence import LockEvidence
from edgereid.runtime.quality import crop_quality, max_overlap, touches_bottom
from edgereid.runtime.thresholds import resolve_lock_configs

SWAP_WINDOW = 3  # good checks after a tracker gap or an overlap of >= this many frames: swaps happen there


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
        hold: why the car must stop this frame although the lock holds (an unsure crop), or None.
    """

    state: LockState
    track_id: Optional[int] = None
    box: Optional[np.ndarray] = None
    similarity: Optional[float] = None
    coasting: bool = False
    enroll_height: Optional[float] = None
    event: Optional[str] = None
    hold: Optional[str] = None


class TargetLock:
    """The lock state machine (knobs and their trade-offs: ``follow_defaults.ini`` [lock], [gallery], [quality]).

    Args:
        config: lock thresholds; similarity thresholds left at None come from ``similarity_scale``.
        gallery_config: gallery size, similarity and update rule.
        similarity: a custom ``(queries (n, D), gallery (m, D)) -> (n,)`` similarity (higher = more
            alike) instead of the named one in ``gallery_config`` (norfair's pluggable-distance habit).
        quality_config: crop quality gates.
        similarity_scale: the bundle manifest's ``similarity`` block (None = strict fallback).
    """

    def __init__(self, config: LockConfig | None = None, gallery_config: GalleryConfig | None = None,
                 similarity: SimilarityFn | None = None, quality_config: QualityConfig | None = None,
                 similarity_scale: Optional[dict] = None) -> None:
        self.config, self.gallery_config = resolve_lock_configs(config or LockConfig(),
                                                                gallery_config or GalleryConfig(), similarity_scale)
        self.quality = quality_config or QualityConfig()
        self.gallery = Gallery(self.gallery_config.max_size, similarity or self.gallery_config.similarity,
                               self.gallery_config.max_anchors)
        self.evidence = LockEvidence(self.config, self.quality)
        self.strangers = self.evidence.strangers
        self.state = LockState.SEARCHING
        self.target_id: Optional[int] = None
        self.enroll_height: Optional[float] = None
        self._reset_counters()

    def _reset_counters(self) -> None:
        self._unsure: Optional[str] = None  # set by an unsure check until a clean one
        self._swap_window = 0  # good checks left in which one piece of evidence ends the lock
        self._bad_run = 0  # bad (overlapping, cut) crops of the target in a row
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
        self.evidence.new_track()

    # -- commands ----------------------------------------------------------------------------
    def request_enrollment(self) -> None:
        """Forget the target and enroll whoever stands in front next (an explicit operator command)."""
        self.gallery.clear()
        self.evidence.clear()
        self.state = LockState.SEARCHING
        self.target_id = None
        self.enroll_height = None
        self._reset_counters()

    def enroll_embeddings(self, embeddings: np.ndarray) -> None:
        """Pre-enroll from (n, D) embeddings of the person's crops (``--enroll DIR``); state -> LOST."""
        self.request_enrollment()
        self.gallery.set_anchors(np.asarray(embeddings, np.float32).reshape(len(embeddings), -1))
        if len(self.gallery):
            self.state = LockState.LOST

    # -- per frame -----------------------------------------------------------------------------
    def needs_embedding(self, tracks: Detections, frame_size: Tuple[int, int]) -> np.ndarray:
        """(n,) bool: which tracked boxes need an appearance check this frame."""
        mask = np.zeros(len(tracks), bool)
        if len(tracks) == 0:
            return mask
        good, _ = crop_quality(tracks, frame_size, self.quality)
        if self.state in (LockState.SEARCHING, LockState.ENROLLING):
            row = self._enrollment_candidate(tracks, frame_size)
            if row is not None and good[row]:
                mask[row] = True
        elif self.state is LockState.LOST:
            mask[:] = self.evidence.lost_rows_to_embed(tracks)  # good crops may re-acquire; all are runners-up
        else:
            row = self._row_of(tracks, self.target_id)
            if row is None:
                return mask
            due = self._since_verify + 1 >= self.config.verify_interval
            if due or self._missed > 0 or max_overlap(tracks.xyxy)[row] > 0:
                mask[row] = True
            for other in self.evidence.stranger_samples(tracks, row, good):
                mask[other] = True
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
        self.evidence.note_births(tracks, frame_size)
        good, _ = crop_quality(tracks, frame_size, self.quality)
        if self.state is LockState.SEARCHING:
            return self._search_phase(tracks, frame_size, good)
        if self.state is LockState.ENROLLING:
            return self._enroll_phase(tracks, frame_size, good)
        if self.state is LockState.LOCKED:
            result = self._follow_phase(tracks, frame_size, good, predicted or {})
            if self.state is LockState.LOST:
                self._lost_since = now  # the re-enroll timeout counts from here
            return result
        return self._reacquire_phase(tracks, good, now)

    # -- phases ------------------------------------------------------------------------------
    def _search_phase(self, tracks: Detections, frame_size: Tuple[int, int], good: np.ndarray) -> LockResult:
        row = self._enrollment_candidate(tracks, frame_size)
        if row is None:
            return LockResult(LockState.SEARCHING)
        self.state = LockState.ENROLLING
        self._start_candidate(tracks, row)
        return self._enroll_phase(tracks, frame_size, good, first=True)

    def _enroll_phase(self, tracks: Detections, frame_size: Tuple[int, int], good: np.ndarray,
                      first: bool = False) -> LockResult:
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
        embedding = _embedding(tracks, row)
        if embedding is not None and good[row]:
            self._enroll_embeddings.append(embedding)
            self._enroll_embeddings = self._enroll_embeddings[-self.config.enroll_frames:]
        box = tracks.xyxy[row].copy()
        if len(self._enroll_heights) < self.config.enroll_frames or not self._enroll_embeddings:
            return LockResult(LockState.ENROLLING, self._candidate, box)
        self.gallery.set_anchors(np.stack(self._enroll_embeddings))
        self.enroll_height = float(np.median(self._enroll_heights))
        target = self._candidate
        self._reset_counters()
        similarity = None if embedding is None else float(self.gallery.similarity(embedding[None])[0])
        self._lock_on(target, box, similarity, frame_size)
        return self._result(event=f"enrolled track {target}")

    def _follow_phase(self, tracks: Detections, frame_size: Tuple[int, int], good: np.ndarray,
                      predicted: Dict[int, np.ndarray]) -> LockResult:
        row = self._row_of(tracks, self.target_id)
        if row is None:
            self._missed += 1
            if self._missed > self.config.coast_frames:
                return self._lose(f"target not seen for {self._missed} frames")
            box = predicted.get(self.target_id, self._last_box)
            self._last_box = None if box is None else np.asarray(box, np.float32).copy()
            # the track's prediction follows whoever it last matched: after an unsure check, do not drive on it
            return self._result(coasting=True, hold=self._unsure)
        if self._missed > 0:  # the tracker matched the track again after a gap: when swaps happen
            self._swap_window = SWAP_WINDOW
        self._missed = 0
        trusted_box = self._last_box
        self._last_box = tracks.xyxy[row].copy()
        self._since_verify += 1
        self._since_update += 1
        embedding = _embedding(tracks, row)
        if embedding is None:
            return self._result()
        self._since_verify = 0
        sims = self.gallery.similarity(embedding[None])
        sim, anchor_sim = float(sims[0]), float(self.gallery.anchor_similarity(embedding[None])[0])
        stranger_sim = float(self.strangers.similarity(embedding[None])[0])
        self._last_similarity = sim
        overlap = float(max_overlap(tracks.xyxy)[row])
        # a bad crop (overlapping, cut, tiny) mixes appearances: only the floor counts there, and a
        # large fall just after a tracker gap (someone now standing where the target was hidden);
        # the floor holds for the anchors too, so learnt views cannot carry the lock off to someone else
        if good[row]:
            why, strong = self.evidence.contradiction(embedding, sim, anchor_sim, stranger_sim)
        else:
            why, strong = self.evidence.below_floor(sim, anchor_sim), True
            if why is None and self._swap_window > 0:
                why, strong = self.evidence.dropped(sim), False
        if good[row] and self._bad_run >= SWAP_WINDOW:  # first good crop after an overlap: a swap chance
            self._swap_window = SWAP_WINDOW
        self._bad_run = 0 if good[row] else self._bad_run + 1
        self._rejects = self._rejects + 1 if why else 0
        fresh = self._swap_window > 0 and bool(good[row])
        if strong:  # the floor or a jump: at once while overlapping or just after a gap or an overlap
            needed = 1 if (overlap > 0 or fresh) else self.config.reject_frames
        else:  # relative evidence (a known stranger, a fall) must hold for a few checks
            needed = max(self.config.reject_frames, self.config.evidence_frames)
        if why is not None and self._rejects >= needed:
            self.evidence.took_over(int(self.target_id), embedding if good[row] else None)
            return self._lose(why)
        if why is not None:  # unsure: the car stops this frame, the lock waits for the evidence to settle
            self._last_box = trusted_box
            self._unsure = f"coasting after an unconfirmed check ({why})"
            return self._result(hold=why)
        self._unsure = None
        if good[row]:
            self._swap_window = max(self._swap_window - 1, 0)
        self.evidence.record(sim, embedding, bool(good[row]))
        if self.evidence.sustained_drop():
            return self._lose(f"similarity held at {self.evidence.recent_level():.2f}, a step below the target's "
                              f"level for {self.config.sustained_frames} checks")
        self.evidence.target_in_front = not touches_bottom(self._last_box, frame_size[1], self.quality)
        if good[row]:
            if (anchor_sim >= self.gallery_config.update_threshold
                    and self._since_update >= self.gallery_config.update_interval
                    and stranger_sim + self.config.stranger_margin <= sim):
                if self.gallery.add(embedding):
                    self._since_update = 0
        self.evidence.bank_bystanders(tracks, row, good)
        return self._result()

    def _reacquire_phase(self, tracks: Detections, good: np.ndarray, now: float) -> LockResult:
        if self._lost_since is None:
            self._lost_since = now
        timeout = self.config.reenroll_timeout_s
        if timeout > 0 and now - self._lost_since >= timeout:
            self.request_enrollment()
            return LockResult(LockState.SEARCHING, event=f"re-enrollment after {timeout:g} s lost")
        emb = tracks.embeddings if tracks.embeddings is not None else np.full((len(tracks), 1), np.nan, np.float32)
        sims, anchor = self.gallery.similarity(emb), self.gallery.anchor_similarity(emb)
        stranger = self.strangers.similarity(emb)
        measured = np.flatnonzero(np.isfinite(sims))
        eligible = [r for r in measured
                    if good[r] and self.evidence.plausible(int(tracks.track_ids[r]), float(sims[r]))]
        best_sim, best = None, None
        if eligible:
            best = max(eligible, key=lambda r: float(sims[r]))
            best_sim = float(sims[best])
            runner_up = max([float(sims[r]) for r in measured if r != best], default=-1.0)
            passes = (best_sim >= self.accept_floor() and float(anchor[best]) >= self.config.anchor_threshold
                      and best_sim - runner_up >= self.config.accept_margin
                      and best_sim - float(stranger[best]) >= self.config.stranger_margin)
            track_id = int(tracks.track_ids[best])
            if passes:
                self._accepts = self._accepts + 1 if track_id == self._accept_id else 1
                self._accept_id = track_id
            else:
                self._accept_id, self._accepts = None, 0
        else:
            self._accept_id, self._accepts = None, 0
        self.evidence.bank_rejected(tracks, good, sims, self._accept_id)
        if best is None or self._accepts < self.config.accept_frames:
            return LockResult(LockState.LOST, self._accept_id, None, best_sim)
        box = tracks.xyxy[best].copy()
        if self.enroll_height is None:
            self.enroll_height = float(tracks.heights[best])
        track_id = self._accept_id
        self._reset_counters()
        self._lock_on(track_id, box, best_sim, None)
        self.evidence.last_good = _embedding(tracks, best)
        return self._result(event=f"re-acquired as track {track_id} (similarity {best_sim:.2f})")

    def accept_floor(self) -> float:
        """Gallery similarity a candidate needs to be re-acquired: ``accept_threshold``, raised to the
        target's typical similarity while it was followed minus ``accept_drop`` (its anchor
        similarity must also reach ``anchor_threshold``)."""
        typical = self.evidence.typical()
        floor = self.config.accept_threshold
        return floor if typical is None else max(floor, typical - self.config.accept_drop)

    # -- helpers -------------------------------------------------------------------------------
    def _lock_on(self, track_id: Optional[int], box: np.ndarray, similarity: Optional[float],
                 frame_size: Optional[Tuple[int, int]]) -> None:
        self.state = LockState.LOCKED
        self.target_id = track_id
        self._last_box = box
        self._last_similarity = similarity
        if frame_size is not None:
            self.evidence.target_in_front = not touches_bottom(box, frame_size[1], self.quality)

    def _lose(self, why: str) -> LockResult:
        self.state = LockState.LOST
        self.target_id = None
        self._reset_counters()
        return LockResult(LockState.LOST, enroll_height=self.enroll_height, event=f"lost: {why}")

    def _start_candidate(self, tracks: Detections, row: int) -> None:
        self._candidate = int(tracks.track_ids[row])
        self._enroll_embeddings = []
        self._enroll_heights = [float(tracks.heights[row])]

    def _result(self, coasting: bool = False, event: Optional[str] = None, hold: Optional[str] = None) -> LockResult:
        return LockResult(self.state, self.target_id, self._last_box, self._last_similarity, coasting,
                          self.enroll_height, event, hold)

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


def _embedding(tracks: Detections, row: int) -> Optional[np.ndarray]:
    if tracks.embeddings is None:
        return None
    emb = np.asarray(tracks.embeddings[row], np.float32)
    if not np.all(np.isfinite(emb)):
        return None
    norm = float(np.linalg.norm(emb))
    return emb / norm if norm > 1e-6 else None
