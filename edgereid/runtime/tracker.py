"""A compact ByteTrack of our own (Zhang et al., ECCV 2022) for the car.

Why our own: the well-kept Python trackers do not fit a numpy + OpenCV + onnxruntime car image
on Python 3.8. supervision's ``ByteTrack`` pulls scipy, matplotlib, contourpy, pillow, pyyaml
and defusedxml and counts ids in a class-level counter; norfair needs filterpy (scipy,
matplotlib), scipy and rich; Ultralytics' trackers import torch. What ByteTrack needs is small:
a constant-velocity Kalman filter (``kalman.py``), IoU and a two-stage association, which is
what this module is.

Association is greedy over IoU (highest first) instead of the Hungarian algorithm (which would
need scipy or lap): a follow-car camera sees a handful of people, where greedy and optimal
assignment differ only in rare near-ties, and a wrong pairing there is caught by the target
lock's appearance check anyway.

Phases of :meth:`ByteTracker.update` (ByteTrack's order):
  1. predict every live track one frame ahead;
  2. first association: high-score detections <-> tracked and lost tracks;
  3. second association: low-score detections <-> still-unmatched *tracked* tracks (this is
     what keeps a partly occluded person, whose score drops, on its track);
  4. tentative tracks <-> remaining high-score detections;
  5. bookkeeping: unmatched tracked -> lost, lost too long -> removed, new tracks from
     unmatched detections above ``new_track_score``.
"""

from __future__ import annotations

import enum
from typing import Dict, List, Tuple

import numpy as np

from edgereid.detections import Detections, box_iou_batch
from edgereid.runtime.config import TrackerConfig
from edgereid.runtime.kalman import KalmanXYAH, xyah_to_xyxy, xyxy_to_xyah


class TrackState(enum.Enum):
    TENTATIVE = "tentative"  # seen fewer than min_hits frames in a row
    TRACKED = "tracked"  # matched this frame
    LOST = "lost"  # not matched; kept (predicted) for max_lost_frames
    REMOVED = "removed"


class Track:
    """One person's track: Kalman state, id, hit / miss counters."""

    def __init__(self, track_id: int, box: np.ndarray, score: float, frame: int) -> None:
        self.track_id = track_id
        self.kalman = KalmanXYAH(xyxy_to_xyah(box))
        self.box = np.asarray(box, np.float32).copy()
        self.score = float(score)
        self.state = TrackState.TENTATIVE
        self.hits = 1
        self.last_frame = frame

    def predict(self) -> None:
        self.box = xyah_to_xyxy(self.kalman.predict())

    def update(self, box: np.ndarray, score: float, frame: int) -> None:
        self.kalman.update(xyxy_to_xyah(box))
        self.box = np.asarray(box, np.float32).copy()
        self.score = float(score)
        self.hits += 1
        self.last_frame = frame


