"""ByteTracker: stable ids, two-stage association, coasting, per-instance ids."""

from __future__ import annotations

import numpy as np

from edgereid.detections import Detections
from edgereid.runtime.config import TrackerConfig
from edgereid.runtime.tracker import ByteTracker


def dets(boxes, scores=None):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    scores = np.full(len(boxes), 0.9, np.float32) if scores is None else np.asarray(scores, np.float32)
    return Detections(boxes, scores)


def box_at(x, y=100, w=40, h=100):
    return [x, y, x + w, y + h]


def test_two_walkers_keep_their_ids_and_rows_keep_input_order():
    tracker = ByteTracker()
    seen = []
    for t in range(20):
        out = tracker.update(dets([box_at(10 + 5 * t), box_at(300 - 5 * t)]))
        seen.append(out.track_ids.tolist())
    assert seen[0] == [1, 2]
    assert all(ids == [1, 2] for ids in seen)


def test_ids_are_per_tracker_instance():
    a, b = ByteTracker(), ByteTracker()
    a.update(dets([box_at(0)]))
    a.update(dets([box_at(0), box_at(200)]))
    a.update(dets([box_at(0), box_at(200)]))
    out_b = b.update(dets([box_at(0)]))
    assert out_b.track_ids.tolist() == [1]


def test_new_track_after_first_frame_needs_min_hits():
    tracker = ByteTracker(TrackerConfig(min_hits=2))
    tracker.update(dets([box_at(0)]))
    out = tracker.update(dets([box_at(0), box_at(300)]))
    assert out.track_ids.tolist() == [1]  # the newcomer is tentative
    out = tracker.update(dets([box_at(0), box_at(300)]))
    assert out.track_ids.tolist() == [1, 2]


def test_low_score_detection_extends_a_track_but_never_starts_one():
    tracker = ByteTracker(TrackerConfig(high_score=0.5, low_score=0.1))
    for t in range(3):
        tracker.update(dets([box_at(10 + 2 * t)]))
    out = tracker.update(dets([box_at(16), box_at(300)], scores=[0.3, 0.3]))  # half-occluded + a stranger
    assert out.track_ids.tolist() == [1]
    assert np.allclose(out.xyxy[0], box_at(16))


def test_lost_track_coasts_on_its_prediction_and_is_rematched_with_the_same_id():
    tracker = ByteTracker(TrackerConfig(max_lost_frames=10))
    for t in range(10):
        tracker.update(dets([box_at(10 + 4 * t)]))
    for _ in range(3):  # detector misses the person
        out = tracker.update(Detections.empty())
        assert len(out) == 0
    predicted = tracker.predicted_boxes()
    assert list(predicted) == [1]
    assert predicted[1][0] > 10 + 4 * 9  # kept moving right
    out = tracker.update(dets([box_at(10 + 4 * 13)]))
    assert out.track_ids.tolist() == [1]


def test_track_is_removed_after_max_lost_frames():
    tracker = ByteTracker(TrackerConfig(max_lost_frames=3))
    for _ in range(3):
        tracker.update(dets([box_at(10)]))
    for _ in range(5):
        tracker.update(Detections.empty())
    assert tracker.predicted_boxes() == {}
    tracker.update(dets([box_at(10)]))
    out = tracker.update(dets([box_at(10)]))
    assert out.track_ids.tolist() == [2]


def test_empty_frames_and_scores_below_low_are_ignored():
    tracker = ByteTracker()
    assert len(tracker.update(Detections.empty())) == 0
    out = tracker.update(dets([box_at(0)], scores=[0.05]))
    assert len(out) == 0