class ByteTracker:
    """Two-stage IoU tracker with a Kalman motion model; one instance per camera.

    Args (all in :class:`TrackerConfig`):
        high_score: detections at or above it take part in the first association and may start
            tracks. Higher = fewer false tracks, more missed people.
        low_score: detections below it are ignored entirely; between low and high they only
            extend existing tracks (ByteTrack's trick for occluded people).
        new_track_score: a new track starts only from a detection this confident.
        match_iou: minimum IoU between a predicted track box and a detection in the first
            association. Lower = follows faster motion, more id swaps in crowds.
        low_match_iou: the same for the second (low-score) association; kept stricter.
        max_lost_frames: how long a lost track is kept for re-matching (frames). Longer =
            survives longer occlusions, more chance to re-match a different person (the target
            lock re-checks appearance, so this is a tracker-level trade-off only).
        min_hits: frames a new track must be matched before it is reported (1 = at once).
    """

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self.tracks: List[Track] = []
        self.frame_id = 0
        self._next_id = 1  # per instance: two trackers never share a counter

    def reset(self) -> None:
        self.tracks = []
        self.frame_id = 0
        self._next_id = 1

    def update(self, detections: Detections) -> Detections:
        """Associate this frame's person detections with tracks.

        Args:
            detections: this frame's boxes (xyxy pixels) and scores.

        Returns:
            The detections that belong to a reported (confirmed) track this frame, with
            ``track_ids`` set; their boxes are the measured ones. Rows keep the input order.
        """
        self.frame_id += 1
        cfg = self.config
        keep = detections.scores >= cfg.low_score
        dets = detections[keep]
        high = np.flatnonzero(dets.scores >= cfg.high_score)
        low = np.flatnonzero(dets.scores < cfg.high_score)

        self._predict_phase()
        confirmed = [t for t in self.tracks if t.state in (TrackState.TRACKED, TrackState.LOST)]
        tentative = [t for t in self.tracks if t.state is TrackState.TENTATIVE]
        assigned: Dict[int, int] = {}  # detection row -> track id

        matched, rest_tracks, rest_high = self._associate(confirmed, dets, high, cfg.match_iou)
        self._apply(matched, dets, assigned)
        still_tracked = [t for t in rest_tracks if t.state is TrackState.TRACKED]
        matched, _, _ = self._associate(still_tracked, dets, low, cfg.low_match_iou)
        self._apply(matched, dets, assigned)
        matched, rest_tentative, rest_high = self._associate(tentative, dets, rest_high, cfg.match_iou)
        self._apply(matched, dets, assigned)
        self._bookkeeping_phase(rest_tentative, dets, rest_high, assigned)

        rows = sorted(r for r, tid in assigned.items() if self._by_id(tid).state is TrackState.TRACKED)
        out = dets[np.asarray(rows, np.int64)] if rows else Detections.empty()
        out.track_ids = np.asarray([assigned[r] for r in rows], np.int64)
        return out

    # -- phases ------------------------------------------------------------------------------
    def _predict_phase(self) -> None:
        for track in self.tracks:
            track.predict()

    def _associate(self, tracks: List[Track], dets: Detections, rows: np.ndarray,
                   min_iou: float) -> Tuple[List[Tuple[Track, int]], List[Track], np.ndarray]:
        """Greedy IoU matching; returns (pairs, unmatched tracks, unmatched detection rows)."""
        if not tracks or len(rows) == 0:
            return [], list(tracks), rows
        iou = box_iou_batch(np.stack([t.box for t in tracks]), dets.xyxy[rows])
        pairs: List[Tuple[Track, int]] = []
        used_t, used_d = set(), set()
        for flat in np.argsort(-iou, axis=None, kind="stable"):
            ti, di = np.unravel_index(flat, iou.shape)
            if iou[ti, di] < min_iou or iou[ti, di] <= 0:
                break
            if ti in used_t or di in used_d:
                continue
            used_t.add(ti)
            used_d.add(di)
            pairs.append((tracks[ti], int(rows[di])))
        rest_tracks = [t for i, t in enumerate(tracks) if i not in used_t]
        rest_rows = np.asarray([r for i, r in enumerate(rows) if i not in used_d], np.int64)
        return pairs, rest_tracks, rest_rows

    def _apply(self, pairs: List[Tuple[Track, int]], dets: Detections, assigned: Dict[int, int]) -> None:
        for track, row in pairs:
            track.update(dets.xyxy[row], float(dets.scores[row]), self.frame_id)
            if track.state is TrackState.LOST or track.hits >= self.config.min_hits or self.frame_id == 1:
                track.state = TrackState.TRACKED
            assigned[row] = track.track_id

    def _bookkeeping_phase(self, unmatched_tentative: List[Track], dets: Detections, new_rows: np.ndarray,
                           assigned: Dict[int, int]) -> None:
        for track in self.tracks:
            if track.last_frame == self.frame_id:
                continue
            if track.state is TrackState.TRACKED:
                track.state = TrackState.LOST
            if track in unmatched_tentative:
                track.state = TrackState.REMOVED
            elif self.frame_id - track.last_frame > self.config.max_lost_frames:
                track.state = TrackState.REMOVED
        self.tracks = [t for t in self.tracks if t.state is not TrackState.REMOVED]
        for row in new_rows:
            if dets.scores[row] < self.config.new_track_score:
                continue
            track = Track(self._next_id, dets.xyxy[row], float(dets.scores[row]), self.frame_id)
            self._next_id += 1
            if self.frame_id == 1 or self.config.min_hits <= 1:
                track.state = TrackState.TRACKED
            self.tracks.append(track)
            assigned[int(row)] = track.track_id

    # -- queries -----------------------------------------------------------------------------
    def _by_id(self, track_id: int) -> Track:
        for track in self.tracks:
            if track.track_id == track_id:
                return track
        raise KeyError(track_id)

    def predicted_boxes(self) -> Dict[int, np.ndarray]:
        """Track id -> predicted xyxy box of every LOST (coasting) track."""
        return {t.track_id: t.box.copy() for t in self.tracks if t.state is TrackState.LOST}
